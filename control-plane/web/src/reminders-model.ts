// What the reminders page shows and sends, without the DOM: congregants who asked for
// yahrzeit and aliyah reminders as the API gives them, the form and the body it makes
// (docs/api.md, Congregation notices).

export type ContactKind = "email" | "sms" | "whatsapp";
export const CONTACT_KINDS: ContactKind[] = ["email", "sms", "whatsapp"];

export interface Congregant {
  id: string;
  name: string;
  contact: { kind: ContactKind; to: string };
  language: "he" | "en";
  yahrzeits: string[];
  yahrzeit_days_before: number;
  aliyot: boolean;
  aliyah_days_before: number;
  consent: { given_on: string; how: string };
}

/** The form: boxes as typed (numbers as text, so an empty box takes the server's default). */
export interface CongregantForm {
  name: string;
  kind: ContactKind;
  to: string;
  language: "he" | "en";
  yahrzeits: string[];
  yahrzeitDays: string;
  aliyot: boolean;
  aliyahDays: string;
  consentOn: string;
  consentHow: string;
}

export const EMPTY_CONGREGANT: CongregantForm = {
  name: "",
  kind: "email",
  to: "",
  language: "he",
  yahrzeits: [],
  yahrzeitDays: "",
  aliyot: false,
  aliyahDays: "",
  consentOn: "",
  consentHow: "",
};

function count(text: string): number | string | undefined {
  const t = text.trim();
  if (t === "") return undefined;
  const n = Number(t);
  return Number.isInteger(n) ? n : t;
}

/** The request body of the form. Consent is always sent as typed: the server refuses a
 * congregant without it. */
export function congregantBody(f: CongregantForm): Record<string, unknown> {
  const body: Record<string, unknown> = {
    name: f.name.trim(),
    contact: { kind: f.kind, to: f.to.trim() },
    language: f.language,
    yahrzeits: f.yahrzeits,
    aliyot: f.aliyot,
    consent: { given_on: f.consentOn.trim(), how: f.consentHow.trim() },
  };
  const yahrzeitDays = count(f.yahrzeitDays);
  if (yahrzeitDays !== undefined) body.yahrzeit_days_before = yahrzeitDays;
  const aliyahDays = count(f.aliyahDays);
  if (aliyahDays !== undefined) body.aliyah_days_before = aliyahDays;
  return body;
}

/** The form showing a stored congregant, to edit. */
export function congregantForm(c: Congregant): CongregantForm {
  return {
    name: c.name,
    kind: c.contact.kind,
    to: c.contact.to,
    language: c.language,
    yahrzeits: [...c.yahrzeits],
    yahrzeitDays: String(c.yahrzeit_days_before),
    aliyot: c.aliyot,
    aliyahDays: String(c.aliyah_days_before),
    consentOn: c.consent.given_on,
    consentHow: c.consent.how,
  };
}
