// Reminders page (gabbaim): the congregants who asked to be reminded of a yahrzeit or of
// their honours at the Torah reading, with the consent they gave. The server refuses a
// congregant without consent and names each failing field; the page marks it.
import { binder, el, errorList, field, markInvalid, type FieldError } from "./dom";
import { getData, send } from "./documents";
import { t, type MessageKey } from "./i18n";
import { CONTACT_KINDS, congregantBody, congregantForm, EMPTY_CONGREGANT, type Congregant, type CongregantForm } from "./reminders-model";

interface Plaque {
  id: string;
  name: string;
  family: string;
}

/** The largest page the API answers. */
const PAGE = 500;

export class RemindersPage {
  private congregants: Congregant[] = [];
  private plaques: Plaque[] = [];
  private form: CongregantForm = { ...EMPTY_CONGREGANT };
  private editing: string | null = null;
  private errors: FieldError[] = [];
  private readonly listSection = el("section", { class: "congregants", "data-testid": "congregants" });
  private readonly formSection = el("section", { class: "congregant-editor" });

  constructor(private root: HTMLElement) {}

  async start(): Promise<void> {
    this.render();
    await this.reload();
  }

  private async reload(): Promise<void> {
    this.congregants = (await getData<Congregant[]>(`/api/v1/congregants?limit=${PAGE}`)) ?? [];
    this.plaques = (await getData<Plaque[]>(`/api/v1/memorials?limit=${PAGE}`)) ?? [];
    this.render();
  }

  render(): void {
    this.root.replaceChildren(el("h2", {}, t("reminders.title")), el("p", { class: "hint" }, t("reminders.hint")), this.listSection, this.formSection);
    this.renderList();
    this.renderForm();
  }

  private renderList(): void {
    const names = new Map(this.plaques.map((p) => [p.id, p.name]));
    const list = el("ul", { class: "items" });
    for (const c of this.congregants) {
      const item = el("li", { "data-testid": "congregant", "data-id": c.id });
      const summary = el("span", { class: "summary" });
      summary.append(el("strong", {}, c.name), " · ", t(`notify.kind.${c.contact.kind}` as MessageKey), " ", el("bdi", { dir: "ltr" }, c.contact.to));
      const hears = c.yahrzeits.map((id) => t("reminders.yahrzeitOf", { name: names.get(id) ?? id }));
      if (c.aliyot) hears.push(t("reminders.aliyot"));
      summary.append(" · ", hears.join(", "));
      const edit = el("button", { type: "button", class: "link", "data-testid": "congregant-edit" }, t("content.edit"));
      edit.addEventListener("click", () => {
        this.editing = c.id;
        this.form = congregantForm(c);
        this.errors = [];
        this.renderForm();
      });
      const remove = el("button", { type: "button", class: "link", "data-testid": "congregant-delete" }, t("content.delete"));
      remove.addEventListener("click", async () => {
        await send("DELETE", `/api/v1/congregants/${encodeURIComponent(c.id)}`);
        await this.reload();
      });
      item.append(summary, edit, remove);
      list.append(item);
    }
    const empty = this.congregants.length ? [] : [el("p", { class: "empty" }, t("reminders.none"))];
    this.listSection.replaceChildren(...empty, list);
  }

  private renderForm(): void {
    const f = this.form;
    const form = el("form", { class: "congregant-form", "data-testid": "congregant-form", novalidate: "" });
    const { text, choose } = binder(() => this.form, "congregant", () => this.renderForm());
    const plaques = el("fieldset", { class: "plaques", "data-path": "yahrzeits" });
    plaques.append(el("legend", {}, t("reminders.form.yahrzeits")));
    for (const p of this.plaques) {
      const box = el("input", { type: "checkbox", "data-testid": "congregant-plaque", value: p.id });
      box.checked = f.yahrzeits.includes(p.id);
      box.addEventListener("change", () => {
        const rest = this.form.yahrzeits.filter((id) => id !== p.id);
        this.form.yahrzeits = box.checked ? [...rest, p.id] : rest;
      });
      const label = el("label", { class: "check" });
      label.append(box, " ", el("bdi", {}, p.family ? `${p.name} (${p.family})` : p.name));
      plaques.append(label);
    }
    if (!this.plaques.length) plaques.append(el("p", { class: "empty" }, t("reminders.form.noPlaques")));
    const aliyot = el("input", { type: "checkbox", "data-testid": "congregant-aliyot" });
    aliyot.checked = f.aliyot;
    aliyot.addEventListener("change", () => (this.form.aliyot = aliyot.checked));
    form.append(
      field("reminders.form.name", text("name", "name")),
      field("reminders.form.kind", choose("kind", "contact.kind", CONTACT_KINDS.map((k) => [k, t(`notify.kind.${k}` as MessageKey)]))),
      field("reminders.form.to", text("to", "contact.to", { dir: "ltr" })),
      field(
        "notify.form.language",
        choose("language", "language", [
          ["he", t("notify.language.he")],
          ["en", t("notify.language.en")],
        ]),
      ),
      plaques,
      field("reminders.form.yahrzeitDays", text("yahrzeitDays", "yahrzeit_days_before", { inputmode: "numeric", dir: "ltr", placeholder: "7" })),
      field("reminders.form.aliyot", aliyot),
      field("reminders.form.aliyahDays", text("aliyahDays", "aliyah_days_before", { inputmode: "numeric", dir: "ltr", placeholder: "2" })),
      el("p", { class: "hint" }, t("reminders.form.consentHint")),
      field("reminders.form.consentOn", text("consentOn", "consent.given_on", { type: "date", dir: "ltr" })),
      field("reminders.form.consentHow", text("consentHow", "consent.how")),
      el("button", { type: "submit", "data-testid": "congregant-save" }, t(this.editing ? "reminders.save" : "reminders.add")),
      ...errorList(this.errors, "congregant-errors"),
    );
    if (this.editing) {
      const cancel = el("button", { type: "button", class: "link", "data-testid": "congregant-cancel" }, t("content.cancel"));
      cancel.addEventListener("click", () => {
        this.editing = null;
        this.form = { ...EMPTY_CONGREGANT };
        this.errors = [];
        this.renderForm();
      });
      form.append(cancel);
    }
    markInvalid(form, this.errors);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.save();
    });
    this.formSection.replaceChildren(el("h3", {}, t(this.editing ? "reminders.editTitle" : "reminders.addTitle")), form);
  }

  private async save(): Promise<void> {
    const path = this.editing ? `/api/v1/congregants/${encodeURIComponent(this.editing)}` : "/api/v1/congregants";
    this.errors = await send(this.editing ? "PUT" : "POST", path, congregantBody(this.form));
    if (this.errors.length) {
      // What was typed stays, so only the failing field needs fixing.
      this.renderForm();
      return;
    }
    this.editing = null;
    this.form = { ...EMPTY_CONGREGANT };
    await this.reload();
  }
}
