//! A private X server (Debian's Xvfb) for the screen tests and the board benchmark.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt, ImageFormat};
use x11rb::rust_connection::RustConnection;

/// An X server with one screen of `width`×`height`, stopped on drop.
pub struct Xvfb {
    child: Child,
    /// `:N`, for `DISPLAY`.
    pub display: String,
    pub width: u32,
    pub height: u32,
}

impl Xvfb {
    /// Starts Xvfb on the first display number from `first` whose lock file is free and
    /// waits until it accepts connections.
    pub fn start(width: u32, height: u32, first: u32) -> anyhow::Result<Self> {
        for n in first..first + 300 {
            if Path::new(&format!("/tmp/.X{n}-lock")).exists() {
                continue;
            }
            let display = format!(":{n}");
            let child = Command::new("Xvfb")
                .args([
                    display.as_str(),
                    "-screen",
                    "0",
                    &format!("{width}x{height}x24"),
                    "-nolisten",
                    "tcp",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("Xvfb is required (scripts/test.sh installs the xvfb package)")?;
            let mut x = Self {
                child,
                display,
                width,
                height,
            };
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                if RustConnection::connect(Some(&x.display)).is_ok() {
                    return Ok(x);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = x.child.kill();
        }
        bail!("no X display could be started")
    }

    /// The pixels of a `w`×`h` rectangle at (`x`, `y`), as RGB.
    pub fn grab(&self, x: u32, y: u32, w: u32, h: u32) -> anyhow::Result<Vec<u8>> {
        let (conn, screen) = RustConnection::connect(Some(&self.display))?;
        let root = conn.setup().roots.get(screen).context("no screen")?.root;
        let image = conn
            .get_image(
                ImageFormat::Z_PIXMAP,
                root,
                x as i16,
                y as i16,
                w as u16,
                h as u16,
                u32::MAX,
            )?
            .reply()?;
        Ok(image.data.chunks_exact(4).flat_map(|p| [p[2], p[1], p[0]]).collect())
    }

    /// The whole screen, as RGB.
    pub fn grab_all(&self) -> anyhow::Result<Vec<u8>> {
        self.grab(0, 0, self.width, self.height)
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
