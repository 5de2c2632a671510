//! The screen's content bundle: kept on disk, replaced only by a newer bundle that checks out.
//!
//! The control plane announces each bundle version over MQTT ([`BundleNotice`] on
//! `down/bundle`, with a device token); [`keep_current`] fetches a version it does not have
//! with `If-None-Match`, checks the body (size, SHA-256 against the response header, format,
//! device id) and only then stores it. A failed or refused fetch never touches the bundle in
//! use, so the screen keeps drawing its last good content while offline or when a download
//! is damaged.
//!
//! On disk ([`BundleStore`], under the agent's state directory):
//!
//! ```text
//! bundle/<sha256>.json   bundles by hash (the current one and the one before it)
//! bundle/current         the hash of the bundle in use, replaced atomically
//! ```
//!
//! `refresh_content` asks [`keep_current`] through a [`Refresher`] to fetch the bundle in full
//! now, without `If-None-Match`, and answers with the hash stored or the reason it failed.
//!
//! A bundle file is written before `current` names it, and `current` is replaced by rename,
//! so a crash at any point leaves a complete bundle in use. At start the current bundle is
//! checked against its hash; if it does not check out, the newest other stored bundle that
//! does is used.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use luach_content::bundle::{MAX_BUNDLE_BYTES, sha256_hex};
use luach_content::{Bundle, BundleError};
use luach_pki::{FileMode, write_atomic};
use luach_schemas::DeviceId;
use luach_schemas::messages::BundleNotice;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;

pub use luach_content::bundle::{DEVICE_TOKEN_HEADER, SHA256_HEADER};
/// Fetch attempts for one notice before waiting for the next notice.
const ATTEMPTS: u32 = 8;

/// One `refresh_content`: where to fetch, with which token, and where to answer.
#[derive(Debug)]
struct Refresh {
    path: String,
    token: String,
    reply: oneshot::Sender<Result<String, String>>,
}

/// Asks the running [`keep_current`] to fetch the bundle in full now.
#[derive(Debug, Clone)]
pub struct Refresher(mpsc::Sender<Refresh>);

impl Refresher {
    /// A refresher and the receiving end for [`keep_current`].
    pub fn new() -> (Self, RefreshRequests) {
        let (tx, rx) = mpsc::channel(4);
        (Self(tx), RefreshRequests(rx))
    }

    /// Fetches, checks and stores the bundle; its SHA-256, or why not.
    pub async fn refresh(&self, path: &str, token: &str) -> Result<String, String> {
        // The token it carries goes nowhere else.
        if path != luach_content::bundle::FETCH_PATH {
            return Err(format!("refusing to fetch the bundle from {path:?}"));
        }
        let (reply, answer) = oneshot::channel();
        let request = Refresh {
            path: path.to_owned(),
            token: token.to_owned(),
            reply,
        };
        self.0
            .send(request)
            .await
            .map_err(|_| "the bundle keeper has stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the bundle keeper stopped before answering".to_owned())?
    }
}

/// The receiving end of a [`Refresher`].
#[derive(Debug)]
pub struct RefreshRequests(mpsc::Receiver<Refresh>);

/// A bundle in use: its hash and content.
#[derive(Debug, Clone, PartialEq)]
pub struct Current {
    pub sha256: String,
    pub bundle: Bundle,
}

/// Bundles on disk.
#[derive(Debug, Clone)]
pub struct BundleStore {
    dir: PathBuf,
    device: DeviceId,
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl BundleStore {
    /// The store of `device` under `state_dir/bundle`.
    pub fn new(state_dir: &Path, device: DeviceId) -> Self {
        Self {
            dir: state_dir.join("bundle"),
            device,
        }
    }

    fn file(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}.json"))
    }

    /// Reads and checks the stored bundle named `sha256`.
    fn read(&self, sha256: &str) -> Result<Current, String> {
        let path = self.file(sha256);
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let bundle = Bundle::parse(&bytes, Some(sha256), Some(self.device.as_str()))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Current {
            sha256: sha256.to_owned(),
            bundle,
        })
    }

    /// The last good bundle: the current one if it checks out, else the newest stored one
    /// that does. `None` when there is none (a new screen).
    pub fn load(&self) -> Option<Current> {
        let named = std::fs::read_to_string(self.dir.join("current"))
            .ok()
            .map(|s| s.trim().to_owned());
        if let Some(sha) = named.as_deref().filter(|s| is_sha256(s)) {
            match self.read(sha) {
                Ok(current) => return Some(current),
                Err(e) => tracing::error!(error = %e, "current bundle is damaged; trying older ones"),
            }
        }
        let mut candidates: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(&self.dir)
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let sha = name.strip_suffix(".json").filter(|s| is_sha256(s))?.to_owned();
                let modified = entry.metadata().and_then(|m| m.modified()).ok()?;
                Some((modified, sha))
            })
            .filter(|(_, sha)| Some(sha.as_str()) != named.as_deref())
            .collect();
        candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
        candidates.into_iter().find_map(|(_, sha)| self.read(&sha).ok())
    }

    /// Stores checked bundle bytes and makes them current; keeps the previous bundle and
    /// removes older ones.
    pub fn save(&self, sha256: &str, bytes: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let previous = std::fs::read_to_string(self.dir.join("current"))
            .ok()
            .map(|s| s.trim().to_owned());
        write_atomic(&self.file(sha256), bytes, FileMode::Public).map_err(std::io::Error::other)?;
        write_atomic(&self.dir.join("current"), sha256.as_bytes(), FileMode::Public).map_err(std::io::Error::other)?;
        let keep = [Some(sha256.to_owned()), previous];
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.filter_map(Result::ok) {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(sha) = name.strip_suffix(".json") else {
                    continue;
                };
                if is_sha256(sha) && !keep.iter().flatten().any(|k| k == sha) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(())
    }
}

/// Why a fetch did not produce a new bundle.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the control plane refused the device token (HTTP {0}); waiting for the next notice")]
    Refused(u16),
    #[error("HTTP {0}")]
    Status(u16),
    #[error("response has no {SHA256_HEADER} header")]
    NoHash,
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("storing the bundle: {0}")]
    Store(#[from] std::io::Error),
}

impl FetchError {
    /// Whether trying again with the same notice can help.
    fn retryable(&self) -> bool {
        match self {
            Self::Http(_) | Self::Store(_) => true,
            Self::Status(s) => *s >= 500 || *s == 429,
            // A damaged download may come through whole next time.
            Self::Bundle(BundleError::Hash { .. } | BundleError::Json(_)) | Self::NoHash => true,
            Self::Refused(_) | Self::Bundle(_) => false,
        }
    }
}

/// Fetches bundles named in notices and keeps the last good one.
#[derive(Debug)]
pub struct Fetcher {
    http: reqwest::Client,
    server: String,
    store: BundleStore,
}

impl Fetcher {
    pub fn new(server: &str, store: BundleStore) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            http,
            server: server.trim_end_matches('/').to_owned(),
            store,
        })
    }

    /// One fetch for `notice`; `Ok(None)` when the server says `have` is current.
    pub async fn fetch(&self, notice: &BundleNotice, have: Option<&str>) -> Result<Option<Current>, FetchError> {
        let mut req = self
            .http
            .get(format!("{}{}", self.server, notice.path))
            .header(DEVICE_TOKEN_HEADER, &notice.token);
        if let Some(sha) = have {
            req = req.header(reqwest::header::IF_NONE_MATCH, format!("\"{sha}\""));
        }
        let mut resp = req.send().await?;
        let status = resp.status().as_u16();
        match status {
            304 => return Ok(None),
            200 => {}
            401 | 403 | 404 => return Err(FetchError::Refused(status)),
            other => return Err(FetchError::Status(other)),
        }
        let sha = resp
            .headers()
            .get(SHA256_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|s| is_sha256(s))
            .map(str::to_owned)
            .ok_or(FetchError::NoHash)?;
        // Read at most the limit (plus one byte to notice a larger body).
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_BUNDLE_BYTES {
                return Err(BundleError::TooLarge(body.len()).into());
            }
        }
        let bundle = Bundle::parse(&body, Some(&sha), Some(self.store.device.as_str()))?;
        debug_assert_eq!(sha256_hex(&body), sha);
        self.store.save(&sha, &body)?;
        Ok(Some(Current { sha256: sha, bundle }))
    }
}

/// Keeps the screen's bundle current until `shutdown`: publishes the last good bundle on
/// `current` at once, then fetches each announced version it does not have.
pub async fn keep_current(
    fetcher: Fetcher,
    mut notices: watch::Receiver<Option<BundleNotice>>,
    current: watch::Sender<Option<Arc<Current>>>,
    mut refreshes: RefreshRequests,
    shutdown: CancellationToken,
) {
    if let Some(stored) = fetcher.store.load() {
        tracing::info!(sha256 = %stored.sha256, "showing the stored bundle");
        current.send_replace(Some(Arc::new(stored)));
    }
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = notices.changed() => if changed.is_err() { return },
            Some(refresh) = refreshes.0.recv() => {
                let notice = BundleNotice {
                    sha256: String::new(),
                    path: refresh.path,
                    token: refresh.token,
                    token_expires_at: chrono::Utc::now(),
                };
                let answer = match fetcher.fetch(&notice, None).await {
                    Ok(Some(fresh)) => {
                        tracing::info!(sha256 = %fresh.sha256, "bundle fetched again on request");
                        let sha = fresh.sha256.clone();
                        current.send_replace(Some(Arc::new(fresh)));
                        Ok(sha)
                    }
                    Ok(None) => Err("the control plane answered 304 to a fetch without If-None-Match".to_owned()),
                    Err(e) => Err(format!("fetching the bundle: {e}")),
                };
                let _ = refresh.reply.send(answer);
                continue;
            }
        }
        let Some(notice) = notices.borrow_and_update().clone() else {
            continue;
        };
        let have = current.borrow().as_ref().map(|c| c.sha256.clone());
        if have.as_deref() == Some(notice.sha256.as_str()) {
            continue;
        }
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        for attempt in 1..=ATTEMPTS {
            match fetcher.fetch(&notice, have.as_deref()).await {
                Ok(Some(fresh)) => {
                    tracing::info!(sha256 = %fresh.sha256, "new bundle in use");
                    current.send_replace(Some(Arc::new(fresh)));
                    break;
                }
                Ok(None) => break,
                Err(e) if e.retryable() && attempt < ATTEMPTS => {
                    let delay = backoff.next_delay(&mut rand::rng());
                    tracing::warn!(error = %e, attempt, retry_in_ms = delay.as_millis() as u64, "bundle fetch failed; keeping the current bundle");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        // A newer notice replaces this one.
                        _ = notices.changed() => break,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "bundle fetch failed; keeping the current bundle");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(device: &str, marker: &str) -> Vec<u8> {
        let b = Bundle {
            format: luach_content::bundle::FORMAT,
            device_id: device.into(),
            tenant_id: marker.into(),
            synagogue: None,
            announcements: Vec::new(),
            timers: Vec::new(),
            memorials: Vec::new(),
            shiurim: Vec::new(),
            aliyot: Vec::new(),
            board: Default::default(),
        };
        b.to_bytes()
    }

    fn store(dir: &Path) -> BundleStore {
        BundleStore::new(dir, DeviceId::parse("lobby1").unwrap_or_else(|e| panic!("{e}")))
    }

    #[test]
    fn the_last_good_bundle_survives_damage() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let s = store(dir.path());
        assert_eq!(s.load(), None);
        let (a, b, c) = (bundle("lobby1", "a"), bundle("lobby1", "b"), bundle("lobby1", "c"));
        for bytes in [&a, &b, &c] {
            s.save(&sha256_hex(bytes), bytes).unwrap_or_else(|e| panic!("{e}"));
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(s.load().map(|c| c.bundle.tenant_id), Some("c".to_owned()));
        // Only the current bundle and the one before it are kept.
        assert!(!s.file(&sha256_hex(&a)).exists());
        // A damaged current bundle falls back to the previous one.
        std::fs::write(s.file(&sha256_hex(&c)), b"{\"format\":1,").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.load().map(|c| c.bundle.tenant_id), Some("b".to_owned()));
        // A garbled pointer too.
        std::fs::write(s.dir.join("current"), b"../../etc/passwd").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.load().map(|c| c.bundle.tenant_id), Some("b".to_owned()));
    }

    #[test]
    fn another_devices_bundle_is_not_used() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let s = store(dir.path());
        let other = bundle("hall2", "x");
        s.save(&sha256_hex(&other), &other).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.load(), None);
    }
}
