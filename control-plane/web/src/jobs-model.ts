// What the jobs page computes, kept apart from the DOM so it is tested on its own: the request
// body a form makes, the progress bar's segments, and the actions a job in a state offers.

export type ExecState = "queued" | "sent" | "received" | "succeeded" | "failed" | "timed_out" | "cancelled" | "skipped";
export type JobState = "running" | "paused" | "completed" | "aborted" | "cancelled";
export type Counts = Record<ExecState, number>;

/** Execution states in the order the progress bar shows them. */
export const STATES: ExecState[] = ["succeeded", "failed", "timed_out", "received", "sent", "queued", "cancelled", "skipped"];

export const COMMANDS = ["ping", "brightness", "volume", "display_power", "screenshot", "refresh_content", "restart_agent", "reboot", "diagnostics"] as const;
export type CommandType = (typeof COMMANDS)[number];
export type TargetKind = "all" | "tags" | "group" | "devices";

export interface JobForm {
  command: CommandType;
  percent: number;
  on: boolean;
  target: TargetKind;
  /** Tags or device ids separated by commas or spaces; a group's name. */
  targetText: string;
  concurrency: string;
  ratePerMinute: string;
  retries: string;
  abortPercent: string;
  abortMin: string;
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

/** The `POST /api/v1/jobs` body a form makes; the server checks every field. */
export function jobBody(form: JobForm): Record<string, unknown> {
  const command: Record<string, unknown> = { type: form.command };
  if (form.command === "brightness" || form.command === "volume") command.percent = form.percent;
  if (form.command === "display_power") command.on = form.on;
  let target: Record<string, unknown>;
  switch (form.target) {
    case "all":
      target = { all: true };
      break;
    case "group":
      target = { group: form.targetText.trim() };
      break;
    default:
      target = { [form.target]: words(form.targetText) };
  }
  const body: Record<string, unknown> = { command, target };
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
