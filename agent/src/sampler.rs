//! System metrics sampling (CPU, memory, disk, temperature, uptime).

use std::time::Duration;

use luach_schemas::messages::Metrics;
use sysinfo::{Components, Disks, System};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// This agent's version, reported in hello and metrics.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The version the agent reports: its install slot's when it runs from one (the version the
/// signed release it was installed from names), else the version it was built as.
pub fn agent_version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| {
        std::env::current_exe()
            .ok()
            .and_then(|exe| crate::update::layout::slot_version_of(&exe))
            .map_or_else(|| AGENT_VERSION.to_owned(), |v| v.to_string())
    })
}

fn sample(system: &mut System, disks: &mut Disks, components: &mut Components) -> Metrics {
    system.refresh_cpu_usage();
    system.refresh_memory();
    disks.refresh(true);
    components.refresh(true);
    let (disk_total, disk_free) = disks
        .list()
        .iter()
        .fold((0u64, 0u64), |(t, f), d| (t + d.total_space(), f + d.available_space()));
    let temperature_c = components
        .list()
        .iter()
        .filter_map(sysinfo::Component::temperature)
        .filter(|t| t.is_finite())
        .reduce(f32::max);
    Metrics {
        cpu_percent: system.global_cpu_usage(),
        mem_used_bytes: system.used_memory(),
        mem_total_bytes: system.total_memory(),
        disk_used_bytes: disk_total.saturating_sub(disk_free),
        disk_total_bytes: disk_total,
        temperature_c,
        uptime_s: System::uptime(),
        agent_version: agent_version().to_owned(),
    }
}

/// Samples every `every` on a blocking thread and publishes the latest snapshot.
///
/// One sampler serves every simulated screen of a process: they share one machine.
pub fn spawn(every: Duration, shutdown: CancellationToken) -> watch::Receiver<Metrics> {
    let (tx, rx) = watch::channel(Metrics {
        agent_version: agent_version().to_owned(),
        uptime_s: System::uptime(),
        ..Metrics::default()
    });
    tokio::task::spawn_blocking(move || {
        let mut system = System::new();
        let mut disks = Disks::new_with_refreshed_list();
        let mut components = Components::new_with_refreshed_list();
        // CPU usage is a difference between two refreshes.
        system.refresh_cpu_usage();
        let step = Duration::from_millis(200);
        let mut waited = every;
        while !shutdown.is_cancelled() {
            if waited >= every {
                let m = sample(&mut system, &mut disks, &mut components);
                if tx.send(m).is_err() {
                    return;
                }
                waited = Duration::ZERO;
            }
            std::thread::sleep(step);
            waited += step;
        }
    });
    rx
}
