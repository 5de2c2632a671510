// The board's picture: what a screen draws at a chosen instant, drawn on the server by the
// same renderer the screen runs (`GET …/preview.png`), and a screen's board settings.
import { t, type MessageKey } from "./i18n";
import { authFetch } from "./session";
import { el, errorList, errorsOf, errorText, field, select, type FieldError } from "./dom";
import { formToPowerTime, powerTimeToForm, type PowerTimeForm } from "./power-model";
import { ZMANIM } from "./programme-model";
import { DeviceScreen } from "./screen";
import { DeviceHistory } from "./history";

/** A time of the synagogue's day (see the API's `PowerTime`). */
export type PowerTime = { fixed: string } | { zman: string; offset_minutes?: number } | { first_prayer: number };

export interface BoardSettings {
  layout: "auto" | "landscape" | "portrait";
  theme: "light" | "dark" | "high_contrast";
  language: "synagogue" | "hebrew" | "english" | "both";
  /** When the display goes off and on again every day; absent: always on. */
  power?: { off: PowerTime; on: PowerTime };
}

export const DEFAULT_BOARD: BoardSettings = { layout: "auto", theme: "light", language: "synagogue" };

/** The settings chosen from lists: how the board looks. */
type Look = Pick<BoardSettings, "layout" | "theme" | "language">;

const CHOICES: { [K in keyof Look]: Look[K][] } = {
  layout: ["auto", "landscape", "portrait"],
  theme: ["light", "dark", "high_contrast"],
  language: ["synagogue", "hebrew", "english", "both"],
};

/** A select for one board setting, labelled in the page's language. */
function choice<K extends keyof Look>(name: K, value: Look[K]): HTMLSelectElement {
  const select = el("select", { name, "data-testid": `board-${name}` });
  for (const option of CHOICES[name]) {
    const node = el("option", { value: option }, t(`board.${name}.${option}` as MessageKey));
    node.selected = option === value;
    select.append(node);
  }
  return select;
}

/** `YYYY-MM-DDTHH:MM` of a date in the browser's zone, for a datetime-local input. */
export function localInput(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** The picture of a board at an instant, with the instant and the look chosen on the page.
 * `source` is the preview.png path; `settings` (a screen's own) seed the choices. */
export class BoardPicture {
  private at = localInput(new Date());
  private look: BoardSettings;
  private url: string | null = null;
  private error: string | null = null;
  private loading = false;
  readonly root = el("section", { class: "board-picture", "data-testid": "board-picture" });

  constructor(private source: string, settings: BoardSettings = DEFAULT_BOARD) {
    this.look = { ...settings };
  }

  /** Draws the controls and loads the picture. */
  async start(): Promise<void> {
    this.render();
    await this.load();
  }

  private query(): string {
    const params = new URLSearchParams({ at: new Date(this.at).toISOString(), theme: this.look.theme, language: this.look.language });
    if (this.look.layout !== "auto") params.set("layout", this.look.layout);
    return params.toString();
  }

  private async load(): Promise<void> {
    this.loading = true;
    this.render();
    const resp = await authFetch(`${this.source}?${this.query()}`);
    this.loading = false;
    if (this.url) URL.revokeObjectURL(this.url);
    this.url = null;
    if (resp.ok) {
      this.url = URL.createObjectURL(await resp.blob());
      this.error = null;
    } else {
      const errors = await errorsOf(resp);
      this.error = errors.map(errorText).join("; ");
    }
    this.render();
  }

  private render(): void {
    const at = el("input", { type: "datetime-local", value: this.at, "data-testid": "board-at" });
    at.addEventListener("change", () => {
      if (!at.value) return;
      this.at = at.value;
      void this.load();
    });
    const controls = el("div", { class: "board-controls" });
    controls.append(field("board.at", at));
    for (const name of ["layout", "theme", "language"] as const) {
      const select = choice(name, this.look[name]);
      select.addEventListener("change", () => {
        this.look = { ...this.look, [name]: select.value };
        void this.load();
      });
      controls.append(field(`board.${name}` as MessageKey, select));
    }
    const nodes: HTMLElement[] = [el("h3", {}, t("board.picture")), el("p", { class: "hint" }, t("board.pictureHint")), controls];
    if (this.error) nodes.push(el("p", { class: "error", role: "alert", "data-testid": "board-error" }, this.error));
    if (this.url) {
      const img = el("img", { src: this.url, alt: t("board.alt"), "data-testid": "board-image", "data-at": new Date(this.at).toISOString() });
      img.classList.toggle("loading", this.loading);
      nodes.push(img);
    } else if (this.loading) {
      nodes.push(el("p", { class: "empty" }, t("board.loading")));
    }
    this.root.replaceChildren(...nodes);
  }
}

/** The inputs of one switch time: its kind, then the time, the zman or the minutes it needs
 * (the row shows the inputs of the chosen kind). `path` is where the server names its
 * errors (`board.power` in board settings, `command.schedule` in a job). */
export function powerTimeRow(name: "off" | "on", form: PowerTimeForm, path = "board.power"): HTMLElement {
  const row = el("div", { class: "power-time", "data-kind": form.kind, "data-testid": `power-${name}` });
  const kinds = (["fixed", "zman", "first_prayer"] as const).map((k): [string, string] => [k, t(`board.power.kind.${k}` as MessageKey)]);
  const kind = select(`power_${name}_kind`, kinds, form.kind, { "data-path": `${path}.${name}` });
  kind.addEventListener("change", () => (row.dataset.kind = kind.value));
  const fixed = el("input", { type: "time", dir: "ltr", name: `power_${name}_fixed`, value: form.fixed, class: "fixed", "data-path": `${path}.${name}.fixed` });
  const zman = select(`power_${name}_zman`, ZMANIM.map((z) => [z, t(`zman.${z}` as MessageKey)]), form.zman, { class: "zman" });
  const minutes = el("input", { type: "number", dir: "ltr", step: "1", name: `power_${name}_minutes`, value: form.minutes, class: "minutes", "data-path": `${path}.${name}` });
  const label = (key: MessageKey, input: HTMLElement, cls: string) => {
    const f = field(key, input);
    f.classList.add(cls);
    return f;
  };
  row.append(
    field(`board.power.${name}` as MessageKey, kind),
    label("board.power.time", fixed, "fixed"),
    label("board.power.zman", zman, "zman"),
    label("board.power.minutes", minutes, "minutes"),
  );
  return row;
}

/** The schedule the form gives, or none when it is switched off. */
export function powerOf(data: FormData): BoardSettings["power"] {
  if (!data.get("power_enabled")) return undefined;
  const time = (name: string): PowerTimeForm => ({
    kind: String(data.get(`power_${name}_kind`)) as PowerTimeForm["kind"],
    fixed: String(data.get(`power_${name}_fixed`) ?? ""),
    zman: String(data.get(`power_${name}_zman`) ?? "sunset"),
    minutes: String(data.get(`power_${name}_minutes`) ?? "0"),
  });
  return { off: formToPowerTime(time("off")), on: formToPowerTime(time("on")) };
}

/** A screen's page: what it shows now (screenshots) and its display controls, its board
 * settings with a save button, and the picture it draws at a chosen moment. */
export class DeviceBoard {
  private errors: FieldError[] = [];
  private saved = false;
  readonly root = el("section", { class: "device-board", "data-testid": "device-board" });
  private picture: BoardPicture;
  private screen: DeviceScreen;
  private history: DeviceHistory;

  constructor(
    private id: string,
    private name: string,
    private settings: BoardSettings,
    private onSaved: (settings: BoardSettings) => void,
  ) {
    this.picture = new BoardPicture(`/api/v1/devices/${encodeURIComponent(id)}/preview.png`, settings);
    this.screen = new DeviceScreen(id);
    this.history = new DeviceHistory(id);
  }

  async start(): Promise<void> {
    this.render();
    await Promise.all([this.screen.start(), this.picture.start(), this.history.start()]);
  }

  private async save(form: HTMLFormElement): Promise<void> {
    const data = new FormData(form);
    const look = Object.fromEntries(["layout", "theme", "language"].map((k) => [k, String(data.get(k))]));
    const board = { ...this.settings, ...look } as BoardSettings;
    const power = powerOf(data);
    if (power) board.power = power;
    else delete board.power;
    const resp = await authFetch(`/api/v1/devices/${encodeURIComponent(this.id)}`, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ board }),
    });
    if (resp.ok) {
      this.settings = board;
      this.errors = [];
      this.saved = true;
      this.onSaved(board);
      this.picture = new BoardPicture(`/api/v1/devices/${encodeURIComponent(this.id)}/preview.png`, board);
      this.render();
      await this.picture.start();
      return;
    }
    this.errors = await errorsOf(resp);
    this.saved = false;
    this.render();
  }

  private render(): void {
    const form = el("form", { class: "board-settings", "data-testid": "board-settings" });
    for (const name of ["layout", "theme", "language"] as const) {
      form.append(field(`board.${name}` as MessageKey, choice(name, this.settings[name])));
    }
    const power = el("fieldset", { class: "power", "data-testid": "board-power" });
    const enabled = el("input", { type: "checkbox", name: "power_enabled", value: "1", "data-testid": "power-enabled" });
    enabled.checked = Boolean(this.settings.power);
    const toggle = el("label", { class: "check" });
    toggle.append(enabled, " ", t("board.power.enabled"));
    power.append(
      el("legend", {}, t("board.power")),
      el("p", { class: "hint" }, t("board.power.hint")),
      toggle,
      powerTimeRow("off", powerTimeToForm(this.settings.power?.off, "23:00")),
      powerTimeRow("on", powerTimeToForm(this.settings.power?.on, "06:00")),
    );
    form.append(power, el("button", { type: "submit", "data-testid": "board-save" }, t("board.save")));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.save(form);
    });
    const nodes: HTMLElement[] = [
      el("h3", {}, t("board.settingsOf", { name: this.name })),
      this.screen.root,
      this.history.root,
      el("h4", {}, t("board.settings")),
      el("p", { class: "hint" }, t("board.settingsHint")),
      form,
    ];
    if (this.saved) nodes.push(el("p", { class: "ok", role: "status", "data-testid": "board-saved" }, t("board.saved")));
    nodes.push(...errorList(this.errors, "board-errors"), this.picture.root);
    this.root.replaceChildren(...nodes);
  }
}
