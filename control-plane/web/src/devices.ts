// The live device list: loaded over REST, kept current by Socket.IO events.
import { io } from "socket.io-client";
import { type Device, type DeviceMetrics, getDevice, listDevices } from "./api";
import { lang, t } from "./i18n";
import { authFetch, token } from "./session";
import { el, errorList, errorsOf, errorText, field, type FieldError } from "./dom";
import { DEFAULT_BOARD, DeviceBoard } from "./board";
import { getData, send } from "./documents";
import { allSelected, editTags, facets, filterDevices, filterOf, NO_FILTER, queryOf, type FleetFilter, type SavedQuery } from "./fleet-model";
import { commandOf, EMPTY_COMMAND, type CommandForm } from "./jobs-model";
import { commandInputs } from "./jobs";
import type { MessageKey } from "./i18n";

interface LiveEvent {
  device_id: string;
  tenant_id: string;
  at: string;
  agent_version?: string | null;
  metrics?: DeviceMetrics;
}

/** A cell whose content is left-to-right (versions, addresses) but aligned with the page. */
function ltrCell(text: string): HTMLTableCellElement {
  const cell = el("td");
  cell.append(el("bdi", { dir: "ltr" }, text));
  return cell;
}

function ago(iso: string | null): string {
  if (!iso) return t("time.never");
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 5) return t("time.justNow");
  if (s < 60) return t("time.secondsAgo", { n: s });
  if (s < 3600) return t("time.minutesAgo", { n: Math.floor(s / 60) });
  if (s < 86400) return t("time.hoursAgo", { n: Math.floor(s / 3600) });
  return t("time.daysAgo", { n: Math.floor(s / 86400) });
}

function percent(n: number): string {
  return new Intl.NumberFormat(lang(), { maximumFractionDigits: 0 }).format(n) + "%";
}

/** What claiming a code would enrol (`POST /enrolment/claims/preview`). */
interface ClaimPreview {
  device_id: string;
  platform: string | null;
  key_fingerprint: string;
  status: "new" | "enrolled" | "same_key" | "revoked" | "enrolled_elsewhere";
  enrolled_key_fingerprint: string | null;
  enrolled_since: string | null;
}

/** The tenant's quota and usage (`GET /tenant`, tenant admins only). */
interface TenantPlan {
  quota: {
    limits: { max_devices?: number; api_requests_per_minute?: number; max_content_bytes?: number };
    usage: { devices: number; content_bytes: number } | null;
  };
}

function megabytes(bytes: number): string {
  return new Intl.NumberFormat(lang(), { maximumFractionDigits: 1 }).format(bytes / 1_048_576);
}

/** A key fingerprint, short enough to compare by eye. */
function shortKey(fingerprint: string | null): string {
  return fingerprint ? fingerprint.slice(0, 16).replace(/(.{4})(?!$)/g, "$1 ") : "–";
}

export class DeviceList {
  private claimErrors: FieldError[] = [];
  private claimed: string | null = null;
  /** A claim that would replace an enrolled screen's key, waiting for confirmation. */
  private pendingRekey: { code: string; name: string; preview: ClaimPreview } | null = null;
  private plan: TenantPlan | null = null;
  private devices = new Map<string, Device>();
  private error: string | null = null;
  private live = false;
  /** The screen whose board settings and picture are open. */
  private board: DeviceBoard | null = null;
  private filter: FleetFilter = { ...NO_FILTER };
  /** The tenant's saved fleet queries, and what saving the last one said. */
  private saved: SavedQuery[] = [];
  private savedErrors: FieldError[] = [];
  private selected = new Set<string>();
  /** What the last action on the selection did. */
  private bulk: { text: string; errors: string[]; kind: "ok" | "busy" | "error" } | null = null;
  private bulkCommand: CommandForm = structuredClone(EMPTY_COMMAND);
  private bulkTag = "";
  private bulkGroup = "";
  /** The page's parts: the filter bar stays in place (typing keeps its focus), the rest is
   * drawn again on every change. */
  private top = el("div");
  private filters = el("form", { class: "filters", "data-testid": "fleet-filters", role: "search" });
  private body = el("div");
  private search = el("input", { type: "search", name: "text", "data-testid": "filter-text" });
  private filterRest = el("span", { class: "filter-selects" });
  /** What the filter selects were last made from (see `renderFilters`). */
  private filterKey = "";
  private summary = el("span", { class: "summary", "data-testid": "filter-summary" });
  private savedPick = el("span");
  private savedName = el("input", { name: "query_name", dir: "auto", "data-path": "name", "data-testid": "saved-name" });

  constructor(private root: HTMLElement) {
    const save = el("button", { type: "button", "data-testid": "saved-save" }, t("fleet.savedSave"));
    save.addEventListener("click", () => void this.editSaved("POST", "/api/v1/queries", { name: this.savedName.value.trim(), query: queryOf(this.filter) }));
    const saved = el("span", { class: "saved-queries", "data-testid": "saved-queries" });
    saved.append(this.savedPick, field("fleet.savedName", this.savedName), save);
    this.filters.append(field("fleet.search", this.search), this.filterRest, saved);
    this.root.replaceChildren(this.top, this.filters, this.body);
    this.search.addEventListener("input", () => {
      this.filter.text = this.search.value;
      this.render();
    });
    this.filters.addEventListener("submit", (e) => e.preventDefault());
  }

  async start(): Promise<void> {
    // The auth callback runs on every (re)connect, so a renewed token is always the one sent.
    const socket = io("/live", { transports: ["websocket"], auth: (cb) => cb({ token: token() ?? "" }) });
    socket.on("connect", () => {
      this.live = true;
      // Reload after every (re)connect so events missed while away are not lost.
      void this.reload();
    });
    socket.on("disconnect", () => {
      this.live = false;
      this.render();
    });
    socket.on("device:online", (e: LiveEvent) => this.onEvent(e, "online"));
    socket.on("device:offline", (e: LiveEvent) => this.onEvent(e, "offline"));
    socket.on("device:metrics", (e: LiveEvent) => this.onEvent(e, null));
    setInterval(() => this.render(), 10_000);
    await this.reload();
  }

  private async reload(): Promise<void> {
    try {
      const list = await listDevices();
      this.devices = new Map(list.map((d) => [d.id, d]));
      this.error = null;
    } catch (err) {
      this.error = err instanceof Error ? err.message : String(err);
    }
    await this.loadPlan();
    await this.loadSaved();
    this.renderSaved();
    this.render();
  }

  private async loadSaved(): Promise<void> {
    this.saved = (await getData<SavedQuery[]>("/api/v1/queries?limit=500")) ?? [];
  }

  /** Saves the filters as a named query (the server checks the name), or deletes one. */
  private async editSaved(method: "POST" | "DELETE", path: string, body?: unknown): Promise<void> {
    this.savedErrors = await send(method, path, body);
    if (!this.savedErrors.length && method === "POST") this.savedName.value = "";
    await this.loadSaved();
    this.renderSaved();
    this.render();
  }

  /** Saved queries: apply one (its filters), delete it, or save the filters shown now. Drawn
   * again only when the list changes, so a name being typed survives live updates. */
  private renderSaved(): void {
    const pick = el("select", { name: "saved", "data-testid": "saved-query" });
    pick.append(el("option", { value: "" }, t("fleet.savedPick")));
    for (const q of this.saved) pick.append(el("option", { value: q.id }, q.name));
    pick.addEventListener("change", () => {
      const q = this.saved.find((x) => x.id === pick.value);
      if (!q) return;
      this.filter = filterOf(q.query);
      this.search.value = this.filter.text;
      this.render();
    });
    const remove = el("button", { type: "button", "data-testid": "saved-delete" }, t("fleet.savedDelete"));
    remove.addEventListener("click", () => {
      if (pick.value) void this.editSaved("DELETE", `/api/v1/queries/${pick.value}`);
    });
    this.savedPick.replaceChildren(field("fleet.saved", pick), remove, ...errorList(this.savedErrors, "saved-errors"));
  }

  /** Only tenant admins see the plan; for others the request is refused and nothing shows. */
  private async loadPlan(): Promise<void> {
    const resp = await authFetch("/api/v1/tenant");
    this.plan = resp.ok ? ((await resp.json()).data as TenantPlan) : null;
  }

  /** The tenant's limits and what is used of them. */
  private planLine(): HTMLElement | null {
    if (!this.plan) return null;
    const { limits, usage } = this.plan.quota;
    const parts: string[] = [];
    const devices = usage?.devices ?? this.devices.size;
    parts.push(
      limits.max_devices === undefined
        ? t("plan.screensUnlimited", { used: devices })
        : t("plan.screens", { used: devices, max: limits.max_devices }),
    );
    if (usage && limits.max_content_bytes !== undefined) {
      parts.push(t("plan.content", { used: megabytes(usage.content_bytes), max: megabytes(limits.max_content_bytes) }));
    }
    if (limits.api_requests_per_minute !== undefined) {
      parts.push(t("plan.api", { max: limits.api_requests_per_minute }));
    }
    const full = limits.max_devices !== undefined && devices >= limits.max_devices;
    const line = el("p", { class: full ? "plan full" : "plan", "data-testid": "plan" }, parts.join(" · "));
    if (full) line.append(el("span", { class: "warning" }, " " + t("plan.full")));
    return line;
  }

  private async onEvent(e: LiveEvent, status: Device["status"] | null): Promise<void> {
    let device = this.devices.get(e.device_id);
    if (!device) {
      try {
        device = await getDevice(e.device_id);
      } catch {
        return;
      }
    }
    if (status) device.status = status;
    if (e.metrics) device.metrics = e.metrics;
    if (e.agent_version) device.agent_version = e.agent_version;
    if (status !== "offline") device.last_seen = e.at;
    this.devices.set(device.id, device);
    this.render();
  }

  render(): void {
    const devices = [...this.devices.values()].sort((a, b) => a.name.localeCompare(b.name, lang()) || a.id.localeCompare(b.id));
    const shown = filterDevices(devices, this.filter);
    const online = devices.filter((d) => d.status === "online").length;
    const header = el("div", { class: "list-header" });
    header.append(
      el("h2", {}, t("devices.heading")),
      el("span", { class: "summary", "data-testid": "summary" }, t("devices.summary", { online, total: devices.length })),
      el("span", { class: `live ${this.live ? "on" : "off"}`, "data-testid": "live" }, this.live ? t("live.connected") : t("live.disconnected")),
    );
    const plan = this.planLine();
    this.top.replaceChildren(header, ...(plan ? [plan] : []), this.claimForm());
    this.renderFilters(devices, shown.length);
    const nodes: HTMLElement[] = [];
    if (this.error) nodes.push(el("p", { class: "error", role: "alert" }, t("devices.loadError", { error: this.error })));
    if (devices.length === 0 && !this.error) nodes.push(el("p", { class: "empty" }, t("devices.empty")));
    if (this.selected.size > 0 || this.bulk) nodes.push(this.selectionBar());
    if (devices.length > 0) nodes.push(this.table(shown));
    if (this.board) nodes.push(this.board.root);
    this.body.replaceChildren(...nodes);
  }

  /** Search and filter selects (their options are the tags, groups and versions present). */
  private renderFilters(devices: Device[], shown: number): void {
    const { tags, groups, versions } = facets(devices);
    // A value the filter holds (from a saved query) stays choosable when no screen has it.
    const keep = (xs: string[], current: string) => (current && !xs.includes(current) ? [...xs, current] : xs);
    const lists = { tag: keep(tags, this.filter.tag), group: keep(groups, this.filter.group), version: keep(versions, this.filter.version) };
    // The selects are made again only when their choices change: a live update must not close
    // a list the operator has open, nor swallow a choice being made.
    const key = JSON.stringify([lang(), lists]);
    if (key !== this.filterKey) {
      this.filterKey = key;
      const choice = (name: keyof FleetFilter, label: MessageKey, options: [string, string][]) => {
        const s = el("select", { name, "data-testid": `filter-${name}` });
        s.append(el("option", { value: "" }, t("fleet.any")));
        for (const [value, text] of options) s.append(el("option", { value }, text));
        s.addEventListener("change", () => {
          (this.filter as Record<keyof FleetFilter, string>)[name] = s.value;
          this.render();
        });
        return field(label, s);
      };
      const same = (xs: string[]): [string, string][] => xs.map((x) => [x, x]);
      this.filterRest.replaceChildren(
        choice("status", "fleet.status", [
          ["online", t("status.online")],
          ["offline", t("status.offline")],
        ]),
        choice("tag", "fleet.tag", same(lists.tag)),
        choice("group", "fleet.group", same(lists.group)),
        choice("version", "fleet.version", same(lists.version)),
        this.summary,
      );
    }
    for (const s of this.filterRest.querySelectorAll("select")) s.value = this.filter[s.name as keyof FleetFilter];
    this.summary.textContent = t("fleet.shown", { shown, total: devices.length });
  }

  /** What can be done to the selected screens: a command for all of them (one job), and tag
   * and group edits (one change per screen, with each failure named). */
  private selectionBar(): HTMLElement {
    const bar = el("section", { class: "selection", "data-testid": "selection-bar", "aria-label": t("fleet.selected", { n: this.selected.size }) });
    const clear = el("button", { type: "button", "data-testid": "selection-clear" }, t("fleet.clear"));
    clear.addEventListener("click", () => {
      this.selected.clear();
      this.bulk = null;
      this.render();
    });
    bar.append(el("strong", { "data-testid": "selection-count" }, t("fleet.selected", { n: this.selected.size })), clear);

    const send = el("form", { class: "bulk-command" });
    send.append(...commandInputs(this.bulkCommand, () => this.render(), "bulk"));
    send.append(el("button", { type: "submit", "data-testid": "bulk-send" }, t("fleet.send")));
    send.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.sendToSelection();
    });

    // What is typed lives in the page's state: live updates redraw this bar.
    const tagInput = el("input", { name: "tag", "data-testid": "bulk-tag", dir: "auto", value: this.bulkTag });
    tagInput.addEventListener("input", () => (this.bulkTag = tagInput.value));
    const addTag = el("button", { type: "button", "data-testid": "bulk-add-tag" }, t("fleet.addTag"));
    const removeTag = el("button", { type: "button", "data-testid": "bulk-remove-tag" }, t("fleet.removeTag"));
    addTag.addEventListener("click", () => void this.editSelection((d) => {
      const tags = editTags(d.tags, tagInput.value, true);
      return tags && { tags };
    }));
    removeTag.addEventListener("click", () => void this.editSelection((d) => {
      const tags = editTags(d.tags, tagInput.value, false);
      return tags && { tags };
    }));
    const groupInput = el("input", { name: "group", "data-testid": "bulk-group", dir: "auto", value: this.bulkGroup });
    groupInput.addEventListener("input", () => (this.bulkGroup = groupInput.value));
    const setGroup = el("button", { type: "button", "data-testid": "bulk-set-group" }, t("fleet.setGroup"));
    setGroup.addEventListener("click", () => void this.editSelection((d) => {
      const group = groupInput.value.trim() || null;
      return d.group === group ? null : { group };
    }));
    const edits = el("div", { class: "bulk-edits" });
    edits.append(field("fleet.tagInput", tagInput), addTag, removeTag, field("fleet.groupInput", groupInput), setGroup);
    bar.append(send, edits);
    if (this.bulk) {
      const line = el("p", { class: this.bulk.kind, role: this.bulk.kind === "error" ? "alert" : "status", "data-testid": "bulk-outcome" }, this.bulk.text);
      if (this.bulk.kind === "ok" && this.bulk.text === t("fleet.sent", { n: this.selected.size })) {
        line.append(" ", el("a", { href: "#/jobs" }, t("fleet.follow")));
      }
      bar.append(line);
      if (this.bulk.errors.length) {
        const list = el("ul", { class: "error", role: "alert", "data-testid": "bulk-errors" });
        for (const e of this.bulk.errors) list.append(el("li", {}, e));
        bar.append(list);
      }
    }
    return bar;
  }

  /** One job for every selected screen. */
  private async sendToSelection(): Promise<void> {
    const command = commandOf(this.bulkCommand);
    const devices = [...this.selected].sort();
    this.bulk = { text: t("screen.sending"), errors: [], kind: "busy" };
    this.render();
    const resp = await authFetch("/api/v1/jobs", {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": crypto.randomUUID() },
      body: JSON.stringify({ command, target: { devices } }),
    });
    this.bulk = resp.ok
      ? { text: t("fleet.sent", { n: devices.length }), errors: [], kind: "ok" }
      : { text: t("fleet.notSent"), errors: (await errorsOf(resp)).map(errorText), kind: "error" };
    this.render();
  }

  /** Applies `change` (a PATCH body, or null for "nothing to do") to each selected screen in
   * turn, showing progress and naming each screen that refused. */
  private async editSelection(change: (d: Device) => Record<string, unknown> | null): Promise<void> {
    const targets = [...this.selected].map((id) => this.devices.get(id)).filter((d): d is Device => Boolean(d));
    const errors: string[] = [];
    let done = 0;
    for (const d of targets) {
      const body = change(d);
      if (body) {
        const resp = await authFetch(`/api/v1/devices/${encodeURIComponent(d.id)}`, {
          method: "PATCH",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        });
        if (resp.ok) {
          this.devices.set(d.id, (await resp.json()).data as Device);
        } else {
          const why = (await errorsOf(resp)).map(errorText).join("; ");
          errors.push(t("fleet.failed", { id: d.id, error: why }));
        }
      }
      done += 1;
      this.bulk = { text: t("fleet.updated", { done, total: targets.length }), errors, kind: errors.length ? "error" : "busy" };
      this.render();
    }
    this.bulk = { text: t("fleet.updated", { done, total: targets.length }), errors, kind: errors.length ? "error" : "ok" };
    this.render();
  }

  /** Adds a screen by the claim code it shows while it waits for enrolment. */
  private claimForm(): HTMLElement {
    const form = el("form", { class: "claim", "data-testid": "claim-form" });
    const code = el("input", { name: "claim_code", dir: "ltr", autocomplete: "off", placeholder: "XXXX-XXXX" });
    const name = el("input", { name: "name" });
    form.append(
      field("claim.code", code),
      field("claim.name", name),
      el("button", { type: "submit" }, t("claim.submit")),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      await this.claim(code.value.trim(), name.value.trim());
    });
    const section = el("section", { class: "claim-section" });
    section.append(el("h3", {}, t("claim.heading")), form, ...errorList(this.claimErrors, "claim-errors"));
    if (this.pendingRekey) section.append(this.rekeyConfirmation(this.pendingRekey));
    if (this.claimed) section.append(el("p", { class: "ok", role: "status", "data-testid": "claimed" }, t("claim.done", { name: this.claimed })));
    return section;
  }

  /** Looks at what a code would enrol first: a screen already enrolled here with another key is
   * only re-keyed after the user confirms; one enrolled elsewhere is refused with the reason. */
  private async claim(code: string, name: string): Promise<void> {
    this.claimed = null;
    this.pendingRekey = null;
    const resp = await authFetch("/api/v1/enrolment/claims/preview", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ claim_code: code }),
    });
    if (!resp.ok) {
      this.claimErrors = resp.status === 404 ? [{ path: "claim_code", message: t("claim.unknown") }] : await errorsOf(resp);
      this.render();
      return;
    }
    const preview = (await resp.json()).data as ClaimPreview;
    if (preview.status === "enrolled_elsewhere") {
      this.claimErrors = [{ path: "claim_code", message: t("claim.elsewhere", { id: preview.device_id }) }];
    } else if (preview.status === "enrolled") {
      this.claimErrors = [];
      this.pendingRekey = { code, name, preview };
    } else {
      await this.submitClaim(code, name, false);
      return;
    }
    this.render();
  }

  private async submitClaim(code: string, name: string, rekey: boolean): Promise<void> {
    const body: Record<string, string | boolean> = { claim_code: code };
    if (name) body.name = name;
    if (rekey) body.rekey = true;
    const resp = await authFetch("/api/v1/enrolment/claims", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    this.pendingRekey = null;
    if (resp.ok) {
      const device = (await resp.json()).data as Device;
      this.claimErrors = [];
      this.claimed = device.name || device.id;
      this.devices.set(device.id, device);
      await this.loadPlan();
    } else {
      this.claimed = null;
      this.claimErrors = resp.status === 404 ? [{ path: "claim_code", message: t("claim.unknown") }] : await errorsOf(resp);
    }
    this.render();
  }

  /** Explains what re-keying an enrolled screen does and asks before doing it. */
  private rekeyConfirmation(pending: { code: string; name: string; preview: ClaimPreview }): HTMLElement {
    const { preview } = pending;
    const box = el("div", { class: "confirm", role: "alertdialog", "data-testid": "rekey-confirm" });
    const since = preview.enrolled_since ? new Date(preview.enrolled_since).toLocaleDateString(lang()) : "–";
    box.append(
      el("p", {}, t("claim.enrolled", { id: preview.device_id, since })),
      el("p", {}, t("claim.rekeyWarning")),
      el("p", { class: "keys" }, t("claim.keys", { old: shortKey(preview.enrolled_key_fingerprint), new: shortKey(preview.key_fingerprint) })),
    );
    const replace = el("button", { type: "button", class: "danger", "data-testid": "rekey-yes" }, t("claim.rekey"));
    replace.addEventListener("click", () => void this.submitClaim(pending.code, pending.name, true));
    const cancel = el("button", { type: "button", "data-testid": "rekey-no" }, t("claim.cancel"));
    cancel.addEventListener("click", () => {
      this.pendingRekey = null;
      this.render();
    });
    box.append(replace, cancel);
    return box;
  }

  /** Opens the screen's board settings and picture under the table. */
  private boardCell(d: Device): HTMLTableCellElement {
    const cell = el("td");
    const open = el("button", { type: "button", class: "link", "data-testid": "open-board" }, t("devices.openBoard"));
    open.addEventListener("click", () => {
      this.board = new DeviceBoard(d.id, d.name, d.board ?? DEFAULT_BOARD, (board) => {
        const known = this.devices.get(d.id);
        if (known) known.board = board;
      });
      this.render();
      void this.board.start();
    });
    cell.append(open);
    return cell;
  }

  private table(devices: Device[]): HTMLTableElement {
    const table = el("table", { class: "devices" });
    const head = el("tr");
    const all = el("input", { type: "checkbox", "data-testid": "select-all", "aria-label": t("fleet.selectAll") });
    all.checked = allSelected(devices, this.selected);
    all.addEventListener("change", () => {
      for (const d of devices) {
        if (all.checked) this.selected.add(d.id);
        else this.selected.delete(d.id);
      }
      this.render();
    });
    const allCell = el("th", { scope: "col" });
    allCell.append(all);
    head.append(allCell);
    for (const key of ["devices.col.name", "devices.col.status", "devices.col.lastSeen", "devices.col.version", "devices.col.tags", "devices.col.ip", "devices.col.cpu", "devices.col.memory", "devices.col.board"] as const) {
      head.append(el("th", { scope: "col" }, t(key)));
    }
    table.append(el("thead"), el("tbody"));
    table.tHead?.append(head);
    for (const d of devices) {
      const row = el("tr", { "data-device-id": d.id, "data-status": d.status });
      const name = el("td", { class: "name" });
      name.append(el("span", {}, d.name), el("code", { dir: "ltr" }, d.id));
      const status = el("td");
      status.append(el("span", { class: `badge ${d.status}` }, t(d.status === "online" ? "status.online" : "status.offline")));
      const m = d.metrics;
      const pick = el("input", { type: "checkbox", "data-testid": "select-device", "aria-label": t("fleet.select", { name: d.name || d.id }) });
      pick.checked = this.selected.has(d.id);
      pick.addEventListener("change", () => {
        if (pick.checked) this.selected.add(d.id);
        else this.selected.delete(d.id);
        this.render();
      });
      const pickCell = el("td");
      pickCell.append(pick);
      const tags = el("td", { class: "tags" });
      for (const tag of d.tags) tags.append(el("span", { class: "tag", dir: "auto" }, tag));
      if (d.group) tags.append(el("span", { class: "group", dir: "auto" }, d.group));
      row.append(
        pickCell,
        name,
        status,
        el("td", {}, ago(d.last_seen)),
        ltrCell(d.agent_version ?? "—"),
        tags,
        ltrCell(d.ip ?? "—"),
        el("td", {}, m ? percent(m.cpu_percent) : "—"),
        el("td", {}, m && m.mem_total_bytes > 0 ? percent((100 * m.mem_used_bytes) / m.mem_total_bytes) : "—"),
        this.boardCell(d),
      );
      table.tBodies[0]?.append(row);
    }
    return table;
  }
}
