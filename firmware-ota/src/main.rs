//! `luach-ota`: generate and rotate keys, sign and verify releases. Parses arguments and calls
//! the library; `verify` reports refusals as `refused (<code>): <message>` and exits 1.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::{DateTime, SubsecRound, Utc};
use clap::{Parser, Subcommand};
use luach_ota::{
    Artifact, Channel, KeyDir, KeyId, OtaError, Policy, Release, Target, TrustedRoot, VerifiedRelease, Version,
    inspect, parse_rfc3339, read_metadata_file, rfc3339_string, verify_artifact_file, verify_metadata,
    write_metadata_file,
};

#[derive(Debug, Parser)]
#[command(
    name = "luach-ota",
    version,
    about = "Signed over-the-air release metadata for Luach screens"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a root key, release keys and the root-signed key list version 1.
    Keygen {
        /// Directory to write the keys into (created if missing; existing key files are never
        /// overwritten).
        #[arg(long)]
        out: PathBuf,
        /// How many release keys to generate.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=32))]
        release_keys: u8,
        /// How many distinct release keys must sign a release.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..))]
        threshold: u8,
    },
    /// Sign a release with every authorised release key in the key directory.
    Sign(Sign),
    /// Verify a release as a screen does; exit 0 if it may be installed, 1 if refused.
    Verify(Verify),
    /// Print a metadata file's key list and release WITHOUT verifying anything.
    Inspect {
        /// The metadata file.
        metadata: PathBuf,
    },
    /// Replace the release keys (or add one with --keep-old); key list version + 1.
    Rotate {
        /// The key directory.
        #[arg(long)]
        keys: PathBuf,
        /// The root private key (default: KEYS/root.key).
        #[arg(long)]
        root_key: Option<PathBuf>,
        /// Keep the current release keys authorised and add one new key.
        #[arg(long)]
        keep_old: bool,
    },
    /// Revoke a release key; key list version + 1.
    Revoke {
        /// The key directory.
        #[arg(long)]
        keys: PathBuf,
        /// The id of the release key to revoke.
        #[arg(long, value_parser = parse_key_id)]
        key_id: KeyId,
        /// The root private key (default: KEYS/root.key).
        #[arg(long)]
        root_key: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
struct Sign {
    /// The key directory (keys.json, root.pub and release keys).
    #[arg(long)]
    keys: PathBuf,
    /// The file to ship.
    #[arg(long)]
    artifact: PathBuf,
    /// The release's semantic version, e.g. 1.4.0.
    #[arg(long, value_parser = parse_version)]
    version: Version,
    /// A target triple or hardware class (1-64 characters of a-z 0-9 . _ -).
    #[arg(long, value_parser = parse_target)]
    target: Target,
    /// The channel (1-64 characters of a-z 0-9 . _ -).
    #[arg(long, value_parser = parse_channel)]
    channel: Channel,
    /// When screens stop accepting the release (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    expires: DateTime<Utc>,
    /// The oldest installed version the release may be installed over.
    #[arg(long, value_parser = parse_version)]
    min_from: Option<Version>,
    /// Where to write the metadata file.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
struct Verify {
    /// The root public key the screen trusts (root.pub).
    #[arg(long)]
    trust: PathBuf,
    /// The metadata file.
    #[arg(long)]
    metadata: PathBuf,
    /// The artifact.
    #[arg(long)]
    artifact: PathBuf,
    /// The screen's target.
    #[arg(long, value_parser = parse_target, default_value = env!("LUACH_OTA_BUILD_TARGET"))]
    target: Target,
    /// The highest version the screen has ever installed (anti-rollback counter).
    #[arg(long, value_parser = parse_version)]
    highest_installed: Option<Version>,
    /// The version installed now, checked against the release's min_from_version (a release
    /// that has one is refused without it).
    #[arg(long, value_parser = parse_version)]
    installed: Option<Version>,
    /// The highest key list version the screen has accepted.
    #[arg(long, default_value_t = 0)]
    keys_version_floor: u64,
    /// The channel the screen follows (default: any).
    #[arg(long, value_parser = parse_channel)]
    channel: Option<Channel>,
    /// The time to verify at (RFC 3339; default: now).
    #[arg(long, value_parser = parse_time)]
    now: Option<DateTime<Utc>>,
}

fn parse_version(text: &str) -> Result<Version, String> {
    Version::parse(text).map_err(|e| format!("not a semantic version such as 1.4.0 ({e})"))
}

fn parse_target(text: &str) -> Result<Target, String> {
    Target::parse(text).map_err(|e| e.to_string())
}

fn parse_channel(text: &str) -> Result<Channel, String> {
    Channel::parse(text).map_err(|e| e.to_string())
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    parse_rfc3339(text)
}

fn parse_key_id(text: &str) -> Result<KeyId, String> {
    KeyId::parse(text).map_err(|e| e.to_string())
}

/// Prints a line on stdout. A closed stdout (`luach-ota inspect m.json | head`) is not an
/// error worth a message: the exit code still tells the outcome.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Prints a line on stderr, likewise without panicking when it is closed.
macro_rules! err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(code) => code,
        Err(e) => {
            err!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the outcome of `verify`: one line on stdout when valid, `refused (<code>): …` on
/// stderr (exit 1) when not.
fn report(outcome: Result<VerifiedRelease, OtaError>) -> ExitCode {
    match outcome {
        Ok(v) => {
            let a = v.artifact();
            out!(
                "valid: {} for {} on {}, artifact {} bytes sha256 {}",
                v.version(),
                v.target(),
                v.channel(),
                a.length,
                a.sha256
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            err!("refused ({}): {e}", e.code());
            ExitCode::FAILURE
        }
    }
}

fn verify(args: &Verify) -> Result<VerifiedRelease, OtaError> {
    let root = TrustedRoot::from_file(&args.trust)?;
    let bytes = read_metadata_file(&args.metadata)?;
    let policy = Policy {
        target: args.target.clone(),
        now: args.now.unwrap_or_else(Utc::now),
        highest_installed: args.highest_installed.clone(),
        installed: args.installed.clone(),
        keys_version_floor: args.keys_version_floor,
        channel: args.channel.clone(),
    };
    let verified = verify_metadata(&root, &bytes, &policy)?;
    verify_artifact_file(&args.artifact, &verified)?;
    Ok(verified)
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    let now = Utc::now().trunc_subsecs(0);
    match command {
        Command::Keygen {
            out,
            release_keys,
            threshold,
        } => {
            let (keys, list) = KeyDir::keygen(&out, usize::from(release_keys), threshold, now)
                .with_context(|| format!("generating keys in {}", out.display()))?;
            let root = keys.trusted_root().context("reading back root.pub")?;
            out!(
                "root key {}: {} (keep it offline), screens trust {}",
                root.key_id(),
                keys.root_key_path().display(),
                keys.root_pub_path().display()
            );
            for entry in &list.release_keys {
                out!(
                    "release key {}: {}",
                    entry.key_id,
                    keys.release_key_path(&entry.key_id).display()
                );
            }
            out!(
                "key list version {}, threshold {}: {}",
                list.version,
                list.threshold,
                keys.keys_path().display()
            );
        }
        Command::Sign(args) => sign(args, now)?,
        Command::Verify(args) => return Ok(report(verify(&args))),
        Command::Inspect { metadata } => {
            let bytes = read_metadata_file(&metadata).context("reading the metadata file")?;
            let decoded = inspect(&bytes).with_context(|| format!("decoding {}", metadata.display()))?;
            err!("UNVERIFIED: decoded only; no signature, key list, expiry or version was checked");
            out!("{}", serde_json::to_string_pretty(&decoded)?);
        }
        Command::Rotate {
            keys,
            root_key,
            keep_old,
        } => {
            let dir = KeyDir::open(&keys);
            let rotation = dir
                .rotate(root_key.as_deref(), keep_old, now)
                .with_context(|| format!("rotating the release keys in {}", keys.display()))?;
            for id in &rotation.added {
                out!("new release key {id}: {}", dir.release_key_path(id).display());
            }
            print_list(&dir, &rotation.keys);
        }
        Command::Revoke { keys, key_id, root_key } => {
            let dir = KeyDir::open(&keys);
            let list = dir
                .revoke(root_key.as_deref(), &key_id, now)
                .with_context(|| format!("revoking {key_id} in {}", keys.display()))?;
            out!("revoked release key {key_id}");
            print_list(&dir, &list);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn sign(args: Sign, now: DateTime<Utc>) -> anyhow::Result<()> {
    if args.expires <= now {
        bail!("--expires {} is not in the future", rfc3339_string(&args.expires));
    }
    let artifact = Artifact::of_file(&args.artifact).context("reading the --artifact file")?;
    let release = Release {
        version: args.version,
        target: args.target,
        channel: args.channel,
        artifact,
        min_from_version: args.min_from,
        issued_at: now,
        expires: args.expires,
    };
    let keys = KeyDir::open(&args.keys);
    let bytes = keys
        .sign_release(&release)
        .with_context(|| format!("signing with the keys in {}", args.keys.display()))?;
    write_metadata_file(&args.out, &bytes).context("writing the --out file")?;
    out!(
        "signed {} for {} on {}, artifact {} bytes sha256 {}: {}",
        release.version,
        release.target,
        release.channel,
        artifact.length,
        artifact.sha256,
        display(&args.out)
    );
    Ok(())
}

fn print_list(dir: &KeyDir, list: &luach_ota::KeyList) {
    let ids = |ids: Vec<String>| {
        if ids.is_empty() {
            "none".to_owned()
        } else {
            ids.join(", ")
        }
    };
    out!(
        "key list version {}, threshold {}: {}",
        list.version,
        list.threshold,
        display(&dir.keys_path())
    );
    out!(
        "authorised: {}",
        ids(list.release_keys.iter().map(|e| e.key_id.to_string()).collect())
    );
    out!("revoked: {}", ids(list.revoked.iter().map(KeyId::to_string).collect()));
}

fn display(path: &Path) -> String {
    path.display().to_string()
}
