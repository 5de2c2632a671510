// Content page: announcements (text, window, priority) and memorial plaques with the coming
// yahrzeits. A gabbai adds, edits and removes them; the lists follow the server.
import { el, field } from "./dom";
import { DocumentSection, bodyOf, getData, type DocumentKind } from "./documents";
import { instant, preferred, toLocalInput } from "./format";
import { lang, t } from "./i18n";

interface AnnouncementBody {
  text_he: string;
  text_en: string;
  priority: number;
  starts_at: string | null;
  ends_at: string | null;
  targets?: { devices: string[]; tags: string[] };
}

type Announcement = AnnouncementBody & { id: string };

interface MemorialBody {
  name: string;
  family: string;
  notes?: string;
  passed: { civil?: { date: string; after_nightfall: boolean }; hebrew?: { year: number; month: number; day: number } };
}

type Memorial = MemorialBody & { id: string };

interface Yahrzeit {
  memorial_id: string;
  name: string;
  date: string;
  years: number;
  hebrew_date: { day: number; month: string; year: number };
}

const announcements: DocumentKind<Announcement, AnnouncementBody> = {
  kind: "announcement",
  section: "announcements",
  path: "/api/v1/announcements",
  heading: "content.announcements",
  empty: "content.noAnnouncements",
  order: (x, y) => y.priority - x.priority,
  summary: (a) => [el("span", {}, preferred(a.text_he, a.text_en, lang())), el("span", { class: "muted" }, ` · ${t("content.priority")} ${a.priority}`)],
  fields: (d) => [
    field("content.textHe", el("input", { name: "text_he", dir: "rtl", "data-path": "text_he", value: d?.text_he ?? "" })),
    field("content.textEn", el("input", { name: "text_en", dir: "ltr", "data-path": "text_en", value: d?.text_en ?? "" })),
    field("content.priority", el("input", { name: "priority", type: "number", "data-path": "priority", value: String(d?.priority ?? 50) })),
    field("content.startsAt", el("input", { name: "starts_at", type: "datetime-local", "data-path": "starts_at", value: toLocalInput(d?.starts_at) })),
    field("content.endsAt", el("input", { name: "ends_at", type: "datetime-local", "data-path": "ends_at", value: toLocalInput(d?.ends_at) })),
  ],
  read: (form, base) => {
    const f = new FormData(form);
    return {
      ...base,
      text_he: String(f.get("text_he") ?? ""),
      text_en: String(f.get("text_en") ?? ""),
      priority: Number(f.get("priority")),
      starts_at: instant(f.get("starts_at")),
      ends_at: instant(f.get("ends_at")),
    };
  },
  toBody: (a) => bodyOf(a),
};

export class ContentPage {
  private yahrzeits: Yahrzeit[] = [];
  private announcements = new DocumentSection(announcements);
  private memorials = new DocumentSection<Memorial, MemorialBody>({
    kind: "memorial",
    section: "memorials",
    path: "/api/v1/memorials",
    heading: "content.memorials",
    empty: "content.noMemorials",
    summary: (m) => [el("span", {}, [m.name, m.family].filter(Boolean).join(" · "))],
    // The form gives the civil date of passing; plaques with a Hebrew date are edited through the API.
    editable: (m) => m.passed.civil !== undefined,
    fields: (d) => {
      const after = el("input", { name: "after_nightfall", type: "checkbox" });
      after.checked = d?.passed.civil?.after_nightfall ?? false;
      return [
        field("content.name", el("input", { name: "name", "data-path": "name", value: d?.name ?? "" })),
        field("content.family", el("input", { name: "family", "data-path": "family", value: d?.family ?? "" })),
        field("content.passed", el("input", { name: "date", type: "date", "data-path": "passed", value: d?.passed.civil?.date ?? "" })),
        field("content.afterNightfall", after),
      ];
    },
    read: (form, base) => {
      const f = new FormData(form);
      return {
        ...base,
        name: String(f.get("name") ?? ""),
        family: String(f.get("family") ?? ""),
        passed: { civil: { date: String(f.get("date") ?? ""), after_nightfall: f.get("after_nightfall") === "on" } },
      };
    },
    toBody: (m) => bodyOf(m),
    refresh: async () => {
      this.yahrzeits = (await getData<Yahrzeit[]>("/api/v1/memorials/yahrzeits?days=60")) ?? [];
    },
    extra: () => [this.yahrzeitTable()],
  });

  constructor(private root: HTMLElement) {}

  async start(): Promise<void> {
    await Promise.all([this.announcements.load(), this.memorials.load()]);
    this.render();
  }

  render(): void {
    this.root.lang = lang();
    this.root.replaceChildren(el("h2", {}, t("content.heading")), this.announcements.element, this.memorials.element);
    this.announcements.render();
    this.memorials.render();
  }

  private yahrzeitTable(): HTMLElement {
    const coming = el("table", { class: "devices", "data-testid": "yahrzeits" });
    coming.append(el("caption", {}, t("content.comingYahrzeits")));
    for (const y of this.yahrzeits) {
      const tr = el("tr", { "data-memorial": y.memorial_id });
      const date = el("td");
      date.append(el("bdi", { dir: "ltr" }, y.date));
      tr.append(el("th", { scope: "row" }, y.name), el("td", {}, `${y.hebrew_date.day} ${y.hebrew_date.month}`), date);
      coming.append(tr);
    }
    return coming;
  }
}
