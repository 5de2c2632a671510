// What the alerts page shows and sends, without the DOM: alerts as the API gives them, the
// rule form and the rule body it makes (docs/api.md, Alerts).
import { splitList } from "./format";

export type Severity = "info" | "warning" | "critical";
export type AlertState = "open" | "acknowledged" | "resolved";
export type MetricName = "temperature_c" | "cpu_percent" | "memory_percent" | "disk_percent" | "disk_free_mb";
export type TargetKind = "all" | "tags" | "group" | "devices";

export const SEVERITIES: Severity[] = ["critical", "warning", "info"];
export const METRICS: MetricName[] = ["temperature_c", "cpu_percent", "memory_percent", "disk_percent", "disk_free_mb"];
export const TARGETS: TargetKind[] = ["all", "tags", "group", "devices"];

export interface Alert {
  id: string;
  rule_id: string;
  rule_name: string;
  device_id: string;
  severity: Severity;
  state: AlertState;
  summary: string;
  value: number | null;
  since: string;
  opened_at: string;
  acknowledged_at: string | null;
  acknowledged_by: string | null;
  resolved_at: string | null;
  resolution: string | null;
  updated_at: string;
}

export interface RuleTarget {
  all?: boolean;
  tags?: string[];
  group?: string;
  devices?: string[];
}

export type Condition =
  | { metric: { metric: MetricName; direction: "above" | "below"; value: number; clear?: number; for_s: number } }
  | { offline: { for_s: number } };

export interface Rule {
  name: string;
  enabled: boolean;
  severity: Severity;
  target: RuleTarget;
  condition: Condition;
}

export interface StoredRule extends Rule {
  id: string;
}

/** A silence as the API gives it (docs/api.md, Silences). */
export interface Silence {
  id: string;
  matchers: { rule_id?: string; device_id?: string; tags?: string[] };
  starts_at: string;
  ends_at: string;
  comment: string;
  created_by: string;
}

/** The rule form: boxes as typed (numbers as text, so an empty box reaches the server as
 * missing and the server names it). */
export interface RuleForm {
  name: string;
  enabled: boolean;
  severity: Severity;
  target: TargetKind;
  targetText: string;
  kind: "metric" | "offline";
  metric: MetricName;
  direction: "above" | "below";
  value: string;
  clear: string;
  forMinutes: string;
}

export const EMPTY_RULE: RuleForm = {
  name: "",
  enabled: true,
  severity: "warning",
  target: "all",
  targetText: "",
  kind: "metric",
  metric: "temperature_c",
  direction: "above",
  value: "",
  clear: "",
  forMinutes: "5",
};

/** A number box: its number, or the text itself (the server then says what is wrong). */
function numberOf(text: string): number | string | undefined {
  const t = text.trim();
  if (t === "") return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : t;
}

function seconds(minutes: string): number | string | undefined {
  const n = numberOf(minutes);
  return typeof n === "number" ? Math.round(n * 60) : n;
}

/** The request body of the form. */
export function ruleBody(f: RuleForm): Record<string, unknown> {
  const target: Record<string, unknown> =
    f.target === "all"
      ? { all: true }
      : f.target === "group"
        ? { group: f.targetText.trim() }
        : { [f.target]: splitList(f.targetText) };
  const forS = seconds(f.forMinutes);
  const condition =
    f.kind === "offline"
      ? { offline: { for_s: forS } }
      : {
          metric: {
            metric: f.metric,
            direction: f.direction,
            value: numberOf(f.value),
            ...(f.clear.trim() ? { clear: numberOf(f.clear) } : {}),
            for_s: forS ?? 0,
          },
        };
  return { name: f.name, enabled: f.enabled, severity: f.severity, target, condition };
}

/** The form showing a stored rule, to edit it. */
export function ruleForm(r: Rule): RuleForm {
  const target = (TARGETS.find((k) => r.target[k] !== undefined) ?? "all") as TargetKind;
  const raw = r.target[target];
  const targetText = Array.isArray(raw) ? raw.join(", ") : typeof raw === "string" ? raw : "";
  const base = { ...EMPTY_RULE, name: r.name, enabled: r.enabled, severity: r.severity, target, targetText };
  if ("offline" in r.condition) {
    return { ...base, kind: "offline", forMinutes: String(r.condition.offline.for_s / 60) };
  }
  const m = r.condition.metric;
  return {
    ...base,
    kind: "metric",
    metric: m.metric,
    direction: m.direction,
    value: String(m.value),
    clear: m.clear === undefined ? "" : String(m.clear),
    forMinutes: String(m.for_s / 60),
  };
}

/** Alerts newest first with `changed` put in (or replaced), as a live event brings it. */
export function merged(alerts: Alert[], changed: Alert): Alert[] {
  const rest = alerts.filter((a) => a.id !== changed.id);
  // A late event never undoes a newer state the page already holds.
  const held = alerts.find((a) => a.id === changed.id);
  const next = held && Date.parse(held.updated_at) > Date.parse(changed.updated_at) ? held : changed;
  return [next, ...rest].sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
}

/** Open alerts first (critical before warning before info), then acknowledged, then resolved. */
export function byUrgency(alerts: Alert[]): Alert[] {
  const state = { open: 0, acknowledged: 1, resolved: 2 } as const;
  const severity = { critical: 0, warning: 1, info: 2 } as const;
  return [...alerts].sort(
    (a, b) => state[a.state] - state[b.state] || severity[a.severity] - severity[b.severity] || (a.id < b.id ? 1 : -1),
  );
}
