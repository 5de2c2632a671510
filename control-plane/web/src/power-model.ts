// A screen's display power schedule as the board settings form edits it (pure, for tests).
import type { PowerTime } from "./board";

/** One switch time as typed: its kind and the inputs of every kind. */
export interface PowerTimeForm {
  kind: "fixed" | "zman" | "first_prayer";
  /** `HH:MM` */
  fixed: string;
  zman: string;
  /** Minutes after (negative: before) the zman or the first prayer, as typed. */
  minutes: string;
}

export function powerTimeToForm(time: PowerTime | undefined, fixed: string): PowerTimeForm {
  const form: PowerTimeForm = { kind: "fixed", fixed, zman: "sunset", minutes: "0" };
  if (!time) return form;
  if ("fixed" in time) return { ...form, fixed: time.fixed };
  if ("zman" in time) return { ...form, kind: "zman", zman: time.zman, minutes: String(time.offset_minutes ?? 0) };
  return { ...form, kind: "first_prayer", minutes: String(time.first_prayer) };
}

/** Minutes as typed: a number when it is one, else the text itself, so the server names the field. */
function minutes(typed: string): number {
  const trimmed = typed.trim();
  const n = trimmed === "" ? 0 : Number(trimmed);
  return Number.isInteger(n) ? n : (trimmed as unknown as number);
}

export function formToPowerTime(form: PowerTimeForm): PowerTime {
  if (form.kind === "zman") return { zman: form.zman, offset_minutes: minutes(form.minutes) };
  if (form.kind === "first_prayer") return { first_prayer: minutes(form.minutes) };
  return { fixed: form.fixed };
}
