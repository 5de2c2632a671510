import { describe, expect, it } from "vitest";
import { formToPowerTime, powerTimeToForm } from "./power-model";

describe("power schedule form", () => {
  it("round-trips every kind of switch time", () => {
    for (const time of [{ fixed: "23:00" }, { zman: "sunset", offset_minutes: 60 }, { first_prayer: -30 }]) {
      expect(formToPowerTime(powerTimeToForm(time, "06:00"))).toEqual(time);
    }
  });

  it("starts a new schedule at the given time and keeps what is typed wrong for the server to name", () => {
    expect(powerTimeToForm(undefined, "23:00")).toEqual({ kind: "fixed", fixed: "23:00", zman: "sunset", minutes: "0" });
    expect(formToPowerTime({ kind: "first_prayer", fixed: "", zman: "sunset", minutes: "half an hour" })).toEqual({ first_prayer: "half an hour" });
    expect(formToPowerTime({ kind: "zman", fixed: "", zman: "sunrise", minutes: " " })).toEqual({ zman: "sunrise", offset_minutes: 0 });
  });
});
