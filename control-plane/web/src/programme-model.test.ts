import { describe, expect, it } from "vitest";
import { bodyOf } from "./documents";
import { HONOURS, formToRule, formToTarget, nextHonour, nextSaturday, ruleToForm, targetToForm, type Rule } from "./programme-model";

describe("aliyot", () => {
  it("offers the next honour not yet given, then additional aliyot", () => {
    expect(nextHonour([])).toBe("kohen");
    expect(nextHonour(["kohen"])).toBe("levi");
    expect(nextHonour(["kohen", "levi", "extra"])).toBe("shlishi");
    expect(nextHonour(["levi"])).toBe("kohen");
    expect(nextHonour(HONOURS.filter((h) => h !== "extra"))).toBe("extra");
    expect(nextHonour([...HONOURS])).toBe("extra");
  });

  it("dates a new reading on the coming Shabbat", () => {
    expect(nextSaturday("2026-12-01")).toBe("2026-12-05");
    expect(nextSaturday("2026-12-05")).toBe("2026-12-05");
    expect(nextSaturday("2026-12-06")).toBe("2026-12-12");
    expect(nextSaturday("2026-12-31")).toBe("2027-01-02");
    expect(nextSaturday("")).toBe("");
  });
});

describe("shiur form ↔ schedule rule", () => {
  const form = {
    title: "Daf Yomi",
    timeKind: "fixed" as const,
    fixed: "20:15",
    zman: "sunset",
    offset: "0",
    roundMode: "",
    roundMinutes: 5,
    days: ["sunday", "monday"],
  };

  it("makes a fixed-time rule", () => {
    expect(formToRule(form, null)).toEqual({ name: "Daf Yomi", time: { fixed: "20:15" }, days: ["sunday", "monday"] });
  });

  it("makes a zman-relative rule with rounding", () => {
    const rule = formToRule({ ...form, timeKind: "zman", offset: "-60", roundMode: "down", roundMinutes: 5 }, null);
    expect(rule).toEqual({
      name: "Daf Yomi",
      time: { zman: "sunset", offset_minutes: -60 },
      round: { mode: "down", minutes: 5 },
      days: ["sunday", "monday"],
    });
  });

  it("takes an empty offset as the zman itself and sends a non-number as typed", () => {
    expect(formToRule({ ...form, timeKind: "zman", offset: " " }, null).time).toEqual({ zman: "sunset", offset_minutes: 0 });
    expect(formToRule({ ...form, timeKind: "zman", offset: "1.5" }, null).time).toEqual({ zman: "sunset", offset_minutes: "1.5" });
  });

  it("keeps what the form does not show and drops rounding when turned off", () => {
    const base: Rule = {
      name: "Gemara",
      time: { zman: "sunset", offset_minutes: -30 },
      round: { mode: "up", minutes: 10 },
      not_before: { fixed: "16:00" },
      days: ["weekday"],
      except: ["fast"],
      from: "2026-10-01",
    };
    const rule = formToRule({ ...ruleToForm(base), roundMode: "" }, base);
    expect(rule).toEqual({
      name: "Gemara",
      time: { zman: "sunset", offset_minutes: -30 },
      not_before: { fixed: "16:00" },
      days: ["weekday"],
      except: ["fast"],
      from: "2026-10-01",
    });
  });

  it("round-trips a rule through the form", () => {
    const rule: Rule = { name: "Halacha", time: { zman: "plag_hamincha", offset_minutes: 10 }, round: { mode: "nearest", minutes: 15 }, days: ["shabbat"] };
    expect(formToRule(ruleToForm(rule), rule)).toEqual(rule);
    const fixed: Rule = { name: "Mishna", time: { fixed: "06:00" }, days: ["every_day"] };
    expect(ruleToForm(fixed)).toMatchObject({ timeKind: "fixed", fixed: "06:00", roundMode: "" });
    expect(formToRule(ruleToForm(fixed), fixed)).toEqual(fixed);
  });

  it("starts a new shiur on weekdays at a fixed time", () => {
    expect(ruleToForm(null)).toEqual({ title: "", timeKind: "fixed", fixed: "", zman: "sunset", offset: "0", roundMode: "", roundMinutes: 5, days: ["weekday"] });
  });
});

describe("timer targets", () => {
  it("round-trip through the form", () => {
    for (const target of [{ zman: "candle_lighting" }, { prayer: "Mincha" }, { at: "2026-12-06T16:00:00.000Z" }]) {
      expect(formToTarget(targetToForm(target))).toEqual(target);
    }
  });

  it("default to candle lighting", () => {
    expect(targetToForm(null)).toEqual({ kind: "zman", zman: "candle_lighting", prayer: "", at: "" });
  });

  it("send only the chosen kind", () => {
    const form = { kind: "prayer" as const, zman: "sunset", prayer: "Maariv", at: "2026-12-06T18:00" };
    expect(formToTarget(form)).toEqual({ prayer: "Maariv" });
    expect(formToTarget({ ...form, kind: "zman" })).toEqual({ zman: "sunset" });
    expect(formToTarget({ ...form, kind: "at", at: "" })).toEqual({ at: "" });
  });
});

describe("stored documents", () => {
  it("become request bodies without the server's fields", () => {
    const stored = { id: "x", tenant_id: "default", created_at: "a", updated_at: "b", teacher: "הרב כהן", location: "" };
    expect(bodyOf(stored)).toEqual({ teacher: "הרב כהן", location: "" });
  });
});
