//! What the agent does to the hardware around it: brightness, volume, display power.
//!
//! Everything platform-specific sits behind [`Platform`]. [`Linux`] finds at start-up what this
//! machine has and uses, in order of preference:
//!
//! | effect | configured command | then | then |
//! |---|---|---|---|
//! | brightness | `--brightness-command` | backlight in `/sys/class/backlight` | — |
//! | volume | `--volume-command` | ALSA `amixer` with a `Master` control | — |
//! | display power | `--display-power-command` | HDMI-CEC (`cec-ctl`, `/dev/cec*`) | DPMS on the X display, then the backlight's `bl_power` |
//! | reboot | `--reboot-command` | `systemctl reboot` (systemd, as root) | — |
//! | package install | `--package-command` | `apt-get install` (as root) | — |
//!
//! A package is installed only when the screen's own allow-list (`--allow-package`, set by
//! whoever installed the screen) names it: the control plane can ask, never decide.
//!
//! A configured command is run as `sh -c COMMAND luach-agent VALUE`: the value (`0`–`100` or
//! `on`/`off`, the package name; nothing for reboot) is `$1`, and also in `LUACH_VALUE`. It has
//! [`COMMAND_TIMEOUT`] to finish ([`PACKAGE_TIMEOUT`] for a package); a non-zero exit is an
//! error with the end of its standard error.
//!
//! When nothing can carry an effect out, [`Platform::apply`] answers
//! [`PlatformError::Unsupported`] with the reason; it never reports a success it did not have.
//! An Android TV build implements the same trait in its shell (see `docs/android.md`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest a platform command may run.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a package installation may run.
pub const PACKAGE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// One change to the screen's hardware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// 0–100 %.
    Brightness(u8),
    /// 0–100 %.
    Volume(u8),
    DisplayPower(bool),
}

impl Effect {
    /// The value as a configured command receives it.
    pub fn value(self) -> String {
        match self {
            Self::Brightness(p) | Self::Volume(p) => p.to_string(),
            Self::DisplayPower(on) => if on { "on" } else { "off" }.to_owned(),
        }
    }

    fn kind(self) -> Kind {
        match self {
            Self::Brightness(_) => Kind::Brightness,
            Self::Volume(_) => Kind::Volume,
            Self::DisplayPower(_) => Kind::DisplayPower,
        }
    }
}

/// Why an effect was not carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    /// This screen has no way to do it.
    #[error("{0}")]
    Unsupported(String),
    /// It has a way, and that failed.
    #[error("{0}")]
    Failed(String),
}

/// The platform's effects. `apply` may block (it runs processes); call it off the async
/// runtime's worker threads.
pub trait Platform: Send + Sync + std::fmt::Debug {
    /// Carries `effect` out; `Ok` says how.
    fn apply(&self, effect: Effect) -> Result<String, PlatformError>;
    /// One line per effect: how it would be carried out, or why it cannot.
    fn describe(&self) -> Vec<String>;
    /// How the device would be restarted, or why it cannot be.
    fn reboot_way(&self) -> Result<String, PlatformError> {
        Err(PlatformError::Unsupported(
            "this platform cannot restart the device".into(),
        ))
    }
    /// Restarts the device (returns when the restart is under way).
    fn reboot(&self) -> Result<(), PlatformError> {
        Err(PlatformError::Unsupported(
            "this platform cannot restart the device".into(),
        ))
    }
    /// Installs `package` when the allow-list names it; `Ok` says how.
    fn install(&self, package: &str) -> Result<String, PlatformError> {
        Err(PlatformError::Unsupported(format!(
            "this platform has no package manager the agent can drive ({package} not installed)"
        )))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Brightness,
    Volume,
    DisplayPower,
}

/// Commands configured for effects, overriding what is detected.
#[derive(Debug, Clone, Default)]
pub struct Configured {
    pub brightness: Option<String>,
    pub volume: Option<String>,
    pub display_power: Option<String>,
    pub reboot: Option<String>,
    pub package: Option<String>,
    /// Packages that may be installed on the control plane's request.
    pub allowed_packages: Vec<String>,
}

/// How one effect is carried out on this machine.
#[derive(Debug, Clone)]
enum Way {
    Command(String),
    /// A backlight directory with its `max_brightness`.
    Backlight(PathBuf, u64),
    /// A backlight's `bl_power` file.
    BacklightPower(PathBuf),
    Amixer,
    Cec(PathBuf),
    Dpms(String),
    Systemctl,
    Apt,
    None(String),
}

/// Linux: configured commands, sysfs backlight, ALSA, HDMI-CEC and DPMS, found at start-up.
#[derive(Debug, Clone)]
pub struct Linux {
    brightness: Way,
    volume: Way,
    display_power: Way,
    reboot: Way,
    package: Way,
    allowed_packages: std::collections::BTreeSet<String>,
}

/// Where the host keeps things; tests point these at temporary directories.
#[derive(Debug, Clone)]
pub struct Host {
    /// `/sys/class/backlight`.
    pub backlights: PathBuf,
    /// `/dev` (for `cec*` devices).
    pub dev: PathBuf,
    /// The X display for DPMS, when the board is drawn on one.
    pub x_display: Option<String>,
    /// `/run/systemd/system` (present when systemd runs the machine).
    pub systemd: PathBuf,
}

impl Host {
    pub fn real(x_display: Option<String>) -> Self {
        Self {
            backlights: PathBuf::from("/sys/class/backlight"),
            dev: PathBuf::from("/dev"),
            x_display,
            systemd: PathBuf::from("/run/systemd/system"),
        }
    }
}

/// The process's effective user id, from `/proc/self/status`.
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// The first backlight with a writable `brightness` and a positive `max_brightness`.
fn backlight(dir: &Path) -> Option<(PathBuf, u64)> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    entries.into_iter().find_map(|path| {
        let max: u64 = std::fs::read_to_string(path.join("max_brightness"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let writable = std::fs::OpenOptions::new()
            .write(true)
            .open(path.join("brightness"))
            .is_ok();
        (max > 0 && writable).then_some((path, max))
    })
}

fn cec_device(dev: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dev)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with("cec")))
        .map(|e| e.path())
        .collect();
    found.sort();
    found.into_iter().next()
}

/// Whether the X server at `display` can do DPMS.
fn dpms_capable(display: &str) -> bool {
    use x11rb::protocol::dpms::ConnectionExt;
    let Ok((conn, _)) = x11rb::connect(Some(display)) else {
        return false;
    };
    conn.dpms_capable()
        .ok()
        .and_then(|c| c.reply().ok())
        .is_some_and(|r| r.capable)
}

impl Linux {
    /// Finds what this host can do; `configured` commands win over what is found.
    pub fn detect(configured: &Configured, host: &Host) -> Self {
        let light = backlight(&host.backlights);
        let brightness = match (&configured.brightness, &light) {
            (Some(c), _) => Way::Command(c.clone()),
            (None, Some((path, max))) => Way::Backlight(path.clone(), *max),
            (None, None) => Way::None(format!(
                "no backlight in {} and no --brightness-command",
                host.backlights.display()
            )),
        };
        let volume = match &configured.volume {
            Some(c) => Way::Command(c.clone()),
            None if !on_path("amixer") => {
                Way::None("no ALSA mixer (amixer is not installed) and no --volume-command".into())
            }
            None if !run_quiet("amixer", &["sget", "Master"]) => {
                Way::None("ALSA has no Master control on this machine and there is no --volume-command".into())
            }
            None => Way::Amixer,
        };
        let cec = cec_device(&host.dev).filter(|_| on_path("cec-ctl"));
        let dpms = host.x_display.clone().filter(|d| dpms_capable(d));
        let display_power = match (&configured.display_power, cec, dpms, &light) {
            (Some(c), ..) => Way::Command(c.clone()),
            (None, Some(cec), ..) => Way::Cec(cec),
            (None, None, Some(display), _) => Way::Dpms(display),
            (None, None, None, Some((path, _))) if path.join("bl_power").exists() => Way::BacklightPower(path.clone()),
            _ => Way::None(
                "no HDMI-CEC device (cec-ctl and /dev/cec*), no DPMS-capable X display, no backlight power control and no --display-power-command"
                    .into(),
            ),
        };
        let root = effective_uid() == Some(0);
        let reboot = match &configured.reboot {
            Some(c) => Way::Command(c.clone()),
            None if host.systemd.is_dir() && on_path("systemctl") && root => Way::Systemctl,
            None => Way::None("no --reboot-command, and `systemctl reboot` needs systemd and root".into()),
        };
        let package = match &configured.package {
            Some(c) => Way::Command(c.clone()),
            None if on_path("apt-get") && root => Way::Apt,
            None => Way::None("no --package-command, and `apt-get install` needs apt and root".into()),
        };
        Self {
            brightness,
            volume,
            display_power,
            reboot,
            package,
            allowed_packages: configured.allowed_packages.iter().cloned().collect(),
        }
    }

    fn way(&self, kind: Kind) -> &Way {
        match kind {
            Kind::Brightness => &self.brightness,
            Kind::Volume => &self.volume,
            Kind::DisplayPower => &self.display_power,
        }
    }
}

fn describe_way(way: &Way) -> String {
    match way {
        Way::Command(c) => format!("configured command `{c}`"),
        Way::Backlight(p, max) => format!("backlight {} (0–{max})", p.display()),
        Way::BacklightPower(p) => format!("backlight power {}", p.join("bl_power").display()),
        Way::Amixer => "ALSA Master through amixer".into(),
        Way::Cec(d) => format!("HDMI-CEC through cec-ctl on {}", d.display()),
        Way::Dpms(d) => format!("DPMS on X display {d}"),
        Way::Systemctl => "systemctl reboot".into(),
        Way::Apt => "apt-get install".into(),
        Way::None(why) => format!("unsupported: {why}"),
    }
}

impl Platform for Linux {
    fn apply(&self, effect: Effect) -> Result<String, PlatformError> {
        let way = self.way(effect.kind());
        match (way, effect) {
            (Way::None(why), _) => return Err(PlatformError::Unsupported(why.clone())),
            (Way::Command(c), _) => run_configured(c, &effect.value(), COMMAND_TIMEOUT)?,
            (Way::Backlight(path, max), Effect::Brightness(p)) => {
                let level = (u64::from(p) * max).div_ceil(100);
                write_sysfs(&path.join("brightness"), &level.to_string())?;
            }
            (Way::BacklightPower(path), Effect::DisplayPower(on)) => {
                // FB_BLANK_UNBLANK = 0, FB_BLANK_POWERDOWN = 4.
                write_sysfs(&path.join("bl_power"), if on { "0" } else { "4" })?;
            }
            (Way::Amixer, Effect::Volume(p)) => run("amixer", &["-q", "sset", "Master", &format!("{p}%")])?,
            (Way::Cec(dev), Effect::DisplayPower(on)) => {
                let dev = dev.to_string_lossy();
                let order = if on { "--image-view-on" } else { "--standby" };
                run("cec-ctl", &["-d", &dev, "--to", "0", order])?;
            }
            (Way::Dpms(display), Effect::DisplayPower(on)) => dpms(display, on)?,
            (way, effect) => {
                return Err(PlatformError::Failed(format!(
                    "{} cannot carry out {effect:?}",
                    describe_way(way)
                )));
            }
        }
        Ok(describe_way(way))
    }

    fn describe(&self) -> Vec<String> {
        let allowed: Vec<&str> = self.allowed_packages.iter().map(String::as_str).collect();
        [
            ("brightness", &self.brightness),
            ("volume", &self.volume),
            ("display power", &self.display_power),
            ("reboot", &self.reboot),
            ("packages", &self.package),
        ]
        .iter()
        .map(|(name, way)| format!("{name}: {}", describe_way(way)))
        .chain([format!("packages allowed: {}", allowed.join(", "))])
        .collect()
    }

    fn reboot_way(&self) -> Result<String, PlatformError> {
        match &self.reboot {
            Way::None(why) => Err(PlatformError::Unsupported(why.clone())),
            way => Ok(describe_way(way)),
        }
    }

    fn reboot(&self) -> Result<(), PlatformError> {
        match &self.reboot {
            Way::None(why) => Err(PlatformError::Unsupported(why.clone())),
            Way::Command(c) => run_configured(c, "", COMMAND_TIMEOUT),
            _ => run("systemctl", &["reboot"]),
        }
    }

    fn install(&self, package: &str) -> Result<String, PlatformError> {
        if !self.allowed_packages.contains(package) {
            return Err(PlatformError::Failed(format!(
                "{package} is not on this screen's allow-list (--allow-package)"
            )));
        }
        match &self.package {
            Way::None(why) => return Err(PlatformError::Unsupported(why.clone())),
            Way::Command(c) => run_configured(c, package, PACKAGE_TIMEOUT)?,
            _ => {
                let mut command = Command::new("apt-get");
                command
                    .args(["install", "-y", "--no-install-recommends", package])
                    .env("DEBIAN_FRONTEND", "noninteractive");
                finish(command, "apt-get", PACKAGE_TIMEOUT)?;
            }
        }
        Ok(format!("{package} installed through {}", describe_way(&self.package)))
    }
}

fn write_sysfs(path: &Path, value: &str) -> Result<(), PlatformError> {
    std::fs::write(path, value).map_err(|e| PlatformError::Failed(format!("writing {}: {e}", path.display())))
}

fn dpms(display: &str, on: bool) -> Result<(), PlatformError> {
    use x11rb::protocol::dpms::{ConnectionExt, DPMSMode};
    let failed = |e: &dyn std::fmt::Display| PlatformError::Failed(format!("DPMS on {display}: {e}"));
    let (conn, _) = x11rb::connect(Some(display)).map_err(|e| failed(&e))?;
    conn.dpms_enable()
        .map_err(|e| failed(&e))?
        .check()
        .map_err(|e| failed(&e))?;
    let level = if on { DPMSMode::ON } else { DPMSMode::OFF };
    conn.dpms_force_level(level)
        .map_err(|e| failed(&e))?
        .check()
        .map_err(|e| failed(&e))?;
    Ok(())
}

fn run_quiet(program: &str, args: &[&str]) -> bool {
    let mut command = Command::new(program);
    command.args(args);
    finish(command, program, COMMAND_TIMEOUT).is_ok()
}

fn run(program: &str, args: &[&str]) -> Result<(), PlatformError> {
    let mut command = Command::new(program);
    command.args(args);
    finish(command, program, COMMAND_TIMEOUT)
}

fn run_configured(script: &str, value: &str, timeout: Duration) -> Result<(), PlatformError> {
    let mut command = Command::new("sh");
    command
        .args(["-c", script, "luach-agent", value])
        .env("LUACH_VALUE", value);
    finish(command, "the configured command", timeout)
}

/// Runs `command` with no input, at most `timeout`; an error carries the end of its standard
/// error.
fn finish(mut command: Command, name: &str, timeout: Duration) -> Result<(), PlatformError> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| PlatformError::Failed(format!("{name} could not start: {e}")))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < timeout => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(PlatformError::Failed(format!(
                    "{name} did not finish within {} s",
                    timeout.as_secs()
                )));
            }
            Err(e) => return Err(PlatformError::Failed(format!("{name}: {e}"))),
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.by_ref().take(64 * 1024).read_to_string(&mut stderr);
    }
    let tail: String = stderr
        .trim()
        .chars()
        .rev()
        .take(300)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Err(PlatformError::Failed(format!("{name} failed ({status}): {tail}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bare(root: &Path) -> Host {
        let backlights = root.join("backlight");
        let dev = root.join("dev");
        std::fs::create_dir_all(&backlights).unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir_all(&dev).unwrap_or_else(|e| panic!("{e}"));
        Host {
            backlights,
            dev,
            x_display: None,
            systemd: root.join("systemd"),
        }
    }

    #[test]
    fn without_hardware_everything_is_unsupported_with_a_reason() {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let linux = Linux::detect(&Configured::default(), &bare(root.path()));
        for effect in [Effect::Brightness(50), Effect::DisplayPower(false)] {
            match linux.apply(effect) {
                Err(PlatformError::Unsupported(why)) => assert!(why.contains("no "), "{why}"),
                other => panic!("{effect:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_sysfs_backlight_takes_brightness_and_power() {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let host = bare(root.path());
        let panel = host.backlights.join("intel_backlight");
        std::fs::create_dir_all(&panel).unwrap_or_else(|e| panic!("{e}"));
        for (file, value) in [
            ("max_brightness", "937\n"),
            ("brightness", "937\n"),
            ("bl_power", "0\n"),
        ] {
            std::fs::write(panel.join(file), value).unwrap_or_else(|e| panic!("{e}"));
        }
        let linux = Linux::detect(&Configured::default(), &host);
        let how = linux.apply(Effect::Brightness(40)).unwrap_or_else(|e| panic!("{e}"));
        assert!(how.contains("intel_backlight"), "{how}");
        // 40 % of 937, rounded up so a small percentage never turns the light off.
        assert_eq!(
            std::fs::read_to_string(panel.join("brightness")).unwrap_or_default(),
            "375"
        );
        linux
            .apply(Effect::DisplayPower(false))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read_to_string(panel.join("bl_power")).unwrap_or_default(), "4");
        linux
            .apply(Effect::DisplayPower(true))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read_to_string(panel.join("bl_power")).unwrap_or_default(), "0");
    }

    #[test]
    fn configured_commands_get_the_value_and_report_failures() {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let out = root.path().join("volume");
        let configured = Configured {
            volume: Some(format!("echo \"$1 $LUACH_VALUE\" > '{}'", out.display())),
            display_power: Some("echo 'no TV on this port' >&2; exit 3".into()),
            ..Configured::default()
        };
        let linux = Linux::detect(&configured, &bare(root.path()));
        linux.apply(Effect::Volume(7)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read_to_string(&out).unwrap_or_default(), "7 7\n");
        match linux.apply(Effect::DisplayPower(true)) {
            Err(PlatformError::Failed(why)) => assert!(why.contains("no TV on this port"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(linux.describe().len(), 6);
    }

    #[test]
    fn packages_install_only_from_the_allow_list_and_reboot_needs_a_way() {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let out = root.path().join("installed");
        let configured = Configured {
            package: Some(format!("echo \"$1\" >> '{}'", out.display())),
            allowed_packages: vec!["fonts-noto-core".into()],
            ..Configured::default()
        };
        let linux = Linux::detect(&configured, &bare(root.path()));
        let how = linux.install("fonts-noto-core").unwrap_or_else(|e| panic!("{e}"));
        assert!(how.contains("fonts-noto-core installed"), "{how}");
        match linux.install("openssh-server") {
            Err(PlatformError::Failed(why)) => assert!(why.contains("allow-list"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read_to_string(&out).unwrap_or_default(), "fonts-noto-core\n");
        // No systemd directory in this host and no configured command.
        assert!(matches!(linux.reboot_way(), Err(PlatformError::Unsupported(_))));
        assert!(matches!(linux.reboot(), Err(PlatformError::Unsupported(_))));
    }
}
