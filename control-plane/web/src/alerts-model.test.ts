import { describe, expect, it } from "vitest";
import { byUrgency, EMPTY_RULE, merged, ruleBody, ruleForm, type Alert } from "./alerts-model";

const alert = (id: string, state: Alert["state"], severity: Alert["severity"], updated = "2026-12-03T10:00:00Z"): Alert => ({
  id,
  rule_id: "r",
  rule_name: "Hot",
  device_id: "d1",
  severity,
  state,
  summary: "",
  value: null,
  since: updated,
  opened_at: updated,
  acknowledged_at: null,
  acknowledged_by: null,
  resolved_at: null,
  resolution: null,
  updated_at: updated,
});

describe("rule form", () => {
  it("makes the documented body, minutes as seconds", () => {
    const body = ruleBody({ ...EMPTY_RULE, name: "Hot hall", target: "tags", targetText: "hall, upstairs", value: "75", clear: "70", forMinutes: "5" });
    expect(body).toEqual({
      name: "Hot hall",
      enabled: true,
      severity: "warning",
      target: { tags: ["hall", "upstairs"] },
      condition: { metric: { metric: "temperature_c", direction: "above", value: 75, clear: 70, for_s: 300 } },
    });
  });

  it("leaves mistakes for the server to name", () => {
    const body = ruleBody({ ...EMPTY_RULE, value: "hot", forMinutes: "" });
    expect(body.condition).toEqual({ metric: { metric: "temperature_c", direction: "above", value: "hot" } });
    expect(ruleBody({ ...EMPTY_RULE, kind: "offline", forMinutes: "10", target: "group", targetText: " lobby " })).toMatchObject({
      target: { group: "lobby" },
      condition: { offline: { for_s: 600 } },
    });
  });

  it("edits a stored rule and gives the same body back", () => {
    const stored = {
      name: "Disk",
      enabled: false,
      severity: "critical" as const,
      target: { devices: ["a1", "b2"] },
      condition: { metric: { metric: "disk_percent" as const, direction: "above" as const, value: 90, clear: 85, for_s: 600 } },
    };
    expect(ruleBody(ruleForm(stored))).toEqual(stored);
  });

  it("sends each condition's own fields, and a schedule only for scheduled checks", () => {
    const rate = ruleBody({ ...EMPTY_RULE, kind: "rate", metric: "disk_free_mb", value: "500", windowMinutes: "60", cron: "* * * * *" });
    expect(rate.condition).toEqual({ rate: { metric: "disk_free_mb", direction: "falling", per_hour: 500, window_s: 3600 } });
    expect(rate.schedule).toBeUndefined();
    const ready = ruleBody({ ...EMPTY_RULE, kind: "shabbat_ready", beforeMinutes: "120", cron: "*/5 * * * *", timezone: "Asia/Jerusalem" });
    expect(ready).toMatchObject({
      condition: { shabbat_ready: { before_s: 7200 } },
      schedule: { cron: "*/5 * * * *", timezone: "Asia/Jerusalem" },
    });
    // Empty boxes are left to the server's defaults.
    expect(ruleBody({ ...EMPTY_RULE, kind: "disk_full" }).condition).toEqual({ disk_full: {} });
  });

  it("round-trips every kind of stored rule", () => {
    const stored = [
      { flapping: { max: 6, window_s: 3600 } },
      { cert_expiry: { within_days: 14 } },
      { disk_full: { within_days: 7, history_days: 3 } },
      { not_fetched: { for_s: 86400 } },
      { rate: { metric: "cpu_percent", direction: "rising", per_hour: 30, clear_per_hour: 10, window_s: 1800 } },
    ];
    for (const condition of stored) {
      const rule = { name: "r", enabled: true, severity: "info" as const, target: { all: true }, condition, schedule: undefined };
      const { schedule: _, ...want } = rule;
      expect(ruleBody(ruleForm(rule))).toEqual(want);
    }
    const scheduled = { name: "c", enabled: true, severity: "warning" as const, target: { all: true }, condition: { content_stale: { for_s: 0 } }, schedule: { cron: "0 * * * *" } };
    expect(ruleBody(ruleForm(scheduled))).toEqual(scheduled);
  });
});

describe("alert list", () => {
  it("puts open and critical first", () => {
    const list = byUrgency([alert("1", "resolved", "critical"), alert("2", "open", "info"), alert("3", "open", "critical"), alert("4", "acknowledged", "critical")]);
    expect(list.map((a) => a.id)).toEqual(["3", "2", "4", "1"]);
  });

  it("takes live changes but never an older state", () => {
    const open = alert("1", "open", "warning", "2026-12-03T10:00:00Z");
    const acked = alert("1", "acknowledged", "warning", "2026-12-03T10:01:00Z");
    expect(merged([open], acked)[0].state).toBe("acknowledged");
    expect(merged([acked], open)[0].state).toBe("acknowledged");
    expect(merged([open], alert("2", "open", "info")).map((a) => a.id)).toEqual(["2", "1"]);
  });
});
