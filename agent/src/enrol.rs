//! Getting and renewing the device certificate through the control plane's enrolment API.
//!
//! - [`Enroller::enrol_with_token`]: a bulk token enrols the device at once.
//! - [`Enroller::enrol_with_claim_code`]: the device gets a claim code, shows it (the caller
//!   decides how: the agent prints `claim code: XXXX-XXXX`), and polls until someone claims it.
//! - [`Enroller::renew`]: a new certificate for the same key.
//!
//! Transient failures (network, 429, 5xx) are retried with backoff until shutdown; a refusal
//! (any other 4xx) is returned as [`EnrolError::Refused`] with the server's code and message.

use std::time::Duration;

use chrono::{DateTime, Utc};
use luach_pki::DeviceKey;
use luach_schemas::DeviceId;
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::credentials::{CredentialStore, PendingEnrolment, TlsIdentity};

/// Longest wait between retries of a transient failure.
const MAX_RETRY: Duration = Duration::from_secs(60);

/// Why enrolment or renewal did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    /// The control plane refused (4xx other than 429): retrying the same request will not help.
    #[error("refused by the control plane ({status} {code}): {message}")]
    Refused { status: u16, code: String, message: String },
    /// Shutdown was requested.
    #[error("stopped")]
    Stopped,
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// A certificate the control plane issued.
#[derive(Clone)]
pub struct Issued {
    pub identity: TlsIdentity,
    /// Where the broker's mutual-TLS listener is, as the control plane sees it.
    pub mqtt_tls: Option<(String, u16)>,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("mqtt_tls", &self.mqtt_tls)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorInner,
}

#[derive(Deserialize)]
struct ErrorInner {
    code: String,
    message: String,
}

#[derive(Deserialize)]
struct Endpoint {
    host: String,
    port: u16,
}

/// Every answer of the enrolment API: pending (claim code flow) or issued.
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    status: String,
    /// A renewal nonce (`POST /devices/{id}/certificate/nonce`).
    #[serde(default)]
    nonce: Option<String>,
    claim_code: Option<String>,
    poll_secret: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    poll_after_secs: Option<u64>,
    certificate_pem: Option<String>,
    ca_pem: Option<String>,
    mqtt_tls: Option<Endpoint>,
}

/// One HTTP exchange's outcome.
enum Reply {
    Ok(u16, Answer),
    /// Retry after this long.
    Retry(Duration),
}

/// Talks to the enrolment API of one control plane.
#[derive(Debug, Clone)]
pub struct Enroller {
    http: reqwest::Client,
    base: String,
    platform: String,
    agent_version: String,
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

impl Enroller {
    /// An enroller for the control plane at `server` (`http://host:port`).
    pub fn new(server: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| anyhow::anyhow!("building the http client: {e}"))?;
        Ok(Self::with_client(http, server))
    }

    /// An enroller sharing `http` (the simulator's many screens use one connection pool).
    pub fn with_client(http: reqwest::Client, server: &str) -> Self {
        Self {
            http,
            base: server.trim_end_matches('/').to_owned(),
            platform: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
            agent_version: crate::sampler::agent_version().to_owned(),
        }
    }

    async fn exchange(&self, req: reqwest::RequestBuilder) -> Result<Reply, EnrolError> {
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "control plane unreachable");
                return Ok(Reply::Retry(Duration::from_secs(5)));
            }
        };
        let status = resp.status().as_u16();
        if status == 429 || status >= 500 {
            let wait = retry_after(&resp).unwrap_or(Duration::from_secs(5));
            tracing::warn!(status, retry_in_s = wait.as_secs(), "control plane busy");
            return Ok(Reply::Retry(wait.min(MAX_RETRY)));
        }
        let text = resp
            .text()
            .await
            .map_err(|e| anyhow::anyhow!("reading the answer: {e}"))?;
        if (200..300).contains(&status) {
            let answer: Envelope<Answer> =
                serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("unexpected answer ({status}): {e}"))?;
            return Ok(Reply::Ok(status, answer.data));
        }
        let (code, message) = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| (b.error.code, b.error.message))
            .unwrap_or_else(|_| ("unknown".into(), text.chars().take(200).collect()));
        Err(EnrolError::Refused { status, code, message })
    }

    /// Sends `make()` until it gets an answer, waiting out transient failures.
    async fn until_answered(
        &self,
        shutdown: &CancellationToken,
        make: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<(u16, Answer), EnrolError> {
        let mut backoff = Backoff::new(Duration::from_secs(1), MAX_RETRY);
        loop {
            if shutdown.is_cancelled() {
                return Err(EnrolError::Stopped);
            }
            match self.exchange(make()).await? {
                Reply::Ok(status, answer) => return Ok((status, answer)),
                Reply::Retry(at_least) => {
                    let wait = backoff.next_delay(&mut rand::rng()).max(at_least);
                    tokio::select! {
                        _ = shutdown.cancelled() => return Err(EnrolError::Stopped),
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    fn issued(key: &DeviceKey, answer: Answer) -> Result<Issued, EnrolError> {
        let (Some(cert_pem), Some(ca_pem)) = (answer.certificate_pem, answer.ca_pem) else {
            return Err(anyhow::anyhow!("the control plane issued no certificate").into());
        };
        key.check_certificate(crate::credentials::first_block(&cert_pem))
            .map_err(|e| anyhow::anyhow!("the issued certificate is not for this device's key: {e}"))?;
        Ok(Issued {
            identity: TlsIdentity {
                ca_pem,
                cert_pem,
                key_pem: key.to_pem(),
            },
            mqtt_tls: answer.mqtt_tls.map(|e| (e.host, e.port)),
        })
    }

    fn request_body(&self, device: &DeviceId, csr: &str, token: Option<&str>) -> serde_json::Value {
        let mut body = json!({
            "device_id": device.as_str(),
            "csr_pem": csr,
            "platform": self.platform,
            "agent_version": self.agent_version,
        });
        if let Some(token) = token {
            body["enrolment_token"] = json!(token);
        }
        body
    }

    /// Enrols with a tenant's bulk token.
    pub async fn enrol_with_token(
        &self,
        device: &DeviceId,
        key: &DeviceKey,
        token: &str,
        shutdown: &CancellationToken,
    ) -> Result<Issued, EnrolError> {
        let csr = key.csr_pem(device.as_str()).map_err(anyhow::Error::from)?;
        let body = self.request_body(device, &csr, Some(token));
        let url = format!("{}/api/v1/enrolment/requests", self.base);
        let (_, answer) = self
            .until_answered(shutdown, || self.http.post(&url).json(&body))
            .await?;
        Self::issued(key, answer)
    }

    /// Enrols with a claim code: requests one (or resumes the one in `store`), hands it to
    /// `show` (again whenever a new one replaces an expired one), and polls until claimed.
    pub async fn enrol_with_claim_code(
        &self,
        device: &DeviceId,
        key: &DeviceKey,
        store: &CredentialStore,
        show: &(dyn Fn(&str, DateTime<Utc>) + Sync),
        shutdown: &CancellationToken,
    ) -> Result<Issued, EnrolError> {
        let csr = key.csr_pem(device.as_str()).map_err(anyhow::Error::from)?;
        let requests = format!("{}/api/v1/enrolment/requests", self.base);
        let poll_url = format!("{requests}/{device}");
        let mut pending = store.pending()?.filter(|p| p.expires_at > Utc::now());
        let mut shown = None;
        let mut poll_after = Duration::from_secs(3);
        loop {
            let current = match pending.clone() {
                Some(p) => p,
                None => {
                    let body = self.request_body(device, &csr, None);
                    let (_, answer) = self
                        .until_answered(shutdown, || self.http.post(&requests).json(&body))
                        .await?;
                    let (Some(claim_code), Some(poll_secret), Some(expires_at)) =
                        (answer.claim_code, answer.poll_secret, answer.expires_at)
                    else {
                        return Err(anyhow::anyhow!("the control plane sent no claim code").into());
                    };
                    poll_after = Duration::from_secs(answer.poll_after_secs.unwrap_or(3).clamp(1, 300));
                    let p = PendingEnrolment {
                        claim_code,
                        poll_secret,
                        expires_at,
                    };
                    store.save_pending(&p)?;
                    pending = Some(p.clone());
                    p
                }
            };
            if shown.as_deref() != Some(current.claim_code.as_str()) {
                show(&current.claim_code, current.expires_at);
                shown = Some(current.claim_code.clone());
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Err(EnrolError::Stopped),
                _ = tokio::time::sleep(poll_after) => {}
            }
            let polled = self
                .until_answered(shutdown, || self.http.get(&poll_url).bearer_auth(&current.poll_secret))
                .await;
            match polled {
                Ok((200, answer)) if answer.status == "issued" => {
                    let issued = Self::issued(key, answer)?;
                    store.clear_pending()?;
                    return Ok(issued);
                }
                Ok((_, answer)) => {
                    if let Some(secs) = answer.poll_after_secs {
                        poll_after = Duration::from_secs(secs.clamp(1, 300));
                    }
                }
                // Expired (or forgotten by the server): ask for a new code.
                Err(EnrolError::Refused { status: 404, .. }) => {
                    tracing::info!(device_id = %device, "claim code expired; requesting a new one");
                    store.clear_pending()?;
                    pending = None;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Renews the certificate for the same key. Retries transient failures until shutdown.
    pub async fn renew(
        &self,
        device: &DeviceId,
        key: &DeviceKey,
        shutdown: &CancellationToken,
    ) -> Result<Issued, EnrolError> {
        // A fresh single-use nonce goes into the request's subject, so a request captured on
        // the way cannot be replayed for a later renewal.
        let nonce_url = format!("{}/api/v1/devices/{device}/certificate/nonce", self.base);
        let (_, answer) = self.until_answered(shutdown, || self.http.post(&nonce_url)).await?;
        let nonce = answer
            .nonce
            .ok_or_else(|| anyhow::anyhow!("the control plane sent no renewal nonce"))?;
        let csr = key
            .csr_pem_with_challenge(device.as_str(), &nonce)
            .map_err(anyhow::Error::from)?;
        let url = format!("{}/api/v1/devices/{device}/certificate", self.base);
        let body = json!({"csr_pem": csr});
        let (_, answer) = self
            .until_answered(shutdown, || self.http.post(&url).json(&body))
            .await?;
        Self::issued(key, answer)
    }
}
