//! # luach-board
//!
//! The board a synagogue screen shows, as pixels: one pure function from (bundle, instant,
//! layout, theme, language, size) to an RGBA frame. The agent's window, its screenshots, the
//! `luach-agent render` command and the control plane's preview images all call
//! [`Board::render`], so what an operator previews is what the wall shows.
//!
//! ## Pieces
//! - [`compose`]: what the board says at an instant (clock, dates, occasion, zmanim, today's
//!   and the coming Shabbat's prayer times, countdowns, rotating cards, daf yomi and omer,
//!   the offline note), from the bundle through `luach-content`'s day computation.
//! - [`layout`]: where it goes, for landscape and portrait, mirrored for Hebrew; text fits
//!   its box or is shown a page of whole lines at a time.
//! - [`text`]: shaping (bidi, HarfBuzz-class shaping, vowel points) with cosmic-text and the
//!   fonts built into the binary (Noto Sans and Noto Sans Hebrew, SIL OFL; see
//!   `board/fonts/README.md`).
//! - [`theme`]: light, dark and high-contrast palettes with their contrast guarantees.
//! - [`names`]: every word the board draws, in Hebrew and English.
//! - [`demo`]: a built-in demo synagogue (what `luach-agent render` draws without a bundle).
//!
//! The crate does no I/O and keeps no clock: the caller passes the instant. Rendering a
//! 1920×1080 frame takes tens of milliseconds in a release build (BENCHMARKS.md).

pub mod compose;
pub mod demo;
pub mod layout;
pub mod names;
pub mod text;
pub mod theme;

use chrono::{DateTime, Utc};
use luach_content::{BoardLanguage, BoardLayout, BoardTheme, Bundle};

pub use compose::{OFFLINE_AFTER, Sheet, Status};
pub use layout::{Element, Layout, Role};
pub use text::Fonts;
pub use theme::{Rgb, Theme, contrast};

use names::{Label, Lang};

/// Smallest frame side drawn, in pixels.
pub const MIN_SIDE: u32 = 160;
/// Largest frame side drawn (8K), in pixels.
pub const MAX_SIDE: u32 = 7680;

/// How to draw a frame. Unset fields come from the bundle's per-screen settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    pub layout: Option<Layout>,
    pub theme: Option<Theme>,
    pub language: Option<BoardLanguage>,
    pub width: u32,
    pub height: u32,
}

impl Options {
    /// A frame of `width`×`height` with the screen's own settings.
    pub fn size(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            ..Self::default()
        }
    }
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = Some(layout);
        self
    }
    pub fn theme(mut self, theme: Theme) -> Self {
        self.theme = Some(theme);
        self
    }
    pub fn language(mut self, language: BoardLanguage) -> Self {
        self.language = Some(language);
        self
    }
}

/// Why a frame could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("frame size {0}×{1} is outside {MIN_SIDE}–{MAX_SIDE} pixels a side")]
    Size(u32, u32),
    #[error("the day cannot be computed: {0}")]
    Compose(#[from] luach_content::Error),
    #[error("PNG encoding failed: {0}")]
    Png(String),
}

/// One drawn frame.
#[derive(Debug, Clone)]
pub struct Frame {
    pixmap: tiny_skia::Pixmap,
    /// Every piece of text drawn, where and how (for tests and diagnostics).
    pub elements: Vec<Element>,
    pub layout: Layout,
    pub theme: Theme,
}

impl Frame {
    pub fn width(&self) -> u32 {
        self.pixmap.width()
    }
    pub fn height(&self) -> u32 {
        self.pixmap.height()
    }
    /// RGBA bytes, row by row (the frame is opaque, so premultiplied equals straight).
    pub fn rgba(&self) -> &[u8] {
        self.pixmap.data()
    }
    /// The colour at (`x`, `y`).
    pub fn pixel(&self, x: u32, y: u32) -> Option<Rgb> {
        self.pixmap.pixel(x, y).map(|p| Rgb(p.red(), p.green(), p.blue()))
    }
    /// The frame as a PNG file.
    pub fn png(&self) -> Result<Vec<u8>, BoardError> {
        self.pixmap.encode_png().map_err(|e| BoardError::Png(e.to_string()))
    }
}

impl From<BoardTheme> for Theme {
    fn from(t: BoardTheme) -> Self {
        match t {
            BoardTheme::Light => Theme::Light,
            BoardTheme::Dark => Theme::Dark,
            BoardTheme::HighContrast => Theme::HighContrast,
        }
    }
}

/// The renderer: fonts and glyph cache, reused frame after frame.
#[derive(Debug, Default)]
pub struct Board {
    fonts: Fonts,
}

impl Board {
    pub fn new() -> Self {
        Self {
            fonts: Fonts::embedded(),
        }
    }

    fn resolve(bundle: Option<&Bundle>, options: Options) -> Result<(Layout, Theme, BoardLanguage), BoardError> {
        let (w, h) = (options.width, options.height);
        if !(MIN_SIDE..=MAX_SIDE).contains(&w) || !(MIN_SIDE..=MAX_SIDE).contains(&h) {
            return Err(BoardError::Size(w, h));
        }
        let default = luach_content::BoardSettings::default();
        let settings = bundle.map_or(&default, |b| &b.board);
        let layout = options.layout.unwrap_or(match settings.layout {
            BoardLayout::Landscape => Layout::Landscape,
            BoardLayout::Portrait => Layout::Portrait,
            BoardLayout::Auto => Layout::for_size(w, h),
        });
        Ok((
            layout,
            options.theme.unwrap_or(settings.theme.into()),
            options.language.unwrap_or(settings.language),
        ))
    }

    /// The board of `bundle` at `at`. A bundle without a synagogue draws a notice saying so.
    pub fn render(
        &mut self,
        bundle: &Bundle,
        at: DateTime<Utc>,
        options: Options,
        status: Status,
    ) -> Result<Frame, BoardError> {
        let (layout, theme, language) = Self::resolve(Some(bundle), options)?;
        let sheet = match compose::sheet(bundle, at, language, status) {
            Ok(sheet) => sheet,
            Err(luach_content::Error::NoSynagogue) => {
                let labels = (Label::NoSynagogue, Label::NoSynagogueHint);
                return self.notice("", labels, language, options, (layout, theme));
            }
            Err(e) => return Err(e.into()),
        };
        self.render_sheet(&sheet, layout, theme, options.width, options.height)
    }

    /// Draws a composed sheet.
    pub fn render_sheet(
        &mut self,
        sheet: &Sheet,
        layout: Layout,
        theme: Theme,
        width: u32,
        height: u32,
    ) -> Result<Frame, BoardError> {
        Self::resolve(None, Options::size(width, height))?;
        let size = Options::size(width, height);
        self.paint(layout, theme, size, sheet.rtl, sheet.page, |p| p.sheet(sheet, layout))
    }

    /// A frame painted by `draw` on a fresh painter.
    fn paint(
        &mut self,
        layout: Layout,
        theme: Theme,
        size: Options,
        rtl: bool,
        page: u64,
        draw: impl FnOnce(&mut layout::Painter<'_>),
    ) -> Result<Frame, BoardError> {
        let (w, h) = (size.width, size.height);
        let Some(mut painter) = layout::Painter::new(&mut self.fonts, layout, theme, w, h, rtl, page) else {
            return Err(BoardError::Size(w, h));
        };
        draw(&mut painter);
        Ok(Frame {
            elements: std::mem::take(&mut painter.elements),
            pixmap: painter.frame,
            layout,
            theme,
        })
    }

    /// The first-run screen: the claim code, large, and what to do with it.
    pub fn render_claim(&mut self, code: &str, language: BoardLanguage, options: Options) -> Result<Frame, BoardError> {
        let (layout, theme, _) = Self::resolve(None, options)?;
        self.notice(
            code,
            (Label::ClaimTitle, Label::ClaimHint),
            language,
            options,
            (layout, theme),
        )
    }

    /// A full-screen notice: `big` (a claim code, or nothing), a title and a hint.
    fn notice(
        &mut self,
        big: &str,
        (title, hint): (Label, Label),
        language: BoardLanguage,
        options: Options,
        (layout, theme): (Layout, Theme),
    ) -> Result<Frame, BoardError> {
        let lang = compose::languages(language, None).first().copied().unwrap_or(Lang::He);
        let (title, hint) = (names::label(title, lang), names::label(hint, lang));
        self.paint(layout, theme, options, lang.is_rtl(), 0, |p| {
            p.notice(big, title, hint, 220.0)
        })
    }
}
