// Alerts page: the tenant's alerts (open first, most serious first), acknowledged with one
// click and kept current by `alert:update` events; and the rules that open them, edited in a
// form whose failing fields the server names and the page marks.
import { io } from "socket.io-client";
import {
  byUrgency,
  CONDITION_FIELDS,
  EMPTY_RULE,
  KINDS,
  merged,
  METRICS,
  ruleBody,
  ruleForm,
  SCHEDULED,
  SEVERITIES,
  TARGETS,
  type Alert,
  type Box,
  type RuleForm,
  type Silence,
  type StoredRule,
} from "./alerts-model";
import { binder, el, errorList, field, markInvalid, type FieldError } from "./dom";
import { getData, send } from "./documents";
import { lang, t, type MessageKey } from "./i18n";
import { token } from "./session";

/** Alerts the page lists at most (the API's largest page). */
const PAGE = 500;

export class AlertsPage {
  private alerts: Alert[] = [];
  private rules: StoredRule[] = [];
  private showResolved = false;
  private form: RuleForm = { ...EMPTY_RULE };
  private editing: string | null = null;
  private errors: FieldError[] = [];
  private actionError = "";
  private readonly list = el("section", { class: "alerts", "data-testid": "alert-list" });
  private readonly rulesSection = el("section", { class: "rules", "data-testid": "alert-rules" });
  private silences: Silence[] = [];
  private readonly silencesSection = el("section", { class: "silences", "data-testid": "alert-silences" });

  constructor(private root: HTMLElement) {}

  async start(): Promise<void> {
    const socket = io("/live", { transports: ["websocket"], auth: (cb) => cb({ token: token() ?? "" }) });
    socket.on("connect", () => void this.reload());
    socket.on("alert:update", (e: { alert: Alert }) => {
      this.alerts = merged(this.alerts, e.alert);
      this.renderAlerts();
    });
    this.render();
    await this.reload();
  }

  private async reload(): Promise<void> {
    const query = this.showResolved ? "" : "&active=true";
    const page = await getData<{ items: Alert[] }>(`/api/v1/alerts?limit=${PAGE}${query}`);
    this.alerts = page?.items ?? [];
    this.rules = (await getData<StoredRule[]>(`/api/v1/alert-rules?limit=${PAGE}`)) ?? [];
    this.silences = (await getData<Silence[]>("/api/v1/alert-silences")) ?? [];
    this.render();
  }

  render(): void {
    this.root.replaceChildren(
      el("h2", {}, t("alerts.title")),
      el("p", { class: "hint" }, t("alerts.hint")),
      this.list,
      this.silencesSection,
      this.rulesSection,
    );
    this.renderAlerts();
    this.renderSilences();
    this.renderRules();
  }

  private renderAlerts(): void {
    const toggle = el("label", { class: "inline" });
    const box = el("input", { type: "checkbox", "data-testid": "alerts-show-resolved" });
    box.checked = this.showResolved;
    box.addEventListener("change", () => {
      this.showResolved = box.checked;
      void this.reload();
    });
    toggle.append(box, " ", t("alerts.showResolved"));
    const shown = byUrgency(this.showResolved ? this.alerts : this.alerts.filter((a) => a.state !== "resolved"));
    const items = shown.map((a) => this.alertCard(a));
    const empty = shown.length ? [] : [el("p", { class: "empty", "data-testid": "alerts-none" }, t("alerts.none"))];
    const failed = this.actionError ? [el("p", { class: "error", role: "alert" }, this.actionError)] : [];
    this.list.replaceChildren(el("h3", {}, t("alerts.list")), toggle, ...failed, ...empty, ...items);
  }

  private alertCard(a: Alert): HTMLElement {
    const card = el("article", {
      class: `alert ${a.severity} ${a.state}`,
      "data-testid": "alert",
      "data-alert-id": a.id,
      "data-state": a.state,
      "data-severity": a.severity,
    });
    const head = el("header");
    head.append(
      el("span", { class: `badge ${a.severity}`, "data-testid": "alert-severity" }, t(`alerts.severity.${a.severity}` as MessageKey)),
      el("strong", {}, a.rule_name),
      el("span", { class: "state", "data-testid": "alert-state" }, t(`alerts.state.${a.state}` as MessageKey)),
    );
    const screen = el("p", {});
    screen.append(t("alerts.screen"), " ", el("bdi", { dir: "ltr", "data-testid": "alert-device" }, a.device_id));
    // The server's words are English: isolated so a Hebrew page keeps its direction.
    const summary = el("p", { class: "hint" });
    summary.append(el("bdi", { dir: "ltr", "data-testid": "alert-summary" }, a.summary));
    const when = el("p", { class: "hint", "data-testid": "alert-when" }, this.when(a));
    card.append(head, screen, summary, when);
    if (a.state === "open") {
      const ack = el("button", { type: "button", "data-testid": "alert-acknowledge" }, t("alerts.acknowledge"));
      ack.addEventListener("click", () => void this.acknowledge(a));
      card.append(ack);
    }
    if (a.state !== "resolved") {
      const hush = el("button", { type: "button", class: "link", "data-testid": "alert-silence" }, t("alerts.silence"));
      hush.addEventListener("click", () => void this.silence(a));
      card.append(hush);
    }
    return card;
  }

  private when(a: Alert): string {
    const at = (iso: string) => new Date(iso).toLocaleString(lang());
    const parts = [t("alerts.opened", { when: at(a.opened_at) })];
    if (a.acknowledged_at) parts.push(t("alerts.acknowledgedBy", { who: a.acknowledged_by ?? "", when: at(a.acknowledged_at) }));
    if (a.resolved_at) parts.push(t("alerts.resolvedAt", { when: at(a.resolved_at) }));
    return parts.join(" · ");
  }

  private async acknowledge(a: Alert): Promise<void> {
    const errors = await send("POST", `/api/v1/alerts/${encodeURIComponent(a.id)}/acknowledge`);
    this.actionError = errors.map((e) => e.message).join("; ");
    const fresh = await getData<Alert>(`/api/v1/alerts/${encodeURIComponent(a.id)}`);
    if (fresh) this.alerts = merged(this.alerts, fresh);
    this.renderAlerts();
  }

  /** Silences the alert's rule on its screen for a day. */
  private async silence(a: Alert): Promise<void> {
    const ends_at = new Date(Date.now() + 86_400_000).toISOString();
    const errors = await send("POST", "/api/v1/alert-silences", { matchers: { rule_id: a.rule_id, device_id: a.device_id }, ends_at, comment: a.rule_name });
    this.actionError = errors.map((e) => e.message).join("; ");
    await this.reload();
  }

  private renderSilences(): void {
    const now = Date.now();
    const active = this.silences.filter((s) => Date.parse(s.starts_at) <= now && now < Date.parse(s.ends_at));
    const list = el("ul", { class: "items" });
    for (const s of active) {
      const item = el("li", { "data-testid": "silence", "data-id": s.id });
      const what = [s.matchers.device_id, s.comment].filter(Boolean).join(" · ");
      const summary = el("span", { class: "summary" });
      summary.append(el("bdi", {}, what), " · ", t("alerts.silences.until", { when: new Date(s.ends_at).toLocaleString(lang()) }));
      const end = el("button", { type: "button", class: "link", "data-testid": "silence-expire" }, t("alerts.silences.expire"));
      end.addEventListener("click", async () => {
        await send("POST", `/api/v1/alert-silences/${encodeURIComponent(s.id)}/expire`);
        await this.reload();
      });
      item.append(summary, end);
      list.append(item);
    }
    if (!active.length) {
      this.silencesSection.replaceChildren();
      return;
    }
    this.silencesSection.replaceChildren(el("h3", {}, t("alerts.silences.title")), el("p", { class: "hint" }, t("alerts.silences.hint")), list);
  }

  private renderRules(): void {
    const list = el("ul", { class: "items" });
    for (const r of this.rules) {
      const item = el("li", { "data-testid": "alert-rule", "data-id": r.id });
      const summary = el("span", { class: "summary" });
      summary.append(el("strong", {}, r.name), " · ", t(`alerts.severity.${r.severity}` as MessageKey));
      if (!r.enabled) summary.append(" · ", t("alerts.rule.disabled"));
      const edit = el("button", { type: "button", class: "link", "data-testid": "edit-alert-rule" }, t("content.edit"));
      edit.addEventListener("click", () => {
        this.editing = r.id;
        this.form = ruleForm(r);
        this.errors = [];
        this.renderRules();
      });
      const remove = el("button", { type: "button", class: "link", "data-testid": "delete-alert-rule" }, t("content.delete"));
      remove.addEventListener("click", async () => {
        await send("DELETE", `/api/v1/alert-rules/${encodeURIComponent(r.id)}`);
        await this.reload();
      });
      item.append(summary, edit, remove);
      list.append(item);
    }
    const defaults = el("button", { type: "button", "data-testid": "alert-rules-defaults" }, t("alerts.rules.defaults"));
    defaults.addEventListener("click", async () => {
      await send("POST", "/api/v1/alert-rules/defaults");
      await this.reload();
    });
    const empty = this.rules.length ? [] : [el("p", { class: "empty" }, t("alerts.rules.none"))];
    this.rulesSection.replaceChildren(
      el("h3", {}, t("alerts.rules.title")),
      el("p", { class: "hint" }, t("alerts.rules.hint")),
      ...empty,
      list,
      defaults,
      this.ruleEditor(),
    );
  }

  private ruleEditor(): HTMLFormElement {
    const f = this.form;
    const form = el("form", { class: "rule-form", "data-testid": "alert-rule-form", novalidate: "" });
    const { text, choose } = binder(() => this.form, "rule", () => this.renderRules());
    const enabled = el("input", { type: "checkbox", "data-testid": "rule-enabled" });
    enabled.checked = f.enabled;
    enabled.addEventListener("change", () => (this.form.enabled = enabled.checked));
    form.append(
      field("alerts.rule.name", text("name", "name")),
      field("alerts.rule.severity", choose("severity", "severity", SEVERITIES.map((s) => [s, t(`alerts.severity.${s}` as MessageKey)]))),
      field("alerts.rule.enabled", enabled),
      field("alerts.rule.target", choose("target", "target", TARGETS.map((k) => [k, t(`alerts.target.${k}` as MessageKey)]))),
    );
    if (f.target !== "all") form.append(field("alerts.rule.targetText", text("targetText", `target.${f.target}`, { dir: "ltr" })));
    form.append(field("alerts.rule.kind", choose("kind", "condition", KINDS.map((k) => [k, t(`alerts.kind.${k}` as MessageKey)]))));
    const cond = `condition.${f.kind}`;
    const options: Partial<Record<Box, [string, string][]>> = {
      metric: METRICS.map((m) => [m, t(`alerts.metric.${m}` as MessageKey)]),
      direction: [
        ["above", t("alerts.direction.above")],
        ["below", t("alerts.direction.below")],
      ],
      trend: [
        ["falling", t("alerts.trend.falling")],
        ["rising", t("alerts.trend.rising")],
      ],
    };
    for (const [box, name] of CONDITION_FIELDS[f.kind]) {
      const choices = options[box];
      const input = choices ? choose(box, `${cond}.${name}`, choices) : text(box, `${cond}.${name}`, { inputmode: "decimal", dir: "ltr" });
      form.append(field(`alerts.field.${name}` as MessageKey, input));
    }
    if (SCHEDULED.includes(f.kind)) {
      form.append(
        el("p", { class: "hint" }, t("alerts.rule.scheduleHint")),
        field("alerts.rule.cron", text("cron", "schedule.cron", { dir: "ltr", placeholder: "*/15 * * * *" })),
        field("alerts.rule.timezone", text("timezone", "schedule.timezone", { dir: "ltr", placeholder: "UTC" })),
      );
    }
    const save = el("button", { type: "submit", "data-testid": "rule-save" }, t(this.editing ? "alerts.rule.save" : "alerts.rule.add"));
    form.append(save, ...errorList(this.errors, "rule-errors"));
    if (this.editing) {
      const cancel = el("button", { type: "button", class: "link", "data-testid": "rule-cancel" }, t("content.cancel"));
      cancel.addEventListener("click", () => {
        this.editing = null;
        this.form = { ...EMPTY_RULE };
        this.errors = [];
        this.renderRules();
      });
      form.append(cancel);
    }
    markInvalid(form, this.errors);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.saveRule();
    });
    return form;
  }

  private async saveRule(): Promise<void> {
    const path = this.editing ? `/api/v1/alert-rules/${encodeURIComponent(this.editing)}` : "/api/v1/alert-rules";
    this.errors = await send(this.editing ? "PUT" : "POST", path, ruleBody(this.form));
    if (this.errors.length) {
      // What was typed stays, so only the failing field needs fixing.
      this.renderRules();
      return;
    }
    this.editing = null;
    this.form = { ...EMPTY_RULE };
    await this.reload();
  }
}
