//! The agent's real update path (`Updater::install`: verify, fetch over HTTP, stage, switch)
//! against every broken, forged or replayed release of `luach_ota::testing`, a server that
//! never stops sending, and an interrupted download that resumes where it stopped.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use luach_agent::update::install::{Installed, UpdaterSetup};
use luach_agent::update::layout::Link;
use luach_agent::update::{Journal, JournalFile, Layout, UpdateError, Updater};
use luach_ota::testing::{Case, Fixture, Tamper};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

const PATH: &str = "/api/v1/agent/releases/r1/artifact";
const OLD_BINARY: &[u8] = b"#!/bin/sh\necho old\n";

/// How the test server answers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Serve {
    /// The bytes, honouring `Range: bytes=N-`.
    Honest,
    /// Bytes without end.
    Endless,
    /// Announces the whole length but closes after this many bytes (first request only).
    DropAfter(usize),
}

/// A small HTTP/1.1 server for one artifact; counts the bytes it sent.
struct Server {
    url: String,
    sent: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
}

async fn serve(bytes: Vec<u8>, how: Serve) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let sent = Arc::new(AtomicU64::new(0));
    let requests = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(bytes);
    let (s, r) = (sent.clone(), requests.clone());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (bytes, sent, requests) = (bytes.clone(), s.clone(), r.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let first = requests.fetch_add(1, Ordering::SeqCst) == 0;
                let head = String::from_utf8_lossy(&head).to_lowercase();
                assert!(head.contains("x-luach-device-token: t0ken"), "{head}");
                let from: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("range: bytes="))
                    .and_then(|r| {
                        r.trim_end_matches('-')
                            .trim_end_matches("-\r")
                            .split('-')
                            .next()?
                            .parse()
                            .ok()
                    })
                    .unwrap_or(0);
                let mut body: &[u8] = &bytes[from.min(bytes.len())..];
                let status = if from > 0 {
                    format!(
                        "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {from}-{}/{}\r\n",
                        bytes.len() - 1,
                        bytes.len()
                    )
                } else {
                    "HTTP/1.1 200 OK\r\n".to_owned()
                };
                if how == Serve::Endless {
                    let _ = socket.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n").await;
                    let chunk = vec![0x5a; 64 * 1024];
                    while socket.write_all(&chunk).await.is_ok() {
                        sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                    }
                    return;
                }
                let header = format!("{status}Content-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                let _ = socket.write_all(header.as_bytes()).await;
                if let (Serve::DropAfter(n), true) = (how, first) {
                    body = &body[..n.min(body.len())];
                }
                if socket.write_all(body).await.is_ok() {
                    sent.fetch_add(body.len() as u64, Ordering::SeqCst);
                }
            });
        }
    });
    Server {
        url: format!("http://{addr}"),
        sent,
        requests,
    }
}

/// An install directory at the case's installed version, trusting the case's root, with the
/// case's counters in the journal.
fn screen(dir: &Path, case: &Case) -> Layout {
    let layout = Layout::new(dir.join("install"));
    let old = dir.join("old");
    std::fs::write(&old, OLD_BINARY).unwrap_or_else(|e| panic!("{e}"));
    let root = dir.join("root.pub");
    std::fs::write(&root, &case.root_pem).unwrap_or_else(|e| panic!("{e}"));
    let installed = case
        .policy
        .installed
        .clone()
        .unwrap_or_else(|| panic!("an installed version"));
    layout
        .install_first(&old, &installed, Some(&root))
        .unwrap_or_else(|e| panic!("{e}"));
    JournalFile::new(&layout.update_dir())
        .save(&Journal {
            highest_installed: case.policy.highest_installed.clone(),
            keys_floor: case.policy.keys_version_floor,
            ..Journal::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
    layout
}

fn updater(layout: &Layout, case: &Case, server: &Server) -> Updater {
    Updater::open(UpdaterSetup {
        install_dir: layout.root().to_owned(),
        trust: None,
        server: server.url.clone(),
        running: case.policy.installed.clone().unwrap_or_else(|| panic!("installed")),
        channel: case.policy.channel.clone(),
        fixed_now: Some(case.policy.now),
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Every file under `dir`, relative.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).map(Path::to_owned).unwrap_or(path));
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn every_tampered_release_is_refused_and_nothing_changes() {
    let fixture = Fixture::new();
    for &tamper in Tamper::ALL {
        let case = fixture.tampered(tamper);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let layout = screen(dir.path(), &case);
        let before = files(layout.root());
        let server = serve(case.artifact.clone(), Serve::Honest).await;
        let result = updater(&layout, &case, &server)
            .install("c1", &case.metadata, PATH, "t0ken", &CancellationToken::new())
            .await;
        let what = format!("{tamper:?} ({})", tamper.description());
        match (tamper, &result) {
            // The screen runs that version already: nothing to install, nothing changes.
            (Tamper::SameVersion, Ok(Installed::AlreadyRunning(_))) => {}
            (_, Err(UpdateError::Ota(e))) => assert_eq!(e.code(), tamper.expected(), "{what}: {e}"),
            _ => panic!("{what}: {result:?}"),
        }
        let installed = case.policy.installed.clone().unwrap_or_else(|| panic!("installed"));
        assert_eq!(layout.version(Link::Current).ok().flatten(), Some(installed), "{what}");
        assert_eq!(
            std::fs::read(layout.current_binary()).unwrap_or_default(),
            OLD_BINARY,
            "{what}"
        );
        // No slot, no partial download, no temporary file: only the journal may differ.
        let after: Vec<PathBuf> = files(layout.root())
            .into_iter()
            .filter(|p| !p.ends_with("journal.json"))
            .collect();
        let before: Vec<PathBuf> = before
            .iter()
            .filter(|p| !p.ends_with("journal.json"))
            .cloned()
            .collect();
        assert_eq!(after, before, "{what}");
        let journal = JournalFile::new(&layout.update_dir())
            .load()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            journal.pending.is_none() && journal.trial.is_none(),
            "{what}: {journal:?}"
        );
    }
}

#[tokio::test]
async fn a_server_that_never_stops_is_cut_off_at_the_signed_length() {
    let fixture = Fixture::new();
    let case = fixture.valid();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let layout = screen(dir.path(), &case);
    let server = serve(Vec::new(), Serve::Endless).await;
    let result = updater(&layout, &case, &server)
        .install("c1", &case.metadata, PATH, "t0ken", &CancellationToken::new())
        .await;
    match result {
        Err(UpdateError::Ota(e)) => assert_eq!(e.code(), luach_ota::ErrorCode::ArtifactTooLong, "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(layout.current_binary()).unwrap_or_default(), OLD_BINARY);
    assert!(
        !files(layout.root())
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".part")),
        "the overlong download is not kept"
    );
}

#[tokio::test]
async fn an_interrupted_download_resumes_and_the_new_version_is_switched_in() {
    let fixture = Fixture::new();
    let case = fixture.valid();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let layout = screen(dir.path(), &case);
    let half = case.artifact.len() / 2;
    let server = serve(case.artifact.clone(), Serve::DropAfter(half)).await;
    let updater = updater(&layout, &case, &server);
    let first = updater
        .install("c1", &case.metadata, PATH, "t0ken", &CancellationToken::new())
        .await;
    assert!(matches!(first, Err(UpdateError::Download(_))), "{first:?}");
    assert_eq!(layout.version(Link::Current).ok().flatten(), case.policy.installed);

    let second = updater
        .install("c2", &case.metadata, PATH, "t0ken", &CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let version = luach_ota::Version::new(1, 3, 0);
    assert_eq!(second, Installed::Switched(version.clone()));
    // Each byte crossed the network once.
    assert_eq!(server.sent.load(Ordering::SeqCst), case.artifact.len() as u64);
    assert_eq!(server.requests.load(Ordering::SeqCst), 2);
    assert_eq!(layout.version(Link::Current).ok().flatten(), Some(version.clone()));
    assert_eq!(layout.version(Link::Previous).ok().flatten(), case.policy.installed);
    assert_eq!(
        std::fs::read(layout.current_binary()).unwrap_or_default(),
        case.artifact
    );
    let journal = JournalFile::new(&layout.update_dir())
        .load()
        .unwrap_or_else(|e| panic!("{e}"));
    let trial = journal.trial.unwrap_or_else(|| panic!("a trial"));
    assert_eq!(
        (trial.command_id.as_str(), &trial.version, trial.starts),
        ("c2", &version, 0)
    );
    assert!(journal.pending.is_none());
    assert!(
        !files(layout.root())
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".part")),
        "the partial file is gone once the slot is made"
    );
    // While it is on trial, another update waits.
    let again = updater
        .install("c3", &case.metadata, PATH, "t0ken", &CancellationToken::new())
        .await;
    assert!(matches!(again, Err(UpdateError::Busy(_))), "{again:?}");
}
