//! Notification channels as a tenant writes them: where messages go (email addresses, phone
//! numbers for SMS or WhatsApp, a webhook URL), which alerts and events they carry, and when
//! they hold non-urgent messages back (quiet hours, Shabbat and Yom Tov).
//!
//! A channel is a stored document (kind `notify_channel`): the tenant's [`ChannelSpec`] plus
//! what only the server writes, a webhook's signing secret and why the server disabled it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{FieldError, check_text};
use crate::jobs::spec::Window;
use crate::store::{AlertRecord, Device, DocKind, Document, Severity};

/// Channels a tenant may have.
pub const MAX_CHANNELS: u32 = 50;
/// Addresses or numbers one channel sends to.
pub const MAX_RECIPIENTS: usize = 20;
/// Longest webhook URL, in bytes.
pub const MAX_URL: usize = 2_048;
/// Rules or tags a route may name.
pub const MAX_ROUTE_ITEMS: usize = 200;

/// How a channel's messages travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// Email through the installation's SMTP server (`notify.smtp`).
    Email,
    /// SMS through Twilio's Messages API (`notify.twilio`).
    Sms,
    /// WhatsApp through Twilio's Messages API (`notify.twilio`).
    Whatsapp,
    /// An HTTPS POST signed as Standard Webhooks describe.
    Webhook,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 4] = [Self::Email, Self::Sms, Self::Whatsapp, Self::Webhook];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Whatsapp => "whatsapp",
            Self::Webhook => "webhook",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The language of a channel's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    #[default]
    En,
    He,
}

/// What a message tells of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Event {
    #[serde(rename = "alert.opened")]
    AlertOpened,
    #[serde(rename = "alert.acknowledged")]
    AlertAcknowledged,
    #[serde(rename = "alert.resolved")]
    AlertResolved,
    /// A message an operator asked for to try the channel (always sent, never held).
    #[serde(rename = "channel.test")]
    ChannelTest,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AlertOpened => "alert.opened",
            Self::AlertAcknowledged => "alert.acknowledged",
            Self::AlertResolved => "alert.resolved",
            Self::ChannelTest => "channel.test",
        }
    }
}

fn default_events() -> Vec<Event> {
    vec![Event::AlertOpened, Event::AlertResolved]
}

/// Which alerts a channel carries: every condition given must hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Default: `alert.opened` and `alert.resolved`.
    #[serde(default = "default_events")]
    pub events: Vec<Event>,
    /// Alerts of this severity or graver. Default: warning.
    #[serde(default)]
    pub min_severity: Severity,
    /// Only alerts of these rules (ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<String>>,
    /// Only alerts of screens carrying every one of these tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

impl Default for Route {
    fn default() -> Self {
        Self {
            events: default_events(),
            min_severity: Severity::Warning,
            rules: None,
            tags: None,
        }
    }
}

impl Route {
    /// Whether a message about `alert` (on `device`, when it is still known) goes out.
    pub fn wants(&self, event: Event, alert: &AlertRecord, device: Option<&Device>) -> bool {
        self.events.contains(&event)
            && alert.severity >= self.min_severity
            && self.rules.as_ref().is_none_or(|r| r.contains(&alert.rule_id))
            && self
                .tags
                .as_ref()
                .is_none_or(|tags| device.is_some_and(|d| tags.iter().all(|t| d.tags.contains(t))))
    }
}

/// What Shabbat and Yom Tov hold back, at the alert's screen's synagogue (or the tenant's first
/// synagogue): held messages go out at havdalah.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShabbatHold {
    /// Everything but critical alerts (the default).
    #[default]
    NonUrgent,
    /// Everything.
    All,
    /// Nothing.
    Off,
}

/// Hours in which the channel's people do not want to be woken: messages are held until the
/// window ends. Critical alerts go through unless `urgent_too`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    /// Days the window starts on (0 = Sunday … 6 = Shabbat); absent: every day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<Vec<u8>>,
    /// `HH:MM`, local time.
    #[schemars(regex(pattern = r"^\d{2}:\d{2}$"))]
    pub start: String,
    /// `HH:MM`, local time; before `start` means the next day.
    #[schemars(regex(pattern = r"^\d{2}:\d{2}$"))]
    pub end: String,
    #[serde(default)]
    pub urgent_too: bool,
}

impl QuietHours {
    pub fn window(&self) -> Window {
        Window {
            days: self.days.clone(),
            start: self.start.clone(),
            end: self.end.clone(),
        }
    }
}

fn yes() -> bool {
    true
}

/// A channel as the tenant writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    pub name: String,
    /// A disabled channel sends nothing new; what it already queued still goes out.
    #[serde(default = "yes")]
    pub enabled: bool,
    pub kind: ChannelKind,
    /// Email addresses (email) or E.164 numbers such as `+972501234567` (sms, whatsapp).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// The receiver (webhook): `https://…` (or `http://`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default)]
    pub language: Lang,
    #[serde(default)]
    pub route: Route,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHours>,
    #[serde(default)]
    pub shabbat: ShabbatHold,
    /// IANA zone of the quiet hours and of times in messages; absent: the screen's synagogue's
    /// zone (UTC for a screen of no synagogue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

/// Why the server stopped a channel (a webhook answering 410, or failing for good).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Disabled {
    pub at: DateTime<Utc>,
    pub reason: String,
}

/// A stored channel: the tenant's spec and what only the server writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    pub spec: ChannelSpec,
    /// A webhook's signing secret (`whsec_` and base64), shown once when made or rotated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<Disabled>,
}

impl Document for Channel {
    const KIND: DocKind = DocKind::NotifyChannel;
}

impl Channel {
    /// Whether new messages go through it.
    pub fn active(&self) -> bool {
        self.spec.enabled && self.disabled.is_none()
    }

    /// Where its messages go: the addresses or numbers, or the webhook's URL.
    pub fn recipients(&self) -> Vec<String> {
        match self.spec.kind {
            ChannelKind::Webhook => self.spec.url.iter().cloned().collect(),
            _ => self.spec.to.clone(),
        }
    }
}

/// A new webhook signing secret: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> String {
    let key: [u8; 32] = rand::random();
    format!("whsec_{}", data_encoding::BASE64.encode(&key))
}

fn is_e164(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or("");
    (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
}

impl ChannelSpec {
    /// Checks every field; the errors carry body paths.
    pub fn check(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check_text(&mut errors, "name", &self.name, true, 100);
        match self.kind {
            ChannelKind::Webhook => {
                if !self.to.is_empty() {
                    errors.push(FieldError::new("to", "a webhook sends to its url, not to addresses"));
                }
                match self.url.as_deref().map(check_url) {
                    None => errors.push(FieldError::new("url", "a webhook needs a url")),
                    Some(Err(why)) => errors.push(FieldError::new("url", why)),
                    Some(Ok(())) => {}
                }
            }
            kind => {
                if self.url.is_some() {
                    errors.push(FieldError::new(
                        "url",
                        format!("only a webhook has a url, not {}", kind.as_str()),
                    ));
                }
                if self.to.is_empty() || self.to.len() > MAX_RECIPIENTS {
                    errors.push(FieldError::new("to", format!("name 1–{MAX_RECIPIENTS} recipients")));
                }
                for (i, r) in self.to.iter().enumerate() {
                    if let Err(what) = check_recipient(kind, r) {
                        errors.push(FieldError::new(format!("to[{i}]"), format!("must be {what}")));
                    }
                }
            }
        }
        if self.route.events.is_empty() || self.route.events.contains(&Event::ChannelTest) {
            errors.push(FieldError::new(
                "route.events",
                "name 1–3 of alert.opened, alert.acknowledged, alert.resolved",
            ));
        }
        for (field, items) in [("rules", &self.route.rules), ("tags", &self.route.tags)] {
            if let Some(items) = items {
                if items.is_empty() || items.len() > MAX_ROUTE_ITEMS {
                    errors.push(FieldError::new(
                        format!("route.{field}"),
                        format!("name 1–{MAX_ROUTE_ITEMS}, or leave it out"),
                    ));
                }
                for (i, item) in items.iter().enumerate() {
                    check_text(&mut errors, &format!("route.{field}[{i}]"), item, true, 64);
                }
            }
        }
        if let Some(q) = &self.quiet_hours {
            if q.window().times().is_none() {
                errors.push(FieldError::new("quiet_hours", "start and end must be HH:MM"));
            }
            if q.days
                .as_ref()
                .is_some_and(|d| d.is_empty() || d.iter().any(|d| *d > 6))
            {
                errors.push(FieldError::new(
                    "quiet_hours.days",
                    "name days 0 (Sunday) to 6 (Shabbat)",
                ));
            }
        }
        if let Some(tz) = &self.timezone
            && tz.parse::<chrono_tz::Tz>().is_err()
        {
            errors.push(FieldError::new(
                "timezone",
                "must be an IANA time zone, such as Asia/Jerusalem",
            ));
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

/// Whether `r` is an address a message of `kind` can go to; the error says what it must be.
pub fn check_recipient(kind: ChannelKind, r: &str) -> Result<(), &'static str> {
    match kind {
        ChannelKind::Email if r.len() <= 254 && r.parse::<lettre::Address>().is_ok() => Ok(()),
        ChannelKind::Email => Err("an email address"),
        ChannelKind::Webhook => check_url(r).map_err(|_| "an http(s) URL"),
        _ if is_e164(r) => Ok(()),
        _ => Err("a number in E.164 form, such as +972501234567"),
    }
}

/// A webhook URL's form (where it points is checked when it is sent to: see `guard`).
fn check_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL {
        return Err(format!("at most {MAX_URL} bytes"));
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err("must be https:// (or http://)".to_owned());
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".to_owned());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry a user name or password".to_owned());
    }
    Ok(())
}

/// A recipient as the message log shows it: enough to tell recipients apart, not enough to
/// reach them.
pub fn mask(kind: &str, recipient: &str) -> String {
    match ChannelKind::parse(kind) {
        Some(ChannelKind::Email) => match recipient.rsplit_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            None => "***".to_owned(),
        },
        Some(ChannelKind::Sms | ChannelKind::Whatsapp) => {
            let chars: Vec<char> = recipient.chars().collect();
            if chars.len() < 8 {
                return "***".to_owned();
            }
            let head: String = chars[..4].iter().collect();
            let tail: String = chars[chars.len() - 2..].iter().collect();
            format!("{head}{}{tail}", "*".repeat(chars.len() - 6))
        }
        // Paths and queries often carry tokens: only the origin is shown.
        Some(ChannelKind::Webhook) | None => match reqwest::Url::parse(recipient) {
            Ok(u) => format!("{}/…", u.origin().ascii_serialization()),
            Err(_) => "***".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(v: serde_json::Value) -> ChannelSpec {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
    }

    fn paths(s: &ChannelSpec) -> Vec<String> {
        s.check()
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.path)
            .collect()
    }

    #[test]
    fn channels_are_checked_field_by_field() {
        let ok = spec(json!({"name": "Gabbai", "kind": "email", "to": ["gabbai@example.org"]}));
        assert_eq!(paths(&ok), Vec::<String>::new());
        assert_eq!(ok.route, Route::default());
        let bad = spec(json!({"name": "", "kind": "sms", "to": ["0501234567", "+972501234567"],
            "url": "https://x.example", "route": {"events": []},
            "quiet_hours": {"start": "25:00", "end": "07:00", "days": [7]}, "timezone": "Mars/Base"}));
        assert_eq!(
            paths(&bad),
            [
                "name",
                "url",
                "to[0]",
                "route.events",
                "quiet_hours",
                "quiet_hours.days",
                "timezone"
            ]
        );
        let hook = spec(json!({"name": "Ops", "kind": "webhook", "url": "ftp://x.example/h"}));
        assert_eq!(paths(&hook), ["url"]);
        let hook = spec(json!({"name": "Ops", "kind": "webhook", "url": "https://u:p@x.example/h"}));
        assert_eq!(paths(&hook), ["url"]);
        let hook = spec(json!({"name": "Ops", "kind": "webhook"}));
        assert_eq!(paths(&hook), ["url"]);
        assert!(serde_json::from_value::<ChannelSpec>(json!({"name": "x", "kind": "pager"})).is_err());
    }

    #[test]
    fn secrets_are_standard_webhooks_secrets() {
        let s = new_secret();
        let key = s.strip_prefix("whsec_").unwrap_or_default();
        assert_eq!(data_encoding::BASE64.decode(key.as_bytes()).map(|k| k.len()), Ok(32));
        assert_ne!(new_secret(), s);
    }

    #[test]
    fn the_log_masks_recipients() {
        assert_eq!(mask("email", "gabbai@example.org"), "g***@example.org");
        assert_eq!(mask("sms", "+972501234567"), "+972*******67");
        assert_eq!(mask("whatsapp", "+12"), "***");
        assert_eq!(
            mask("webhook", "https://hooks.example.org/T0/B1/secret?x=1"),
            "https://hooks.example.org/…"
        );
    }
}
