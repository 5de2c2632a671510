import { describe, expect, it } from "vitest";
import { actionsFor, done, EMPTY_COMMAND, EMPTY_FORM, jobBody, phaseOf, phasesOf, segments, type Counts, type JobForm } from "./jobs-model";

const form: JobForm = {
  ...EMPTY_FORM,
  command: "brightness",
  percent: 40,
  target: "tags",
  targetText: "lobby, hall  upstairs",
  ratePerMinute: "120",
};

const zero: Counts = { queued: 0, sent: 0, received: 0, succeeded: 0, failed: 0, timed_out: 0, cancelled: 0, skipped: 0 };

describe("job form", () => {
  it("makes the documented body, leaving empty boxes to the server", () => {
    expect(jobBody(form)).toEqual({
      command: { type: "brightness", percent: 40 },
      target: { tags: ["lobby", "hall", "upstairs"] },
      rate_per_minute: 120,
    });
  });

  it("carries only the parameters a command has", () => {
    expect(jobBody({ ...form, command: "display_power", on: false, target: "all" })).toEqual({
      command: { type: "display_power", on: false },
      target: { all: true },
      rate_per_minute: 120,
    });
    expect(jobBody({ ...form, command: "reboot", target: "group", targetText: " upstairs ", ratePerMinute: "" })).toEqual({
      command: { type: "reboot" },
      target: { group: "upstairs" },
    });
  });

  it("sends a schedule, a package name and only the settings typed", () => {
    const schedule = { off: { fixed: "23:00" }, on: { first_prayer: -30 } };
    expect(jobBody({ ...form, command: "power_schedule", schedule, target: "all", ratePerMinute: "" }).command).toEqual({
      type: "power_schedule",
      schedule,
    });
    expect(jobBody({ ...form, command: "power_schedule", schedule: null }).command).toEqual({ type: "power_schedule", schedule: null });
    expect(jobBody({ ...form, command: "install_package", package: " fonts-noto-core " }).command).toEqual({
      type: "install_package",
      package: "fonts-noto-core",
    });
    const settings = { ...EMPTY_COMMAND.settings, metrics_secs: "15", keep_alive_secs: " " };
    expect(jobBody({ ...form, command: "set_settings", settings }).command).toEqual({ type: "set_settings", settings: { metrics_secs: 15 } });
  });

  it("aims at a saved query by its id", () => {
    expect(jobBody({ ...form, target: "query", targetText: "0193abc", ratePerMinute: "" }).target).toEqual({ query: "0193abc" });
  });

  it("adds an abort rule with a default minimum", () => {
    const body = jobBody({ ...form, target: "devices", targetText: "a1,b2", abortPercent: "10", ratePerMinute: "" });
    expect(body.target).toEqual({ devices: ["a1", "b2"] });
    expect(body.abort).toEqual({ failure_percent: 10, min_executions: 20 });
  });
});

describe("progress", () => {
  it("shows one segment per state with executions, in order", () => {
    const s = segments({ ...zero, queued: 2, succeeded: 6, failed: 2 });
    expect(s.map((x) => [x.state, x.count, x.percent])).toEqual([
      ["succeeded", 6, 60],
      ["failed", 2, 20],
      ["queued", 2, 20],
    ]);
    expect(segments(zero)).toEqual([]);
    expect(done({ ...zero, queued: 2, succeeded: 6, failed: 2, skipped: 1 })).toBe(9);
  });

  it("offers pause and resume only where they apply", () => {
    expect(actionsFor("running")).toEqual(["pause", "cancel"]);
    expect(actionsFor("paused")).toEqual(["resume", "cancel"]);
    expect(actionsFor("aborted")).toEqual([]);
  });
});

describe("staged roll-outs", () => {
  it("reads phases as screens or percentages, leaving a bad word for the server to name", () => {
    expect(phasesOf("1, 10%  50.5%")).toEqual([{ screens: 1 }, { percent: 10 }, { percent: 50.5 }]);
    expect(phasesOf("1, ten")).toEqual([{ screens: 1 }, {}]);
    expect(phasesOf("  ")).toEqual([]);
  });

  it("sends an update with phases, a window and a share of the target", () => {
    const body = jobBody({
      ...form,
      command: "update",
      release: "3f2a9c0d1e4b5a67",
      ratePerMinute: "",
      targetPercent: "25",
      phases: "1, 10%",
      soakMinutes: "30",
      pausePercent: "",
      windowStart: "02:00",
      windowEnd: "05:00",
      windowDays: [4, 0],
    });
    expect(body).toEqual({
      command: { type: "update", release: "3f2a9c0d1e4b5a67" },
      target: { tags: ["lobby", "hall", "upstairs"], percent: 25 },
      rollout: { phases: [{ screens: 1 }, { percent: 10 }], soak_s: 1800 },
      windows: [{ start: "02:00", end: "05:00", days: [0, 4] }],
    });
    // Every day ticked is the same as none: no days field.
    const everyDay = jobBody({ ...form, windowStart: "22:00", windowEnd: "01:00", windowDays: [0, 1, 2, 3, 4, 5, 6] });
    expect(everyDay.windows).toEqual([{ start: "22:00", end: "01:00" }]);
    expect(jobBody(form).rollout).toBeUndefined();
  });

  it("names the open phase and its screens", () => {
    expect(phaseOf({ index: 0, ends: [1, 100, 1000], opened_at: null })).toEqual({ n: 1, of: 3, from: 1, to: 1, accepted: false });
    expect(phaseOf({ index: 1, ends: [1, 100, 1000], opened_at: null })).toEqual({ n: 2, of: 3, from: 2, to: 100, accepted: false });
    expect(phaseOf({ index: 3, ends: [1, 100, 1000], opened_at: null })).toEqual({ n: 3, of: 3, from: 101, to: 1000, accepted: true });
  });
});
