//! `luach-server admin …`: installation administration against the store directly, for the
//! first run and for scripts (no server needs to be running).

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use anyhow::{Context, bail};
use luach_schemas::TenantId;

use crate::auth::{AuthError, AuthService, Authority, NewUser, Role, SystemClock, limiter::MemoryLimiter};
use crate::chain::Actor;
use crate::config::{Config, redact_url};
use crate::store::{self, SystemStore};

/// What `admin` can do.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AdminCommand {
    /// Create a tenant (a synagogue or a network of synagogues).
    CreateTenant {
        /// Lower-case letters, digits and '-', e.g. `beth-el`.
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
    },
    /// Create a user; the password is read from stdin (prompted without echo on a terminal).
    CreateUser {
        #[arg(long)]
        email: String,
        /// super_admin, tenant_admin, gabbai, operator or viewer.
        #[arg(long)]
        role: String,
        /// The user's tenant (every role but super_admin).
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Set a user's password (read from stdin) and end all their sessions.
    SetPassword {
        #[arg(long)]
        email: String,
    },
    /// Issue a personal access token for a user and print it (shown only once).
    CreateToken {
        #[arg(long)]
        email: String,
        /// A label for the token list.
        #[arg(long)]
        name: String,
        /// Cap the token at a lower role than the user's.
        #[arg(long)]
        role: Option<String>,
        #[arg(long, default_value_t = 90)]
        days: u32,
    },
    /// Issue a bulk enrolment token for a tenant and print it (shown only once): screens given
    /// it enrol into the tenant without a claim code.
    CreateEnrolmentToken {
        #[arg(long)]
        tenant: String,
        /// A label for the token list.
        #[arg(long)]
        name: String,
        /// How many screens it may enrol.
        #[arg(long)]
        uses: u32,
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
    /// Set a tenant's quota (limits not given: the installation default from `quotas.*`).
    SetQuota {
        #[arg(long)]
        tenant: String,
        /// Most screens in the tenant.
        #[arg(long)]
        max_devices: Option<u64>,
        /// Most API requests per minute by the tenant's users and tokens together.
        #[arg(long)]
        api_requests_per_minute: Option<u64>,
        /// Most bytes of stored content.
        #[arg(long)]
        max_content_bytes: Option<u64>,
    },
    /// Start rotating the device CA: create a new CA certified by the current one. Restart the
    /// server(s) afterwards; see docs/operations.md, "Rotate the device CA".
    RotateDeviceCa,
    /// Finish a device CA rotation once every certificate of the old CA has expired: the
    /// broker then trusts only the new CA.
    FinishDeviceCaRotation {
        /// Finish although certificates of the old CA may still be valid (their devices are cut
        /// off until they enrol again).
        #[arg(long)]
        force: bool,
    },
}

/// Opens the store (applying pending migrations if `store.migrate_on_start`).
async fn open(config: &Config) -> anyhow::Result<SystemStore> {
    crate::keys::private_dir(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let options = config.store_options()?;
    store::open(&options, crate::metrics::Metrics::new())
        .await
        .with_context(|| format!("opening store {}", redact_url(&options.url)))
}

async fn service(config: &Config) -> anyhow::Result<(SystemStore, AuthService)> {
    let system = open(config).await?;
    let auth = AuthService::new(
        system.clone(),
        crate::auth::load_keys(config)?,
        Arc::new(SystemClock),
        Arc::new(MemoryLimiter::default()),
        config.auth.clone(),
        config.quotas.as_quota(),
    );
    Ok((system, auth))
}

/// `luach-server broker-config mosquitto`: writes Mosquitto's configuration for this
/// installation into `out` (see [`crate::external_broker`]).
pub async fn broker_config_mosquitto(
    config: &Config,
    out_dir: &std::path::Path,
    on_broker: Option<&std::path::Path>,
    listeners: &luach_broker::external::mosquitto::Listeners,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let system = open(config).await?;
    let pki_config = config.clone();
    let pki = tokio::task::spawn_blocking(move || crate::enrolment::DevicePki::open(&pki_config))
        .await
        .context("opening the device CA")??;
    let files = crate::external_broker::MosquittoFiles::new(config, out_dir.to_owned(), system, Arc::new(pki))?;
    let written = files.write_all(listeners, on_broker, config).await?;
    writeln!(
        out,
        "wrote {} files for {} unexpired device certificates, {} of them refused:",
        written.files.len(),
        written.certificates,
        written.refused_certificates
    )?;
    for file in &written.files {
        writeln!(out, "  {}", file.display())?;
    }
    writeln!(
        out,
        "run: mosquitto -c {}",
        on_broker
            .unwrap_or(out_dir)
            .join(luach_broker::external::mosquitto::CONFIG_FILE)
            .display()
    )?;
    Ok(())
}

/// `luach-server migrate [--dry-run]`: applies (or lists) the schema migrations the database
/// lacks.
pub async fn migrate(config: &Config, dry_run: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    crate::keys::private_dir(&config.data_dir)?;
    let options = config.store_options()?;
    let system = store::connect(&options, crate::metrics::Metrics::new())
        .await
        .with_context(|| format!("opening store {}", redact_url(&options.url)))?;
    let applied = system.migrate(dry_run).await?;
    if applied.is_empty() {
        writeln!(out, "schema is current (version {})", store::migrate::latest())?;
    }
    for m in applied {
        let verb = if dry_run { "would apply" } else { "applied" };
        writeln!(out, "{verb} {}: {}", m.version, m.name)?;
    }
    Ok(())
}

/// `luach-server audit verify`: checks every audit chain against the chain key and the
/// checkpoint; prints each problem and fails when there is one. Without a checkpoint it fails
/// too (truncation could not be detected) unless `allow_missing_checkpoint`.
pub async fn verify_audit(
    config: &Config,
    checkpoint: Option<&std::path::Path>,
    allow_missing_checkpoint: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let system = open(config).await?;
    let key = config.chain_key()?;
    let path = checkpoint.map_or_else(|| crate::audit::checkpoint_path(&config.data_dir), ToOwned::to_owned);
    let heads =
        crate::audit::read_checkpoint(&path).with_context(|| format!("reading checkpoint {}", path.display()))?;
    if heads.is_none() {
        if !allow_missing_checkpoint {
            bail!(
                "no checkpoint at {}: truncation of the audit chains cannot be detected. Restore the checkpoint \
                 (or its copy in the logs, target `audit`), or pass --without-checkpoint to check the chains alone",
                path.display()
            );
        }
        writeln!(
            out,
            "no checkpoint at {} (checking the chains alone; truncation cannot be detected)",
            path.display()
        )?;
    }
    let result = crate::audit::verify_store(&system, &key, heads.as_ref()).await?;
    for problem in &result.problems {
        writeln!(out, "PROBLEM {problem}")?;
    }
    if !result.problems.is_empty() {
        bail!(
            "audit log verification failed: {} problem(s) in {} chain(s)",
            result.problems.len(),
            result.chains
        );
    }
    writeln!(
        out,
        "audit log intact: {} chain(s), {} record(s)",
        result.chains, result.records
    )?;
    Ok(())
}

fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("password: ")?;
        let again = rpassword::prompt_password("again: ")?;
        if first != again {
            bail!("the passwords differ");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn role(raw: &str) -> anyhow::Result<Role> {
    Role::parse(raw)
        .with_context(|| format!("unknown role `{raw}`: use super_admin, tenant_admin, gabbai, operator or viewer"))
}

fn explain(e: AuthError) -> anyhow::Error {
    match e {
        AuthError::Invalid(fields) => {
            let list: Vec<String> = fields.iter().map(|f| format!("{}: {}", f.path, f.message)).collect();
            anyhow::anyhow!("{}", list.join("; "))
        }
        other => anyhow::anyhow!(other),
    }
}

/// Runs one admin command; what it prints goes to `out`. Changes are audited as `cli`.
pub async fn run(config: &Config, command: AdminCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        AdminCommand::RotateDeviceCa => {
            let rotation = crate::enrolment::pki::rotate(config)?;
            writeln!(
                out,
                "new device CA {} (valid until {}); restart luach-server now, then run \
                 `luach-server admin finish-device-ca-rotation` after {}",
                rotation.new_subject, rotation.new_not_after, rotation.finish_after
            )?;
            return Ok(());
        }
        AdminCommand::FinishDeviceCaRotation { force } => {
            crate::enrolment::pki::finish_rotation(config, force)?;
            writeln!(
                out,
                "the broker now trusts only the new device CA; restart luach-server"
            )?;
            return Ok(());
        }
        _ => {}
    }
    let (system, auth) = service(config).await?;
    let installation = system.installation_scope(Actor::cli());
    match command {
        AdminCommand::RotateDeviceCa | AdminCommand::FinishDeviceCaRotation { .. } => {}
        AdminCommand::CreateEnrolmentToken {
            tenant,
            name,
            uses,
            days,
        } => {
            let tenant = TenantId::parse(&tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
            if system.get_tenant(&tenant).await?.is_none() {
                bail!("no tenant {tenant}");
            }
            let pki = Arc::new(crate::enrolment::DevicePki::open(config).context("opening the device CA")?);
            let enrolment = crate::enrolment::EnrolmentService::new(
                system.clone(),
                pki,
                Arc::new(MemoryLimiter::default()),
                Arc::new(SystemClock),
                config.enrolment.clone(),
            );
            let scope = system.scope(tenant, Actor::cli());
            let new = enrolment
                .create_token(&scope, &name, uses, days)
                .await
                .map_err(|e| match e {
                    crate::enrolment::EnrolmentError::Invalid(fields) => explain(AuthError::Invalid(fields)),
                    other => anyhow::anyhow!(other),
                })?;
            writeln!(out, "{}", new.secret)?;
        }
        AdminCommand::SetQuota {
            tenant,
            max_devices,
            api_requests_per_minute,
            max_content_bytes,
        } => {
            let id = TenantId::parse(&tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
            let quota = store::Quota {
                max_devices,
                api_requests_per_minute,
                max_content_bytes,
            };
            system
                .installation(&installation)
                .set_quota(&id, quota, auth.now())
                .await?
                .with_context(|| format!("no tenant {id}"))?;
            writeln!(out, "quota of {id} set")?;
        }
        AdminCommand::CreateTenant { id, name } => {
            let id = TenantId::parse(&id).map_err(|e| anyhow::anyhow!("--id: {e}"))?;
            if name.trim().is_empty() {
                bail!("--name must not be empty");
            }
            let tenants = system.installation(&installation);
            let tenant = tenants.create_tenant(id, name, auth.now()).await?;
            tenants
                .seed(&tenant.id, crate::alerts::rule::AlertRule::defaults(), auth.now())
                .await?;
            writeln!(out, "created tenant {}", tenant.id)?;
        }
        AdminCommand::CreateUser {
            email,
            role: r,
            tenant,
            name,
        } => {
            let tenant_id = tenant
                .map(|t| TenantId::parse(&t).map_err(|e| anyhow::anyhow!("--tenant: {e}")))
                .transpose()?;
            let password = read_password()?;
            let user = auth
                .create_user(
                    Authority::Installation(&installation),
                    NewUser {
                        email,
                        name,
                        role: role(&r)?,
                        tenant_id,
                        password,
                    },
                )
                .await
                .map_err(explain)?;
            writeln!(out, "created user {} ({}) id {}", user.email, user.role, user.id)?;
        }
        AdminCommand::SetPassword { email } => {
            let user = auth
                .user_by_email(&email)
                .await
                .map_err(explain)?
                .with_context(|| format!("no user {email}"))?;
            let password = read_password()?;
            auth.set_password(user, &password, &Actor::cli())
                .await
                .map_err(explain)?;
            writeln!(out, "password set; all sessions of {email} ended")?;
        }
        AdminCommand::CreateToken {
            email,
            name,
            role: r,
            days,
        } => {
            let user = auth
                .user_by_email(&email)
                .await
                .map_err(explain)?
                .with_context(|| format!("no user {email}"))?;
            let cap = r.as_deref().map(role).transpose()?;
            let token = auth.create_token_for(&user, &name, cap, days).await.map_err(explain)?;
            writeln!(out, "{}", token.secret)?;
        }
    }
    Ok(())
}
