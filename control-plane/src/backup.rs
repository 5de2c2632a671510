//! `luach-server backup` and `restore`: an installation, or one tenant, as one archive.
//!
//! The archive is a gzip'd tar holding
//!
//! - `manifest.json`: format, what it holds (scope), the store's backend and schema version,
//!   rows per table, and the SHA-256 of every other file;
//! - `store/<table>.jsonl`: the rows, read in one consistent snapshot while the server runs
//!   ([`crate::store::backup`]);
//! - `files/…`: what lives beside the store. A whole installation: the device CA directory,
//!   the access-token and audit-chain keys when they are files, the audit checkpoint,
//!   screenshots and releases. One tenant: its screenshots and its audit checkpoint head.
//!
//! The checkpoint is copied before the rows are read, so the chains in the archive always
//! extend it. A restore checks every file against the manifest, refuses a store or data
//! directory that already holds what it would write, and puts keys in place before the store
//! is opened (opening it would make a new audit-chain key).

use std::collections::BTreeMap;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use luach_schemas::TenantId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::store;
use crate::store::backup::{BackupScope, RowSink};

/// Version of the archive layout.
const FORMAT: u32 = 1;
/// Rows written to the store per batch on restore.
const BATCH: usize = 1000;

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    created_at: chrono::DateTime<chrono::Utc>,
    server_version: String,
    /// `null`: the whole installation; otherwise the tenant's id.
    tenant: Option<String>,
    backend: String,
    schema_version: u32,
    /// Rows per table, in restore order.
    tables: Vec<(String, u64)>,
    /// SHA-256 (hex) of every file under `store/` and `files/`, by archive path.
    files: BTreeMap<String, String>,
}

/// What a backup wrote.
#[derive(Debug)]
pub struct Written {
    pub path: PathBuf,
    pub rows: u64,
    pub files: usize,
}

/// Rows into one JSON-lines file per table.
struct Sink {
    dir: PathBuf,
    open: Option<(String, BufWriter<std::fs::File>)>,
    counts: BTreeMap<String, u64>,
}

impl RowSink for Sink {
    fn finish(&mut self) -> std::io::Result<()> {
        if let Some((_, mut w)) = self.open.take() {
            w.flush()?;
        }
        Ok(())
    }

    fn row(&mut self, table: &str, row: serde_json::Value) -> std::io::Result<()> {
        if self.open.as_ref().is_none_or(|(t, _)| t != table) {
            self.finish()?;
            let file = std::fs::File::create(self.dir.join(format!("{table}.jsonl")))?;
            self.open = Some((table.to_owned(), BufWriter::new(file)));
        }
        if let Some((_, w)) = self.open.as_mut() {
            serde_json::to_writer(&mut *w, &row)?;
            w.write_all(b"\n")?;
        }
        *self.counts.entry(table.to_owned()).or_default() += 1;
        Ok(())
    }
}

fn private_temp_dir(near: &Path) -> anyhow::Result<tempfile::TempDir> {
    let parent = near
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    tempfile::Builder::new()
        .prefix(".luach-backup-")
        .tempdir_in(parent)
        .with_context(|| format!("making a working directory in {}", parent.display()))
}

/// Copies the tree at `from` (if it exists) to `to`, files 0600.
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<usize> {
    if !from.exists() {
        return Ok(0);
    }
    let mut n = 0;
    if from.is_file() {
        std::fs::create_dir_all(to.parent().unwrap_or(to))?;
        let bytes = std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
        luach_files::write_new(to, &bytes, luach_files::Mode::Private)
            .with_context(|| format!("writing {}", to.display()))?;
        return Ok(1);
    }
    crate::keys::private_dir(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue; // temporary files of atomic writes in progress
        }
        n += copy_tree(&entry.path(), &to.join(entry.file_name()))?;
    }
    Ok(n)
}

fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let mut hasher = Sha256::new();
    let mut file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Every file under `root`, as archive paths (`/`-separated, relative).
fn files_under(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root)?;
                out.push(
                    rel.components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/"),
                );
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Where each kind of file lives in this installation, by its archive directory.
fn places(config: &Config) -> Vec<(&'static str, PathBuf)> {
    vec![
        ("pki", config.ca_dir()),
        ("auth/jwt.key", config.data_dir.join("auth").join("jwt.key")),
        ("audit/chain.key", config.data_dir.join("audit").join("chain.key")),
        ("audit/checkpoint.json", crate::audit::checkpoint_path(&config.data_dir)),
        ("screenshots", config.screenshot_dir()),
        ("releases", config.release_dir()),
    ]
}

/// `luach-server backup --out FILE [--tenant ID]`.
pub async fn backup(config: &Config, out: &Path, tenant: Option<TenantId>) -> anyhow::Result<Written> {
    if out.exists() {
        bail!("{} exists; choose a new file", out.display());
    }
    let system = crate::admin::open_store(config).await?;
    let scope = tenant.clone().map_or(BackupScope::Installation, BackupScope::Tenant);
    if let BackupScope::Tenant(t) = &scope
        && system.count_rows("tenants", &scope).await? == 0
    {
        bail!("there is no tenant {t}");
    }
    let work = private_temp_dir(out)?;
    let files_dir = work.path().join("files");
    let store_dir = work.path().join("store");
    crate::keys::private_dir(&files_dir)?;
    crate::keys::private_dir(&store_dir)?;

    // Files first: the checkpoint then never names a head the rows below lack.
    let checkpoint = crate::audit::checkpoint_path(&config.data_dir);
    match &tenant {
        None => {
            for (name, path) in places(config) {
                copy_tree(&path, &files_dir.join(name))?;
            }
        }
        Some(t) => {
            copy_tree(
                &config.screenshot_dir().join(t.as_str()),
                &files_dir.join("screenshots").join(t.as_str()),
            )?;
            if let Some(heads) = crate::audit::read_checkpoint(&checkpoint)?
                && let Some(head) = heads.get(t.as_str())
            {
                let mine: crate::chain::Heads = [(t.to_string(), head.clone())].into();
                std::fs::create_dir_all(files_dir.join("audit"))?;
                luach_files::write_new(
                    &files_dir.join("audit").join("checkpoint.json"),
                    &serde_json::to_vec_pretty(&mine)?,
                    luach_files::Mode::Private,
                )?;
            }
        }
    }

    let sink = Box::new(Sink {
        dir: store_dir.clone(),
        open: None,
        counts: BTreeMap::new(),
    });
    let mut sink = system.export(&scope, sink).await.context("reading the store")?;
    sink.finish().context("writing the backup")?;
    let mut tables = Vec::new();
    let mut rows = 0;
    for table in system.backup_tables().iter().filter(|t| t.in_scope(&scope)) {
        let file = store_dir.join(format!("{}.jsonl", table.name));
        let n = if file.exists() {
            std::io::BufReader::new(std::fs::File::open(&file)?).lines().count() as u64
        } else {
            0
        };
        rows += n;
        tables.push((table.name.to_owned(), n));
    }

    let mut files = BTreeMap::new();
    for rel in files_under(work.path())? {
        files.insert(rel.clone(), sha256_file(&work.path().join(&rel))?);
    }
    let manifest = Manifest {
        format: FORMAT,
        created_at: chrono::Utc::now(),
        server_version: env!("CARGO_PKG_VERSION").to_owned(),
        tenant: tenant.map(|t| t.to_string()),
        backend: system.backend().to_owned(),
        schema_version: store::migrate::latest(),
        tables,
        files: files.clone(),
    };
    std::fs::write(work.path().join("manifest.json"), serde_json::to_vec_pretty(&manifest)?)?;

    // The archive appears under its name only when complete.
    let partial = out.with_extension("partial");
    {
        let file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&partial)
                .with_context(|| format!("creating {}", partial.display()))?
        };
        let gz = flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        tar.append_path_with_name(work.path().join("manifest.json"), "manifest.json")?;
        for rel in files.keys() {
            tar.append_path_with_name(work.path().join(rel), rel)?;
        }
        let gz = tar.into_inner()?;
        let mut file = gz.finish()?.into_inner().map_err(|e| e.into_error())?;
        file.flush()?;
        file.sync_all()?;
    }
    std::fs::rename(&partial, out)?;
    luach_files::sync_parent(out)?;
    Ok(Written {
        path: out.to_owned(),
        rows,
        files: files.keys().filter(|f| f.starts_with("files/")).count(),
    })
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    pub tenant: Option<String>,
    pub rows: u64,
    pub files: usize,
}

/// Unpacks `archive` into `dir` and checks it against its manifest.
fn unpack(archive: &Path, dir: &Path) -> anyhow::Result<Manifest> {
    let file = std::fs::File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
    tar.set_preserve_permissions(false);
    let not_ours = || format!("{} is not a luach backup (gzip'd tar)", archive.display());
    for entry in tar.entries().with_context(not_ours)? {
        let mut entry = entry.with_context(not_ours)?;
        let kind = entry.header().entry_type();
        let name = entry.path().map(|p| p.display().to_string()).unwrap_or_default();
        // Only files and directories, and only inside `dir`: no links to elsewhere.
        if !(kind.is_file() || kind.is_dir()) {
            bail!("{}: {name} is not a plain file or directory", archive.display());
        }
        if !entry.unpack_in(dir).with_context(not_ours)? {
            bail!("{}: {name} would be written outside the archive", archive.display());
        }
    }
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).context("the archive has no manifest.json")?)
            .context("manifest.json is unreadable")?;
    if manifest.format != FORMAT {
        bail!(
            "archive format {} is not {FORMAT}, the one this release reads",
            manifest.format
        );
    }
    let present: Vec<String> = files_under(dir)?.into_iter().filter(|f| f != "manifest.json").collect();
    for rel in &present {
        let Some(expected) = manifest.files.get(rel) else {
            bail!("{rel} is in the archive but not in its manifest");
        };
        if &sha256_file(&dir.join(rel))? != expected {
            bail!("{rel} does not match its checksum: the archive is damaged");
        }
    }
    if let Some(missing) = manifest.files.keys().find(|f| !present.contains(f)) {
        bail!("{missing} is missing from the archive");
    }
    Ok(manifest)
}

/// `luach-server restore --from FILE`: into an empty installation (whole backups) or one
/// without the tenant (tenant backups).
pub async fn restore(config: &Config, archive: &Path) -> anyhow::Result<Restored> {
    let work = private_temp_dir(&config.data_dir.join("restore"))?;
    crate::keys::private_dir(&config.data_dir)?;
    let manifest = unpack(archive, work.path())?;
    if manifest.schema_version != store::migrate::latest() {
        bail!(
            "the backup has schema version {}, this release {}: restore it with the release that made it ({}), then upgrade",
            manifest.schema_version,
            store::migrate::latest(),
            manifest.server_version
        );
    }
    let files = work.path().join("files");
    let tenant = manifest
        .tenant
        .as_deref()
        .map(TenantId::parse)
        .transpose()
        .context("the manifest's tenant")?;

    // Keys before the store: opening it would create a new audit-chain key.
    let mut placed = 0;
    if tenant.is_none() {
        for (name, path) in places(config) {
            let held = if path.is_dir() {
                std::fs::read_dir(&path)?.next().is_some()
            } else {
                path.exists()
            };
            if held && files.join(name).exists() {
                bail!(
                    "{} already exists: restore a whole installation into an empty data directory",
                    path.display()
                );
            }
        }
        for (name, path) in places(config).into_iter().filter(|(n, _)| n.ends_with(".key")) {
            placed += copy_tree(&files.join(name), &path)?;
        }
    }

    let system = crate::admin::open_store(config).await?;
    if system.backend() != manifest.backend {
        bail!(
            "the backup is of a {} store and this installation uses {}",
            manifest.backend,
            system.backend()
        );
    }
    let scope = tenant.clone().map_or(BackupScope::Installation, BackupScope::Tenant);
    for table in system.backup_tables().iter().filter(|t| t.in_scope(&scope)) {
        let n = system.count_rows(table.name, &scope).await?;
        if n > 0 {
            match &tenant {
                None => bail!(
                    "the store already holds {n} {} rows: restore into an empty store",
                    table.name
                ),
                Some(t) => bail!("the store already holds tenant {t} ({n} {} rows)", table.name),
            }
        }
    }

    let mut rows = 0;
    for (name, expected) in &manifest.tables {
        let Some(table) = crate::store::backup::table_named(&system.backup_tables(), name) else {
            bail!("the backup holds table {name}, which this store does not have");
        };
        let path = work.path().join("store").join(format!("{name}.jsonl"));
        if !path.exists() {
            continue;
        }
        let mut batch = Vec::with_capacity(BATCH);
        let mut seen = 0;
        for line in std::io::BufReader::new(std::fs::File::open(&path)?).lines() {
            batch.push(serde_json::from_str(&line?).with_context(|| format!("{name}.jsonl line {}", seen + 1))?);
            seen += 1;
            if batch.len() == BATCH {
                system
                    .import(table.name, std::mem::take(&mut batch))
                    .await
                    .with_context(|| format!("restoring {name}"))?;
            }
        }
        system
            .import(table.name, batch)
            .await
            .with_context(|| format!("restoring {name}"))?;
        if seen != *expected {
            bail!("{name}: {seen} rows in the archive, the manifest says {expected}");
        }
        rows += seen;
    }

    match &tenant {
        None => {
            for (name, path) in places(config) {
                if !name.ends_with(".key") {
                    placed += copy_tree(&files.join(name), &path)?;
                }
            }
        }
        Some(t) => {
            placed += copy_tree(
                &files.join("screenshots").join(t.as_str()),
                &config.screenshot_dir().join(t.as_str()),
            )?;
            let theirs = crate::audit::read_checkpoint(&files.join("audit").join("checkpoint.json"))?;
            if let Some(head) = theirs.and_then(|h| h.get(t.as_str()).cloned()) {
                let path = crate::audit::checkpoint_path(&config.data_dir);
                let mut heads = crate::audit::read_checkpoint(&path)?.unwrap_or_default();
                heads.insert(t.to_string(), head);
                crate::keys::private_dir(path.parent().unwrap_or(&config.data_dir))?;
                crate::audit::write_checkpoint(&path, &heads)?;
                placed += 1;
            }
        }
    }
    Ok(Restored {
        tenant: manifest.tenant,
        rows,
        files: placed,
    })
}
