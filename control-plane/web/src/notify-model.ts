// What the notifications page shows and sends, without the DOM: channels and messages as the
// API gives them, the channel form and the body it makes (docs/api.md, Notifications).
import type { Severity } from "./alerts-model";
import { splitList } from "./format";

export type ChannelKind = "email" | "sms" | "whatsapp" | "webhook";
export type ShabbatHold = "non_urgent" | "all" | "off";

export const KINDS: ChannelKind[] = ["email", "sms", "whatsapp", "webhook"];
export const HOLDS: ShabbatHold[] = ["non_urgent", "all", "off"];

export interface Channel {
  id: string;
  name: string;
  kind: ChannelKind;
  enabled: boolean;
  to?: string[];
  url?: string;
  language: "en" | "he";
  route: { events: string[]; min_severity: Severity; rules?: string[]; tags?: string[] };
  quiet_hours?: { start: string; end: string; days?: number[]; urgent_too: boolean };
  shabbat: ShabbatHold;
  timezone?: string;
  has_secret: boolean;
  secret?: string;
  disabled: { at: string; reason: string } | null;
}

export interface Message {
  id: string;
  channel_id: string;
  kind: ChannelKind;
  recipient: string;
  event: string;
  subject_id: string | null;
  state: "pending" | "sent" | "failed";
  attempts: number;
  next_at: string;
  hold: string | null;
  last_error: string | null;
  receipt: string | null;
  created_at: string;
  sent_at: string | null;
}

/** The channel form: boxes as typed. */
export interface ChannelForm {
  name: string;
  kind: ChannelKind;
  /** Addresses or numbers separated by commas, or the webhook's URL. */
  where: string;
  language: "en" | "he";
  minSeverity: Severity;
  shabbat: ShabbatHold;
  quietStart: string;
  quietEnd: string;
}

export const EMPTY_CHANNEL: ChannelForm = {
  name: "",
  kind: "email",
  where: "",
  language: "he",
  minSeverity: "warning",
  shabbat: "non_urgent",
  quietStart: "",
  quietEnd: "",
};

/** The request body of the form (the server checks it and names what is wrong). */
export function channelBody(f: ChannelForm): Record<string, unknown> {
  const body: Record<string, unknown> = {
    name: f.name,
    kind: f.kind,
    language: f.language,
    route: { min_severity: f.minSeverity },
    shabbat: f.shabbat,
  };
  if (f.kind === "webhook") body.url = f.where.trim();
  else body.to = splitList(f.where);
  if (f.quietStart.trim() || f.quietEnd.trim()) body.quiet_hours = { start: f.quietStart.trim(), end: f.quietEnd.trim() };
  return body;
}

/** Where a channel sends, as one line. */
export function destination(c: Channel): string {
  return c.kind === "webhook" ? (c.url ?? "") : (c.to ?? []).join(", ");
}

/** What a message's log line adds: why it waits, or why it failed. */
export function note(m: Message): string {
  if (m.state === "failed" || (m.state === "pending" && m.last_error)) return m.last_error ?? "";
  if (m.state === "pending" && m.hold) return m.hold;
  return m.receipt ?? "";
}
