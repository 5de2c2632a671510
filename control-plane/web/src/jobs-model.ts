// What the jobs page computes, kept apart from the DOM so it is tested on its own: the request
// body a form makes, the progress bar's segments, and the actions a job in a state offers.

export type ExecState = "queued" | "sent" | "received" | "succeeded" | "failed" | "timed_out" | "cancelled" | "skipped";
export type JobState = "running" | "paused" | "completed" | "aborted" | "cancelled";
export type Counts = Record<ExecState, number>;

/** Execution states in the order the progress bar shows them. */
export const STATES: ExecState[] = ["succeeded", "failed", "timed_out", "received", "sent", "queued", "cancelled", "skipped"];

export const COMMANDS = [
  "ping",
  "brightness",
  "volume",
  "display_power",
  "power_schedule",
  "screenshot",
  "refresh_content",
  "restart_agent",
  "reboot",
  "diagnostics",
  "set_settings",
  "install_package",
  "update",
] as const;
export type CommandType = (typeof COMMANDS)[number];
export type TargetKind = "all" | "tags" | "group" | "devices" | "query";

/** Agent settings `set_settings` may change, in the order the form shows them. */
export const SETTINGS = ["heartbeat_secs", "metrics_secs", "keep_alive_secs", "telemetry_budget_bytes"] as const;
export type SettingName = (typeof SETTINGS)[number];

/** A display power schedule as sent (the board settings' shape). */
export type Schedule = { off: unknown; on: unknown };

/** A command and its parameters as typed (the jobs page and the fleet's selection bar). */
export interface CommandForm {
  command: CommandType;
  percent: number;
  on: boolean;
  /** `power_schedule`: the schedule, or null to go back to the content's. */
  schedule: Schedule | null;
  /** `install_package`: its name. */
  package: string;
  /** `update`: the release's id in the registry. */
  release: string;
  /** `set_settings`: values as typed; empty ones are left unchanged. */
  settings: Record<SettingName, string>;
}

export const EMPTY_COMMAND: CommandForm = {
  command: "ping",
  percent: 50,
  on: true,
  schedule: null,
  package: "",
  release: "",
  settings: { heartbeat_secs: "", metrics_secs: "", keep_alive_secs: "", telemetry_budget_bytes: "" },
};

export interface JobForm extends CommandForm {
  target: TargetKind;
  /** Tags or device ids separated by commas or spaces; a group's name; a saved query's id. */
  targetText: string;
  concurrency: string;
  ratePerMinute: string;
  retries: string;
  abortPercent: string;
  abortMin: string;
  /** Only this share of the target's screens (empty: all of them). */
  targetPercent: string;
  /** Phases of a staged roll-out as typed: "1, 10%, 50%" (empty: no phases). */
  phases: string;
  /** Minutes to wait after a healthy phase before the next. */
  soakMinutes: string;
  /** A phase with more than this % failed pauses the roll-out. */
  pausePercent: string;
  /** A maintenance window ("HH:MM"; both empty: any time) and its days (0 = Sunday; none: every day). */
  windowStart: string;
  windowEnd: string;
  windowDays: number[];
}

/** A job form with every box empty (the server's defaults) and no window. */
export const EMPTY_FORM: JobForm = {
  ...EMPTY_COMMAND,
  target: "all",
  targetText: "",
  concurrency: "",
  ratePerMinute: "",
  retries: "",
  abortPercent: "",
  abortMin: "",
  targetPercent: "",
  phases: "",
  soakMinutes: "",
  pausePercent: "",
  windowStart: "",
  windowEnd: "",
  windowDays: [],
};

/** One phase of a staged roll-out, as the API takes it. */
export interface Phase {
  screens?: number;
  percent?: number;
}

/** The phases typed as "1, 10%, 50%": a number of screens or a percentage each. A word that is
 * neither is sent as an empty phase, so the server names it (`rollout.phases[i]`). */
export function phasesOf(text: string): Phase[] {
  return words(text).map((w): Phase => {
    const percent = /^(\d+(?:\.\d+)?)%$/.exec(w);
    if (percent) return { percent: Number(percent[1]) };
    if (/^\d+$/.test(w)) return { screens: Number(w) };
    return {};
  });
}

function words(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((w) => w.trim())
    .filter((w) => w.length > 0);
}

/** A number the operator typed, or undefined when the box is empty (the server's default). */
function optionalNumber(text: string): number | undefined {
  const s = text.trim();
  return s === "" ? undefined : Number(s);
}

/** The `command` of a job: its type with the parameters that type has. */
export function commandOf(form: CommandForm): Record<string, unknown> {
  const command: Record<string, unknown> = { type: form.command };
  if (form.command === "brightness" || form.command === "volume") command.percent = form.percent;
  if (form.command === "display_power") command.on = form.on;
  if (form.command === "power_schedule") command.schedule = form.schedule;
  if (form.command === "install_package") command.package = form.package.trim();
  if (form.command === "update") command.release = form.release;
  if (form.command === "set_settings") {
    const settings: Record<string, number> = {};
    for (const name of SETTINGS) {
      const n = optionalNumber(form.settings[name]);
      if (n !== undefined) settings[name] = n;
    }
    command.settings = settings;
  }
  return command;
}

/** The `POST /api/v1/jobs` body a form makes; the server checks every field. */
export function jobBody(form: JobForm): Record<string, unknown> {
  const command = commandOf(form);
  let target: Record<string, unknown>;
  switch (form.target) {
    case "all":
      target = { all: true };
      break;
    case "group":
      target = { group: form.targetText.trim() };
      break;
    case "query":
      target = { query: form.targetText };
      break;
    default:
      target = { [form.target]: words(form.targetText) };
  }
  const share = optionalNumber(form.targetPercent);
  if (share !== undefined) target.percent = share;
  const body: Record<string, unknown> = { command, target };
  const phases = phasesOf(form.phases);
  if (phases.length > 0) {
    const rollout: Record<string, unknown> = { phases };
    const soak = optionalNumber(form.soakMinutes);
    if (soak !== undefined) rollout.soak_s = Math.round(soak * 60);
    const pause = optionalNumber(form.pausePercent);
    if (pause !== undefined) rollout.pause_failure_percent = pause;
    body.rollout = rollout;
  }
  if (form.windowStart !== "" || form.windowEnd !== "") {
    const window: Record<string, unknown> = { start: form.windowStart, end: form.windowEnd };
    if (form.windowDays.length > 0 && form.windowDays.length < 7) window.days = [...form.windowDays].sort();
    body.windows = [window];
  }
  const numbers: [string, string][] = [
    ["concurrency", form.concurrency],
    ["rate_per_minute", form.ratePerMinute],
    ["retries", form.retries],
  ];
  for (const [key, text] of numbers) {
    const n = optionalNumber(text);
    if (n !== undefined) body[key] = n;
  }
  const percent = optionalNumber(form.abortPercent);
  if (percent !== undefined) body.abort = { failure_percent: percent, min_executions: optionalNumber(form.abortMin) ?? 20 };
  return body;
}

export interface Segment {
  state: ExecState;
  count: number;
  /** Share of the bar, 0–100. */
  percent: number;
}

/** The progress bar: one segment per state that has executions, in [`STATES`] order. */
export function segments(counts: Counts): Segment[] {
  const total = STATES.reduce((sum, s) => sum + (counts[s] ?? 0), 0);
  if (total === 0) return [];
  return STATES.filter((s) => (counts[s] ?? 0) > 0).map((s) => ({ state: s, count: counts[s], percent: (100 * counts[s]) / total }));
}

/** Executions that ended, of all. */
export function done(counts: Counts): number {
  return counts.succeeded + counts.failed + counts.timed_out + counts.cancelled + counts.skipped;
}

export type Action = "pause" | "resume" | "cancel";

/** What an operator may do to a job in `state`. */
export function actionsFor(state: JobState): Action[] {
  switch (state) {
    case "running":
      return ["pause", "cancel"];
    case "paused":
      return ["resume", "cancel"];
    default:
      return [];
  }
}

/** Where a staged roll-out stands, as jobs carry it. */
export interface PhaseStatus {
  /** The open phase from 0; the number of phases once every phase was accepted. */
  index: number;
  /** Cumulative screen counts at which each phase ends. */
  ends: number[];
  opened_at: string | null;
}

/** The open phase in words' numbers: phase `n` of `of`, its screens `from`–`to` (1-based, in
 * roll-out order); `accepted` once every phase is open. */
export function phaseOf(p: PhaseStatus): { n: number; of: number; from: number; to: number; accepted: boolean } {
  const of = p.ends.length;
  const open = Math.min(p.index, of - 1);
  return { n: open + 1, of, from: (open === 0 ? 0 : p.ends[open - 1]) + 1, to: p.ends[open], accepted: p.index >= of };
}
