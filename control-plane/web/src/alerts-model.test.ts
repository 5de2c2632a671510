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
    expect(body.condition).toEqual({ metric: { metric: "temperature_c", direction: "above", value: "hot", for_s: 0 } });
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
