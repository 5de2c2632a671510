// Content page: announcements (text, window, priority) and memorial plaques with the coming
// yahrzeits. A gabbai adds and removes them; the lists follow the server.
import { authFetch } from "./session";
import { el, errorList, errorsOf, field, type FieldError } from "./dom";
import { lang, t } from "./i18n";

interface Announcement {
  id: string;
  text_he: string;
  text_en: string;
  priority: number;
  starts_at: string | null;
  ends_at: string | null;
}

interface Memorial {
  id: string;
  name: string;
  family: string;
}

interface Yahrzeit {
  memorial_id: string;
  name: string;
  date: string;
  years: number;
  hebrew_date: { day: number; month: string; year: number };
}

async function data<T>(path: string): Promise<T | null> {
  const resp = await authFetch(path);
  return resp.ok ? ((await resp.json()).data as T) : null;
}

/** `datetime-local` value → RFC 3339 in UTC, or null when empty. */
function instant(value: FormDataEntryValue | null): string | null {
  const v = String(value ?? "");
  return v ? new Date(v).toISOString() : null;
}

export class ContentPage {
  private announcements: Announcement[] = [];
  private memorials: Memorial[] = [];
  private yahrzeits: Yahrzeit[] = [];
  private announcementErrors: FieldError[] = [];
  private memorialErrors: FieldError[] = [];

  constructor(private root: HTMLElement) {}

  async start(): Promise<void> {
    await this.reload();
  }

  private async reload(): Promise<void> {
    this.announcements = (await data<Announcement[]>("/api/v1/announcements?limit=500")) ?? [];
    this.memorials = (await data<Memorial[]>("/api/v1/memorials?limit=500")) ?? [];
    this.yahrzeits = (await data<Yahrzeit[]>("/api/v1/memorials/yahrzeits?days=60")) ?? [];
    this.render();
  }

  private async send(method: string, path: string, body?: unknown): Promise<FieldError[]> {
    const resp = await authFetch(path, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return resp.ok ? [] : errorsOf(resp);
  }

  render(): void {
    this.root.lang = lang();
    this.root.replaceChildren(el("h2", {}, t("content.heading")), this.announcementSection(), this.memorialSection());
  }

  private announcementSection(): HTMLElement {
    const section = el("section", { class: "content", "data-testid": "announcements" });
    section.append(el("h3", {}, t("content.announcements")));
    const list = el("ul", { class: "items" });
    for (const a of [...this.announcements].sort((x, y) => y.priority - x.priority)) {
      const item = el("li", { "data-id": a.id });
      const text = lang() === "he" ? a.text_he || a.text_en : a.text_en || a.text_he;
      item.append(el("span", {}, text), el("span", { class: "muted" }, ` · ${t("content.priority")} ${a.priority}`));
      const remove = el("button", { type: "button", "data-testid": "delete-announcement" }, t("content.delete"));
      remove.addEventListener("click", async () => {
        this.announcementErrors = await this.send("DELETE", `/api/v1/announcements/${a.id}`);
        await this.reload();
      });
      item.append(remove);
      list.append(item);
    }
    if (!this.announcements.length) list.append(el("li", { class: "empty" }, t("content.noAnnouncements")));
    const form = el("form", { class: "synagogue", "data-testid": "announcement-form" });
    form.append(
      field("content.textHe", el("input", { name: "text_he", dir: "rtl" })),
      field("content.textEn", el("input", { name: "text_en", dir: "ltr" })),
      field("content.priority", el("input", { name: "priority", type: "number", value: "50" })),
      field("content.startsAt", el("input", { name: "starts_at", type: "datetime-local" })),
      field("content.endsAt", el("input", { name: "ends_at", type: "datetime-local" })),
      el("button", { type: "submit" }, t("content.add")),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = new FormData(form);
      this.announcementErrors = await this.send("POST", "/api/v1/announcements", {
        text_he: String(f.get("text_he") ?? ""),
        text_en: String(f.get("text_en") ?? ""),
        priority: Number(f.get("priority")),
        starts_at: instant(f.get("starts_at")),
        ends_at: instant(f.get("ends_at")),
      });
      await this.reload();
    });
    section.append(list, form, ...errorList(this.announcementErrors, "announcement-errors"));
    return section;
  }

  private memorialSection(): HTMLElement {
    const section = el("section", { class: "content", "data-testid": "memorials" });
    section.append(el("h3", {}, t("content.memorials")));
    const list = el("ul", { class: "items" });
    for (const m of this.memorials) {
      const item = el("li", { "data-id": m.id });
      item.append(el("span", {}, [m.name, m.family].filter(Boolean).join(" · ")));
      const remove = el("button", { type: "button", "data-testid": "delete-memorial" }, t("content.delete"));
      remove.addEventListener("click", async () => {
        this.memorialErrors = await this.send("DELETE", `/api/v1/memorials/${m.id}`);
        await this.reload();
      });
      item.append(remove);
      list.append(item);
    }
    if (!this.memorials.length) list.append(el("li", { class: "empty" }, t("content.noMemorials")));
    const form = el("form", { class: "synagogue", "data-testid": "memorial-form" });
    const after = el("input", { name: "after_nightfall", type: "checkbox" });
    form.append(
      field("content.name", el("input", { name: "name" })),
      field("content.family", el("input", { name: "family" })),
      field("content.passed", el("input", { name: "date", type: "date" })),
      field("content.afterNightfall", after),
      el("button", { type: "submit" }, t("content.add")),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = new FormData(form);
      this.memorialErrors = await this.send("POST", "/api/v1/memorials", {
        name: String(f.get("name") ?? ""),
        family: String(f.get("family") ?? ""),
        passed: { civil: { date: String(f.get("date") ?? ""), after_nightfall: f.get("after_nightfall") === "on" } },
      });
      await this.reload();
    });
    const coming = el("table", { class: "devices", "data-testid": "yahrzeits" });
    coming.append(el("caption", {}, t("content.comingYahrzeits")));
    for (const y of this.yahrzeits) {
      const tr = el("tr", { "data-memorial": y.memorial_id });
      const date = el("td");
      date.append(el("bdi", { dir: "ltr" }, y.date));
      tr.append(el("th", { scope: "row" }, y.name), el("td", {}, `${y.hebrew_date.day} ${y.hebrew_date.month}`), date);
      coming.append(tr);
    }
    section.append(list, form, ...errorList(this.memorialErrors, "memorial-errors"), coming);
    return section;
  }
}
