// Formatting shared by the pages: times as the server gives them, form values to and from
// the API's forms, Hebrew dates. Pure functions (unit-tested).
import type { Lang } from "./i18n";

/**
 * A time as the server shows it to the minute (its `shown` fields, already rounded by the
 * synagogue's rule; never cut from an exact ISO time here), or "—" when there is none.
 */
export function minute(shown: string | null | undefined): string {
  return shown || "—";
}

/** `datetime-local` value → RFC 3339 in UTC, or null when empty. */
export function instant(value: FormDataEntryValue | null): string | null {
  const v = String(value ?? "");
  return v ? new Date(v).toISOString() : null;
}

/** RFC 3339 instant → `datetime-local` value in the browser's time zone ("" for none). */
export function toLocalInput(iso: string | null | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const two = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}`;
}

/** A comma- or space-separated list as typed → its entries. */
export function splitList(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** The text in the page's language, else the other one. */
export function preferred(he: string, en: string, lang: Lang): string {
  return lang === "he" ? he || en : en || he;
}

const HEBREW_MONTHS: Record<string, string> = {
  Nisan: "ניסן",
  Iyyar: "אייר",
  Sivan: "סיון",
  Tamuz: "תמוז",
  Av: "אב",
  Elul: "אלול",
  Tishrei: "תשרי",
  Cheshvan: "חשון",
  Kislev: "כסלו",
  Tevet: "טבת",
  "Sh'vat": "שבט",
  Adar: "אדר",
  "Adar I": "אדר א׳",
  "Adar II": "אדר ב׳",
};

export interface HebrewDate {
  day: number;
  month: string;
  year: number;
}

/** "25 Kislev 5787", with the month's Hebrew name on a Hebrew page. */
export function hebrewDate(d: HebrewDate, lang: Lang): string {
  const month = lang === "he" ? (HEBREW_MONTHS[d.month] ?? d.month) : d.month;
  return `${d.day} ${month} ${d.year}`;
}

const WEEKDAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "shabbat"] as const;

/** The day of the week of a civil date (`YYYY-MM-DD`), named as the schedule rules name it. */
export function weekdayOf(date: string): (typeof WEEKDAYS)[number] | null {
  const d = new Date(`${date}T00:00:00Z`);
  return Number.isNaN(d.getTime()) ? null : WEEKDAYS[d.getUTCDay()];
}
