//! Routing: which channels a change tells of, to whom, and from when. The result is a list of
//! outbox records ([`Delivery`]) that the caller writes in the same transaction as the change.
//!
//! ```text
//!  alert change ─▶ silenced? ─yes─▶ nothing
//!                     │ no
//!                     ▼
//!  every active channel whose route wants it ─▶ one message per recipient,
//!      due now, or held: Shabbat / Yom Tov at the screen's synagogue (until havdalah),
//!      the channel's quiet hours (until they end); critical alerts are urgent
//! ```

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::channel::{Channel, ChannelKind, ChannelSpec, Event, MAX_CHANNELS, ShabbatHold};
use super::text::{self, Text};
use crate::alerts::silence::{MAX_SILENCES, Silence};
use crate::store::{AlertRecord, Delivery, Severity, StoreResult, Stored, TenantStore};
use luach_content::SynagogueProfile;

/// The messages telling of `event` on `alert` at `now` (none when a silence matches it).
pub async fn alert_messages(
    store: &TenantStore<'_>,
    alert: &AlertRecord,
    event: Event,
    now: DateTime<Utc>,
) -> StoreResult<Vec<Delivery>> {
    let channels: Vec<Stored<Channel>> = store
        .list::<Channel>(MAX_CHANNELS, None)
        .await?
        .into_iter()
        .filter(|c| c.input.active())
        .collect();
    if channels.is_empty() {
        return Ok(Vec::new());
    }
    let device = store.device(&alert.device_id).await?;
    let silences = store.list::<Silence>(MAX_SILENCES, None).await?;
    if let Some(s) = silences.iter().find(|s| s.input.silences(alert, device.as_ref(), now)) {
        tracing::debug!(alert_id = %alert.id, silence_id = %s.id, "silenced: no message");
        return Ok(Vec::new());
    }
    let synagogues = store.synagogues(luach_content::bundle::MAX_PER_KIND).await?;
    let synagogue = device
        .as_ref()
        .and_then(|d| crate::bundle::synagogue_of(d, &synagogues))
        .or(synagogues.first())
        .map(|s| &s.profile);
    let urgent = alert.severity == Severity::Critical;
    let mut out = Vec::new();
    for channel in channels
        .iter()
        .filter(|c| c.input.spec.route.wants(event, alert, device.as_ref()))
    {
        let spec = &channel.input.spec;
        let tz = zone(spec, synagogue);
        let (due, hold) = release_at(spec, urgent, synagogue, tz, now);
        let text = text::alert(event, alert, spec.language, tz);
        let data = json!({"alert": alert});
        let payload = payload(spec.kind, event, &text, data, now);
        out.extend(messages(channel, event, Some(&alert.id), &payload, due, hold, now));
    }
    Ok(out)
}

/// The test messages of `channel`, due at once.
pub fn test_messages(channel: &Stored<Channel>, by: &str, now: DateTime<Utc>) -> Vec<Delivery> {
    let spec = &channel.input.spec;
    let text = text::test(spec.language, &spec.name, by);
    let data = json!({"channel_id": channel.id, "message": text.body});
    let payload = payload(spec.kind, Event::ChannelTest, &text, data, now);
    messages(channel, Event::ChannelTest, None, &payload, now, None, now)
}

/// The channel's time zone: its own, else the synagogue's, else UTC.
fn zone(spec: &ChannelSpec, synagogue: Option<&SynagogueProfile>) -> chrono_tz::Tz {
    spec.timezone
        .as_deref()
        .or(synagogue.map(|s| s.timezone.as_str()))
        .and_then(|z| z.parse().ok())
        .unwrap_or(chrono_tz::UTC)
}

/// When a message of `spec` may go out, from `now`, and why it waits (if it does): after
/// Shabbat or Yom Tov at `synagogue` and after the channel's quiet hours, whichever ends last
/// (a hold ending inside the other carries on to the other's end).
pub fn release_at(
    spec: &ChannelSpec,
    urgent: bool,
    synagogue: Option<&SynagogueProfile>,
    tz: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, Option<String>) {
    let shabbat = match spec.shabbat {
        ShabbatHold::Off => None,
        ShabbatHold::All => synagogue,
        ShabbatHold::NonUrgent => synagogue.filter(|_| !urgent),
    };
    let quiet = spec
        .quiet_hours
        .as_ref()
        .filter(|q| q.urgent_too || !urgent)
        .map(|q| [q.window()]);
    let (mut at, mut why) = (now, None);
    // Each step moves `at` strictly later; a few steps settle any real calendar.
    for _ in 0..8 {
        let mut moved = false;
        if let Some((end, held)) = shabbat.and_then(|profile| rest_hold(profile, at))
            && end > at
        {
            why = Some(held);
            (at, moved) = (end, true);
        }
        if let Some(window) = &quiet
            && let Some(end) = crate::jobs::rollout::window_close(window, &tz, at)
            && end > at
        {
            why = Some(format!("held for quiet hours until {}", end.to_rfc3339()));
            (at, moved) = (end, true);
        }
        if !moved {
            break;
        }
    }
    (at, why)
}

/// When the Shabbat or Yom Tov that `at` falls in ends at the synagogue of `profile`, and the
/// hold's reason; `None` outside one (or when its times cannot be computed, which is logged).
pub fn rest_hold(profile: &SynagogueProfile, at: DateTime<Utc>) -> Option<(DateTime<Utc>, String)> {
    match luach_content::rest::rest_until(profile, at) {
        Ok(end) => end.map(|end| {
            let why = format!("held for Shabbat or Yom Tov until havdalah ({})", end.to_rfc3339());
            (end, why)
        }),
        Err(e) => {
            tracing::warn!(error = %e, "no Shabbat times for the synagogue; not holding");
            None
        }
    }
}

/// What the sender of `kind` needs: an email's subject and text, a text message, or a
/// webhook's exact body (signed as it is stored, so every attempt sends the same bytes).
fn payload(kind: ChannelKind, event: Event, text: &Text, data: Value, now: DateTime<Utc>) -> Value {
    match kind {
        ChannelKind::Email => json!({"subject": text.subject, "text": text.body}),
        ChannelKind::Sms | ChannelKind::Whatsapp => json!({"text": text::short(text)}),
        ChannelKind::Webhook => json!({"body": text::webhook_body(event, now, data)}),
    }
}

/// One pending message per recipient of `channel`.
fn messages(
    channel: &Stored<Channel>,
    event: Event,
    subject: Option<&str>,
    payload: &Value,
    due: DateTime<Utc>,
    hold: Option<String>,
    now: DateTime<Utc>,
) -> Vec<Delivery> {
    channel
        .input
        .recipients()
        .into_iter()
        .map(|recipient| Delivery {
            subject_id: subject.map(str::to_owned),
            payload: payload.clone(),
            ..Delivery::pending(
                channel.tenant_id.clone(),
                &channel.id,
                channel.input.spec.kind.as_str(),
                recipient,
                event.as_str(),
                (due, hold.clone()),
                now,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(v: Value) -> ChannelSpec {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn jerusalem() -> SynagogueProfile {
        serde_json::from_value(json!({
            "name": "Beit Knesset", "latitude": 31.778, "longitude": 35.2354, "elevation_m": 754.0,
            "timezone": "Asia/Jerusalem", "israel": true, "nusach": "ashkenaz", "language": "he"
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn non_urgent_messages_wait_for_havdalah_and_quiet_hours_for_their_end() {
        let tz = chrono_tz::Asia::Jerusalem;
        let shul = jerusalem();
        let s = spec(json!({"name": "x", "kind": "email", "to": ["a@example.org"],
            "quiet_hours": {"start": "22:00", "end": "07:00"}}));
        // Friday 4 December 2026, 20:00 local: Shabbat. Held until havdalah on Saturday
        // evening (about 17:20 local).
        let friday_night = at("2026-12-04T18:00:00Z");
        let (due, why) = release_at(&s, false, Some(&shul), tz, friday_night);
        assert!(
            due > at("2026-12-05T14:30:00Z") && due < at("2026-12-05T16:00:00Z"),
            "{due}"
        );
        assert!(why.as_deref().is_some_and(|w| w.contains("havdalah")), "{why:?}");
        // Critical: urgent, not held on Shabbat, but quiet hours do not apply at 20:00 either.
        assert_eq!(
            release_at(&s, true, Some(&shul), tz, friday_night),
            (friday_night, None)
        );
        // Tuesday 23:00 local: quiet hours until 07:00.
        let (due, why) = release_at(&s, false, Some(&shul), tz, at("2026-12-01T21:00:00Z"));
        assert_eq!(due, at("2026-12-02T05:00:00Z"));
        assert!(why.as_deref().is_some_and(|w| w.contains("quiet hours")), "{why:?}");
        // Tuesday noon: at once.
        let noon = at("2026-12-01T10:00:00Z");
        assert_eq!(release_at(&s, false, Some(&shul), tz, noon), (noon, None));
        // No synagogue: no Shabbat hold.
        assert_eq!(release_at(&s, false, None, tz, friday_night), (friday_night, None));
        // Holding everything, even critical alerts.
        let all = spec(json!({"name": "x", "kind": "email", "to": ["a@example.org"], "shabbat": "all"}));
        assert!(release_at(&all, true, Some(&shul), tz, friday_night).0 > friday_night);
        let off = spec(json!({"name": "x", "kind": "email", "to": ["a@example.org"], "shabbat": "off"}));
        assert_eq!(release_at(&off, false, Some(&shul), tz, friday_night).0, friday_night);
    }

    #[test]
    fn a_hold_ending_inside_quiet_hours_carries_on_to_their_end() {
        let tz = chrono_tz::Asia::Jerusalem;
        let shul = jerusalem();
        // Quiet from 17:00 to 21:00 local: havdalah (about 17:20) falls inside it.
        let s = spec(json!({"name": "x", "kind": "email", "to": ["a@example.org"],
            "quiet_hours": {"start": "17:00", "end": "21:00"}}));
        let (due, why) = release_at(&s, false, Some(&shul), tz, at("2026-12-04T18:00:00Z"));
        assert_eq!(due, at("2026-12-05T19:00:00Z"));
        assert!(why.as_deref().is_some_and(|w| w.contains("quiet hours")), "{why:?}");
    }
}
