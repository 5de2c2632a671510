//! Fetching a release's artifact: resumable, never past the signed length, checked as it
//! arrives.
//!
//! The partial file (`DIR/update/<sha256>.part`) survives restarts: a fetch first re-reads
//! what it holds through the [`ArtifactCheck`], then asks for the rest with an HTTP `Range`
//! request. A server that ignores the range is read from the start again; one that sends
//! more than the metadata's length is cut off at the first byte too many, and the file goes;
//! a file whose hash does not match goes too, so a bad download is never resumed.

use std::path::Path;
use std::time::Duration;

use luach_content::bundle::DEVICE_TOKEN_HEADER;
use luach_ota::{ArtifactCheck, OtaError, VerifiedRelease};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::UpdateError;

/// Longest wait for the next bytes of a download before it is abandoned (and resumed later).
pub const STALL_TIMEOUT: Duration = Duration::from_secs(60);
const READ_CHUNK: usize = 64 * 1024;

/// Bytes a fetch received from the network (not counting what the partial file held).
pub type Received = u64;

/// Completes `part` to the artifact of `release` from `url` (with the device `token`);
/// returns the bytes fetched over the network. On success `part` holds exactly the
/// artifact, checked.
pub async fn fetch(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    part: &Path,
    release: &VerifiedRelease,
    shutdown: &CancellationToken,
) -> Result<Received, UpdateError> {
    let length = release.artifact().length;
    let (mut check, mut have) = resume(part, release).await?;
    if have == length {
        return finish(check, part).await.map(|()| 0);
    }
    let mut request = http.get(url).header(DEVICE_TOKEN_HEADER, token);
    if have > 0 {
        request = request.header(reqwest::header::RANGE, format!("bytes={have}-"));
    }
    let mut response = request
        .send()
        .await
        .map_err(|e| UpdateError::Download(format!("GET {url}: {e}")))?;
    let status = response.status();
    match status.as_u16() {
        206 if have > 0 => {
            let start = content_range_start(&response);
            if start != Some(have) {
                return Err(UpdateError::Download(format!(
                    "the server resumed at {start:?}, not at byte {have}"
                )));
            }
        }
        200 | 206 => {
            if have > 0 {
                tracing::info!(have, "the server sent the whole artifact again; starting over");
            }
            check = ArtifactCheck::new(release);
            have = 0;
            truncate(part).await?;
        }
        416 => {
            remove(part).await;
            return Err(UpdateError::Download(format!(
                "GET {url}: the server refused the range; starting over next time"
            )));
        }
        _ => {
            return Err(UpdateError::Download(format!("GET {url}: HTTP {status}")));
        }
    }
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(part)
        .await
        .map_err(|e| io("opening", part, e))?;
    let mut received: Received = 0;
    loop {
        let chunk = tokio::select! {
            _ = shutdown.cancelled() => return Err(UpdateError::Download("stopped".into())),
            chunk = tokio::time::timeout(STALL_TIMEOUT, response.chunk()) => chunk,
        };
        let chunk = match chunk {
            Err(_) => {
                return Err(UpdateError::Download(format!(
                    "no data for {} s",
                    STALL_TIMEOUT.as_secs()
                )));
            }
            Ok(Err(e)) => return Err(UpdateError::Download(format!("reading the artifact: {e}"))),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(chunk))) => chunk,
        };
        if let Err(e) = check.update(&chunk) {
            drop(file);
            remove(part).await;
            return Err(e.into());
        }
        file.write_all(&chunk).await.map_err(|e| io("writing", part, e))?;
        received += chunk.len() as u64;
        have += chunk.len() as u64;
    }
    file.sync_all().await.map_err(|e| io("flushing", part, e))?;
    drop(file);
    tracing::info!(received, have, length, "artifact fetched");
    finish(check, part).await.map(|()| received)
}

/// Feeds what `part` already holds into a fresh check; a file longer than the artifact (or
/// unreadable) is dropped.
async fn resume(part: &Path, release: &VerifiedRelease) -> Result<(ArtifactCheck, u64), UpdateError> {
    let mut check = ArtifactCheck::new(release);
    let mut file = match tokio::fs::File::open(part).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((check, 0)),
        Err(e) => return Err(io("opening", part, e)),
    };
    let mut have = 0u64;
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = file.read(&mut buf).await.map_err(|e| io("reading", part, e))?;
        if n == 0 {
            break;
        }
        if check.update(&buf[..n]).is_err() {
            drop(file);
            remove(part).await;
            return Ok((ArtifactCheck::new(release), 0));
        }
        have += n as u64;
    }
    Ok((check, have))
}

async fn finish(check: ArtifactCheck, part: &Path) -> Result<(), UpdateError> {
    check.finish().map_err(|e: OtaError| {
        let _ = std::fs::remove_file(part);
        UpdateError::from(e)
    })
}

fn content_range_start(response: &reqwest::Response) -> Option<u64> {
    let value = response.headers().get(reqwest::header::CONTENT_RANGE)?.to_str().ok()?;
    let range = value.strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
}

async fn truncate(part: &Path) -> Result<(), UpdateError> {
    match tokio::fs::File::create(part).await {
        Ok(_) => Ok(()),
        Err(e) => Err(io("truncating", part, e)),
    }
}

async fn remove(part: &Path) {
    let _ = tokio::fs::remove_file(part).await;
}

fn io(what: &str, path: &Path, e: std::io::Error) -> UpdateError {
    UpdateError::Io(format!("{what} {}: {e}", path.display()))
}
