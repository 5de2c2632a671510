import { describe, expect, it } from "vitest";
import { congregantBody, congregantForm, EMPTY_CONGREGANT, type Congregant } from "./reminders-model";

describe("congregant form", () => {
  it("makes the documented body and leaves empty day counts to the server", () => {
    const body = congregantBody({
      ...EMPTY_CONGREGANT,
      name: " רבקה כהן ",
      to: "rivka@example.org ",
      yahrzeits: ["m1"],
      consentOn: "2026-11-30",
      consentHow: "signed form",
    });
    expect(body).toEqual({
      name: "רבקה כהן",
      contact: { kind: "email", to: "rivka@example.org" },
      language: "he",
      yahrzeits: ["m1"],
      aliyot: false,
      consent: { given_on: "2026-11-30", how: "signed form" },
    });
  });

  it("round-trips a stored congregant, and passes mistakes on for the server to name", () => {
    const stored: Congregant = {
      id: "c1",
      name: "Moshe ben Avraham",
      contact: { kind: "whatsapp", to: "+972501234569" },
      language: "en",
      yahrzeits: [],
      yahrzeit_days_before: 7,
      aliyot: true,
      aliyah_days_before: 2,
      consent: { given_on: "2026-12-01", how: "by phone" },
    };
    const { id: _, ...want } = stored;
    expect(congregantBody(congregantForm(stored))).toEqual(want);
    expect(congregantBody({ ...EMPTY_CONGREGANT, aliyahDays: "two" }).aliyah_days_before).toBe("two");
  });
});
