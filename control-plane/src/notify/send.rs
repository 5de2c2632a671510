//! The senders: email over SMTP (`lettre`), SMS and WhatsApp through Twilio's Messages API, and
//! webhooks signed as Standard Webhooks describe. Each attempt ends in an [`Outcome`]: sent,
//! worth retrying, or failed for good.
//!
//! Twilio is spoken with `reqwest` rather than the `twilio-async` crate: that crate has no way
//! to point it at another base URL (so it cannot be tested against a local double, nor sent
//! through a proxy), and it brings a second HTTP stack (hyper 0.14 with OpenSSL) beside the
//! one the server already has. The API used is one form POST (docs/architecture.md).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::guard::{Guard, GuardedResolver, refusal};
use crate::config::{NotifyConfig, SmtpConfig, SmtpSecurity, TwilioConfig};

/// Redirects a webhook may take (each hop checked by the guard).
pub const MAX_REDIRECTS: usize = 3;
/// How much of an error answer is kept in the log.
const ERROR_EXCERPT: usize = 300;

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Taken by the receiving end; what it answered.
    Sent(String),
    /// Not taken; another attempt may succeed.
    Retry(String),
    /// Not taken and never will be; `disable` stops the channel (a webhook answering 410).
    Fail { why: String, disable: bool },
}

impl Outcome {
    /// Failed for good, the channel left as it is.
    pub fn fail(why: impl Into<String>) -> Self {
        Self::Fail {
            why: why.into(),
            disable: false,
        }
    }
}

/// Every sender the installation is configured for.
#[derive(Clone)]
pub struct Senders {
    pub email: Option<Arc<EmailSender>>,
    pub twilio: Option<Arc<TwilioSender>>,
    pub webhook: Arc<WebhookSender>,
}

impl Senders {
    pub fn from_config(c: &NotifyConfig) -> anyhow::Result<Self> {
        let timeout = Duration::from_secs(c.timeout_secs);
        Ok(Self {
            email: c
                .smtp
                .as_ref()
                .map(|s| EmailSender::new(s, timeout))
                .transpose()?
                .map(Arc::new),
            twilio: c
                .twilio
                .as_ref()
                .map(|t| TwilioSender::new(t, timeout))
                .transpose()?
                .map(Arc::new),
            webhook: Arc::new(WebhookSender::new(Guard::from_config(&c.webhooks), timeout)?),
        })
    }
}

/// Email through one SMTP server.
pub struct EmailSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl EmailSender {
    pub fn new(c: &SmtpConfig, timeout: Duration) -> anyhow::Result<Self> {
        let builder = match c.security {
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&c.host)?,
            SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&c.host)?,
            SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&c.host),
        };
        let port = c.port.unwrap_or(match c.security {
            SmtpSecurity::Tls => 465,
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::None => 25,
        });
        let mut builder = builder.port(port).timeout(Some(timeout));
        if let (Some(user), Some(password)) = (&c.username, &c.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose_secret().to_owned()));
        }
        Ok(Self {
            transport: builder.build(),
            from: c.from.parse()?,
        })
    }

    pub async fn send(&self, to: &str, subject: &str, text: &str) -> Outcome {
        let to: Mailbox = match to.parse() {
            Ok(m) => m,
            Err(e) => return Outcome::fail(format!("not an email address: {e}")),
        };
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(text.to_owned());
        let message = match message {
            Ok(m) => m,
            Err(e) => return Outcome::fail(format!("the message could not be built: {e}")),
        };
        match self.transport.send(message).await {
            Ok(r) => Outcome::Sent(format!("{} {}", r.code(), r.message().collect::<Vec<_>>().join(" "))),
            Err(e) if e.is_permanent() => Outcome::fail(format!("the mail server refused it: {e}")),
            Err(e) => Outcome::Retry(format!("SMTP: {e}")),
        }
    }
}

/// SMS and WhatsApp through Twilio's Messages API.
pub struct TwilioSender {
    client: reqwest::Client,
    messages_url: reqwest::Url,
    account_sid: String,
    auth_token: SecretString,
    pub sms_from: Option<String>,
    pub whatsapp_from: Option<String>,
}

impl TwilioSender {
    pub fn new(c: &TwilioConfig, timeout: Duration) -> anyhow::Result<Self> {
        let base = reqwest::Url::parse(&c.base_url)?;
        let messages_url = base.join(&format!("2010-04-01/Accounts/{}/Messages.json", c.account_sid))?;
        Ok(Self {
            client: reqwest::Client::builder().timeout(timeout).build()?,
            messages_url,
            account_sid: c.account_sid.clone(),
            auth_token: c.auth_token.clone(),
            sms_from: c.sms_from.clone(),
            whatsapp_from: c.whatsapp_from.clone(),
        })
    }

    /// Sends `body` to `to` (E.164), by WhatsApp when `whatsapp`.
    pub async fn send(&self, whatsapp: bool, to: &str, body: &str) -> Outcome {
        let from = if whatsapp { &self.whatsapp_from } else { &self.sms_from };
        let Some(from) = from else {
            let what = if whatsapp { "whatsapp_from" } else { "sms_from" };
            return Outcome::fail(format!("notify.twilio.{what} is not configured"));
        };
        let (to, from) = if whatsapp {
            (format!("whatsapp:{to}"), format!("whatsapp:{from}"))
        } else {
            (to.to_owned(), from.clone())
        };
        let sent = self
            .client
            .post(self.messages_url.clone())
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .form(&[("To", to.as_str()), ("From", from.as_str()), ("Body", body)])
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return Outcome::Retry(format!("Twilio: {}", without_url(&e))),
        };
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            let sid = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["sid"].as_str().map(str::to_owned));
            return match sid {
                Some(sid) => Outcome::Sent(sid),
                None => Outcome::Retry(format!("Twilio answered {status} without a message SID")),
            };
        }
        // Twilio's errors: {"code": 21211, "message": "…", "more_info": "…", "status": 400}.
        let detail = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .map(|v| format!("{} {}", v["code"], v["message"].as_str().unwrap_or_default()))
            .unwrap_or_else(|| excerpt(&text));
        let why = format!("Twilio answered {status}: {detail}");
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Outcome::Retry(why)
        } else {
            Outcome::fail(why)
        }
    }
}

/// Webhooks: a POST of the stored body with Standard Webhooks' headers, to an address the
/// [`Guard`] allows, following redirects itself.
pub struct WebhookSender {
    client: reqwest::Client,
    guard: Arc<Guard>,
}

type HmacSha256 = Hmac<Sha256>;

/// `v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` under `secret`
/// (`whsec_` and the base64 key); `None` for a malformed secret.
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = data_encoding::BASE64
        .decode(secret.strip_prefix("whsec_")?.as_bytes())
        .ok()?;
    let mut mac = HmacSha256::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Some(format!(
        "v1,{}",
        data_encoding::BASE64.encode(&mac.finalize().into_bytes())
    ))
}

impl WebhookSender {
    pub fn new(guard: Guard, timeout: Duration) -> anyhow::Result<Self> {
        let guard = Arc::new(guard);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would connect on the server's behalf, past the guard.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver(Arc::clone(&guard))))
            .user_agent(concat!("Luach-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, guard })
    }

    /// Sends `body` (message `id`) to `url`, signed with `secret` at `now`.
    pub async fn send(&self, url: &str, secret: &str, id: &str, body: &str, now: DateTime<Utc>) -> Outcome {
        let timestamp = now.timestamp();
        let Some(signature) = signature(secret, id, timestamp, body) else {
            return Outcome::fail("the channel's signing secret is malformed; rotate it");
        };
        let mut url = match reqwest::Url::parse(url) {
            Ok(u) => u,
            Err(e) => return Outcome::fail(format!("not a URL: {e}")),
        };
        for hop in 0..=MAX_REDIRECTS {
            if let Err(r) = self.guard.check_url(&url) {
                return Outcome::fail(format!("refused: {r}"));
            }
            let sent = self
                .client
                .post(url.clone())
                .header("content-type", "application/json")
                .header("webhook-id", id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", &signature)
                .body(body.to_owned())
                .send()
                .await;
            let response = match sent {
                Ok(r) => r,
                Err(e) => {
                    return match refusal(&e) {
                        Some(r) => Outcome::fail(format!("refused: {r}")),
                        None => Outcome::Retry(without_url(&e)),
                    };
                }
            };
            let status = response.status();
            if status.is_redirection() {
                let next = response
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url.join(l).ok());
                match next {
                    Some(next) if hop < MAX_REDIRECTS => {
                        url = next;
                        continue;
                    }
                    Some(_) => return Outcome::Retry(format!("more than {MAX_REDIRECTS} redirects")),
                    None => return Outcome::Retry(format!("HTTP {status} without a usable Location")),
                }
            }
            if status.is_success() {
                return Outcome::Sent(format!("HTTP {}", status.as_u16()));
            }
            let text = excerpt(&response.text().await.unwrap_or_default());
            if status == StatusCode::GONE {
                return Outcome::Fail {
                    why: format!("HTTP 410 Gone: the receiver asked for no more messages {text}"),
                    disable: true,
                };
            }
            return Outcome::Retry(format!("HTTP {}: {text}", status.as_u16()));
        }
        Outcome::Retry(format!("more than {MAX_REDIRECTS} redirects"))
    }
}

/// The start of an answer's text, on one line.
fn excerpt(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    one_line.chars().take(ERROR_EXCERPT).collect()
}

/// A request error without its URL (a webhook's path may carry a token).
fn without_url(e: &reqwest::Error) -> String {
    let mut why = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        why = format!("{why}: {c}");
        cause = c.source();
    }
    why
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            signature(secret, id, 1_614_265_330, body).as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(signature("nope", id, 1, body), None);
    }
}
