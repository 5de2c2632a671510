//! Congregation notices: yahrzeit and aliyah reminders to the people who asked for them.
//!
//! A *congregant* (tenant document `congregant`) is a person who asked to be reminded, with
//! the consent recorded: when and how it was given (who recorded it is in the audit log). They
//! name the memorial plaques whose yahrzeits they keep, and whether to hear of their honours
//! at the Torah reading (matched by the name as read out, exactly as the gabbai enters it on
//! the honours list).
//!
//! ```text
//!  every `notify.notices_every_secs` (under the `notify` lease):
//!    tenants ─▶ congregants + memorials + honours
//!       yahrzeit on D (the board's own `yahrzeits_between`) ─▶ reminder from D − days_before
//!       honour on D under the congregant's name            ─▶ reminder from D − days_before
//!    ─▶ outbox (no channel: straight to the person), held for Shabbat and Yom Tov
//! ```
//!
//! A reminder's message id is drawn from what it is about (tenant, congregant, plaque or
//! honour, date), so every later run finds it queued and adds nothing: each reminder goes
//! once, whichever replica runs and however often. Its id is still a UUID v7 (timed at the
//! day it is about), so the message log's order and retention treat it like any message.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use luach_board::names::{self, Lang as BoardLang};
use luach_content::bundle::MAX_PER_KIND;
use luach_content::day::yahrzeits_between;
use luach_content::{AliyotInput, MemorialInput, SynagogueProfile};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::channel::{ChannelKind, Lang, check_recipient};
use super::text::{Text, short};
use crate::error::{FieldError, check_text};
use crate::store::{Delivery, DocKind, Document, StoreResult, Stored, TenantStore};

/// Most congregants a tenant keeps.
pub const MAX_CONGREGANTS: u32 = 2_000;
/// Most plaques one congregant keeps the yahrzeits of.
pub const MAX_YAHRZEITS: usize = 20;
/// The `channel_id` of a notice's messages: none (they go straight to the person). Their
/// `subject_id` is `congregant:{id}`.
pub const NOTICE_CHANNEL: &str = "";

/// How a congregant is reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// `email`, `sms` or `whatsapp`.
    pub kind: ChannelKind,
    /// An email address, or a number in E.164 form.
    pub to: String,
}

/// The consent the congregant gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// The day it was given.
    pub given_on: NaiveDate,
    /// How: "signed form at the office", "by phone to the gabbai" (1–200 characters).
    pub how: String,
}

/// A person who asked to be reminded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Congregant {
    /// The name as read out at the Torah (honours are matched on it), 1–100 characters.
    pub name: String,
    pub contact: Contact,
    /// The reminders' language: `he` (default) or `en`.
    #[serde(default = "hebrew")]
    pub language: Lang,
    /// Memorial plaques (ids) whose yahrzeits to remind of (at most 20).
    #[serde(default)]
    pub yahrzeits: Vec<String>,
    /// How many days before a yahrzeit (0–30; default 7).
    #[serde(default = "week")]
    pub yahrzeit_days_before: u32,
    /// Remind of honours at the Torah reading given under `name`.
    #[serde(default)]
    pub aliyot: bool,
    /// How many days before an honour (0–14; default 2).
    #[serde(default = "two")]
    pub aliyah_days_before: u32,
    /// Required: no reminder goes to anyone without it.
    pub consent: Consent,
}

fn hebrew() -> Lang {
    Lang::He
}
fn week() -> u32 {
    7
}
fn two() -> u32 {
    2
}

impl Document for Congregant {
    const KIND: DocKind = DocKind::Congregant;
}

impl Congregant {
    /// Checks every field; the errors carry body paths. `today` bounds the consent's date.
    pub fn check(&self, today: NaiveDate) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check_text(&mut errors, "name", &self.name, true, 100);
        if self.contact.kind == ChannelKind::Webhook {
            errors.push(FieldError::new("contact.kind", "must be email, sms or whatsapp"));
        } else if let Err(what) = check_recipient(self.contact.kind, &self.contact.to) {
            errors.push(FieldError::new("contact.to", format!("must be {what}")));
        }
        if self.yahrzeits.len() > MAX_YAHRZEITS {
            errors.push(FieldError::new("yahrzeits", format!("at most {MAX_YAHRZEITS} plaques")));
        }
        for (i, id) in self.yahrzeits.iter().enumerate() {
            check_text(&mut errors, &format!("yahrzeits[{i}]"), id, true, 64);
        }
        if self.yahrzeit_days_before > 30 {
            errors.push(FieldError::new("yahrzeit_days_before", "must be 0–30"));
        }
        if self.aliyah_days_before > 14 {
            errors.push(FieldError::new("aliyah_days_before", "must be 0–14"));
        }
        if self.yahrzeits.is_empty() && !self.aliyot {
            errors.push(FieldError::new(
                "yahrzeits",
                "name a plaque, or set aliyot: a congregant with nothing to hear of is not kept",
            ));
        }
        check_text(&mut errors, "consent.how", &self.consent.how, true, 200);
        if self.consent.given_on > today + Duration::days(1) {
            errors.push(FieldError::new("consent.given_on", "must not be in the future"));
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

/// What a reminder is about.
#[derive(Debug, Clone, PartialEq)]
pub enum About<'a> {
    Yahrzeit {
        memorial_id: &'a str,
        memorial: &'a MemorialInput,
        hebrew: luach_calendar::HebrewDate,
    },
    Aliyah {
        aliyot_id: &'a str,
        honour: luach_content::HonourKind,
        note: &'a str,
    },
}

/// A reminder due now: whom, about what, on which day.
#[derive(Debug, Clone, PartialEq)]
pub struct Reminder<'a> {
    pub congregant: &'a Stored<Congregant>,
    pub about: About<'a>,
    /// The day it is about (the yahrzeit's civil day, the reading's day).
    pub date: NaiveDate,
}

/// The reminders due on `today` (the synagogue's civil date) and not yet past: those whose
/// day is within each congregant's days-before from `today`.
pub fn due<'a>(
    congregants: &'a [Stored<Congregant>],
    memorials: &'a [Stored<MemorialInput>],
    aliyot: &'a [Stored<AliyotInput>],
    today: NaiveDate,
) -> Vec<Reminder<'a>> {
    let mut out = Vec::new();
    for c in congregants {
        let kept = memorials.iter().filter(|m| c.input.yahrzeits.contains(&m.id));
        let until = today + Duration::days(i64::from(c.input.yahrzeit_days_before) + 1);
        let pairs = kept.clone().map(|m| (m.id.as_str(), &m.input));
        match yahrzeits_between(pairs, today, until) {
            Ok(found) => {
                for y in found {
                    if let Some(m) = kept.clone().find(|m| m.id == y.memorial_id) {
                        out.push(Reminder {
                            congregant: c,
                            about: About::Yahrzeit {
                                memorial_id: &m.id,
                                memorial: &m.input,
                                hebrew: y.hebrew_date,
                            },
                            date: y.date,
                        });
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, congregant = %c.id, "yahrzeits not computed"),
        }
        if !c.input.aliyot {
            continue;
        }
        let last = today + Duration::days(i64::from(c.input.aliyah_days_before));
        let name = c.input.name.trim();
        for reading in aliyot.iter().filter(|a| a.input.date >= today && a.input.date <= last) {
            for h in reading.input.honours.iter().filter(|h| h.name.trim() == name) {
                out.push(Reminder {
                    congregant: c,
                    about: About::Aliyah {
                        aliyot_id: &reading.id,
                        honour: h.honour,
                        note: &reading.input.note,
                    },
                    date: reading.input.date,
                });
            }
        }
    }
    out
}

/// The message of a reminder, in the congregant's language.
pub fn text(r: &Reminder<'_>, synagogue: &str) -> Text {
    let lang = r.congregant.input.language;
    let board = match lang {
        Lang::He => BoardLang::He,
        Lang::En => BoardLang::En,
    };
    let day = names::gregorian_date(r.date, board);
    let at = if synagogue.is_empty() {
        String::new()
    } else {
        match lang {
            Lang::He => format!(" ב{synagogue}"),
            Lang::En => format!(" at {synagogue}"),
        }
    };
    match (&r.about, lang) {
        (About::Yahrzeit { memorial, hebrew, .. }, Lang::He) => Text {
            subject: format!("[לוח] יום השנה של {}", memorial.name),
            body: format!(
                "יום השנה (יארצייט) של {} חל ב־{} ({}), ומתחיל בצאת הכוכבים בערב שלפניו.{at}\nנשלח לפי בקשתכם; לביטול פנו לגבאי.",
                memorial.name,
                names::hebrew_date(*hebrew, board),
                day
            ),
        },
        (About::Yahrzeit { memorial, hebrew, .. }, Lang::En) => Text {
            subject: format!("[Luach] Yahrzeit of {}", memorial.name),
            body: format!(
                "The yahrzeit of {} falls on {} ({day}); it begins at nightfall the evening before.{at}\nSent because you asked to be reminded; ask the gabbai to stop.",
                memorial.name,
                names::hebrew_date(*hebrew, board)
            ),
        },
        (About::Aliyah { honour, note, .. }, lang) => {
            let honour = names::honour(*honour, board);
            let note = if note.is_empty() {
                String::new()
            } else {
                format!(" ({note})")
            };
            let name = &r.congregant.input.name;
            match lang {
                Lang::He => Text {
                    subject: format!("[לוח] כיבוד בקריאת התורה: {honour}"),
                    body: format!(
                        "{name} מכובד/ת ב{honour} בקריאת התורה ביום {day}{note}.{at}\nנשלח לפי בקשתכם; לביטול פנו לגבאי."
                    ),
                },
                Lang::En => Text {
                    subject: format!("[Luach] Your honour at the Torah reading: {honour}"),
                    body: format!(
                        "{name} is honoured with {honour} at the Torah reading on {day}{note}.{at}\nSent because you asked to be reminded; ask the gabbai to stop."
                    ),
                },
            }
        }
    }
}

/// The reminder's message id: a UUID v7 timed at its day, the rest drawn from what it is
/// about, so queuing it again finds it there.
pub fn message_id(tenant: &str, r: &Reminder<'_>) -> String {
    let what = match &r.about {
        About::Yahrzeit { memorial_id, .. } => format!("yahrzeit/{memorial_id}"),
        About::Aliyah { aliyot_id, honour, .. } => format!("aliyah/{aliyot_id}/{honour:?}"),
    };
    let key = format!("{tenant}/{}/{what}/{}", r.congregant.id, r.date);
    let digest = Sha256::digest(key.as_bytes());
    let mut rest = [0u8; 10];
    rest.copy_from_slice(&digest[..10]);
    let ms = r
        .date
        .and_hms_opt(0, 0, 0)
        .map_or(0, |t| u64::try_from(t.and_utc().timestamp_millis()).unwrap_or(0));
    uuid::Builder::from_unix_timestamp_millis(ms, &rest)
        .into_uuid()
        .to_string()
}

/// The outbox records of the reminders, due at `due` (held with `hold`).
pub fn messages(
    reminders: &[Reminder<'_>],
    synagogue: &str,
    due: DateTime<Utc>,
    hold: Option<String>,
    now: DateTime<Utc>,
) -> Vec<Delivery> {
    reminders
        .iter()
        .map(|r| {
            let c = r.congregant;
            let text = text(r, synagogue);
            let event = match &r.about {
                About::Yahrzeit { .. } => "notice.yahrzeit",
                About::Aliyah { .. } => "notice.aliyah",
            };
            let payload = match c.input.contact.kind {
                ChannelKind::Email => json!({"subject": text.subject, "text": text.body}),
                _ => json!({"text": short(&text)}),
            };
            Delivery {
                id: message_id(c.tenant_id.as_str(), r),
                subject_id: Some(format!("congregant:{}", c.id)),
                payload,
                ..Delivery::pending(
                    c.tenant_id.clone(),
                    NOTICE_CHANNEL,
                    c.input.contact.kind.as_str(),
                    c.input.contact.to.clone(),
                    event,
                    (due, hold.clone()),
                    now,
                )
            }
        })
        .collect()
}

/// Queues the reminders due in one tenant at `now`; answers how many it found due (queued
/// now or before).
pub async fn queue(store: &TenantStore<'_>, now: DateTime<Utc>) -> StoreResult<usize> {
    let congregants: Vec<Stored<Congregant>> = store.list(MAX_CONGREGANTS, None).await?;
    if congregants.is_empty() {
        return Ok(0);
    }
    let memorials: Vec<Stored<MemorialInput>> = store.list(MAX_PER_KIND, None).await?;
    let aliyot: Vec<Stored<AliyotInput>> = store.list(MAX_PER_KIND, None).await?;
    let synagogues = store.synagogues(MAX_PER_KIND).await?;
    let profile: Option<&SynagogueProfile> = synagogues.first().map(|s| &s.profile);
    let tz = profile
        .and_then(|p| p.timezone.parse::<chrono_tz::Tz>().ok())
        .unwrap_or(chrono_tz::UTC);
    let today = now.with_timezone(&tz).date_naive();
    let reminders = due(&congregants, &memorials, &aliyot, today);
    if reminders.is_empty() {
        return Ok(0);
    }
    // Not on Shabbat or Yom Tov: held until havdalah there.
    let (at, hold) = match profile.and_then(|p| super::route::rest_hold(p, now)) {
        Some((end, why)) => (end, Some(why)),
        None => (now, None),
    };
    let name = profile.map(|p| p.name.as_str()).unwrap_or_default();
    let n = reminders.len();
    store
        .deliveries()
        .enqueue(messages(&reminders, name, at, hold, now))
        .await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn stored<T>(id: &str, input: T) -> Stored<T> {
        let now = Utc::now();
        Stored {
            id: id.to_owned(),
            tenant_id: luach_schemas::TenantId::builtin(),
            input,
            created_at: now,
            updated_at: now,
        }
    }

    fn congregant(v: serde_json::Value) -> Congregant {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn a_congregant_needs_consent_a_reachable_contact_and_something_to_hear_of() {
        let today = date("2026-12-04");
        let c = congregant(json!({"name": "", "contact": {"kind": "webhook", "to": "x"},
            "yahrzeit_days_before": 40, "consent": {"given_on": "2027-01-01", "how": ""}}));
        let paths: Vec<String> = c
            .check(today)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(
            paths,
            [
                "name",
                "contact.kind",
                "yahrzeit_days_before",
                "yahrzeits",
                "consent.how",
                "consent.given_on"
            ]
        );
        let c = congregant(
            json!({"name": "משה", "contact": {"kind": "sms", "to": "0501234567"}, "aliyot": true,
            "consent": {"given_on": "2026-12-01", "how": "signed form"}}),
        );
        let paths: Vec<String> = c
            .check(today)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(paths, ["contact.to"]);
        // Consent is not optional.
        assert!(
            serde_json::from_value::<Congregant>(
                json!({"name": "x", "contact": {"kind": "email", "to": "a@b.org"}, "aliyot": true})
            )
            .is_err()
        );
    }

    #[test]
    fn reminders_fall_due_days_before_and_have_stable_ids() {
        // Passed 10 Tevet 5780; the yahrzeit in 5787 is 10 Tevet = 20 December 2026.
        let memorials = vec![stored(
            "m1",
            serde_json::from_value::<MemorialInput>(json!({"name": "שרה בת אברהם",
                "passed": {"hebrew": {"year": 5780, "month": 10, "day": 10}}}))
            .unwrap_or_else(|e| panic!("{e}")),
        )];
        let aliyot = vec![stored(
            "a1",
            serde_json::from_value::<AliyotInput>(json!({"date": "2026-12-19", "note": "Shacharit",
                "honours": [{"honour": "shlishi", "name": "ר׳ משה בן אברהם"}, {"honour": "maftir", "name": "David"}]}))
            .unwrap_or_else(|e| panic!("{e}")),
        )];
        let c = vec![stored(
            "c1",
            congregant(
                json!({"name": " ר׳ משה בן אברהם ", "contact": {"kind": "email", "to": "moshe@example.org"},
                "yahrzeits": ["m1"], "aliyot": true, "consent": {"given_on": "2026-11-01", "how": "form"}}),
            ),
        )];
        let on = |d: &str| due(&c, &memorials, &aliyot, date(d));
        assert!(on("2026-12-12").is_empty());
        let found = on("2026-12-13");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].date, date("2026-12-20"));
        let later = on("2026-12-17");
        assert_eq!(later.len(), 2, "{later:?}");
        let aliyah = later
            .iter()
            .find(|r| matches!(r.about, About::Aliyah { .. }))
            .unwrap_or_else(|| panic!("aliyah"));
        assert_eq!(aliyah.date, date("2026-12-19"));
        let text = text(aliyah, "Ohel Moshe");
        assert!(
            text.body.contains("שלישי") && text.body.contains("Ohel Moshe"),
            "{text:?}"
        );
        // The same reminder on another run has the same id; another day's is another.
        let yahrzeit = |d: &str| on(d).into_iter().find(|r| matches!(r.about, About::Yahrzeit { .. }));
        let (a, b) = (yahrzeit("2026-12-13"), yahrzeit("2026-12-16"));
        let id = |r: Option<Reminder<'_>>| message_id("default", &r.unwrap_or_else(|| panic!("due")));
        let first = id(a);
        assert_eq!(first, id(b));
        assert!(uuid::Uuid::parse_str(&first).is_ok_and(|u| u.get_version_num() == 7));
        assert!(on("2026-12-21").is_empty());
    }
}
