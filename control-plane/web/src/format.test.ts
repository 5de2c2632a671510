import { describe, expect, it } from "vitest";
import { hebrewDate, instant, minute, preferred, splitList, toLocalInput, weekdayOf } from "./format";

describe("times", () => {
  it("shows the minute the server gives, or a dash", () => {
    expect(minute("16:02")).toBe("16:02");
    expect(minute(null)).toBe("—");
    expect(minute(undefined)).toBe("—");
  });

  it("turns datetime-local values into UTC instants and back", () => {
    expect(instant("")).toBeNull();
    expect(instant(null)).toBeNull();
    expect(toLocalInput(null)).toBe("");
    expect(toLocalInput("not a date")).toBe("");
    for (const at of ["2026-12-06T16:00:00.000Z", "2027-03-28T00:30:00.000Z"]) {
      const local = toLocalInput(at);
      expect(local).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/);
      expect(instant(local)).toBe(at);
    }
  });
});

describe("text", () => {
  it("splits typed lists on commas and spaces", () => {
    expect(splitList(" lobby1, lobby2 ,,women  ")).toEqual(["lobby1", "lobby2", "women"]);
    expect(splitList("")).toEqual([]);
  });

  it("prefers the page's language and falls back to the other", () => {
    expect(preferred("שלום", "Hello", "he")).toBe("שלום");
    expect(preferred("שלום", "Hello", "en")).toBe("Hello");
    expect(preferred("", "Hello", "he")).toBe("Hello");
    expect(preferred("שלום", "", "en")).toBe("שלום");
  });
});

describe("dates", () => {
  it("writes Hebrew dates with Hebrew month names on a Hebrew page", () => {
    expect(hebrewDate({ day: 25, month: "Kislev", year: 5787 }, "en")).toBe("25 Kislev 5787");
    expect(hebrewDate({ day: 25, month: "Kislev", year: 5787 }, "he")).toBe("25 כסלו 5787");
    expect(hebrewDate({ day: 1, month: "Adar II", year: 5787 }, "he")).toBe("1 אדר ב׳ 5787");
    expect(hebrewDate({ day: 15, month: "Sh'vat", year: 5787 }, "he")).toBe("15 שבט 5787");
  });

  it("names the day of the week as the schedule rules do", () => {
    expect(weekdayOf("2026-12-04")).toBe("friday");
    expect(weekdayOf("2026-12-05")).toBe("shabbat");
    expect(weekdayOf("2026-12-06")).toBe("sunday");
    expect(weekdayOf("")).toBeNull();
  });
});
