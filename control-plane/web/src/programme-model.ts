// The programme's documents (aliyot, shiurim, timers) as the API takes them, and the
// conversions between them and the dashboard's forms. Pure (unit-tested).
import { instant, toLocalInput } from "./format";

/** Honours of a Torah reading, in the order they are given. `extra` may repeat. */
export const HONOURS = ["kohen", "levi", "shlishi", "revii", "chamishi", "shishi", "shevii", "acharon", "maftir", "hagbaha", "gelila", "extra"] as const;
export type HonourKind = (typeof HONOURS)[number];

export interface Honour {
  honour: HonourKind;
  name: string;
}

export interface AliyotBody {
  date: string;
  synagogue?: string | null;
  note: string;
  honours: Honour[];
}

/** The honour a new row offers: the first not yet given, else another `extra`. */
export function nextHonour(given: readonly string[]): HonourKind {
  return HONOURS.find((h) => h !== "extra" && !given.includes(h)) ?? "extra";
}

/** The Saturday on or after a civil date (`YYYY-MM-DD`): the usual date of a reading. */
export function nextSaturday(date: string): string {
  const d = new Date(`${date}T00:00:00Z`);
  if (Number.isNaN(d.getTime())) return "";
  d.setUTCDate(d.getUTCDate() + ((6 - d.getUTCDay() + 7) % 7));
  return d.toISOString().slice(0, 10);
}

/** Zmanim keys (`luach-agent zmanim --json`), for rule times and timer targets. */
export const ZMANIM = [
  "alot_16_1",
  "alot_72",
  "misheyakir_11_5",
  "sunrise",
  "sea_level_sunrise",
  "sof_zman_shma_mga",
  "sof_zman_shma_gra",
  "sof_zman_tefila_mga",
  "sof_zman_tefila_gra",
  "chatzot",
  "chatzot_half_day",
  "mincha_gedola",
  "mincha_ketana",
  "plag_hamincha",
  "candle_lighting",
  "sunset",
  "sea_level_sunset",
  "tzeit_8_5",
  "havdalah",
  "tzeit_72",
] as const;
export type ZmanKey = (typeof ZMANIM)[number];

/** Kinds of day a rule applies to. */
export const DAY_KINDS = [
  "every_day",
  "weekday",
  "sunday",
  "monday",
  "tuesday",
  "wednesday",
  "thursday",
  "friday",
  "shabbat",
  "rosh_chodesh",
  "fast",
  "yom_tov",
  "chol_hamoed",
  "erev",
  "chanukah",
] as const;
export type DayKind = (typeof DAY_KINDS)[number];

export const ROUND_MODES = ["down", "up", "nearest"] as const;
/** Rounding steps the server accepts (divisors of an hour). */
export const ROUND_MINUTES = [1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60] as const;

export type TimeSpec = { fixed: string } | { zman: string; offset_minutes?: number };

/** One prayer-schedule rule (see docs/api.md); fields the form does not show are kept. */
export interface Rule {
  name: string;
  time: TimeSpec;
  round?: { mode: string; minutes: number };
  not_before?: TimeSpec;
  not_after?: TimeSpec;
  days: string[];
  except?: string[];
  from?: string;
  until?: string;
}

export interface ShiurBody {
  teacher: string;
  location: string;
  schedule: Rule;
}

/** The common case of a rule, as the shiur form edits it. */
export interface RuleForm {
  title: string;
  timeKind: "fixed" | "zman";
  /** `HH:MM` */
  fixed: string;
  zman: string;
  /** Minutes after (positive) or before (negative) the zman, as typed. */
  offset: string;
  /** "" for no rounding. */
  roundMode: string;
  roundMinutes: number;
  days: string[];
}

export function ruleToForm(rule: Rule | null): RuleForm {
  const time = rule?.time;
  const zman = time && "zman" in time ? time : null;
  return {
    title: rule?.name ?? "",
    timeKind: zman ? "zman" : "fixed",
    fixed: time && "fixed" in time ? time.fixed : "",
    zman: zman?.zman ?? "sunset",
    offset: String(zman?.offset_minutes ?? 0),
    roundMode: rule?.round?.mode ?? "",
    roundMinutes: rule?.round?.minutes ?? 5,
    days: rule?.days ?? ["weekday"],
  };
}

/** The rule the form gives; what `base` has beyond the form (clamps, exceptions, dates) stays. */
export function formToRule(form: RuleForm, base: Rule | null): Rule {
  const rule: Rule = { ...base, name: form.title, time: { fixed: form.fixed }, days: form.days };
  if (form.timeKind === "zman") {
    const typed = form.offset.trim();
    const offset = typed === "" ? 0 : Number(typed);
    // A number that is not one is sent as typed, so the server names the field.
    rule.time = { zman: form.zman, offset_minutes: Number.isInteger(offset) ? offset : (typed as unknown as number) };
  }
  if (form.roundMode) rule.round = { mode: form.roundMode, minutes: form.roundMinutes };
  else delete rule.round;
  return rule;
}

export type TimerTarget = { zman: string } | { prayer: string } | { at: string };

export interface TimerBody {
  label_he: string;
  label_en: string;
  target: TimerTarget;
  show_before_minutes: number;
  targets?: { devices: string[]; tags: string[] };
}

/** The timer form's target inputs; `at` is a `datetime-local` value. */
export interface TargetForm {
  kind: "zman" | "prayer" | "at";
  zman: string;
  prayer: string;
  at: string;
}

export function targetToForm(target: TimerTarget | null): TargetForm {
  const form: TargetForm = { kind: "zman", zman: "candle_lighting", prayer: "", at: "" };
  if (!target) return form;
  if ("zman" in target) return { ...form, zman: target.zman };
  if ("prayer" in target) return { ...form, kind: "prayer", prayer: target.prayer };
  return { ...form, kind: "at", at: toLocalInput(target.at) };
}

export function formToTarget(form: TargetForm): TimerTarget {
  if (form.kind === "prayer") return { prayer: form.prayer };
  // An empty instant is sent as it is, so the server names `target`.
  if (form.kind === "at") return { at: instant(form.at) ?? "" };
  return { zman: form.zman };
}
