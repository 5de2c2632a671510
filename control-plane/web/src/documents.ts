// Sections for documents with server-chosen ids (announcements, memorial plaques, aliyot,
// shiurim, timers): the stored documents in a list with edit and remove buttons, and one form
// that adds a document or, after "Edit", replaces that one. The server's field errors are
// listed under the form with their paths, the failing inputs are marked, and the form keeps
// what was typed.
import { authFetch } from "./session";
import { el, errorList, errorsOf, markInvalid, type FieldError } from "./dom";
import { t, type MessageKey } from "./i18n";

/** What the server adds to every stored document. */
export interface Stored {
  id: string;
  tenant_id?: string;
  created_at?: string;
  updated_at?: string;
}

/** Most documents of a kind a section shows (the API's largest page). */
export const MAX_DOCUMENTS = 500;

/** The `data` of a successful GET, or null. */
export async function getData<T>(path: string): Promise<T | null> {
  const resp = await authFetch(path);
  return resp.ok ? ((await resp.json()).data as T) : null;
}

/** Sends a JSON body (or none); the server's field errors, none on success. */
export async function send(method: string, path: string, body?: unknown): Promise<FieldError[]> {
  const resp = await authFetch(path, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return resp.ok ? [] : errorsOf(resp);
}

/** A stored document as a request body: without the id and timestamps the server adds. */
export function bodyOf<T extends Stored>(doc: T): Omit<T, keyof Stored> {
  const body = { ...doc } as Record<string, unknown>;
  for (const key of ["id", "tenant_id", "created_at", "updated_at"]) delete body[key];
  return body as Omit<T, keyof Stored>;
}

/** How one kind of document is listed and edited. `B` is its request body. */
export interface DocumentKind<T extends Stored, B> {
  /** Singular, for test ids: `{kind}-form`, `{kind}-errors`, `edit-{kind}`, `delete-{kind}`. */
  kind: string;
  /** Test id of the section. */
  section: string;
  /** Collection path, e.g. `/api/v1/aliyot`. */
  path: string;
  heading: MessageKey;
  empty: MessageKey;
  /** The list entry of a document. */
  summary(doc: T): Node[];
  /** The form's fields showing `draft` (null: a new document). */
  fields(draft: B | null): HTMLElement[];
  /** The body the form gives; fields of `base` the form does not show are kept. */
  read(form: HTMLFormElement, base: B | null): B;
  /** The body of a stored document, to edit it. */
  toBody(doc: T): B;
  order?(a: T, b: T): number;
  /** Whether the form can edit this document (default: yes). */
  editable?(doc: T): boolean;
  /** Reloads what the section shows besides the list (after every change). */
  refresh?(): Promise<void>;
  /** Shown at the end of the section. */
  extra?(): HTMLElement[];
}

export class DocumentSection<T extends Stored, B> {
  readonly element: HTMLElement;
  items: T[] = [];
  private errors: FieldError[] = [];
  private editing: string | null = null;
  private draft: B | null = null;

  constructor(private kind: DocumentKind<T, B>) {
    this.element = el("section", { class: "content", "data-testid": kind.section });
  }

  /** Loads the documents (and what `refresh` loads) without drawing. */
  async load(): Promise<void> {
    const [items] = await Promise.all([getData<T[]>(`${this.kind.path}?limit=${MAX_DOCUMENTS}`), this.kind.refresh?.()]);
    this.items = items ?? [];
  }

  private async reload(): Promise<void> {
    await this.load();
    this.render();
  }

  private async submit(form: HTMLFormElement): Promise<void> {
    const editing = this.editing;
    const body = this.kind.read(form, this.draft);
    const path = editing ? `${this.kind.path}/${encodeURIComponent(editing)}` : this.kind.path;
    this.errors = await send(editing ? "PUT" : "POST", path, body);
    if (this.errors.length) {
      // Keep what was typed so only the failing field needs fixing.
      this.draft = body;
      this.render();
      return;
    }
    this.editing = null;
    this.draft = null;
    await this.reload();
  }

  private startEditing(doc: T): void {
    this.editing = doc.id;
    this.draft = this.kind.toBody(doc);
    this.errors = [];
    this.render();
    this.element.querySelector<HTMLElement>("form input, form select")?.focus();
  }

  private stopEditing(): void {
    this.editing = null;
    this.draft = null;
    this.errors = [];
    this.render();
  }

  render(): void {
    const k = this.kind;
    const list = el("ul", { class: "items" });
    const docs = k.order ? [...this.items].sort((a, b) => k.order!(a, b)) : this.items;
    for (const doc of docs) {
      const item = el("li", { "data-id": doc.id });
      if (doc.id === this.editing) item.setAttribute("aria-current", "true");
      const summary = el("span", { class: "summary" });
      summary.append(...k.summary(doc));
      item.append(summary);
      if (k.editable?.(doc) ?? true) {
        const edit = el("button", { type: "button", class: "link", "data-testid": `edit-${k.kind}` }, t("content.edit"));
        edit.addEventListener("click", () => this.startEditing(doc));
        item.append(edit);
      }
      const remove = el("button", { type: "button", class: "link", "data-testid": `delete-${k.kind}` }, t("content.delete"));
      remove.addEventListener("click", async () => {
        this.errors = await send("DELETE", `${k.path}/${encodeURIComponent(doc.id)}`);
        if (doc.id === this.editing) {
          this.editing = null;
          this.draft = null;
        }
        await this.reload();
      });
      item.append(remove);
      list.append(item);
    }
    if (!docs.length) list.append(el("li", { class: "empty" }, t(k.empty)));

    // `novalidate`: the server checks every field and names it; the browser would only block.
    const form = el("form", { class: "synagogue", "data-testid": `${k.kind}-form`, novalidate: "" });
    if (this.editing) form.dataset.editing = this.editing;
    form.append(...k.fields(this.draft));
    const buttons = el("div", { class: "buttons" });
    buttons.append(el("button", { type: "submit" }, t(this.editing ? "content.save" : "content.add")));
    if (this.editing) {
      const cancel = el("button", { type: "button", class: "secondary", "data-testid": `cancel-${k.kind}` }, t("content.cancel"));
      cancel.addEventListener("click", () => this.stopEditing());
      buttons.append(cancel);
    }
    form.append(buttons);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.submit(form);
    });
    markInvalid(form, this.errors);
    this.element.replaceChildren(el("h3", {}, t(k.heading)), list, form, ...errorList(this.errors, `${k.kind}-errors`), ...(k.extra?.() ?? []));
  }
}
