//! `luach-server`: parse arguments, load configuration, run the library.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use figment::Figment;
use figment::providers::Serialized;
use luach_control_plane::admin::AdminCommand;
use luach_control_plane::{Application, Config};
use serde_json::{Map, Value, json};

#[derive(Debug, Parser)]
#[command(
    name = "luach-server",
    version,
    about = "Luach control plane with embedded MQTT broker"
)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "LUACH_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve(Overrides),
    /// Print the effective configuration (secrets redacted) and exit.
    PrintConfig(Overrides),
    /// Administer the installation: tenants, users, tokens (works on the store directly).
    Admin(Admin),
    /// The audit log.
    Audit(Audit),
    /// Write an external broker's configuration for this installation (`mqtt.mode = "external"`).
    BrokerConfig(BrokerConfig),
    /// Apply the schema migrations the database lacks (the server also does at start-up unless
    /// `store.migrate_on_start = false`).
    Migrate(Migrate),
    /// Write the installation, or one tenant, to one archive while the server runs: the
    /// store's records, the device CA and keys, the audit checkpoint, screenshots, releases.
    Backup(BackupArgs),
    /// Restore an archive made by `backup`: a whole installation into an empty store and data
    /// directory, or one tenant into an installation that does not have it.
    Restore(RestoreArgs),
}

#[derive(Debug, clap::Args)]
struct BackupArgs {
    #[command(flatten)]
    overrides: Overrides,
    /// The archive to write (a gzip'd tar, mode 0600; it must not exist).
    #[arg(long)]
    out: PathBuf,
    /// Only this tenant's records, screenshots and audit checkpoint head.
    #[arg(long)]
    tenant: Option<String>,
}

#[derive(Debug, clap::Args)]
struct RestoreArgs {
    #[command(flatten)]
    overrides: Overrides,
    /// The archive to restore.
    #[arg(long)]
    from: PathBuf,
}

#[derive(Debug, clap::Args)]
struct BrokerConfig {
    #[command(flatten)]
    overrides: Overrides,
    #[command(subcommand)]
    broker: BrokerKind,
}

#[derive(Debug, Subcommand)]
enum BrokerKind {
    /// Mosquitto 2: `mosquitto.conf` with a device and a control-plane listener, the CAs, the
    /// broker's certificate and key, the device ACL, the control plane's ACL and the CRL.
    Mosquitto {
        /// Directory to write into (created, mode 0700).
        #[arg(long)]
        out: PathBuf,
        /// Where the broker will read the files, if not from `--out` (paths in mosquitto.conf).
        #[arg(long)]
        on_broker: Option<PathBuf>,
        /// Port of the devices' listener.
        #[arg(long, default_value_t = 8883)]
        devices_port: u16,
        /// Address the devices' listener binds (default: every interface).
        #[arg(long, default_value = "")]
        devices_bind: String,
        /// Port of the control plane's listener.
        #[arg(long, default_value_t = 8884)]
        control_port: u16,
        /// Address the control plane's listener binds; keep it on a private network.
        #[arg(long, default_value = "")]
        control_bind: String,
    },
}

#[derive(Debug, clap::Args)]
struct Migrate {
    #[command(flatten)]
    overrides: Overrides,
    /// List what would be applied, change nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, clap::Args)]
struct Audit {
    #[command(flatten)]
    overrides: Overrides,
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check every tenant's hash chain and the checkpoint; exit 1 on any problem.
    Verify {
        /// Checkpoint file (default `<data-dir>/audit/checkpoint.json`).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Check the chains although there is no checkpoint (truncation then goes unseen).
        #[arg(long)]
        without_checkpoint: bool,
    },
}

#[derive(Debug, clap::Args)]
struct Admin {
    #[command(flatten)]
    overrides: Overrides,
    #[command(subcommand)]
    command: AdminCommand,
}

/// Flags override the file and the environment; they may follow any subcommand
/// (`luach-server audit verify --data-dir …`).
#[derive(Debug, clap::Args)]
struct Overrides {
    /// HTTP listen address, e.g. 0.0.0.0:8080.
    #[arg(long, global = true)]
    http_addr: Option<SocketAddr>,
    /// Plain (development) MQTT listen address, e.g. 127.0.0.1:1883.
    #[arg(long, global = true)]
    mqtt_addr: Option<SocketAddr>,
    /// Mutual-TLS MQTT listen address for enrolled devices, e.g. 0.0.0.0:8883.
    #[arg(long, global = true)]
    mqtt_tls_addr: Option<SocketAddr>,
    /// Directory for the SQLite file and local state.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Store: empty for SQLite in the data dir, `sqlite:PATH`, or `mongodb://…`.
    #[arg(long, global = true)]
    store: Option<String>,
    /// Redis URL for multi-replica fan-out of live events.
    #[arg(long, global = true)]
    redis: Option<String>,
    /// Directory with the built dashboard.
    #[arg(long, global = true)]
    web_dir: Option<PathBuf>,
    /// Seconds without a message before a device is offline.
    #[arg(long, global = true)]
    offline_after: Option<u64>,
    /// Log format: json or pretty.
    #[arg(long, global = true)]
    log_format: Option<String>,
}

impl Overrides {
    fn figment(&self) -> Figment {
        let mut root = Map::new();
        let mut set = |path: &str, value: Value| {
            let mut parts = path.split('.').peekable();
            let mut node = &mut root;
            while let Some(part) = parts.next() {
                if parts.peek().is_none() {
                    node.insert(part.to_owned(), value.clone());
                } else {
                    node = match node.entry(part.to_owned()).or_insert_with(|| json!({})) {
                        Value::Object(m) => m,
                        _ => return,
                    };
                }
            }
        };
        if let Some(v) = self.http_addr {
            set("http.addr", json!(v.to_string()));
        }
        if let Some(v) = self.mqtt_addr {
            set("mqtt.listen", json!(v.to_string()));
        }
        if let Some(v) = self.mqtt_tls_addr {
            set("mqtt.tls_listen", json!(v.to_string()));
        }
        if let Some(v) = &self.data_dir {
            set("data_dir", json!(v));
        }
        if let Some(v) = &self.store {
            set("store.url", json!(v));
        }
        if let Some(v) = &self.redis {
            set("redis", json!(v));
        }
        if let Some(v) = &self.web_dir {
            set("http.web_dir", json!(v));
        }
        if let Some(v) = self.offline_after {
            set("presence.offline_after_secs", json!(v));
        }
        if let Some(v) = &self.log_format {
            set("log.format", json!(v));
        }
        Figment::from(Serialized::defaults(Value::Object(root)))
    }
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if config.log.format == "json" {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::PrintConfig(o) => {
            let config = Config::load(cli.config.as_deref(), o.figment())?;
            print!("{}", config.to_redacted_toml());
            Ok(())
        }
        Command::Audit(audit) => {
            let config = Config::load(cli.config.as_deref(), audit.overrides.figment())?;
            match audit.command {
                AuditCommand::Verify {
                    checkpoint,
                    without_checkpoint,
                } => {
                    luach_control_plane::admin::verify_audit(
                        &config,
                        checkpoint.as_deref(),
                        without_checkpoint,
                        &mut std::io::stdout(),
                    )
                    .await
                }
            }
        }
        Command::BrokerConfig(b) => {
            let config = Config::load(cli.config.as_deref(), b.overrides.figment())?;
            match b.broker {
                BrokerKind::Mosquitto {
                    out,
                    on_broker,
                    devices_port,
                    devices_bind,
                    control_port,
                    control_bind,
                } => {
                    let listeners = luach_broker::external::mosquitto::Listeners {
                        devices_bind,
                        devices_port,
                        control_bind,
                        control_port,
                        max_connections: config.mqtt.max_connections,
                        max_packet_bytes: config.mqtt.max_packet_bytes(),
                    };
                    luach_control_plane::admin::broker_config_mosquitto(
                        &config,
                        &out,
                        on_broker.as_deref(),
                        &listeners,
                        &mut std::io::stdout(),
                    )
                    .await
                }
            }
        }
        Command::Backup(b) => {
            let config = Config::load(cli.config.as_deref(), b.overrides.figment())?;
            let tenant = b
                .tenant
                .as_deref()
                .map(luach_schemas::TenantId::parse)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
            let written = luach_control_plane::backup::backup(&config, &b.out, tenant).await?;
            println!(
                "wrote {}: {} rows, {} files",
                written.path.display(),
                written.rows,
                written.files
            );
            Ok(())
        }
        Command::Restore(r) => {
            let config = Config::load(cli.config.as_deref(), r.overrides.figment())?;
            let restored = luach_control_plane::backup::restore(&config, &r.from).await?;
            println!(
                "restored {}: {} rows, {} files",
                restored
                    .tenant
                    .map_or_else(|| "the installation".to_owned(), |t| format!("tenant {t}")),
                restored.rows,
                restored.files
            );
            Ok(())
        }
        Command::Migrate(m) => {
            let config = Config::load(cli.config.as_deref(), m.overrides.figment())?;
            luach_control_plane::admin::migrate(&config, m.dry_run, &mut std::io::stdout()).await
        }
        Command::Admin(admin) => {
            let config = Config::load(cli.config.as_deref(), admin.overrides.figment())?;
            luach_control_plane::admin::run(&config, admin.command, &mut std::io::stdout()).await
        }
        Command::Serve(o) => {
            let config = Config::load(cli.config.as_deref(), o.figment())?;
            init_tracing(&config);
            let app = Application::build(config).await.context("starting luach-server")?;
            tracing::info!(
                http = %app.http_addr(),
                mqtt = ?app.mqtt_addr(),
                mqtt_tls = ?app.mqtt_tls_addr(),
                "luach-server ready"
            );
            let token = app.shutdown_token();
            tokio::spawn(async move {
                shutdown_signal().await;
                tracing::info!("shutting down");
                token.cancel();
            });
            app.run_until_stopped().await
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
