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

export type Kind =
  | "metric"
  | "offline"
  | "rate"
  | "flapping"
  | "content_stale"
  | "not_fetched"
  | "cert_expiry"
  | "disk_full"
  | "shabbat_ready";

/** Conditions in the order the form offers them. */
export const KINDS: Kind[] = [
  "metric",
  "offline",
  "rate",
  "flapping",
  "content_stale",
  "not_fetched",
  "cert_expiry",
  "disk_full",
  "shabbat_ready",
];

/** Conditions read on a schedule rather than on every pass; the server has a default one. */
export const SCHEDULED: Kind[] = ["content_stale", "not_fetched", "cert_expiry", "disk_full", "shabbat_ready"];

/** A condition as the API gives it: one key (the kind) and its fields. */
export type Condition = { [K in Kind]?: Record<string, unknown> };

export interface Rule {
  name: string;
  enabled: boolean;
  severity: Severity;
  target: RuleTarget;
  condition: Condition;
  schedule?: { cron: string; timezone?: string };
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
 * missing and the server names it or uses its default). */
export interface RuleForm {
  name: string;
  enabled: boolean;
  severity: Severity;
  target: TargetKind;
  targetText: string;
  kind: Kind;
  metric: MetricName;
  direction: "above" | "below";
  trend: "rising" | "falling";
  value: string;
  clear: string;
  forMinutes: string;
  windowMinutes: string;
  max: string;
  days: string;
  historyDays: string;
  beforeMinutes: string;
  cron: string;
  timezone: string;
}

export type Box = Exclude<keyof RuleForm, "name" | "enabled" | "severity" | "target" | "targetText" | "kind" | "cron" | "timezone">;

/** Boxes whose text is minutes and whose field is seconds. */
const MINUTES: Box[] = ["forMinutes", "windowMinutes", "beforeMinutes"];
/** Boxes that are choices, sent as chosen. */
export const CHOICES: Box[] = ["metric", "direction", "trend"];

/** Per condition: each box the form shows, and the condition field it fills. */
export const CONDITION_FIELDS: Record<Kind, [Box, string][]> = {
  metric: [
    ["metric", "metric"],
    ["direction", "direction"],
    ["value", "value"],
    ["clear", "clear"],
    ["forMinutes", "for_s"],
  ],
  offline: [["forMinutes", "for_s"]],
  rate: [
    ["metric", "metric"],
    ["trend", "direction"],
    ["value", "per_hour"],
    ["clear", "clear_per_hour"],
    ["windowMinutes", "window_s"],
  ],
  flapping: [
    ["max", "max"],
    ["windowMinutes", "window_s"],
  ],
  content_stale: [["forMinutes", "for_s"]],
  not_fetched: [["forMinutes", "for_s"]],
  cert_expiry: [["days", "within_days"]],
  disk_full: [
    ["days", "within_days"],
    ["historyDays", "history_days"],
  ],
  shabbat_ready: [["beforeMinutes", "before_s"]],
};

export const EMPTY_RULE: RuleForm = {
  name: "",
  enabled: true,
  severity: "warning",
  target: "all",
  targetText: "",
  kind: "metric",
  metric: "temperature_c",
  direction: "above",
  trend: "falling",
  value: "",
  clear: "",
  forMinutes: "5",
  windowMinutes: "",
  max: "",
  days: "",
  historyDays: "",
  beforeMinutes: "",
  cron: "",
  timezone: "",
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
  const fields: Record<string, unknown> = {};
  for (const [box, name] of CONDITION_FIELDS[f.kind]) {
    const text = f[box];
    const value = CHOICES.includes(box) ? text : MINUTES.includes(box) ? seconds(text) : numberOf(text);
    // Left empty: the server's default, or its error naming the field.
    if (value !== undefined) fields[name] = value;
  }
  const body: Record<string, unknown> = { name: f.name, enabled: f.enabled, severity: f.severity, target, condition: { [f.kind]: fields } };
  if (SCHEDULED.includes(f.kind) && f.cron.trim()) {
    body.schedule = { cron: f.cron.trim(), ...(f.timezone.trim() ? { timezone: f.timezone.trim() } : {}) };
  }
  return body;
}

/** The form showing a stored rule, to edit it. */
export function ruleForm(r: Rule): RuleForm {
  const target = (TARGETS.find((k) => r.target[k] !== undefined) ?? "all") as TargetKind;
  const raw = r.target[target];
  const targetText = Array.isArray(raw) ? raw.join(", ") : typeof raw === "string" ? raw : "";
  const kind = KINDS.find((k) => r.condition[k] !== undefined) ?? "metric";
  const form: RuleForm = {
    ...EMPTY_RULE,
    name: r.name,
    enabled: r.enabled,
    severity: r.severity,
    target,
    targetText,
    kind,
    forMinutes: "",
    cron: r.schedule?.cron ?? "",
    timezone: r.schedule?.timezone ?? "",
  };
  const fields = r.condition[kind] ?? {};
  const boxes = form as unknown as Record<Box, string>;
  for (const [box, name] of CONDITION_FIELDS[kind]) {
    const value = fields[name];
    if (value === undefined || value === null) continue;
    boxes[box] = MINUTES.includes(box) && typeof value === "number" ? String(value / 60) : String(value);
  }
  return form;
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
