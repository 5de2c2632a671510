// What a screen shows right now (its latest screenshot, and a button to take a new one) and its
// display controls (brightness, volume, display power), sent as commands the screen answers.
import { lang, t, type MessageKey } from "./i18n";
import { authFetch } from "./session";
import { el, errorsOf, errorText } from "./dom";

export interface Screenshot {
  id: string;
  device_id: string;
  taken_at: string;
  width: number;
  height: number;
  bytes: number;
}

/** A one-screen command's execution (`POST …/commands` answers it with its job). */
export interface CommandExecution {
  state: "queued" | "sent" | "received" | "succeeded" | "failed" | "timed_out" | "cancelled" | "skipped";
  detail: string | null;
}

/** One line telling how the last request went: our words, then the screen's own (which are
 * in the screen's language, English, so they are isolated from the page's direction). */
interface Outcome {
  kind: "ok" | "error" | "unsupported" | "busy" | "queued";
  text: string;
  detail?: string;
}

async function failure(resp: Response): Promise<Outcome> {
  const errors = await errorsOf(resp);
  return { kind: "error", text: errors.map(errorText).join("; ") };
}

/** What the screen answered (or that it will get the command when it can), in the page's
 * language. */
export function outcomeOf(execution: CommandExecution): Outcome {
  const detail = execution.detail ?? "";
  switch (execution.state) {
    case "succeeded":
      return { kind: "ok", text: t("screen.done"), detail };
    case "failed":
      if (detail.startsWith("unsupported: ")) {
        return { kind: "unsupported", text: t("screen.unsupported"), detail: detail.slice("unsupported: ".length) };
      }
      return { kind: "error", text: t("screen.failed"), detail };
    case "queued":
    case "sent":
    case "received":
      return { kind: "queued", text: t("screen.queued") };
    default:
      return { kind: "error", text: t("screen.failed"), detail };
  }
}

export class DeviceScreen {
  private shots: Screenshot[] = [];
  private shown: Screenshot | null = null;
  private url: string | null = null;
  private shotOutcome: Outcome | null = null;
  private controlOutcome: Outcome | null = null;
  private brightness = 80;
  private volume = 50;
  readonly root = el("section", { class: "device-screen", "data-testid": "device-screen" });

  constructor(private id: string) {}

  private path(rest: string): string {
    return `/api/v1/devices/${encodeURIComponent(this.id)}/${rest}`;
  }

  async start(): Promise<void> {
    this.render();
    await this.loadList();
  }

  private async loadList(): Promise<void> {
    const resp = await authFetch(this.path("screenshots"));
    if (!resp.ok) {
      this.shotOutcome = await failure(resp);
      this.render();
      return;
    }
    this.shots = (await resp.json()).data as Screenshot[];
    const first = this.shots[0];
    if (first) await this.show(first);
    else this.render();
  }

  private async show(shot: Screenshot): Promise<void> {
    const resp = await authFetch(this.path(`screenshots/${encodeURIComponent(shot.id)}`));
    if (this.url) URL.revokeObjectURL(this.url);
    this.url = null;
    if (resp.ok) {
      this.url = URL.createObjectURL(await resp.blob());
      this.shown = shot;
    } else {
      this.shotOutcome = await failure(resp);
    }
    this.render();
  }

  private async take(): Promise<void> {
    this.shotOutcome = { kind: "busy", text: t("screen.taking") };
    this.render();
    const resp = await authFetch(this.path("screenshots"), { method: "POST" });
    if (!resp.ok) {
      this.shotOutcome = await failure(resp);
      this.render();
      return;
    }
    if (resp.status === 202) {
      // The screen has not answered yet (offline): the job keeps the request for it.
      this.shotOutcome = { kind: "queued", text: t("screen.queued") };
      this.render();
      return;
    }
    const shot = (await resp.json()).data as Screenshot;
    this.shotOutcome = null;
    this.shots = [shot, ...this.shots.filter((s) => s.id !== shot.id)];
    await this.show(shot);
  }

  private async send(command: Record<string, string | number | boolean>): Promise<void> {
    this.controlOutcome = { kind: "busy", text: t("screen.sending") };
    this.render();
    const resp = await authFetch(this.path("commands"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ command }),
    });
    this.controlOutcome = resp.ok
      ? outcomeOf((await resp.json()).data.execution as CommandExecution)
      : await failure(resp);
    this.render();
  }

  private outcomeLine(outcome: Outcome | null, testid: string): HTMLElement[] {
    if (!outcome) return [];
    const role = outcome.kind === "error" ? "alert" : "status";
    const line = el("p", { class: `outcome ${outcome.kind}`, role, "data-testid": testid, "data-kind": outcome.kind }, outcome.text);
    if (outcome.detail) line.append(" ", el("bdi", { dir: "ltr" }, outcome.detail));
    return [line];
  }

  private screenshotPart(): HTMLElement {
    const part = el("div", { class: "screenshot" });
    const take = el("button", { type: "button", "data-testid": "take-screenshot" }, t("screen.take"));
    take.disabled = this.shotOutcome?.kind === "busy";
    take.addEventListener("click", () => void this.take());
    part.append(el("h4", {}, t("screen.now")), el("p", { class: "hint" }, t("screen.nowHint")), take, ...this.outcomeLine(this.shotOutcome, "screenshot-outcome"));
    if (this.url && this.shown) {
      const when = new Date(this.shown.taken_at).toLocaleString(lang());
      part.append(
        el("img", { src: this.url, alt: t("screen.alt", { when }), "data-testid": "screenshot-image", "data-id": this.shown.id }),
        el("p", { class: "hint" }, t("screen.takenAt", { when, width: this.shown.width, height: this.shown.height })),
      );
    } else if (this.shots.length === 0) {
      part.append(el("p", { class: "empty" }, t("screen.none")));
    }
    if (this.shots.length > 1) {
      const select = el("select", { "data-testid": "screenshot-history" });
      for (const s of this.shots) {
        const option = el("option", { value: s.id }, new Date(s.taken_at).toLocaleString(lang()));
        option.selected = s.id === this.shown?.id;
        select.append(option);
      }
      select.addEventListener("change", () => {
        const chosen = this.shots.find((s) => s.id === select.value);
        if (chosen) void this.show(chosen);
      });
      const label = el("label", { class: "field" });
      label.append(el("span", {}, t("screen.history")), select);
      part.append(label);
    }
    return part;
  }

  /** A 0–100 slider with a button that sends it. */
  private level(name: "brightness" | "volume"): HTMLElement {
    const row = el("div", { class: "level" });
    const value = this[name];
    const input = el("input", { type: "range", min: "0", max: "100", step: "5", value: String(value), "data-testid": `${name}-level` });
    const shown = el("output", {}, `${value}%`);
    input.addEventListener("input", () => {
      this[name] = Number(input.value);
      shown.textContent = `${input.value}%`;
    });
    const set = el("button", { type: "button", "data-testid": `set-${name}` }, t(`screen.set.${name}` as MessageKey));
    set.addEventListener("click", () => void this.send({ type: name, percent: this[name] }));
    const label = el("label", { class: "field" });
    label.append(el("span", {}, t(`screen.${name}` as MessageKey)), input, shown);
    row.append(label, set);
    return row;
  }

  private controlsPart(): HTMLElement {
    const part = el("div", { class: "display-controls", "data-testid": "display-controls" });
    const power = el("div", { class: "power" });
    for (const on of [true, false]) {
      const button = el("button", { type: "button", "data-testid": on ? "display-on" : "display-off" }, t(on ? "screen.on" : "screen.off"));
      button.addEventListener("click", () => void this.send({ type: "display_power", on }));
      power.append(button);
    }
    part.append(
      el("h4", {}, t("screen.controls")),
      el("p", { class: "hint" }, t("screen.controlsHint")),
      this.level("brightness"),
      this.level("volume"),
      power,
      ...this.outcomeLine(this.controlOutcome, "control-outcome"),
    );
    return part;
  }

  private render(): void {
    this.root.replaceChildren(this.screenshotPart(), this.controlsPart());
  }
}
