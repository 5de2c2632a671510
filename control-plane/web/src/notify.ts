// Notifications page (tenant admins): the channels that tell people about alerts (email,
// SMS, WhatsApp, webhooks), made in a form whose failing fields the server names; a test
// message per channel; a webhook's signing secret shown once; and the message log, with why a
// message waits (Shabbat, quiet hours) or failed.
import { binder, el, errorList, errorsOf, field, markInvalid, type FieldError } from "./dom";
import { getData, send } from "./documents";
import { lang, t, type MessageKey } from "./i18n";
import { SEVERITIES } from "./alerts-model";
import { channelBody, destination, EMPTY_CHANNEL, HOLDS, KINDS, note, type Channel, type ChannelForm, type Message } from "./notify-model";
import { authFetch } from "./session";

/** Messages the log shows at most. */
const LOG_PAGE = 200;

export class NotificationsPage {
  private channels: Channel[] = [];
  private messages: Message[] = [];
  private form: ChannelForm = { ...EMPTY_CHANNEL };
  private errors: FieldError[] = [];
  private secret: { name: string; value: string } | null = null;
  private actionError = "";
  private readonly channelsSection = el("section", { class: "channels", "data-testid": "channels" });
  private readonly logSection = el("section", { class: "message-log", "data-testid": "message-log" });

  constructor(private root: HTMLElement) {}

  async start(): Promise<void> {
    this.render();
    await this.reload();
  }

  private async reload(): Promise<void> {
    this.channels = (await getData<Channel[]>("/api/v1/notification-channels")) ?? [];
    const page = await getData<{ items: Message[] }>(`/api/v1/notifications?limit=${LOG_PAGE}`);
    this.messages = page?.items ?? [];
    this.render();
  }

  render(): void {
    const refresh = el("button", { type: "button", class: "link", "data-testid": "notify-refresh" }, t("notify.refresh"));
    refresh.addEventListener("click", () => void this.reload());
    this.root.replaceChildren(
      el("h2", {}, t("notify.title")),
      el("p", { class: "hint" }, t("notify.hint")),
      this.channelsSection,
      this.logSection,
      refresh,
    );
    this.renderChannels();
    this.renderLog();
  }

  private renderChannels(): void {
    const list = el("ul", { class: "items" });
    for (const c of this.channels) {
      const item = el("li", { "data-testid": "channel", "data-id": c.id, "data-kind": c.kind });
      const summary = el("span", { class: "summary" });
      summary.append(el("strong", {}, c.name), " · ", t(`notify.kind.${c.kind}` as MessageKey), " · ");
      summary.append(el("bdi", { dir: "ltr" }, destination(c)));
      if (c.disabled) {
        summary.append(" · ", el("span", { class: "error", "data-testid": "channel-disabled" }, t("notify.disabled", { why: c.disabled.reason })));
      }
      const test = el("button", { type: "button", class: "link", "data-testid": "channel-test" }, t("notify.test"));
      test.addEventListener("click", () => void this.act("POST", `${c.id}/test`));
      const remove = el("button", { type: "button", class: "link", "data-testid": "channel-delete" }, t("content.delete"));
      remove.addEventListener("click", () => void this.act("DELETE", c.id));
      item.append(summary, test);
      if (c.disabled) {
        const enable = el("button", { type: "button", class: "link", "data-testid": "channel-enable" }, t("notify.enable"));
        enable.addEventListener("click", () => void this.act("POST", `${c.id}/enable`));
        item.append(enable);
      }
      item.append(remove);
      list.append(item);
    }
    const empty = this.channels.length ? [] : [el("p", { class: "empty", "data-testid": "channels-none" }, t("notify.none"))];
    const failed = this.actionError ? [el("p", { class: "error", role: "alert" }, this.actionError)] : [];
    const secret = this.secret
      ? [
          el("p", { class: "secret", "data-testid": "channel-secret" }, t("notify.secret", { name: this.secret.name })),
          el("code", { dir: "ltr", "data-testid": "channel-secret-value" }, this.secret.value),
        ]
      : [];
    this.channelsSection.replaceChildren(el("h3", {}, t("notify.channels")), ...failed, ...empty, list, ...secret, this.channelForm());
  }

  private channelForm(): HTMLFormElement {
    const f = this.form;
    const form = el("form", { class: "channel-form", "data-testid": "channel-form", novalidate: "" });
    const { text, choose } = binder(() => this.form, "channel", () => this.renderChannels());
    const wherePath = f.kind === "webhook" ? "url" : "to";
    form.append(
      field("notify.form.name", text("name", "name")),
      field("notify.form.kind", choose("kind", "kind", KINDS.map((k) => [k, t(`notify.kind.${k}` as MessageKey)]))),
      field(`notify.form.where.${f.kind}` as MessageKey, text("where", wherePath, { dir: "ltr" })),
      field(
        "notify.form.language",
        choose("language", "language", [
          ["he", t("notify.language.he")],
          ["en", t("notify.language.en")],
        ]),
      ),
      field("notify.form.minSeverity", choose("minSeverity", "route.min_severity", SEVERITIES.map((s) => [s, t(`alerts.severity.${s}` as MessageKey)]))),
      field("notify.form.shabbat", choose("shabbat", "shabbat", HOLDS.map((h) => [h, t(`notify.shabbat.${h}` as MessageKey)]))),
      field("notify.form.quietStart", text("quietStart", "quiet_hours", { dir: "ltr", placeholder: "22:00" })),
      field("notify.form.quietEnd", text("quietEnd", "quiet_hours", { dir: "ltr", placeholder: "07:00" })),
      el("button", { type: "submit", "data-testid": "channel-save" }, t("notify.add")),
      ...errorList(this.errors, "channel-errors"),
    );
    markInvalid(form, this.errors);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.create();
    });
    return form;
  }

  private async create(): Promise<void> {
    const resp = await authFetch("/api/v1/notification-channels", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(channelBody(this.form)),
    });
    if (!resp.ok) {
      // What was typed stays, so only the failing field needs fixing.
      this.errors = await errorsOf(resp);
      this.renderChannels();
      return;
    }
    const made = (await resp.json()).data as Channel;
    this.secret = made.secret ? { name: made.name, value: made.secret } : null;
    this.errors = [];
    this.form = { ...EMPTY_CHANNEL };
    await this.reload();
  }

  private async act(method: string, path: string): Promise<void> {
    const errors = await send(method, `/api/v1/notification-channels/${path}`);
    this.actionError = errors.map((e) => e.message).join("; ");
    await this.reload();
  }

  private renderLog(): void {
    const names = new Map(this.channels.map((c) => [c.id, c.name]));
    const table = el("table", { class: "log" });
    const head = el("tr");
    for (const key of ["when", "channel", "recipient", "event", "state", "attempts", "note"] as const) {
      head.append(el("th", {}, t(`notify.log.${key}` as MessageKey)));
    }
    table.append(head);
    for (const m of this.messages) {
      const row = el("tr", { "data-testid": "message", "data-state": m.state, "data-channel": m.channel_id });
      const cell = (text: string, attrs: Record<string, string> = {}) => el("td", attrs, text);
      const recipient = el("td");
      recipient.append(el("bdi", { dir: "ltr" }, m.recipient));
      const why = el("td", { "data-testid": "message-note" });
      why.append(el("bdi", { dir: "ltr" }, note(m)));
      row.append(
        cell(new Date(m.created_at).toLocaleString(lang())),
        cell(names.get(m.channel_id) ?? (m.channel_id === "" ? t("notify.log.direct") : "—")),
        recipient,
        cell(t(`notify.event.${m.event}` as MessageKey)),
        cell(t(`notify.state.${m.state}` as MessageKey), { "data-testid": "message-state" }),
        cell(String(m.attempts)),
        why,
      );
      table.append(row);
    }
    const empty = this.messages.length ? [] : [el("p", { class: "empty" }, t("notify.log.none"))];
    this.logSection.replaceChildren(el("h3", {}, t("notify.log.title")), el("p", { class: "hint" }, t("notify.log.hint")), ...empty, table);
  }
}
