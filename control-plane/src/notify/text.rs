//! What a message says, in the channel's language: an email's subject and text, a text
//! message's one paragraph, a webhook's JSON body.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::channel::{Event, Lang};
use crate::store::{AlertRecord, Severity};

/// Longest text message body, in characters (Twilio splits beyond 1,600).
pub const MAX_SMS: usize = 1_600;

/// A rendered message.
#[derive(Debug, Clone, PartialEq)]
pub struct Text {
    pub subject: String,
    pub body: String,
}

fn severity(lang: Lang, s: Severity) -> &'static str {
    match (lang, s) {
        (Lang::En, Severity::Info) => "info",
        (Lang::En, Severity::Warning) => "warning",
        (Lang::En, Severity::Critical) => "CRITICAL",
        (Lang::He, Severity::Info) => "מידע",
        (Lang::He, Severity::Warning) => "אזהרה",
        (Lang::He, Severity::Critical) => "דחוף",
    }
}

/// `at` in `tz` as `YYYY-MM-DD HH:MM`.
fn local(at: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

/// The message about `alert` for `event`, with times in `tz`.
pub fn alert(event: Event, alert: &AlertRecord, lang: Lang, tz: chrono_tz::Tz) -> Text {
    let sev = severity(lang, alert.severity);
    let (rule, device) = (&alert.rule_name, alert.device_id.as_str());
    let since = local(alert.since, tz);
    let (subject, lines) = match lang {
        Lang::En => {
            let head = match event {
                Event::AlertOpened => "Alert",
                Event::AlertAcknowledged => "Acknowledged",
                Event::AlertResolved => "Resolved",
                Event::ChannelTest => "Test",
            };
            let mut lines = vec![format!("{rule} on screen {device} ({sev})."), alert.summary.clone()];
            lines.push(format!("Since {since} ({tz})."));
            if let (Event::AlertAcknowledged, Some(by)) = (event, &alert.acknowledged_by) {
                lines.push(format!("Acknowledged by {by}."));
            }
            if let (Event::AlertResolved, Some(why)) = (event, &alert.resolution) {
                lines.push(format!("Resolved: {why}."));
            }
            (format!("[Luach] {head}: {rule} on {device}"), lines)
        }
        Lang::He => {
            let head = match event {
                Event::AlertOpened => "התראה",
                Event::AlertAcknowledged => "בטיפול",
                Event::AlertResolved => "נפתרה",
                Event::ChannelTest => "בדיקה",
            };
            let mut lines = vec![format!("{rule} במסך {device} ({sev})."), alert.summary.clone()];
            lines.push(format!("מאז {since} ({tz})."));
            if let (Event::AlertAcknowledged, Some(by)) = (event, &alert.acknowledged_by) {
                lines.push(format!("אושרה על ידי {by}."));
            }
            if event == Event::AlertResolved {
                lines.push("ההתראה נסגרה.".to_owned());
            }
            (format!("[לוח] {head}: {rule} — {device}"), lines)
        }
    };
    Text {
        subject,
        body: lines.join("\n"),
    }
}

/// The test message of a channel.
pub fn test(lang: Lang, channel: &str, by: &str) -> Text {
    match lang {
        Lang::En => Text {
            subject: format!("[Luach] Test message for {channel}"),
            body: format!("This is a test of the notification channel \"{channel}\", sent by {by}. It works."),
        },
        Lang::He => Text {
            subject: format!("[לוח] הודעת בדיקה לערוץ {channel}"),
            body: format!("זוהי בדיקה של ערוץ ההתראות \"{channel}\", שנשלחה על ידי {by}. הערוץ פועל."),
        },
    }
}

/// A text message's body: the subject and the text, cut to [`MAX_SMS`] characters.
pub fn short(text: &Text) -> String {
    let all = format!("{}\n{}", text.subject, text.body);
    if all.chars().count() <= MAX_SMS {
        return all;
    }
    let mut cut: String = all.chars().take(MAX_SMS - 1).collect();
    cut.push('…');
    cut
}

/// A webhook's body: `{type, timestamp, data}` as Standard Webhooks suggest.
pub fn webhook_body(event: Event, at: DateTime<Utc>, data: Value) -> String {
    json!({"type": event.as_str(), "timestamp": at.to_rfc3339(), "data": data}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_on_a_character_boundary() {
        let t = Text {
            subject: "ש".repeat(1_000),
            body: "ל".repeat(1_000),
        };
        let s = short(&t);
        assert_eq!(s.chars().count(), MAX_SMS);
        assert!(s.ends_with('…'));
        let t = Text {
            subject: "a".into(),
            body: "b".into(),
        };
        assert_eq!(short(&t), "a\nb");
    }
}
