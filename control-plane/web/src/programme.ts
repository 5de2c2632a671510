// Programme page: the honours of each Torah reading (aliyot), regular lessons (shiurim) and
// countdown timers. A gabbai adds, edits and removes them; the lists follow the server.
import { el, field, select } from "./dom";
import { DocumentSection, bodyOf, getData, type DocumentKind } from "./documents";
import { preferred, splitList, toLocalInput } from "./format";
import { lang, t, type MessageKey } from "./i18n";
import {
  DAY_KINDS,
  HONOURS,
  ROUND_MINUTES,
  ROUND_MODES,
  ZMANIM,
  formToRule,
  formToTarget,
  nextHonour,
  nextSaturday,
  ruleToForm,
  targetToForm,
  type AliyotBody,
  type Honour,
  type HonourKind,
  type Rule,
  type ShiurBody,
  type TargetForm,
  type TimeSpec,
  type TimerBody,
  type TimerTarget,
} from "./programme-model";

type Aliyot = AliyotBody & { id: string };
type Shiur = ShiurBody & { id: string };
type Timer = TimerBody & { id: string };

/** The synagogue whose prayer names timers offer (the one the synagogue page edits). */
const SYNAGOGUE = "main";

const key = (prefix: string, name: string) => `${prefix}.${name}` as MessageKey;

const today = () => new Date().toLocaleDateString("sv");

// ---- aliyot

function honourRow(h: Honour): HTMLElement {
  const row = el("div", { class: "honour-row" });
  const kind = select(
    "honour",
    HONOURS.map((k) => [k, t(key("honour", k))]),
    h.honour,
    { "aria-label": t("aliyot.honour") },
  );
  const name = el("input", { name: "honour_name", value: h.name, "aria-label": t("aliyot.name") });
  const remove = el("button", { type: "button", class: "secondary", "aria-label": t("content.delete"), "data-testid": "remove-honour" }, "✕");
  remove.addEventListener("click", () => {
    const rows = row.parentElement;
    row.remove();
    if (rows) renumber(rows);
  });
  row.append(kind, name, remove);
  return row;
}

/** Rows carry their index in the body, so the server's `honours[i]…` errors mark the right row. */
function renumber(rows: HTMLElement): void {
  rows.querySelectorAll<HTMLElement>(".honour-row").forEach((row, i) => {
    row.dataset.index = String(i);
    row.querySelector("select")?.setAttribute("data-path", `honours[${i}].honour`);
    row.querySelector("input")?.setAttribute("data-path", `honours[${i}].name`);
  });
}

function honoursField(honours: Honour[]): HTMLElement {
  const set = el("fieldset", { class: "honours", "data-testid": "honours" });
  set.append(el("legend", {}, t("aliyot.honours")));
  const rows = el("div", { class: "rows" });
  for (const h of honours) rows.append(honourRow(h));
  renumber(rows);
  const add = el("button", { type: "button", class: "secondary", "data-testid": "add-honour" }, t("aliyot.addHonour"));
  add.addEventListener("click", () => {
    const given = [...rows.querySelectorAll("select")].map((s) => s.value);
    const row = honourRow({ honour: nextHonour(given), name: "" });
    rows.append(row);
    renumber(rows);
    row.querySelector("input")?.focus();
  });
  set.append(rows, add);
  return set;
}

const aliyot: DocumentKind<Aliyot, AliyotBody> = {
  kind: "aliyot",
  section: "aliyot",
  path: "/api/v1/aliyot",
  heading: "aliyot.heading",
  empty: "aliyot.empty",
  order: (a, b) => a.date.localeCompare(b.date),
  summary: (a) => {
    const nodes: Node[] = [el("bdi", { dir: "ltr", class: "date" }, a.date)];
    for (const extra of [a.note, a.synagogue]) if (extra) nodes.push(el("span", { class: "muted" }, ` · ${extra}`));
    const honours = el("span", { class: "honour-list" });
    a.honours.forEach((h, i) => {
      const item = el("span", { "data-honour": h.honour });
      item.append(el("span", { class: "honour" }, t(key("honour", h.honour))), ": ", el("bdi", { class: "name" }, h.name));
      if (i) honours.append(", ");
      honours.append(item);
    });
    nodes.push(document.createTextNode(" · "), honours);
    return nodes;
  },
  fields: (d) => [
    field("aliyot.date", el("input", { name: "date", type: "date", "data-path": "date", value: d?.date ?? nextSaturday(today()) })),
    field("aliyot.synagogue", el("input", { name: "synagogue", dir: "ltr", "data-path": "synagogue", value: d?.synagogue ?? "" })),
    field("aliyot.note", el("input", { name: "note", "data-path": "note", value: d?.note ?? "" })),
    honoursField(d?.honours ?? [{ honour: "kohen", name: "" }]),
  ],
  read: (form, base) => {
    const f = new FormData(form);
    const names = f.getAll("honour_name").map(String);
    const synagogue = String(f.get("synagogue") ?? "").trim();
    return {
      ...base,
      date: String(f.get("date") ?? ""),
      // Absent: every screen of the tenant.
      synagogue: synagogue || undefined,
      note: String(f.get("note") ?? ""),
      honours: f.getAll("honour").map((h, i) => ({ honour: String(h) as HonourKind, name: names[i] ?? "" })),
    };
  },
  toBody: (a) => bodyOf(a),
};

// ---- shiurim

function describeTime(time: TimeSpec): Node {
  if ("fixed" in time) return el("bdi", { dir: "ltr" }, time.fixed);
  const offset = time.offset_minutes ?? 0;
  const zman = t(key("zman", time.zman));
  if (!offset) return document.createTextNode(zman);
  const signed = `${offset > 0 ? "+" : "−"}${Math.abs(offset)}`;
  return document.createTextNode(t("shiurim.relative", { zman, offset: signed }));
}

function daysField(days: string[]): HTMLElement {
  const set = el("fieldset", { class: "days", "data-path": "schedule.days" });
  set.append(el("legend", {}, t("shiurim.days")));
  for (const d of DAY_KINDS) {
    const box = el("input", { type: "checkbox", name: "days", value: d });
    box.checked = days.includes(d);
    const label = el("label", {});
    label.append(box, ` ${t(key("day", d))}`);
    set.append(label);
  }
  return set;
}

/** Shows only the inputs that the chosen option uses. */
function showWhen(control: HTMLSelectElement, shown: [HTMLElement, (value: string) => boolean][]): void {
  const sync = () => {
    for (const [node, when] of shown) node.hidden = !when(control.value);
  };
  control.addEventListener("change", sync);
  sync();
}

const shiurim: DocumentKind<Shiur, ShiurBody> = {
  kind: "shiur",
  section: "shiurim",
  path: "/api/v1/shiurim",
  heading: "shiurim.heading",
  empty: "shiurim.empty",
  order: (a, b) => a.schedule.name.localeCompare(b.schedule.name),
  summary: (s) => {
    const nodes: Node[] = [el("strong", { class: "title" }, s.schedule.name), el("span", { class: "teacher" }, ` · ${s.teacher}`)];
    if (s.location) nodes.push(el("span", { class: "muted" }, ` · ${s.location}`));
    const time = el("span", { class: "time" });
    time.append(describeTime(s.schedule.time));
    const days = s.schedule.days.map((d) => t(key("day", d))).join(", ");
    nodes.push(document.createTextNode(" · "), time, el("span", { class: "muted" }, ` · ${days}`));
    return nodes;
  },
  fields: (d) => {
    const f = ruleToForm(d?.schedule ?? null);
    const kind = select(
      "time_kind",
      [
        ["fixed", t("shiurim.fixedTime")],
        ["zman", t("shiurim.zmanTime")],
      ],
      f.timeKind,
    );
    const fixed = field("shiurim.time", el("input", { name: "fixed", type: "time", dir: "ltr", "data-path": "schedule.time", value: f.fixed }));
    const zman = field("shiurim.zman", select("zman", ZMANIM.map((z) => [z, t(key("zman", z))]), f.zman, { "data-path": "schedule.time" }));
    const offset = field("shiurim.offset", el("input", { name: "offset", type: "number", step: "1", "data-path": "schedule.time", value: f.offset }));
    showWhen(kind, [
      [fixed, (v) => v === "fixed"],
      [zman, (v) => v === "zman"],
      [offset, (v) => v === "zman"],
    ]);
    const round = select("round_mode", [["", t("shiurim.roundNone")], ...ROUND_MODES.map((m): [string, string] => [m, t(key("round", m))])], f.roundMode, {
      "data-path": "schedule.round.mode",
    });
    const minutes = field(
      "shiurim.roundMinutes",
      select(
        "round_minutes",
        ROUND_MINUTES.map((m) => [String(m), String(m)]),
        String(f.roundMinutes),
        { "data-path": "schedule.round.minutes" },
      ),
    );
    showWhen(round, [[minutes, (v) => v !== ""]]);
    return [
      field("shiurim.title", el("input", { name: "title", "data-path": "schedule.name", value: f.title })),
      field("shiurim.teacher", el("input", { name: "teacher", "data-path": "teacher", value: d?.teacher ?? "" })),
      field("shiurim.location", el("input", { name: "location", "data-path": "location", value: d?.location ?? "" })),
      field("shiurim.timeKind", kind),
      fixed,
      zman,
      offset,
      field("shiurim.round", round),
      minutes,
      daysField(f.days),
    ];
  },
  read: (form, base) => {
    const f = new FormData(form);
    const text = (name: string) => String(f.get(name) ?? "");
    const schedule: Rule = formToRule(
      {
        title: text("title"),
        timeKind: text("time_kind") === "zman" ? "zman" : "fixed",
        fixed: text("fixed"),
        zman: text("zman"),
        offset: text("offset"),
        roundMode: text("round_mode"),
        roundMinutes: Number(text("round_minutes")),
        days: f.getAll("days").map(String),
      },
      base?.schedule ?? null,
    );
    return { ...base, teacher: text("teacher"), location: text("location"), schedule };
  },
  toBody: (s) => bodyOf(s),
};

// ---- timers

function describeTarget(target: TimerTarget): Node {
  if ("zman" in target) return document.createTextNode(t(key("zman", target.zman)));
  if ("prayer" in target) return document.createTextNode(t("timers.prayerTarget", { name: target.prayer }));
  return el("bdi", { dir: "ltr" }, toLocalInput(target.at).replace("T", " "));
}

export class ProgrammePage {
  /** Prayer names of the synagogue's schedule, offered for timers. */
  private prayers: string[] = [];
  private aliyot = new DocumentSection(aliyot);
  private shiurim = new DocumentSection(shiurim);
  private timers = new DocumentSection<Timer, TimerBody>({
    kind: "timer",
    section: "timers",
    path: "/api/v1/timers",
    heading: "timers.heading",
    empty: "timers.empty",
    summary: (timer) => {
      const target = el("span", { class: "target" });
      target.append(describeTarget(timer.target));
      return [
        el("span", { class: "label" }, preferred(timer.label_he, timer.label_en, lang())),
        document.createTextNode(" · "),
        target,
        el("span", { class: "muted before", "data-minutes": String(timer.show_before_minutes) }, ` · ${t("timers.shownBefore", { minutes: timer.show_before_minutes })}`),
      ];
    },
    fields: (d) => {
      const target = targetToForm(d?.target ?? null);
      const kind = select(
        "target_kind",
        (["zman", "prayer", "at"] as const).map((k) => [k, t(key("timers.kind", k))]),
        target.kind,
      );
      const zman = field("timers.zman", select("target_zman", ZMANIM.map((z) => [z, t(key("zman", z))]), target.zman, { "data-path": "target" }));
      const prayer = field("timers.prayer", el("input", { name: "target_prayer", list: "prayer-names", "data-path": "target", value: target.prayer }));
      const names = el("datalist", { id: "prayer-names" });
      for (const p of this.prayers) names.append(el("option", { value: p }));
      prayer.append(names);
      const at = field("timers.at", el("input", { name: "target_at", type: "datetime-local", "data-path": "target", value: target.at }));
      showWhen(kind, [
        [zman, (v) => v === "zman"],
        [prayer, (v) => v === "prayer"],
        [at, (v) => v === "at"],
      ]);
      return [
        field("timers.labelHe", el("input", { name: "label_he", dir: "rtl", "data-path": "label_he", value: d?.label_he ?? "" })),
        field("timers.labelEn", el("input", { name: "label_en", dir: "ltr", "data-path": "label_en", value: d?.label_en ?? "" })),
        field("timers.target", kind),
        zman,
        prayer,
        at,
        field(
          "timers.showBefore",
          el("input", { name: "show_before_minutes", type: "number", min: "1", max: "1440", "data-path": "show_before_minutes", value: String(d?.show_before_minutes ?? 30) }),
        ),
        field("timers.devices", el("input", { name: "devices", dir: "ltr", "data-path": "targets.devices", value: d?.targets?.devices.join(", ") ?? "" })),
        field("timers.tags", el("input", { name: "tags", dir: "ltr", "data-path": "targets.tags", value: d?.targets?.tags.join(", ") ?? "" })),
      ];
    },
    read: (form, base) => {
      const f = new FormData(form);
      const text = (name: string) => String(f.get(name) ?? "");
      const target: TargetForm = {
        kind: text("target_kind") === "prayer" ? "prayer" : text("target_kind") === "at" ? "at" : "zman",
        zman: text("target_zman"),
        prayer: text("target_prayer"),
        at: text("target_at"),
      };
      const minutes = text("show_before_minutes").trim();
      return {
        ...base,
        label_he: text("label_he"),
        label_en: text("label_en"),
        target: formToTarget(target),
        // Anything but a number is sent as typed, so the server names the field.
        show_before_minutes: minutes !== "" && Number.isFinite(Number(minutes)) ? Number(minutes) : (minutes as unknown as number),
        targets: { devices: splitList(text("devices")), tags: splitList(text("tags")) },
      };
    },
    toBody: (timer) => bodyOf(timer),
    refresh: async () => {
      const synagogues = (await getData<{ id: string; schedule: { rules: Rule[] } }[]>("/api/v1/synagogues")) ?? [];
      const rules = synagogues.find((s) => s.id === SYNAGOGUE)?.schedule.rules ?? [];
      this.prayers = [...new Set(rules.map((r) => r.name))];
    },
  });

  constructor(private root: HTMLElement) {}

  async start(): Promise<void> {
    await Promise.all([this.aliyot.load(), this.shiurim.load(), this.timers.load()]);
    this.render();
  }

  render(): void {
    this.root.lang = lang();
    this.root.replaceChildren(el("h2", {}, t("programme.heading")), this.aliyot.element, this.shiurim.element, this.timers.element);
    this.aliyot.render();
    this.shiurim.render();
    this.timers.render();
  }
}
