//! `luach-server backup` and `restore`: an installation, or one tenant, as one archive.
//!
//! The archive is a gzip'd tar holding
//!
//! - `manifest.json`: format, what it holds (scope), the store's backend and schema version,
//!   rows per table, a fingerprint of the audit-chain key, and the SHA-256 of every other file;
//! - `store/<table>.jsonl`: the rows, read in one consistent snapshot while the server runs
//!   ([`crate::store::backup`]);
//! - `files/…`: what lives beside the store. A whole installation: the device CA directory,
//!   the access-token and audit-chain keys when they are files, the audit checkpoint,
//!   screenshots and releases. One tenant: its screenshots and its audit checkpoint head.
//!
//! Order on backup: keys, CA and checkpoint first (the chains in the archive then always
//! extend the checkpoint), then the rows, then screenshots and releases (so every release a
//! row names is in the archive). The store is opened as it is: a backup never migrates it.
//!
//! A restore checks every file against the manifest, refuses a store or data directory that
//! already holds what it would write and an audit-chain key other than the one that sealed the
//! chains, and puts keys in place before the store is opened (opening it would make a new
//! audit-chain key). A tenant's archive may come from elsewhere: every row must belong to that
//! tenant, and none may make a super admin. A restore that fails deletes what it wrote.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufWriter, ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use luach_schemas::TenantId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::store::backup::{BackupScope, Owner, RowSink, Table};
use crate::store::{self, SystemStore};

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
    /// [`crate::chain::ChainKey::fingerprint`] of the key that sealed the audit chains.
    chain_key: String,
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

impl Sink {
    /// Flushes and closes the table being written.
    fn close(&mut self) -> std::io::Result<()> {
        if let Some((_, mut w)) = self.open.take() {
            w.flush()?;
        }
        Ok(())
    }
}

impl RowSink for Sink {
    fn finish(&mut self) -> std::io::Result<BTreeMap<String, u64>> {
        self.close()?;
        Ok(std::mem::take(&mut self.counts))
    }

    fn row(&mut self, table: &str, row: Value) -> std::io::Result<()> {
        if self.open.as_ref().is_none_or(|(t, _)| t != table) {
            self.close()?;
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

fn private_temp_dir(parent: &Path) -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(".luach-backup-")
        .tempdir_in(parent)
        .with_context(|| format!("making a working directory in {}", parent.display()))
}

/// Copies one file, streaming, into a new file of mode 0600; `false` when `from` vanished
/// (a screenshot pruned meanwhile).
fn copy_file(from: &Path, to: &Path) -> anyhow::Result<bool> {
    let mut source = match std::fs::File::open(from) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("reading {}", from.display())),
    };
    if let Some(parent) = to.parent() {
        crate::keys::private_dir(parent)?;
    }
    let mut target = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .with_context(|| format!("creating {}", to.display()))?;
    std::io::copy(&mut source, &mut target).with_context(|| format!("copying {}", from.display()))?;
    target.sync_all()?;
    Ok(true)
}

/// Copies the tree at `from` (if it exists) to `to`, directories 0700 and files 0600;
/// returns how many files.
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<usize> {
    let meta = match std::fs::symlink_metadata(from) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("reading {}", from.display())),
    };
    if meta.is_file() {
        return Ok(usize::from(copy_file(from, to)?));
    }
    if !meta.is_dir() {
        return Ok(0);
    }
    crate::keys::private_dir(to)?;
    let mut n = 0;
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

/// Files of the installation by their name in the archive.
type Places = Vec<(&'static str, PathBuf)>;

/// The files a whole installation keeps beside its store, by archive name: those that must
/// be in place before the rows, then those that may follow them.
fn places(config: &Config) -> (Places, Places) {
    (
        vec![
            ("auth/jwt.key", config.data_dir.join("auth").join("jwt.key")),
            ("audit/chain.key", config.data_dir.join("audit").join("chain.key")),
            ("pki", config.ca_dir()),
            ("audit/checkpoint.json", crate::audit::checkpoint_path(&config.data_dir)),
        ],
        vec![
            ("screenshots", config.screenshot_dir()),
            ("releases", config.release_dir()),
        ],
    )
}

/// Opens the store; `migrate` applies pending migrations, otherwise they are refused.
async fn open(config: &Config, migrate: bool) -> anyhow::Result<SystemStore> {
    let mut options = config.store_options()?;
    options.migrate = migrate;
    store::open(&options, crate::metrics::Metrics::new())
        .await
        .with_context(|| format!("opening store {}", crate::config::redact_url(&options.url)))
}

/// `luach-server backup --out FILE [--tenant ID]`.
pub async fn backup(config: &Config, out: &Path, tenant: Option<TenantId>) -> anyhow::Result<Written> {
    if out.exists() {
        bail!("{} exists; choose a new file", out.display());
    }
    if !config.data_dir.is_dir() {
        bail!(
            "there is no data directory at {}: pass the installation's --config or --data-dir",
            config.data_dir.display()
        );
    }
    let system = open(config, false).await?;
    let scope = tenant.clone().map_or(BackupScope::Installation, BackupScope::Tenant);
    match &scope {
        BackupScope::Tenant(t) if system.count_rows("tenants", &scope).await? == 0 => bail!("there is no tenant {t}"),
        BackupScope::Installation if system.count_rows("tenants", &scope).await? == 0 => bail!(
            "the store holds no tenants: is this the installation's configuration (--config, --data-dir, --store)?"
        ),
        _ => {}
    }
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let work = private_temp_dir(parent)?;
    let files_dir = work.path().join("files");
    let store_dir = work.path().join("store");
    crate::keys::private_dir(&store_dir)?;

    // Keys, CA and checkpoint before the rows; screenshots and releases after them.
    let checkpoint = crate::audit::checkpoint_path(&config.data_dir);
    let (before, after) = places(config);
    match &tenant {
        None => {
            for (name, path) in &before {
                copy_tree(path, &files_dir.join(name))?;
            }
        }
        Some(t) => {
            if let Some(heads) = crate::audit::read_checkpoint(&checkpoint)?
                && let Some(head) = heads.get(t.as_str())
            {
                let mine: crate::chain::Heads = [(t.to_string(), head.clone())].into();
                crate::keys::private_dir(&files_dir.join("audit"))?;
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
    let counts = sink.finish().context("writing the backup")?;
    let tables: Vec<(String, u64)> = system
        .backup_tables()
        .iter()
        .filter(|t| t.in_scope(&scope))
        .map(|t| (t.name.to_owned(), counts.get(t.name).copied().unwrap_or(0)))
        .collect();
    let rows = tables.iter().map(|(_, n)| n).sum();

    match &tenant {
        None => {
            for (name, path) in &after {
                copy_tree(path, &files_dir.join(name))?;
            }
        }
        Some(t) => {
            copy_tree(
                &config.screenshot_dir().join(t.as_str()),
                &files_dir.join("screenshots").join(t.as_str()),
            )?;
        }
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
        chain_key: config.chain_key()?.fingerprint(),
        tables,
        files,
    };
    std::fs::write(work.path().join("manifest.json"), serde_json::to_vec_pretty(&manifest)?)?;

    // The archive is written inside the working directory, then linked to its name, which
    // fails rather than replace a file that appeared meanwhile.
    let partial = work.path().join("archive.tar.gz");
    {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)
            .with_context(|| format!("creating {}", partial.display()))?;
        let gz = flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        tar.append_path_with_name(work.path().join("manifest.json"), "manifest.json")?;
        for rel in manifest.files.keys() {
            tar.append_path_with_name(work.path().join(rel), rel)?;
        }
        let gz = tar.into_inner()?;
        let mut file = gz.finish()?.into_inner().map_err(|e| e.into_error())?;
        file.flush()?;
        file.sync_all()?;
    }
    std::fs::hard_link(&partial, out).with_context(|| format!("writing {}", out.display()))?;
    luach_files::sync_parent(out)?;
    Ok(Written {
        path: out.to_owned(),
        rows,
        files: manifest.files.keys().filter(|f| f.starts_with("files/")).count(),
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
        if !entry.unpack_in(dir).with_context(|| format!("unpacking {name}"))? {
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
    let present: HashSet<String> = files_under(dir)?.into_iter().filter(|f| f != "manifest.json").collect();
    for rel in &present {
        let Some(expected) = manifest.files.get(rel) else {
            bail!("{rel} is in the archive but not in its manifest");
        };
        if &sha256_file(&dir.join(rel))? != expected {
            bail!("{rel} does not match its checksum: the archive is damaged");
        }
    }
    if let Some(missing) = manifest.files.keys().find(|f| !present.contains(*f)) {
        bail!("{missing} is missing from the archive");
    }
    for (table, rows) in &manifest.tables {
        if *rows > 0 && !present.contains(&format!("store/{table}.jsonl")) {
            bail!("store/{table}.jsonl is missing from the archive");
        }
    }
    Ok(manifest)
}

/// A field of a row as text (SQLite columns and MongoDB fields alike).
fn text<'a>(row: &'a Value, field: &str) -> Option<&'a str> {
    row.get(field).and_then(Value::as_str)
}

/// Checks that a row of a tenant's archive belongs to `tenant`: its owner field names the
/// tenant, a token belongs to one of the archive's users, and no user is a super admin.
fn check_tenant_row(table: &Table, row: &Value, tenant: &TenantId, users: &HashSet<String>) -> anyhow::Result<()> {
    let foreign = || anyhow::anyhow!("the archive's {} rows include one of another tenant", table.name);
    match table.owner {
        Owner::Field(field) if text(row, field) != Some(tenant.as_str()) => return Err(foreign()),
        Owner::User if !text(row, "user_id").is_some_and(|u| users.contains(u)) => return Err(foreign()),
        Owner::Installation => bail!("a tenant's archive holds the installation's {} rows", table.name),
        _ => {}
    }
    if table.name == "users" {
        // SQLite keeps the user as JSON text in `body`; MongoDB as fields.
        let body: Option<Value> = text(row, "body").and_then(|b| serde_json::from_str(b).ok());
        let role = text(row, "role").or_else(|| body.as_ref().and_then(|b| text(b, "role")));
        if role.is_none_or(|r| r == "super_admin") {
            bail!("the archive's users include one who is not the tenant's (a super admin)");
        }
    }
    Ok(())
}

/// Files and rows a restore has written, to be removed if it fails.
struct Undo {
    files: Vec<PathBuf>,
    tables: Vec<&'static str>,
}

impl Undo {
    async fn run(self, system: Option<&SystemStore>, scope: &BackupScope) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(system) = system {
            for table in self.tables.iter().rev() {
                if let Err(e) = system.delete_rows(table, scope).await {
                    problems.push(format!("{table}: {e}"));
                }
            }
        }
        for path in self.files.iter().rev() {
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(path)
            } else {
                std::fs::remove_file(path)
            };
            if let Err(e) = removed
                && e.kind() != ErrorKind::NotFound
            {
                problems.push(format!("{}: {e}", path.display()));
            }
        }
        problems
    }
}

/// `luach-server restore --from FILE`: into an empty installation (whole backups) or one
/// without the tenant (tenant backups). A restore that fails removes what it wrote.
pub async fn restore(config: &Config, archive: &Path) -> anyhow::Result<Restored> {
    crate::keys::private_dir(&config.data_dir)?;
    let work = private_temp_dir(&config.data_dir)?;
    let manifest = unpack(archive, work.path())?;
    if manifest.schema_version != store::migrate::latest() {
        bail!(
            "the backup has schema version {}, this release {}: restore it with the release that made it ({}), then upgrade",
            manifest.schema_version,
            store::migrate::latest(),
            manifest.server_version
        );
    }
    let backend = if store::is_mongodb_url(&config.store_url()) {
        "mongodb"
    } else {
        "sqlite"
    };
    if backend != manifest.backend {
        bail!(
            "the backup is of a {} store and this installation uses {backend}",
            manifest.backend
        );
    }
    let tenant = manifest
        .tenant
        .as_deref()
        .map(TenantId::parse)
        .transpose()
        .context("the manifest's tenant")?;
    let scope = tenant.clone().map_or(BackupScope::Installation, BackupScope::Tenant);
    let files = work.path().join("files");
    let (before, after) = places(config);
    if tenant.is_none() {
        for (name, path) in before.iter().chain(&after) {
            let held = std::fs::read_dir(path).map_or_else(|_| path.exists(), |mut d| d.next().is_some());
            if held && files.join(name).exists() {
                bail!(
                    "{} already exists: restore a whole installation into an empty data directory",
                    path.display()
                );
            }
        }
    }

    let mut undo = Undo {
        files: Vec::new(),
        tables: Vec::new(),
    };
    let mut system = None;
    let result = restore_into(config, &manifest, work.path(), &scope, &mut undo, &mut system).await;
    match result {
        Ok(restored) => Ok(restored),
        Err(e) => {
            let problems = undo.run(system.as_ref(), &scope).await;
            if problems.is_empty() {
                Err(e.context("nothing was restored"))
            } else {
                Err(e.context(format!(
                    "the restore failed and what it wrote could not all be removed ({}); restore into a fresh store",
                    problems.join("; ")
                )))
            }
        }
    }
}

async fn restore_into(
    config: &Config,
    manifest: &Manifest,
    work: &Path,
    scope: &BackupScope,
    undo: &mut Undo,
    opened: &mut Option<SystemStore>,
) -> anyhow::Result<Restored> {
    let files = work.join("files");
    let (before, after) = places(config);
    let place = |undo: &mut Undo, name: &str, path: &Path| -> anyhow::Result<usize> {
        let from = files.join(name);
        if !from.exists() {
            return Ok(0);
        }
        undo.files.push(path.to_owned());
        copy_tree(&from, path)
    };
    let mut placed = 0;
    // Keys before the store: opening it would create a new audit-chain key.
    if matches!(scope, BackupScope::Installation) {
        for (name, path) in before.iter().filter(|(n, _)| n.ends_with(".key")) {
            placed += place(undo, name, path)?;
        }
    }
    // Reading the key makes one when there is none; a failed restore removes it again.
    let key_file = config.data_dir.join("audit").join("chain.key");
    if config.audit.chain_key.is_none() && !key_file.exists() {
        undo.files.push(key_file);
    }
    let key = config.chain_key()?.fingerprint();
    if key != manifest.chain_key {
        bail!(
            "this installation's audit-chain key is not the one that sealed the archive's chains: \
             configure the same audit.chain_key (or, for a whole installation, leave it unset and \
             the archive's key is used)"
        );
    }
    let system = open(config, true).await?;
    *opened = Some(system.clone());
    let tables = system.backup_tables();
    for table in tables.iter().filter(|t| t.in_scope(scope)) {
        let n = system.count_rows(table.name, scope).await?;
        if n > 0 {
            match scope {
                BackupScope::Installation => {
                    bail!(
                        "the store already holds {n} {} rows: restore into an empty store",
                        table.name
                    )
                }
                BackupScope::Tenant(t) => bail!("the store already holds tenant {t} ({n} {} rows)", table.name),
            }
        }
    }

    let mut rows = 0;
    let mut users = HashSet::new();
    for (name, expected) in &manifest.tables {
        let Some(table) = crate::store::backup::table_named(&tables, name) else {
            bail!("the backup holds table {name}, which this store does not have");
        };
        if !table.in_scope(scope) {
            bail!("a tenant's archive holds the installation's {name} rows");
        }
        let path = work.join("store").join(format!("{name}.jsonl"));
        if !path.exists() {
            continue;
        }
        undo.tables.push(table.name);
        let mut batch = Vec::with_capacity(BATCH);
        let mut seen = 0;
        for line in std::io::BufReader::new(std::fs::File::open(&path)?).lines() {
            let row: Value = serde_json::from_str(&line?).with_context(|| format!("{name}.jsonl line {}", seen + 1))?;
            if let BackupScope::Tenant(t) = scope {
                check_tenant_row(&table, &row, t, &users)?;
                if table.name == "users"
                    && let Some(id) = text(&row, "id").or_else(|| text(&row, "_id"))
                {
                    users.insert(id.to_owned());
                }
            }
            batch.push(row);
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

    match scope {
        BackupScope::Installation => {
            for (name, path) in before.iter().filter(|(n, _)| !n.ends_with(".key")).chain(&after) {
                placed += place(undo, name, path)?;
            }
        }
        BackupScope::Tenant(t) => {
            let shots = config.screenshot_dir().join(t.as_str());
            if shots.exists() && files.join("screenshots").join(t.as_str()).exists() {
                bail!("{} already exists", shots.display());
            }
            placed += place(undo, &format!("screenshots/{t}"), &shots)?;
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
        tenant: manifest.tenant.clone(),
        rows,
        files: placed,
    })
}
