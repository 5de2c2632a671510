// Synagogue page: the gabbai edits the profile and prayer-schedule rules and sees the
// computed day (zmanim and prayer times) for any date.
import { lang, t, type MessageKey } from "./i18n";
import { authFetch } from "./session";
import { el, errorList, field, type FieldError } from "./dom";
import { BoardPicture } from "./board";
import { minute } from "./format";

interface Profile {
  name: string;
  address: string;
  latitude: number;
  longitude: number;
  elevation_m: number;
  timezone: string;
  israel: boolean;
  nusach: string;
  language: string;
  candle_lighting_minutes: number;
  schedule: { rules: unknown[]; overrides: unknown[] };
  /** The screens' display preferences; only the minute rule is edited here. */
  display?: { minutes?: { mode?: RoundingMode; zmanim?: Record<string, string> } } & Record<string, unknown>;
}

/** How times are rounded to the minute they are shown at. */
const ROUNDING_MODES = ["stringent", "nearest", "down"] as const;
type RoundingMode = (typeof ROUNDING_MODES)[number];

const ID = "main";
const DEFAULT: Profile = {
  name: "",
  address: "",
  latitude: 31.778,
  longitude: 35.2354,
  elevation_m: 754,
  timezone: "Asia/Jerusalem",
  israel: true,
  nusach: "ashkenaz",
  language: "he",
  candle_lighting_minutes: 40,
  schedule: { rules: [], overrides: [] },
};

/** The editable profile of a stored synagogue (without the record's id, tenant and dates). */
function profileOf(stored: Profile & { id?: string; tenant_id?: string; created_at?: string; updated_at?: string }): Profile {
  const { id: _id, tenant_id: _tenant, created_at: _created, updated_at: _updated, ...profile } = stored;
  return { ...DEFAULT, ...profile };
}

export class SynagoguePage {
  private profile: Profile = structuredClone(DEFAULT);
  private date = new Date().toISOString().slice(0, 10);
  private errors: FieldError[] = [];
  private previewDate: string | null = null;
  private preview: { day: { shown: Record<string, string>; hebrew_date: { day: number; month: string; year: number }; holidays: string[]; parsha: string[] }; schedule: { name: string; shown: string | null }[] } | null = null;
  private saved = false;
  /** The board's picture, once the synagogue exists. */
  private picture: BoardPicture | null = null;

  constructor(private root: HTMLElement) {}

  async start(): Promise<void> {
    // The list (not GET by id) so a first visit, before anything is saved, is not an error.
    const resp = await authFetch("/api/v1/synagogues");
    if (resp.ok) {
      const saved = ((await resp.json()).data as ({ id: string } & Profile)[]).find((s) => s.id === ID);
      if (saved) {
        this.profile = profileOf(saved);
        await this.loadPreview();
      }
    }
    this.render();
  }

  private async save(form: HTMLFormElement): Promise<void> {
    const data = new FormData(form);
    let schedule: Profile["schedule"];
    try {
      schedule = JSON.parse(String(data.get("schedule") ?? "{}"));
    } catch (err) {
      this.errors = [{ path: "schedule", message: String(err) }];
      this.render();
      // The textarea keeps the text that failed to parse.
      const area = this.root.querySelector<HTMLTextAreaElement>('textarea[name="schedule"]');
      if (area) area.value = String(data.get("schedule") ?? "");
      return;
    }
    const profile: Profile = {
      ...this.profile,
      name: String(data.get("name") ?? ""),
      address: String(data.get("address") ?? ""),
      latitude: Number(data.get("latitude")),
      longitude: Number(data.get("longitude")),
      elevation_m: Number(data.get("elevation_m")),
      timezone: String(data.get("timezone") ?? ""),
      israel: data.get("israel") === "on",
      candle_lighting_minutes: Number(data.get("candle_lighting_minutes")),
      schedule,
      display: {
        ...this.profile.display,
        minutes: { ...this.profile.display?.minutes, mode: String(data.get("minutes")) as RoundingMode },
      },
    };
    // Keep what was typed even if the server refuses it, so nothing has to be typed again.
    this.profile = profile;
    const resp = await authFetch(`/api/v1/synagogues/${ID}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(profile),
    });
    const body = await resp.json();
    if (resp.ok) {
      this.profile = profileOf(body.data);
      this.errors = [];
      this.saved = true;
      await this.loadPreview();
    } else {
      this.errors = body.error?.fields ?? [{ path: "", message: body.error?.message ?? `HTTP ${resp.status}` }];
      this.saved = false;
    }
    this.render();
  }

  private async loadPreview(): Promise<void> {
    const date = this.date;
    const resp = await authFetch(`/api/v1/synagogues/${ID}/preview?date=${date}`);
    this.preview = resp.ok ? (await resp.json()).data : null;
    this.previewDate = this.preview ? date : null;
  }

  render(): void {
    const form = el("form", { class: "synagogue", "data-testid": "synagogue-form" });
    const input = (name: string, value: string | number, type = "text") => el("input", { name, value: String(value), type, step: "any" });
    const israel = el("input", { name: "israel", type: "checkbox" });
    israel.checked = this.profile.israel;
    const schedule = el("textarea", { name: "schedule", rows: "10", dir: "ltr", spellcheck: "false" });
    schedule.value = JSON.stringify(this.profile.schedule, null, 2);
    const minutes = el("select", { name: "minutes", "data-testid": "minutes" });
    const mode = this.profile.display?.minutes?.mode ?? "stringent";
    for (const m of ROUNDING_MODES) {
      const option = el("option", { value: m }, t(`synagogue.minutes.${m}` as MessageKey));
      option.selected = m === mode;
      minutes.append(option);
    }
    form.append(
      field("synagogue.name", input("name", this.profile.name)),
      field("synagogue.address", input("address", this.profile.address)),
      field("synagogue.latitude", input("latitude", this.profile.latitude, "number")),
      field("synagogue.longitude", input("longitude", this.profile.longitude, "number")),
      field("synagogue.elevation", input("elevation_m", this.profile.elevation_m, "number")),
      field("synagogue.timezone", input("timezone", this.profile.timezone)),
      field("synagogue.candleMinutes", input("candle_lighting_minutes", this.profile.candle_lighting_minutes, "number")),
      field("synagogue.israel", israel),
      field("synagogue.minutes", minutes),
      el("p", { class: "muted" }, t("synagogue.minutesHelp")),
      field("synagogue.schedule", schedule),
    );
    const save = el("button", { type: "submit", "data-testid": "save" }, t("synagogue.save"));
    form.append(save);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.save(form);
    });

    const nodes: HTMLElement[] = [el("h2", {}, t("synagogue.heading")), form];
    if (this.saved) nodes.push(el("p", { class: "ok", role: "status" }, t("synagogue.saved")));
    nodes.push(...errorList(this.errors, "errors"));
    nodes.push(this.previewSection());
    if (this.previewDate && !this.picture) {
      this.picture = new BoardPicture(`/api/v1/synagogues/${ID}/preview.png`);
      void this.picture.start();
    }
    if (this.picture) nodes.push(this.picture.root);
    this.root.replaceChildren(...nodes);
  }

  private previewSection(): HTMLElement {
    // `data-date` names the day the table shows, so readers (and tests) can wait for a reload.
    // `data-minutes` names the minute rule of the saved profile the preview was computed with.
    const section = el("section", {
      class: "preview",
      "data-testid": "preview",
      "data-date": this.previewDate ?? "",
      "data-minutes": this.profile.display?.minutes?.mode ?? "stringent",
    });
    const date = el("input", { type: "date", value: this.date, "data-testid": "preview-date" });
    date.addEventListener("change", async () => {
      this.date = date.value;
      await this.loadPreview();
      this.render();
    });
    section.append(el("h3", {}, t("synagogue.preview")), date);
    if (!this.preview) {
      section.append(el("p", { class: "empty" }, t("synagogue.noPreview")));
      return section;
    }
    const d = this.preview.day;
    const hebrew = `${d.hebrew_date.day} ${d.hebrew_date.month} ${d.hebrew_date.year}`;
    section.append(el("p", { "data-testid": "hebrew-date" }, [hebrew, ...d.holidays, ...d.parsha].join(" · ")));
    const table = el("table", { class: "devices" });
    const rows: [string, string | null, string][] = [
      ...this.preview.schedule.map((s): [string, string | null, string] => [s.name, s.shown, "prayer"]),
      ...(["sunrise", "sunset", "candle_lighting", "havdalah", "tzeit_8_5"] as const).map(
        (k): [string, string | null, string] => [t(`zman.${k}` as MessageKey), d.shown[k] ?? null, k],
      ),
    ];
    for (const [name, time, kind] of rows) {
      const tr = el("tr", { "data-kind": kind, "data-name": name });
      const cell = el("td");
      cell.append(el("bdi", { dir: "ltr" }, minute(time)));
      tr.append(el("th", { scope: "row" }, name), cell);
      table.append(tr);
    }
    section.append(table);
    section.lang = lang();
    return section;
  }
}
