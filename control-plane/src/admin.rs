//! `luach-server admin …`: installation administration against the store directly, for the
//! first run and for scripts (no server needs to be running).

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use anyhow::{Context, bail};
use luach_schemas::TenantId;

use crate::auth::{AuthError, AuthService, NewUser, Role, SystemClock, limiter::MemoryLimiter};
use crate::config::{Config, redact_url};
use crate::store::{self, DynStore, Tenant};

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

async fn service(config: &Config) -> anyhow::Result<(DynStore, AuthService)> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let url = config.store_url();
    let store = store::open(&url, &config.store.database)
        .await
        .with_context(|| format!("opening store {}", redact_url(&url)))?;
    let auth = AuthService::new(
        store.clone(),
        crate::auth::load_keys(config)?,
        Arc::new(SystemClock),
        Arc::new(MemoryLimiter::default()),
        config.auth.clone(),
    );
    Ok((store, auth))
}

/// `luach-server audit verify`: checks every audit chain and the checkpoint; prints each
/// problem and fails when there is one.
pub async fn verify_audit(
    config: &Config,
    checkpoint: Option<&std::path::Path>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let (store, _) = service(config).await?;
    let path = checkpoint.map_or_else(|| crate::audit::checkpoint_path(&config.data_dir), ToOwned::to_owned);
    let heads =
        crate::audit::read_checkpoint(&path).with_context(|| format!("reading checkpoint {}", path.display()))?;
    if heads.is_none() {
        writeln!(
            out,
            "no checkpoint at {} (truncation cannot be checked)",
            path.display()
        )?;
    }
    let result = crate::audit::verify_store(store.as_ref(), heads.as_ref()).await?;
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
    crate::audit::with_actor(crate::audit::Actor::cli(), run_command(config, command, out)).await
}

async fn run_command(config: &Config, command: AdminCommand, out: &mut dyn Write) -> anyhow::Result<()> {
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
    let (store, auth) = service(config).await?;
    match command {
        AdminCommand::RotateDeviceCa | AdminCommand::FinishDeviceCaRotation { .. } => {}
        AdminCommand::CreateEnrolmentToken {
            tenant,
            name,
            uses,
            days,
        } => {
            let tenant = TenantId::parse(&tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
            if store.get_tenant(&tenant).await?.is_none() {
                bail!("no tenant {tenant}");
            }
            let pki = Arc::new(crate::enrolment::DevicePki::open(config).context("opening the device CA")?);
            let enrolment = crate::enrolment::EnrolmentService::new(
                store.clone(),
                pki,
                Arc::new(MemoryLimiter::default()),
                Arc::new(SystemClock),
                config.enrolment.clone(),
            );
            let scope = crate::store::TenantScope::trusted(tenant);
            let new = enrolment
                .create_token(&scope, "admin-cli", &name, uses, days)
                .await
                .map_err(|e| match e {
                    crate::enrolment::EnrolmentError::Invalid(fields) => explain(AuthError::Invalid(fields)),
                    other => anyhow::anyhow!(other),
                })?;
            writeln!(out, "{}", new.secret)?;
        }
        AdminCommand::CreateTenant { id, name } => {
            let id = TenantId::parse(&id).map_err(|e| anyhow::anyhow!("--id: {e}"))?;
            if name.trim().is_empty() {
                bail!("--name must not be empty");
            }
            let tenant = Tenant {
                id,
                name,
                created_at: auth.now(),
            };
            store.create_tenant(&tenant).await?;
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
                .create_user(NewUser {
                    email,
                    name,
                    role: role(&r)?,
                    tenant_id,
                    password,
                })
                .await
                .map_err(explain)?;
            writeln!(out, "created user {} ({}) id {}", user.email, user.role, user.id)?;
        }
        AdminCommand::SetPassword { email } => {
            let user = store
                .user_by_email(&email.trim().to_lowercase())
                .await?
                .with_context(|| format!("no user {email}"))?;
            let password = read_password()?;
            auth.set_password(user, &password).await.map_err(explain)?;
            writeln!(out, "password set; all sessions of {email} ended")?;
        }
        AdminCommand::CreateToken {
            email,
            name,
            role: r,
            days,
        } => {
            let user = store
                .user_by_email(&email.trim().to_lowercase())
                .await?
                .with_context(|| format!("no user {email}"))?;
            let cap = r.as_deref().map(role).transpose()?;
            let token = auth
                .create_personal_token(&user, &name, cap, days)
                .await
                .map_err(explain)?;
            writeln!(out, "{}", token.secret)?;
        }
    }
    Ok(())
}
