//! `luach-agent render`: one frame of the board as a PNG file, offline.
//!
//! The bundle is what `GET /api/v1/devices/{id}/bundle` returns (or the agent's stored
//! `bundle.json`); without one the built-in demo synagogue is drawn. Layout, theme and
//! language default to the screen's settings in the bundle.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use luach_board::{Board, Layout, Options, Status, Theme};
use luach_content::{BoardLanguage, Bundle};

/// Largest bundle file read, as everywhere a bundle is accepted.
const MAX_BUNDLE: u64 = luach_content::bundle::MAX_BUNDLE_BYTES as u64;

/// `luach-agent render [--bundle FILE] [--layout NAME] [--theme NAME] [--language NAME]
/// [--size WxH] --at RFC3339 --out FILE.png`
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct RenderArgs {
    /// A screen's content bundle (JSON); default: the built-in demo synagogue.
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    /// `landscape` or `portrait`; default: the screen's setting, else from the size.
    #[arg(long, value_parser = parse_layout)]
    pub layout: Option<Layout>,
    /// `light`, `dark` or `high_contrast`; default: the screen's setting.
    #[arg(long, value_parser = parse_theme)]
    pub theme: Option<Theme>,
    /// `synagogue`, `hebrew`, `english` or `both`; default: the screen's setting.
    #[arg(long, value_parser = parse_language)]
    pub language: Option<BoardLanguage>,
    /// Frame size in pixels, WIDTHxHEIGHT.
    #[arg(long, default_value = "1920x1080", value_parser = parse_size)]
    pub size: (u32, u32),
    /// The instant drawn, RFC 3339 (e.g. 2026-12-04T15:10:00+02:00).
    #[arg(long, value_parser = parse_at)]
    pub at: DateTime<Utc>,
    /// Where to write the PNG.
    #[arg(long)]
    pub out: PathBuf,
}

fn parse_layout(s: &str) -> Result<Layout, String> {
    Layout::from_key(s).ok_or_else(|| format!("{s:?} is not a layout (landscape, portrait)"))
}

fn parse_theme(s: &str) -> Result<Theme, String> {
    Theme::from_key(s).ok_or_else(|| format!("{s:?} is not a theme (light, dark, high_contrast)"))
}

fn parse_language(s: &str) -> Result<BoardLanguage, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| format!("{s:?} is not a language (synagogue, hebrew, english, both)"))
}

/// An RFC 3339 instant, with the reason when it is not one.
pub fn parse_at(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{s:?} is not an RFC 3339 instant: {e}"))
}

/// `WIDTHxHEIGHT` within the renderer's limits.
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X', '×'])
        .ok_or_else(|| format!("{s:?} is not WIDTHxHEIGHT"))?;
    let side = |v: &str| {
        v.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (luach_board::MIN_SIDE..=luach_board::MAX_SIDE).contains(n))
            .ok_or_else(|| {
                format!(
                    "{v:?} is not a side of {}–{} pixels",
                    luach_board::MIN_SIDE,
                    luach_board::MAX_SIDE
                )
            })
    };
    Ok((side(w)?, side(h)?))
}

/// Why a frame was not written.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is larger than {MAX_BUNDLE} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path}: {source}")]
    Bundle {
        path: PathBuf,
        source: luach_content::BundleError,
    },
    #[error(transparent)]
    Board(#[from] luach_board::BoardError),
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// Reads the bundle (or takes the demo), draws the frame and writes the PNG.
pub fn run(args: &RenderArgs) -> Result<(), RenderError> {
    let bundle = match &args.bundle {
        Some(path) => read_bundle(path)?,
        None => luach_board::demo::bundle_at(args.at),
    };
    let mut options = Options::size(args.size.0, args.size.1);
    options.layout = args.layout;
    options.theme = args.theme;
    options.language = args.language;
    let frame = Board::new().render(&bundle, args.at, options, Status::default())?;
    let png = frame.png()?;
    std::fs::write(&args.out, png).map_err(|source| RenderError::Write {
        path: args.out.clone(),
        source,
    })
}

fn read_bundle(path: &std::path::Path) -> Result<Bundle, RenderError> {
    let read = |source| RenderError::Read {
        path: path.to_owned(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read)?.len();
    if len > MAX_BUNDLE {
        return Err(RenderError::TooLarge { path: path.to_owned() });
    }
    let bytes = std::fs::read(path).map_err(read)?;
    Bundle::parse(&bytes, None, None).map_err(|source| RenderError::Bundle {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_checked_with_clear_errors() {
        assert_eq!(parse_size("1280x720"), Ok((1280, 720)));
        assert!(parse_size("1280").is_err_and(|e| e.contains("WIDTHxHEIGHT")));
        assert!(parse_size("0x720").is_err_and(|e| e.contains("160–7680")));
        assert!(parse_size("99999x720").is_err());
        assert_eq!(parse_layout("portrait"), Ok(Layout::Portrait));
        assert!(parse_layout("square").is_err_and(|e| e.contains("landscape")));
        assert_eq!(parse_theme("high_contrast"), Ok(Theme::HighContrast));
        assert_eq!(parse_language("both"), Ok(BoardLanguage::Both));
        assert!(parse_language("french").is_err());
        assert!(parse_at("yesterday").is_err_and(|e| e.contains("RFC 3339")));
    }

    #[test]
    fn renders_the_demo_and_refuses_bad_bundles() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let out = dir.path().join("board.png");
        let mut args = RenderArgs {
            bundle: None,
            layout: None,
            theme: Some(Theme::Dark),
            language: None,
            size: (1280, 720),
            at: parse_at("2026-12-04T15:10:00+02:00").unwrap_or_default(),
            out: out.clone(),
        };
        run(&args).unwrap_or_else(|e| panic!("{e}"));
        let png = std::fs::read(&out).unwrap_or_default();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, b"{\"format\": 1}").unwrap_or_else(|e| panic!("{e}"));
        args.bundle = Some(bad);
        assert!(matches!(run(&args), Err(RenderError::Bundle { .. })));
        args.bundle = Some(dir.path().join("absent.json"));
        assert!(matches!(run(&args), Err(RenderError::Read { .. })));
    }
}
