// Jobs page: send one command to many screens (all, by tag, by group or by id) with roll-out
// settings, and follow every job live: a progress bar per state, pause, resume, cancel, and
// the failed executions with the screens' reasons. Kept current by `job:progress` events.
import { io } from "socket.io-client";
import { el, errorList, errorsOf, field, markInvalid, select, type FieldError } from "./dom";
import { getData } from "./documents";
import { lang, t, type MessageKey } from "./i18n";
import {
  actionsFor,
  COMMANDS,
  done,
  jobBody,
  segments,
  type Action,
  type CommandType,
  type Counts,
  type JobForm,
  type JobState,
  type TargetKind,
} from "./jobs-model";
import { authFetch, token } from "./session";

interface Job {
  id: string;
  state: JobState;
  reason: string | null;
  command: { type: CommandType; percent?: number; on?: boolean };
  counts: Counts;
  total: number;
  created_by: string;
  created_at: string;
  emergency: boolean;
}

interface Execution {
  device_id: string;
  state: string;
  detail: string | null;
}

interface Progress {
  id: string;
  state: JobState;
  counts: Counts;
}

const EMPTY_FORM: JobForm = {
  command: "ping",
  percent: 50,
  on: true,
  target: "all",
  targetText: "",
  concurrency: "",
  ratePerMinute: "",
  retries: "",
  abortPercent: "",
  abortMin: "",
};

/** A command in the page's words: "Brightness 40%", "Display on or off (off)". */
export function commandLabel(command: { type: string; percent?: number; on?: boolean }): string {
  return (
    t(`jobs.command.${command.type}` as MessageKey) +
    (command.percent !== undefined ? ` ${command.percent}%` : "") +
    (command.on !== undefined ? ` (${t(command.on ? "jobs.on" : "jobs.off")})` : "")
  );
}

export class JobsPage {
  private jobs: Job[] = [];
  private form: JobForm = { ...EMPTY_FORM };
  private errors: FieldError[] = [];
  private sending = false;
  /** Failed executions of the jobs whose list is open. */
  private failures = new Map<string, Execution[]>();
  private readonly list = el("section", { class: "jobs", "data-testid": "jobs" });

  constructor(private root: HTMLElement) {}

  async start(): Promise<void> {
    const socket = io("/live", { transports: ["websocket"], auth: (cb) => cb({ token: token() ?? "" }) });
    socket.on("connect", () => void this.reload());
    socket.on("job:progress", (p: Progress) => this.onProgress(p));
    this.render();
    await this.reload();
  }

  private async reload(): Promise<void> {
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
    job.state = p.state;
    job.counts = p.counts;
    if (this.failures.has(p.id)) void this.loadFailures(p.id).then(() => this.renderList());
    else this.renderList();
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
    const commandSelect = select(
      "command",
      COMMANDS.map((c) => [c, t(`jobs.command.${c}` as MessageKey)]),
      this.form.command,
      { "data-path": "command", "data-testid": "job-command" },
    );
    commandSelect.addEventListener("change", () => {
      this.form.command = commandSelect.value as CommandType;
      this.render();
    });
    form.append(field("jobs.command", commandSelect));
    if (this.form.command === "brightness" || this.form.command === "volume") {
      const percent = el("input", { type: "number", min: "0", max: "100", value: String(this.form.percent), "data-path": "command.percent", "data-testid": "job-percent" });
      percent.addEventListener("input", () => (this.form.percent = Number(percent.value)));
      form.append(field("jobs.percent", percent));
    }
    if (this.form.command === "display_power") {
      const on = select("on", [["on", t("jobs.on")], ["off", t("jobs.off")]], this.form.on ? "on" : "off", { "data-path": "command.on" });
      on.addEventListener("change", () => (this.form.on = on.value === "on"));
      form.append(field("jobs.power", on));
    }
    const target = select(
      "target",
      (["all", "tags", "group", "devices"] as TargetKind[]).map((k) => [k, t(`jobs.target.${k}` as MessageKey)]),
      this.form.target,
      { "data-path": "target", "data-testid": "job-target" },
    );
    target.addEventListener("change", () => {
      this.form.target = target.value as TargetKind;
      this.render();
    });
    form.append(field("jobs.target", target));
    if (this.form.target !== "all") {
      const text = el("input", { type: "text", value: this.form.targetText, "data-path": `target.${this.form.target}`, "data-testid": "job-target-text", dir: "ltr" });
      text.addEventListener("input", () => (this.form.targetText = text.value));
      form.append(field(`jobs.targetText.${this.form.target}` as MessageKey, text));
    }
    const numberBox = (key: "concurrency" | "ratePerMinute" | "retries" | "abortPercent" | "abortMin", label: MessageKey, path: string) => {
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
    );
    const send = el("button", { type: "submit", "data-testid": "job-send" }, t("jobs.send"));
    send.disabled = this.sending;
    form.append(rollout, send, ...errorList(this.errors, "job-errors"));
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
