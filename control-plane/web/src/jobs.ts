// Jobs page: send one command to many screens (all, by tag, by group or by id) with roll-out
// settings (pace, phases that open by themselves, a maintenance window), and follow every job
// live: a progress bar per state, the open phase, the latest screen's outcome, pause, resume,
// cancel, and the failed executions with the screens' reasons. Kept current by `job:progress`
// and `job:execution` events.
import { io } from "socket.io-client";
import { el, errorList, errorsOf, field, markInvalid, select, type FieldError } from "./dom";
import { getData } from "./documents";
import { lang, t, type MessageKey } from "./i18n";
import { powerOf, powerTimeRow, type PowerTime } from "./board";
import {
  actionsFor,
  COMMANDS,
  done,
  EMPTY_FORM,
  jobBody,
  phaseOf,
  segments,
  SETTINGS,
  type Action,
  type CommandForm,
  type CommandType,
  type Counts,
  type JobForm,
  type JobState,
  type PhaseStatus,
  type TargetKind,
} from "./jobs-model";
import { powerTimeToForm } from "./power-model";
import { authFetch, token } from "./session";

interface Job {
  id: string;
  state: JobState;
  reason: string | null;
  command: { type: CommandType; percent?: number; on?: boolean; package?: string };
  counts: Counts;
  total: number;
  created_by: string;
  created_at: string;
  updated_at: string;
  emergency: boolean;
  phase?: PhaseStatus;
}

interface Execution {
  job_id?: string;
  device_id: string;
  state: string;
  detail: string | null;
}

interface Progress {
  id: string;
  state: JobState;
  reason: string | null;
  counts: Counts;
  phase?: PhaseStatus;
  updated_at: string;
}

/** A release of the registry, as `GET /api/v1/releases` lists it. */
interface Release {
  id: string;
  version: string;
  channel: string;
  status: string;
  expires: string;
}

/** The releases an update may name (complete and unexpired), loaded once per page load. */
let releases: Release[] | null = null;

async function loadReleases(): Promise<Release[]> {
  const all = (await getData<Release[]>("/api/v1/releases")) ?? [];
  releases = all.filter((r) => r.status === "ready" && new Date(r.expires) > new Date());
  return releases;
}

/** A command in the page's words: "Brightness 40%", "Display on or off (off)". */
export function commandLabel(command: { type: string; percent?: number; on?: boolean; package?: string }): string {
  return (
    t(`jobs.command.${command.type}` as MessageKey) +
    (command.percent !== undefined ? ` ${command.percent}%` : "") +
    (command.on !== undefined ? ` (${t(command.on ? "jobs.on" : "jobs.off")})` : "") +
    (command.package !== undefined ? ` ${command.package}` : "")
  );
}

/** The command picker and the inputs of the chosen command's parameters, bound to `form`;
 * `rerender` runs when the command changes (other inputs only update `form`). Test ids start
 * with `prefix` (`job-command`, `bulk-percent`, …); error paths are the server's. */
export function commandInputs(form: CommandForm, rerender: () => void, prefix: string): HTMLElement[] {
  const commandSelect = select(
    "command",
    COMMANDS.map((c) => [c, t(`jobs.command.${c}` as MessageKey)]),
    form.command,
    { "data-path": "command", "data-testid": `${prefix}-command` },
  );
  commandSelect.addEventListener("change", () => {
    form.command = commandSelect.value as CommandType;
    rerender();
  });
  const out: HTMLElement[] = [field("jobs.command", commandSelect)];
  switch (form.command) {
    case "brightness":
    case "volume": {
      const percent = el("input", { type: "number", min: "0", max: "100", value: String(form.percent), "data-path": "command.percent", "data-testid": `${prefix}-percent` });
      percent.addEventListener("input", () => (form.percent = Number(percent.value)));
      out.push(field("jobs.percent", percent));
      break;
    }
    case "display_power": {
      const on = select("on", [["on", t("jobs.on")], ["off", t("jobs.off")]], form.on ? "on" : "off", { "data-path": "command.on", "data-testid": `${prefix}-on` });
      on.addEventListener("change", () => (form.on = on.value === "on"));
      out.push(field("jobs.power", on));
      break;
    }
    case "power_schedule": {
      const box = el("fieldset", { class: "power", "data-testid": `${prefix}-schedule` });
      const enabled = el("input", { type: "checkbox", name: "power_enabled", value: "1", "data-testid": `${prefix}-schedule-enabled` });
      enabled.checked = form.schedule !== null;
      const toggle = el("label", { class: "check" });
      toggle.append(enabled, " ", t("jobs.schedule.enabled"));
      box.append(
        el("legend", {}, t("jobs.command.power_schedule")),
        el("p", { class: "hint" }, t("jobs.schedule.hint")),
        toggle,
        powerTimeRow("off", powerTimeToForm(form.schedule?.off as PowerTime | undefined, "23:00"), "command.schedule"),
        powerTimeRow("on", powerTimeToForm(form.schedule?.on as PowerTime | undefined, "06:00"), "command.schedule"),
      );
      const read = () => {
        const owner = box.closest("form");
        if (owner) form.schedule = powerOf(new FormData(owner)) ?? null;
      };
      box.addEventListener("change", read);
      box.addEventListener("input", read);
      out.push(box);
      break;
    }
    case "install_package": {
      const name = el("input", { type: "text", dir: "ltr", value: form.package, "data-path": "command.package", "data-testid": `${prefix}-package` });
      name.addEventListener("input", () => (form.package = name.value));
      out.push(field("jobs.package", name), el("p", { class: "hint" }, t("jobs.packageHint")));
      break;
    }
    case "update": {
      if (releases === null) {
        void loadReleases().then(rerender);
        out.push(el("p", { class: "hint" }, t("jobs.releasesLoading")));
        break;
      }
      if (!form.release && releases.length > 0) form.release = releases[0].id;
      const pick = select(
        "release",
        releases.map((r) => [r.id, `${r.version} (${r.channel})`]),
        form.release,
        { dir: "ltr", "data-path": "command.release", "data-testid": `${prefix}-release` },
      );
      pick.addEventListener("change", () => (form.release = pick.value));
      out.push(field("jobs.release", pick), el("p", { class: "hint" }, t(releases.length > 0 ? "jobs.releaseHint" : "jobs.noReleases")));
      break;
    }
    case "set_settings": {
      const box = el("fieldset", { class: "settings", "data-testid": `${prefix}-settings` });
      box.append(el("legend", {}, t("jobs.command.set_settings")), el("p", { class: "hint" }, t("jobs.settingsHint")));
      for (const name of SETTINGS) {
        const input = el("input", { type: "number", min: "0", dir: "ltr", value: form.settings[name], "data-path": `command.settings.${name}`, "data-testid": `${prefix}-setting-${name}` });
        input.addEventListener("input", () => (form.settings[name] = input.value));
        box.append(field(`jobs.setting.${name}` as MessageKey, input));
      }
      out.push(box);
      break;
    }
    default:
      break;
  }
  return out;
}

export class JobsPage {
  private jobs: Job[] = [];
  private form: JobForm = { ...EMPTY_FORM };
  private errors: FieldError[] = [];
  private sending = false;
  /** Failed executions of the jobs whose list is open. */
  private failures = new Map<string, Execution[]>();
  /** The latest execution change of each job seen live. */
  private latest = new Map<string, Execution>();
  private readonly list = el("section", { class: "jobs", "data-testid": "jobs" });
  /** The tenant's saved fleet queries, for the target. */
  private queries: { id: string; name: string }[] = [];

  constructor(private root: HTMLElement) {}

  async start(): Promise<void> {
    const socket = io("/live", { transports: ["websocket"], auth: (cb) => cb({ token: token() ?? "" }) });
    socket.on("connect", () => void this.reload());
    socket.on("job:progress", (p: Progress) => this.onProgress(p));
    socket.on("job:execution", (e: Execution) => this.onExecution(e));
    this.render();
    await this.reload();
  }

  private async reload(): Promise<void> {
    this.queries = (await getData<{ id: string; name: string }[]>("/api/v1/queries?limit=500")) ?? [];
    const page = await getData<{ items: Job[] }>("/api/v1/jobs?limit=50");
    this.jobs = page?.items ?? [];
    for (const id of this.failures.keys()) await this.loadFailures(id);
    this.renderList();
  }

  private onProgress(p: Progress): void {
    const job = this.jobs.find((j) => j.id === p.id);
    if (!job) {
      void this.reload();
      return;
    }
    // A progress read before an operator's pause may arrive after the pause's answer: the
    // later change wins.
    if (Date.parse(p.updated_at) < Date.parse(job.updated_at)) return;
    job.state = p.state;
    job.reason = p.reason;
    job.counts = p.counts;
    job.phase = p.phase;
    job.updated_at = p.updated_at;
    if (this.failures.has(p.id)) void this.loadFailures(p.id).then(() => this.renderList());
    else this.renderList();
  }

  private onExecution(e: Execution): void {
    if (!e.job_id || !this.jobs.some((j) => j.id === e.job_id)) return;
    this.latest.set(e.job_id, e);
    this.renderList();
  }

  private async loadFailures(id: string): Promise<void> {
    const failed = await getData<{ items: Execution[] }>(`/api/v1/jobs/${id}/executions?state=failed&limit=200`);
    const timedOut = await getData<{ items: Execution[] }>(`/api/v1/jobs/${id}/executions?state=timed_out&limit=200`);
    this.failures.set(id, [...(failed?.items ?? []), ...(timedOut?.items ?? [])]);
  }

  private async submit(): Promise<void> {
    this.sending = true;
    this.render();
    const resp = await authFetch("/api/v1/jobs", {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": crypto.randomUUID() },
      body: JSON.stringify(jobBody(this.form)),
    });
    this.sending = false;
    if (resp.ok) {
      this.errors = [];
      const job = (await resp.json()).data as Job;
      this.jobs = [job, ...this.jobs.filter((j) => j.id !== job.id)];
    } else {
      this.errors = await errorsOf(resp);
    }
    this.render();
  }

  private async act(job: Job, action: Action): Promise<void> {
    const resp = await authFetch(`/api/v1/jobs/${job.id}/${action}`, { method: "POST" });
    if (resp.ok) Object.assign(job, (await resp.json()).data as Job);
    else await this.reload();
    this.renderList();
  }

  render(): void {
    // The server checks every field and names the wrong ones; the browser does not block first.
    const form = el("form", { class: "job-form", "data-testid": "job-form", novalidate: "" });
    form.append(...commandInputs(this.form, () => this.render(), "job"));
    const target = select(
      "target",
      (["all", "tags", "group", "devices", "query"] as TargetKind[]).map((k) => [k, t(`jobs.target.${k}` as MessageKey)]),
      this.form.target,
      { "data-path": "target", "data-testid": "job-target" },
    );
    target.addEventListener("change", () => {
      this.form.target = target.value as TargetKind;
      this.render();
    });
    form.append(field("jobs.target", target));
    if (this.form.target === "query") {
      // The tenant's saved queries (made on the screens page), by name.
      const options: [string, string][] = this.queries.map((q) => [q.id, q.name]);
      const pick = select("query", [["", t("fleet.savedPick")], ...options], this.form.targetText, { "data-path": "target.query", "data-testid": "job-target-query" });
      pick.addEventListener("change", () => (this.form.targetText = pick.value));
      form.append(field("jobs.targetText.query", pick));
    } else if (this.form.target !== "all") {
      const text = el("input", { type: "text", value: this.form.targetText, "data-path": `target.${this.form.target}`, "data-testid": "job-target-text", dir: "ltr" });
      text.addEventListener("input", () => (this.form.targetText = text.value));
      form.append(field(`jobs.targetText.${this.form.target}` as MessageKey, text));
    }
    const numberBox = (
      key: "concurrency" | "ratePerMinute" | "retries" | "abortPercent" | "abortMin" | "targetPercent" | "soakMinutes" | "pausePercent",
      label: MessageKey,
      path: string,
    ) => {
      const input = el("input", { type: "number", min: "0", value: this.form[key], "data-path": path, "data-testid": `job-${path.replace(/[._]/g, "-")}` });
      input.addEventListener("input", () => (this.form[key] = input.value));
      return field(label, input);
    };
    const rollout = el("fieldset", { class: "rollout" });
    rollout.append(
      el("legend", {}, t("jobs.rollout")),
      el("p", { class: "hint" }, t("jobs.rolloutHint")),
      numberBox("concurrency", "jobs.concurrency", "concurrency"),
      numberBox("ratePerMinute", "jobs.rate", "rate_per_minute"),
      numberBox("retries", "jobs.retries", "retries"),
      numberBox("abortPercent", "jobs.abortPercent", "abort.failure_percent"),
      numberBox("abortMin", "jobs.abortMin", "abort.min_executions"),
      numberBox("targetPercent", "jobs.targetPercent", "target.percent"),
    );
    // Phases that open by themselves, and a maintenance window at each screen's synagogue.
    const staged = el("fieldset", { class: "rollout" });
    const phases = el("input", { type: "text", dir: "ltr", value: this.form.phases, placeholder: "1, 10%, 50%", "data-path": "rollout.phases", "data-testid": "job-phases" });
    phases.addEventListener("input", () => (this.form.phases = phases.value));
    const time = (key: "windowStart" | "windowEnd", label: MessageKey, testid: string) => {
      const input = el("input", { type: "time", value: this.form[key], "data-path": "windows[0]", "data-testid": testid });
      input.addEventListener("input", () => (this.form[key] = input.value));
      return field(label, input);
    };
    const days = el("div", { class: "days", "data-path": "windows[0].days" });
    for (let d = 0; d < 7; d++) {
      const box = el("input", { type: "checkbox", value: String(d), "data-testid": `job-window-day-${d}` });
      box.checked = this.form.windowDays.includes(d);
      box.addEventListener("change", () => {
        this.form.windowDays = box.checked ? [...this.form.windowDays, d] : this.form.windowDays.filter((x) => x !== d);
      });
      const label = el("label", { class: "check" });
      label.append(box, " ", t(`jobs.day.${d}` as MessageKey));
      days.append(label);
    }
    staged.append(
      el("legend", {}, t("jobs.staged")),
      el("p", { class: "hint" }, t("jobs.stagedHint")),
      field("jobs.phases", phases),
      numberBox("soakMinutes", "jobs.soak", "rollout.soak_s"),
      numberBox("pausePercent", "jobs.pausePercent", "rollout.pause_failure_percent"),
      time("windowStart", "jobs.windowStart", "job-window-start"),
      time("windowEnd", "jobs.windowEnd", "job-window-end"),
      field("jobs.windowDays", days),
    );
    const send = el("button", { type: "submit", "data-testid": "job-send" }, t("jobs.send"));
    send.disabled = this.sending;
    form.append(rollout, staged, send, ...errorList(this.errors, "job-errors"));
    markInvalid(form, this.errors);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.submit();
    });
    this.root.replaceChildren(el("h2", {}, t("jobs.title")), el("p", { class: "hint" }, t("jobs.hint")), form, this.list);
    this.renderList();
  }

  private renderList(): void {
    if (!this.jobs.length) {
      this.list.replaceChildren(el("p", { class: "empty" }, t("jobs.none")));
      return;
    }
    this.list.replaceChildren(...this.jobs.map((j) => this.jobCard(j)));
  }

  private jobCard(job: Job): HTMLElement {
    const card = el("article", { class: `job ${job.state}`, "data-testid": "job", "data-job-id": job.id, "data-state": job.state });
    const when = new Date(job.created_at).toLocaleString(lang());
    const what = commandLabel(job.command);
    const head = el("header");
    head.append(
      el("strong", {}, what),
      el("span", { class: "state", "data-testid": "job-state" }, t(`jobs.state.${job.state}` as MessageKey)),
      el("span", { class: "hint" }, t("jobs.by", { who: job.created_by, when })),
    );
    const bar = el("div", { class: "progress", role: "img", "data-testid": "job-progress", "aria-label": t("jobs.progress", { done: done(job.counts), total: job.total }) });
    for (const s of segments(job.counts)) {
      const seg = el("span", { class: `seg ${s.state}`, "data-state": s.state, title: `${t(`exec.${s.state}` as MessageKey)}: ${s.count}` });
      seg.style.width = `${s.percent}%`;
      bar.append(seg);
    }
    const counts = el("p", { class: "counts", "data-testid": "job-counts" });
    counts.textContent = segments(job.counts)
      .map((s) => `${t(`exec.${s.state}` as MessageKey)} ${s.count}`)
      .join(" · ");
    card.append(head, bar, counts);
    if (job.phase) {
      const p = phaseOf(job.phase);
      const text = p.accepted ? t("jobs.phaseAll", { of: p.of }) : t("jobs.phase", { n: p.n, of: p.of, from: p.from, to: p.to });
      card.append(el("p", { class: "phase", "data-testid": "job-phase", "data-phase": String(job.phase.index) }, text));
    }
    const latest = this.latest.get(job.id);
    if (latest) {
      const line = el("p", { class: "hint", "data-testid": "job-latest" });
      line.append(t("jobs.latest"), " ", el("bdi", { dir: "ltr" }, latest.device_id), ": ", t(`exec.${latest.state}` as MessageKey));
      card.append(line);
    }
    // Why it stopped, in the server's words (English, so isolated from a Hebrew page).
    if (job.reason && job.state !== "completed") {
      const why = el("p", { class: "hint", "data-testid": "job-reason" });
      why.append(el("bdi", { dir: "ltr" }, job.reason));
      card.append(why);
    }
    const buttons = el("div", { class: "actions" });
    for (const action of actionsFor(job.state)) {
      const b = el("button", { type: "button", "data-testid": `job-${action}` }, t(`jobs.${action}` as MessageKey));
      b.addEventListener("click", () => void this.act(job, action));
      buttons.append(b);
    }
    const failedCount = job.counts.failed + job.counts.timed_out;
    if (failedCount > 0) {
      const open = this.failures.has(job.id);
      const b = el("button", { type: "button", "data-testid": "job-failures-toggle" }, t(open ? "jobs.hideFailures" : "jobs.showFailures", { n: failedCount }));
      b.addEventListener("click", () => {
        if (open) {
          this.failures.delete(job.id);
          this.renderList();
        } else void this.loadFailures(job.id).then(() => this.renderList());
      });
      buttons.append(b);
    }
    card.append(buttons);
    const failures = this.failures.get(job.id);
    if (failures) {
      const list = el("ul", { class: "failures", "data-testid": "job-failures" });
      for (const e of failures) {
        const item = el("li", {});
        // Screen ids and the screens' own words are left to right inside a Hebrew page.
        item.append(el("bdi", { dir: "ltr" }, e.device_id), ": ", el("bdi", { dir: "ltr" }, e.detail ?? t(`exec.${e.state}` as MessageKey)));
        list.append(item);
      }
      card.append(list);
    }
    return card;
  }
}
