//! Where the board's frames go: a full-screen X11 window, the Linux framebuffer, or nowhere
//! (headless). A [`Surface`] takes whole frames and the rows that changed since the last one,
//! so a ticking clock costs a few hundred rows, not the screen.
//!
//! - **X11** (also what Wayland desktops run X clients through): a borderless window the size
//!   of the screen, above everything (override-redirect, as kiosk players do), drawn with
//!   `PutImage` over the pure-Rust x11rb protocol implementation (no C libraries needed).
//! - **Framebuffer** (`/dev/fb0`, kiosk boxes without a desktop): geometry from sysfs
//!   (`/sys/class/graphics/fbN/`), 32-bit pixels written at their offsets.
//! - **None**: the agent keeps running and drawing frames for screenshots, with no display.

use std::io::{Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{ConnectionExt, CreateGCAux, CreateWindowAux, EventMask, ImageFormat, WindowClass};
use x11rb::rust_connection::RustConnection;

/// Why a display could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DisplayError {
    #[error("X11: {0}")]
    X11(String),
    #[error("framebuffer {path}: {reason}")]
    Framebuffer { path: PathBuf, reason: String },
}

/// Which output `luach-agent run` draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// An X11 display when `DISPLAY` is set, else the framebuffer when writable, else none.
    Auto,
    X11,
    Framebuffer,
    /// Headless: frames are drawn for screenshots only.
    None,
}

/// A display the board is drawn on.
pub trait Surface: Send {
    /// Pixels across and down.
    fn size(&self) -> (u32, u32);
    /// Shows `rows` of a frame (`rgba`, `size()` pixels, 4 bytes each).
    fn present(&mut self, rgba: &[u8], rows: Range<u32>) -> Result<(), DisplayError>;
    /// Whether the whole frame must be shown again (the window was uncovered).
    fn needs_full_redraw(&mut self) -> bool {
        false
    }
    fn describe(&self) -> String;
    /// The X display it draws on, if any (for DPMS).
    fn x_display(&self) -> Option<String> {
        None
    }
}

/// Opens the display `output` asks for; `None` for headless or when nothing is available
/// under `Auto` (the reason is logged).
pub fn open(output: Output, size: Option<(u32, u32)>) -> Result<Option<Box<dyn Surface>>, DisplayError> {
    match output {
        Output::None => Ok(None),
        Output::X11 => Ok(Some(Box::new(X11::open(None, size)?))),
        Output::Framebuffer => Ok(Some(Box::new(Framebuffer::open(Path::new("/dev/fb0"))?))),
        Output::Auto => {
            if std::env::var_os("DISPLAY").is_some() {
                match X11::open(None, size) {
                    Ok(x) => return Ok(Some(Box::new(x))),
                    Err(e) => tracing::warn!(error = %e, "DISPLAY is set but X11 is not usable"),
                }
            }
            match Framebuffer::open(Path::new("/dev/fb0")) {
                Ok(fb) => Ok(Some(Box::new(fb))),
                Err(e) => {
                    tracing::info!(reason = %e, "no display: running headless");
                    Ok(None)
                }
            }
        }
    }
}

/// A full-screen X11 window.
pub struct X11 {
    conn: RustConnection,
    window: u32,
    gc: u32,
    width: u32,
    height: u32,
    depth: u8,
    /// Largest request the server takes, in bytes.
    max_request: usize,
    exposed: bool,
    scratch: Vec<u8>,
}

fn x11<E: std::fmt::Display>(e: E) -> DisplayError {
    DisplayError::X11(e.to_string())
}

impl X11 {
    /// Connects to `display` (default `$DISPLAY`) and maps a window covering the screen (or
    /// `size`, at the top-left corner).
    pub fn open(display: Option<&str>, size: Option<(u32, u32)>) -> Result<Self, DisplayError> {
        let (conn, screen_num) = RustConnection::connect(display).map_err(x11)?;
        let setup = conn.setup();
        let screen = setup
            .roots
            .get(screen_num)
            .ok_or_else(|| x11("no such screen"))?
            .clone();
        let depth = screen.root_depth;
        let bpp = setup
            .pixmap_formats
            .iter()
            .find(|f| f.depth == depth)
            .map(|f| f.bits_per_pixel)
            .unwrap_or(0);
        if !(depth == 24 || depth == 32) || bpp != 32 {
            return Err(x11(format!(
                "only 24-bit colour with 32-bit pixels is supported (depth {depth}, {bpp} bits)"
            )));
        }
        let (width, height) = size.unwrap_or((u32::from(screen.width_in_pixels), u32::from(screen.height_in_pixels)));
        let w = u16::try_from(width).map_err(x11)?;
        let h = u16::try_from(height).map_err(x11)?;
        let window = conn.generate_id().map_err(x11)?;
        let aux = CreateWindowAux::new()
            .override_redirect(1)
            .background_pixel(screen.black_pixel)
            .event_mask(EventMask::EXPOSURE);
        conn.create_window(
            depth,
            window,
            screen.root,
            0,
            0,
            w,
            h,
            0,
            WindowClass::INPUT_OUTPUT,
            screen.root_visual,
            &aux,
        )
        .map_err(x11)?;
        let gc = conn.generate_id().map_err(x11)?;
        conn.create_gc(gc, window, &CreateGCAux::new()).map_err(x11)?;
        conn.map_window(window).map_err(x11)?;
        conn.flush().map_err(x11)?;
        let max_request = x11rb::connection::RequestConnection::maximum_request_bytes(&conn);
        Ok(Self {
            conn,
            window,
            gc,
            width,
            height,
            depth,
            max_request,
            exposed: true,
            scratch: Vec::new(),
        })
    }
}

impl Surface for X11 {
    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn present(&mut self, rgba: &[u8], rows: Range<u32>) -> Result<(), DisplayError> {
        let stride = self.width as usize * 4;
        // Rows per request: within the server's limit (minus the request header), and at most
        // 64 rows so the conversion buffer stays small.
        let per_request = ((self.max_request.saturating_sub(64)) / stride).clamp(1, 64) as u32;
        let mut y = rows.start;
        while y < rows.end.min(self.height) {
            let n = per_request.min(rows.end.min(self.height) - y);
            let start = y as usize * stride;
            let end = start + n as usize * stride;
            let Some(src) = rgba.get(start..end) else { break };
            // RGBA to the server's little-endian BGRX.
            self.scratch.clear();
            self.scratch
                .extend(src.chunks_exact(4).flat_map(|p| [p[2], p[1], p[0], 255]));
            self.conn
                .put_image(
                    ImageFormat::Z_PIXMAP,
                    self.window,
                    self.gc,
                    self.width as u16,
                    n as u16,
                    0,
                    y as i16,
                    0,
                    self.depth,
                    &self.scratch,
                )
                .map_err(x11)?;
            y += n;
        }
        self.conn.flush().map_err(x11)
    }

    fn needs_full_redraw(&mut self) -> bool {
        while let Ok(Some(event)) = self.conn.poll_for_event() {
            if let Event::Expose(_) = event {
                self.exposed = true;
            }
        }
        std::mem::take(&mut self.exposed)
    }

    fn describe(&self) -> String {
        format!("x11 window {}×{}", self.width, self.height)
    }

    fn x_display(&self) -> Option<String> {
        // `open` connected to the display `DISPLAY` names.
        std::env::var("DISPLAY").ok()
    }
}

/// The Linux framebuffer device.
pub struct Framebuffer {
    path: PathBuf,
    file: std::fs::File,
    width: u32,
    height: u32,
    /// Bytes per line.
    stride: usize,
    line: Vec<u8>,
}

impl Framebuffer {
    /// Opens `device` (e.g. `/dev/fb0`) with its geometry from sysfs; only 32-bit pixels.
    pub fn open(device: &Path) -> Result<Self, DisplayError> {
        let fail = |reason: String| DisplayError::Framebuffer {
            path: device.to_owned(),
            reason,
        };
        let name = device
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| fail("not a device name".into()))?;
        let sys = Path::new("/sys/class/graphics").join(name);
        let read = |file: &str| std::fs::read_to_string(sys.join(file)).map_err(|e| fail(format!("{file}: {e}")));
        let size = read("virtual_size")?;
        let (w, h) = size
            .trim()
            .split_once(',')
            .ok_or_else(|| fail(format!("virtual_size {size:?}")))?;
        let width: u32 = w.parse().map_err(|_| fail(format!("virtual_size {size:?}")))?;
        let height: u32 = h.parse().map_err(|_| fail(format!("virtual_size {size:?}")))?;
        let bpp = read("bits_per_pixel")?;
        if bpp.trim() != "32" {
            return Err(fail(format!("{} bits per pixel; only 32 is supported", bpp.trim())));
        }
        let stride = read("stride")?.trim().parse().unwrap_or(width as usize * 4);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(device)
            .map_err(|e| fail(e.to_string()))?;
        Ok(Self {
            path: device.to_owned(),
            file,
            width,
            height,
            stride,
            line: Vec::new(),
        })
    }
}

impl Surface for Framebuffer {
    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn present(&mut self, rgba: &[u8], rows: Range<u32>) -> Result<(), DisplayError> {
        let fail = |e: std::io::Error| DisplayError::Framebuffer {
            path: self.path.clone(),
            reason: e.to_string(),
        };
        let row_bytes = self.width as usize * 4;
        for y in rows.start..rows.end.min(self.height) {
            let start = y as usize * row_bytes;
            let Some(src) = rgba.get(start..start + row_bytes) else {
                break;
            };
            self.line.clear();
            self.line
                .extend(src.chunks_exact(4).flat_map(|p| [p[2], p[1], p[0], 255]));
            self.file
                .seek(SeekFrom::Start((y as usize * self.stride) as u64))
                .map_err(fail)?;
            self.file.write_all(&self.line).map_err(fail)?;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("framebuffer {} {}×{}", self.path.display(), self.width, self.height)
    }
}

/// The bands of rows that differ between two frames of the same size (all rows when there is
/// no previous frame).
pub fn changed_rows(previous: Option<&[u8]>, next: &[u8], width: u32) -> Vec<Range<u32>> {
    let stride = width as usize * 4;
    if stride == 0 {
        return Vec::new();
    }
    let rows = (next.len() / stride) as u32;
    let Some(previous) = previous.filter(|p| p.len() == next.len()) else {
        return std::iter::once(0..rows).collect();
    };
    let mut bands: Vec<Range<u32>> = Vec::new();
    for (y, (a, b)) in previous.chunks_exact(stride).zip(next.chunks_exact(stride)).enumerate() {
        if a != b {
            let y = y as u32;
            match bands.last_mut() {
                Some(band) if band.end == y => band.end = y + 1,
                _ => bands.push(y..y + 1),
            }
        }
    }
    bands
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changed_rows_are_sent() {
        let width = 2;
        let a = vec![0u8; 2 * 4 * 6];
        let mut b = a.clone();
        b[8] = 1; // row 1
        b[8 * 2 + 3] = 1; // row 2
        b[8 * 5] = 1; // row 5
        assert_eq!(changed_rows(Some(&a), &b, width), vec![1..3, 5..6]);
        assert_eq!(changed_rows(Some(&a), &a, width), Vec::<Range<u32>>::new());
        assert_eq!(changed_rows(None, &a, width), vec![0..6]);
        assert_eq!(
            changed_rows(Some(&a[..8]), &a, width),
            vec![0..6],
            "a size change redraws all"
        );
    }

    #[test]
    fn a_missing_framebuffer_is_named() {
        let err = Framebuffer::open(Path::new("/dev/luach-no-such-fb"))
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("luach-no-such-fb")));
    }
}
