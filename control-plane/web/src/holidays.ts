// Holiday-times page: for a window of days, each holiday, fast and (on request) Shabbat with
// its candle lighting, havdalah, fast times and the schedule's prayer times. Read-only; the
// times come from the synagogue the synagogue page edits.
import { authFetch } from "./session";
import { el, errorList, errorsOf, type FieldError } from "./dom";
import { getData } from "./documents";
import { hebrewDate, minute, weekdayOf, type HebrewDate } from "./format";
import { lang, t, type MessageKey } from "./i18n";

interface HolidayDay {
  date: string;
  hebrew_date: HebrewDate;
  holidays: string[];
  /** Times as a screen shows them: `HH:MM`, rounded by the synagogue's minute rule. */
  candle_lighting_shown: string | null;
  havdalah_shown: string | null;
  fast: { name: string; begins_shown: string | null; ends_shown: string | null } | null;
  schedule: { name: string; shown: string | null }[];
}

interface Query {
  from: string;
  days: number;
  shabbat: boolean;
}

const SYNAGOGUE = "main";
/** Longest window the server answers. */
export const MAX_DAYS = 60;

export class HolidayTimesPage {
  private query: Query = { from: new Date().toLocaleDateString("sv"), days: 30, shabbat: false };
  /** The query whose answer is on screen (null: none yet). */
  private shown: Query | null = null;
  private result: HolidayDay[] = [];
  private errors: FieldError[] = [];
  private missing = false;
  private requests = 0;
  private results: HTMLElement = el("section", { class: "preview", "data-testid": "holiday-times" });

  constructor(private root: HTMLElement) {}

  async start(): Promise<void> {
    this.render();
    await this.refresh();
  }

  /** Loads the current query; an answer to an older query that arrives late is dropped. */
  async refresh(): Promise<void> {
    const request = ++this.requests;
    const q = { ...this.query };
    // The list first (as the synagogue page does), so no synagogue yet is not an error.
    const synagogues = (await getData<{ id: string }[]>("/api/v1/synagogues")) ?? [];
    let errors: FieldError[] = [];
    let days: HolidayDay[] = [];
    let ok = false;
    const missing = !synagogues.some((s) => s.id === SYNAGOGUE);
    if (!missing) {
      const params = new URLSearchParams({ from: q.from, days: String(q.days), shabbat: String(q.shabbat) });
      const resp = await authFetch(`/api/v1/synagogues/${SYNAGOGUE}/holiday-times?${params}`);
      ok = resp.ok;
      if (ok) days = (await resp.json()).data.days as HolidayDay[];
      else errors = await errorsOf(resp);
    }
    if (request !== this.requests) return;
    this.missing = missing;
    this.errors = errors;
    this.result = days;
    this.shown = ok ? q : null;
    this.renderResults();
  }

  render(): void {
    const controls = el("form", { class: "synagogue holiday-query", "data-testid": "holiday-query", novalidate: "" });
    const from = el("input", { type: "date", name: "from", value: this.query.from, "data-testid": "holiday-from" });
    const days = el("input", { type: "number", name: "days", min: "1", max: String(MAX_DAYS), value: String(this.query.days), "data-testid": "holiday-days" });
    const shabbat = el("input", { type: "checkbox", name: "shabbat", "data-testid": "holiday-shabbat" });
    shabbat.checked = this.query.shabbat;
    const label = (key: MessageKey, input: HTMLElement) => {
      const l = el("label", { class: "field" });
      l.append(el("span", {}, t(key)), input);
      return l;
    };
    controls.append(label("holidays.from", from), label("holidays.days", days), label("holidays.shabbat", shabbat));
    controls.addEventListener("change", () => {
      this.query = { from: from.value, days: Number(days.value), shabbat: shabbat.checked };
      void this.refresh();
    });
    controls.addEventListener("submit", (e) => e.preventDefault());
    this.root.lang = lang();
    this.root.replaceChildren(el("h2", {}, t("holidays.heading")), controls, this.results);
    this.renderResults();
  }

  private renderResults(): void {
    // `data-from`, `data-days` and `data-shabbat` name the query whose answer is shown, so
    // readers (and tests) can wait for the answer to the query they made.
    const s = this.results;
    s.dataset.from = this.shown?.from ?? "";
    s.dataset.days = this.shown ? String(this.shown.days) : "";
    s.dataset.shabbat = this.shown ? String(this.shown.shabbat) : "";
    const nodes: HTMLElement[] = [];
    if (this.missing) nodes.push(el("p", { class: "empty" }, t("holidays.noSynagogue")));
    nodes.push(...errorList(this.errors, "holiday-errors"));
    if (this.shown && !this.result.length) nodes.push(el("p", { class: "empty" }, t("holidays.empty")));
    if (this.result.length) nodes.push(this.table());
    s.replaceChildren(...nodes);
  }

  private table(): HTMLElement {
    const table = el("table", { class: "devices holidays" });
    const head = el("tr");
    for (const key of ["date", "hebrew", "holidays", "candles", "havdalah", "fast", "prayers"]) {
      head.append(el("th", { scope: "col" }, t(`holidays.col.${key}` as MessageKey)));
    }
    table.append(head);
    const time = (kind: string, shown: string | null) => {
      const cell = el("td", { "data-kind": kind });
      cell.append(el("bdi", { dir: "ltr" }, minute(shown)));
      return cell;
    };
    for (const d of this.result) {
      const tr = el("tr", { "data-date": d.date });
      const date = el("th", { scope: "row" });
      const weekday = weekdayOf(d.date);
      date.append(el("bdi", { dir: "ltr" }, d.date), el("span", { class: "muted" }, weekday ? ` ${t(`day.${weekday}` as MessageKey)}` : ""));
      const fast = el("td", { "data-kind": "fast" });
      if (d.fast) {
        fast.append(`${d.fast.name}: `, el("bdi", { dir: "ltr" }, `${minute(d.fast.begins_shown)}–${minute(d.fast.ends_shown)}`));
      }
      const prayers = el("td", { "data-kind": "prayers" });
      d.schedule.forEach((p, i) => {
        if (i) prayers.append(", ");
        const item = el("span", { "data-name": p.name });
        item.append(`${p.name} `, el("bdi", { dir: "ltr" }, minute(p.shown)));
        prayers.append(item);
      });
      tr.append(
        date,
        el("td", { "data-kind": "hebrew_date" }, hebrewDate(d.hebrew_date, lang())),
        el("td", { "data-kind": "holidays" }, d.holidays.join(", ")),
        time("candle_lighting", d.candle_lighting_shown),
        time("havdalah", d.havdalah_shown),
        fast,
        prayers,
      );
      table.append(tr);
    }
    return table;
  }
}
