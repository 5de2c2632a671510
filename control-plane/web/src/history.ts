// A screen's history: its metrics over time as charts (uPlot), what its telemetry queue lost,
// and the commands it was sent with how each went.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { lang, t, type MessageKey } from "./i18n";
import { authFetch } from "./session";
import { el, errorsOf } from "./dom";
import { columns, type SeriesPoint } from "./fleet-model";
import { commandLabel } from "./jobs";
import type { CommandExecution } from "./screen";

interface Series {
  metric: string;
  step_s: number;
  points: SeriesPoint[];
}

interface StreamReport {
  stream: string;
  stored: number;
  dropped: number;
  missing: number;
  highest_seq: number;
}

interface SentCommand {
  job_id: string;
  command: { type: string; percent?: number; on?: boolean };
  emergency: boolean;
  created_by: string;
  created_at: string;
  execution: CommandExecution & { attempt: number; updated_at: string };
}

/** The charts: metric, label key, unit scale. */
const CHARTS: [string, MessageKey, number][] = [
  ["cpu_percent", "history.cpu", 1],
  ["temperature_c", "history.temperature", 1],
  ["mem_used_bytes", "history.memory", 1 / 1_048_576],
  ["disk_used_bytes", "history.disk", 1 / 1_073_741_824],
];

/** Ranges offered: label key, seconds back, bucket step. */
const RANGES: [MessageKey, number, number][] = [
  ["history.range.day", 86_400, 300],
  ["history.range.week", 7 * 86_400, 3_600],
  ["history.range.month", 30 * 86_400, 3 * 3_600],
];

/** A screen's answer: short ones as they are; long ones (a diagnostics report) folded, shown
 * indented when they are JSON. The screen's words are left-to-right. */
function answer(text: string): HTMLElement {
  if (text.length <= 120) return el("bdi", { dir: "ltr" }, text);
  let shown = text;
  try {
    shown = JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    // Not JSON: shown as it came.
  }
  const box = el("details", { "data-testid": "long-answer" });
  box.append(el("summary", {}, t("history.longAnswer")), el("pre", { dir: "ltr" }, shown));
  return box;
}

export class DeviceHistory {
  readonly root = el("section", { class: "device-history", "data-testid": "device-history" });
  private range = 0;
  private series = new Map<string, Series>();
  private streams: StreamReport[] = [];
  private commands: SentCommand[] = [];
  private error: string | null = null;
  private plots: uPlot[] = [];
  /** The period shown, in seconds since the epoch (the charts' time axis). */
  private window: [number, number] = [0, 0];

  constructor(private id: string) {}

  private path(rest: string): string {
    return `/api/v1/devices/${encodeURIComponent(this.id)}/${rest}`;
  }

  async start(): Promise<void> {
    this.render();
    await this.load();
  }

  private async fetch<T>(rest: string): Promise<T | null> {
    const resp = await authFetch(this.path(rest));
    if (!resp.ok) {
      this.error = (await errorsOf(resp)).map((e) => e.message).join("; ");
      return null;
    }
    return (await resp.json()).data as T;
  }

  private async load(): Promise<void> {
    this.error = null;
    const [, back, step] = RANGES[this.range] ?? ["history.range.day", 86_400, 300];
    const to = new Date();
    const from = new Date(to.getTime() - back * 1000);
    this.window = [from.getTime() / 1000, to.getTime() / 1000];
    const query = `from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}&step_s=${step}`;
    const loaded = await Promise.all(CHARTS.map(([metric]) => this.fetch<Series>(`metrics/${metric}?${query}`)));
    this.series = new Map(loaded.filter((s): s is Series => s !== null).map((s) => [s.metric, s]));
    this.streams = (await this.fetch<StreamReport[]>("telemetry/streams")) ?? [];
    this.commands = (await this.fetch<SentCommand[]>("commands?limit=20")) ?? [];
    this.render();
  }

  private chart(metric: string, labelKey: MessageKey, scale: number): HTMLElement {
    // Time runs left to right on the chart in both languages.
    const box = el("figure", { class: "chart", dir: "ltr", "data-testid": `chart-${metric}` });
    const series = this.series.get(metric);
    const points = series?.points ?? [];
    box.append(el("figcaption", { dir: lang() === "he" ? "rtl" : "ltr" }, t(labelKey)));
    box.dataset.points = String(points.length);
    if (points.length === 0) {
      box.append(el("p", { class: "empty" }, t("history.noData")));
      return box;
    }
    const data = columns(points, series?.step_s ?? 300, scale);
    const number = new Intl.NumberFormat(lang(), { maximumFractionDigits: 1 });
    const plot = new uPlot(
      {
        width: 320,
        height: 160,
        legend: { show: false },
        scales: { x: { time: true, range: () => this.window } },
        axes: [{}, { values: (_u, ticks) => ticks.map((v) => number.format(v)) }],
        series: [
          {},
          { label: t("history.avg"), stroke: "#1f5f8b", width: 2 },
          { label: t("history.min"), stroke: "#9bb7cc", width: 1 },
          { label: t("history.max"), stroke: "#9bb7cc", width: 1 },
        ],
      },
      data as uPlot.AlignedData,
      box,
    );
    this.plots.push(plot);
    return box;
  }

  private queueLine(): HTMLElement[] {
    if (this.streams.length === 0) return [el("p", { class: "hint" }, t("history.noTelemetry"))];
    const sum = (k: "stored" | "dropped" | "missing") => this.streams.reduce((n, s) => n + s[k], 0);
    const line = el(
      "p",
      { class: sum("missing") > 0 ? "warning" : "hint", "data-testid": "telemetry-summary" },
      t("history.kept", { stored: sum("stored"), dropped: sum("dropped"), missing: sum("missing") }),
    );
    return [line];
  }

  private commandTable(): HTMLElement {
    if (this.commands.length === 0) return el("p", { class: "empty" }, t("history.noCommands"));
    const table = el("table", { class: "commands", "data-testid": "command-history" });
    const head = el("tr");
    for (const key of ["history.col.when", "history.col.command", "history.col.state", "history.col.detail"] as const) {
      head.append(el("th", { scope: "col" }, t(key)));
    }
    table.append(el("thead"), el("tbody"));
    table.tHead?.append(head);
    for (const c of this.commands) {
      const row = el("tr", { "data-state": c.execution.state, "data-job-id": c.job_id });
      const detail = el("td");
      if (c.execution.detail) detail.append(answer(c.execution.detail));
      row.append(
        el("td", {}, new Date(c.created_at).toLocaleString(lang())),
        el("td", {}, commandLabel(c.command) + (c.emergency ? ` · ${t("history.emergency")}` : "")),
        el("td", {}, t(`exec.${c.execution.state}` as MessageKey)),
        detail,
      );
      table.tBodies[0]?.append(row);
    }
    return table;
  }

  private render(): void {
    for (const p of this.plots) p.destroy();
    this.plots = [];
    const range = el("select", { "data-testid": "history-range" });
    RANGES.forEach(([key], i) => {
      const option = el("option", { value: String(i) }, t(key));
      option.selected = i === this.range;
      range.append(option);
    });
    range.addEventListener("change", () => {
      this.range = Number(range.value);
      void this.load();
    });
    const label = el("label", { class: "field" });
    label.append(el("span", {}, t("history.range")), range);
    const charts = el("div", { class: "charts" });
    charts.append(...CHARTS.map(([metric, key, scale]) => this.chart(metric, key, scale)));
    const nodes: HTMLElement[] = [el("h4", {}, t("history.heading")), el("p", { class: "hint" }, t("history.hint")), label, charts, ...this.queueLine()];
    if (this.error) nodes.push(el("p", { class: "error", role: "alert" }, this.error));
    nodes.push(el("h4", {}, t("history.commands")), this.commandTable());
    this.root.replaceChildren(...nodes);
  }
}
