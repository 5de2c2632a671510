import { describe, expect, it } from "vitest";
import { channelBody, EMPTY_CHANNEL, note, type Message } from "./notify-model";

describe("channel form", () => {
  it("sends addresses as a list and quiet hours only when given", () => {
    const body = channelBody({ ...EMPTY_CHANNEL, name: "Gabbai", where: "a@example.org, b@example.org" });
    expect(body).toEqual({
      name: "Gabbai",
      kind: "email",
      language: "he",
      route: { min_severity: "warning" },
      shabbat: "non_urgent",
      to: ["a@example.org", "b@example.org"],
    });
  });
  it("sends a webhook's URL and the quiet hours as typed", () => {
    const body = channelBody({ ...EMPTY_CHANNEL, name: "Ops", kind: "webhook", where: " https://x.example/h ", quietStart: "22:00", quietEnd: "" });
    expect(body.url).toBe("https://x.example/h");
    expect(body.to).toBeUndefined();
    expect(body.quiet_hours).toEqual({ start: "22:00", end: "" });
  });
});

describe("log notes", () => {
  const m = (over: Partial<Message>): Message => ({
    id: "1",
    channel_id: "c",
    kind: "email",
    recipient: "g***@example.org",
    event: "alert.opened",
    subject_id: null,
    state: "sent",
    attempts: 1,
    next_at: "",
    hold: null,
    last_error: null,
    receipt: "250 OK",
    created_at: "",
    sent_at: null,
    ...over,
  });
  it("says why a message waits or failed, else what the receiver answered", () => {
    expect(note(m({}))).toBe("250 OK");
    expect(note(m({ state: "pending", hold: "held for Shabbat" }))).toBe("held for Shabbat");
    expect(note(m({ state: "pending", hold: "held", last_error: "HTTP 503" }))).toBe("HTTP 503");
    expect(note(m({ state: "failed", last_error: "refused" }))).toBe("refused");
  });
});
