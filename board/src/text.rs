//! Shaped text: the built-in fonts, laying text out in a box, and drawing it.
//!
//! cosmic-text does the work a text stack must: the Unicode bidi algorithm (Hebrew runs right
//! to left, numbers and Latin inside them in the right order), HarfBuzz-class shaping through
//! harfrust (vowel points and cantillation placed by the font's GPOS anchors), font fallback
//! per script, and word wrapping. Glyphs are rasterised by swash and blended here straight
//! onto the frame, so the board depends on no system font or library.
//!
//! A box never overflows: [`Fonts::fit`] shrinks text from its size down to a floor, and
//! text that still does not fit is split into pages of whole lines ([`Laid::pages`]) that the
//! board shows in turn. A word is broken only when it alone is wider than the box at the
//! floor size (a 60-letter word in a narrow panel), and the layout says so
//! ([`Laid::broke_words`]) so tests can insist it never happens with real text.

use cosmic_text::fontdb::{Database, Source};
use cosmic_text::{
    Align as CtAlign, Attrs, Buffer, Family, FeatureTag, FontFeatures, FontSystem, Metrics, Shaping, SwashCache,
    SwashContent, Weight, Wrap,
};
use std::sync::Arc;
use tiny_skia::Pixmap;

use crate::theme::Rgb;

/// The family every style asks for; Hebrew falls back to Noto Sans Hebrew by script.
const FAMILY: &str = "Noto Sans";
/// Line height as a multiple of the font size.
const LINE_HEIGHT: f32 = 1.3;

const FONTS: [&[u8]; 4] = [
    include_bytes!("../fonts/NotoSans-Regular.ttf"),
    include_bytes!("../fonts/NotoSans-Bold.ttf"),
    include_bytes!("../fonts/NotoSansHebrew-Regular.ttf"),
    include_bytes!("../fonts/NotoSansHebrew-Bold.ttf"),
];

/// Where lines sit inside their box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
    Center,
}

/// How a piece of text is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Style {
    /// Font size in pixels (the em square).
    pub size: f32,
    pub bold: bool,
    pub color: Rgb,
    pub align: Align,
    /// Tabular (equal-width) digits, so a ticking clock does not shift.
    pub tabular: bool,
    /// Wrap at word boundaries (otherwise one line per paragraph).
    pub wrap: bool,
}

impl Style {
    pub fn new(size: f32, color: Rgb) -> Self {
        Self {
            size,
            bold: false,
            color,
            align: Align::Left,
            tabular: false,
            wrap: true,
        }
    }
    pub fn bold(mut self) -> Self {
        self.bold = true;
        self
    }
    pub fn align(mut self, align: Align) -> Self {
        self.align = align;
        self
    }
    /// Tabular digits, one line.
    pub fn digits(mut self) -> Self {
        self.tabular = true;
        self.wrap = false;
        self
    }
    pub fn size(mut self, size: f32) -> Self {
        self.size = size;
        self
    }
}

/// One visual line of a layout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Line {
    /// Top of the line box, from the top of the layout.
    pub top: f32,
    pub height: f32,
    /// Left edge and width of the line's glyphs.
    pub left: f32,
    pub width: f32,
}

/// Text shaped and wrapped for one box width.
pub struct Laid {
    buffer: Buffer,
    pub style: Style,
    /// The box width the text was laid out for.
    pub box_width: f32,
    pub lines: Vec<Line>,
    /// Glyphs the fonts do not have (drawn as nothing, counted so tests can fail on them).
    pub missing: usize,
    /// Whether a word had to be broken because it alone is wider than the box.
    pub broke_words: bool,
    /// Horizontal shift of the lines inside the box (when wrapped narrower than the box).
    offset: f32,
}

impl std::fmt::Debug for Laid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Laid")
            .field("style", &self.style)
            .field("lines", &self.lines)
            .field("missing", &self.missing)
            .finish_non_exhaustive()
    }
}

impl Laid {
    /// Height of all lines.
    pub fn height(&self) -> f32 {
        self.lines.last().map_or(0.0, |l| l.top + l.height)
    }
    /// Width of the widest line's glyphs.
    pub fn width(&self) -> f32 {
        self.lines.iter().map(|l| l.width).fold(0.0, f32::max)
    }
    /// Ranges of lines that each fit in `height` (every line on some page; a line taller
    /// than `height` gets a page of its own).
    pub fn pages(&self, height: f32) -> Vec<std::ops::Range<usize>> {
        let mut pages = Vec::new();
        let mut start = 0;
        for (i, line) in self.lines.iter().enumerate() {
            let top = self.lines.get(start).map_or(0.0, |l| l.top);
            if i > start && line.top + line.height - top > height + 0.5 {
                pages.push(start..i);
                start = i;
            }
        }
        if start < self.lines.len() || pages.is_empty() {
            pages.push(start..self.lines.len());
        }
        pages
    }
    /// Height of the lines in `range`.
    pub fn range_height(&self, range: &std::ops::Range<usize>) -> f32 {
        match (
            self.lines.get(range.start),
            range.end.checked_sub(1).and_then(|e| self.lines.get(e)),
        ) {
            (Some(first), Some(last)) if range.end > range.start => last.top + last.height - first.top,
            _ => 0.0,
        }
    }
}

/// The fonts and the glyph cache. Building one parses four font files (a few milliseconds);
/// keep it for the life of the renderer.
pub struct Fonts {
    system: FontSystem,
    cache: SwashCache,
}

impl std::fmt::Debug for Fonts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fonts").finish_non_exhaustive()
    }
}

impl Default for Fonts {
    fn default() -> Self {
        Self::embedded()
    }
}

impl Fonts {
    /// Only the fonts built into the binary: the same pixels on every machine.
    pub fn embedded() -> Self {
        let mut db = Database::new();
        for font in FONTS {
            db.load_font_source(Source::Binary(Arc::new(font)));
        }
        db.set_sans_serif_family(FAMILY);
        Self {
            system: FontSystem::new_with_locale_and_db("en-US".to_owned(), db),
            cache: SwashCache::new(),
        }
    }

    /// Lay `text` out in a box `width` wide (unbounded height).
    pub fn lay(&mut self, text: &str, style: Style, width: f32) -> Laid {
        let mut laid = self.lay_with(text, style, width, Wrap::Word);
        if !style.wrap {
            return laid;
        }
        // cosmic-text's word wrap can leave a mixed-direction line a few pixels wider than
        // the box; wrap again a little narrower (and shift back, so alignment is kept).
        let mut narrower = width;
        for _ in 0..4 {
            let over = laid.width() - width;
            if over <= 0.5 {
                return laid;
            }
            narrower -= over + 1.0;
            if narrower < width * 0.8 {
                break;
            }
            laid = self.lay_with(text, style, narrower, Wrap::Word);
            laid.offset = match style.align {
                Align::Left => 0.0,
                Align::Right => width - narrower,
                Align::Center => (width - narrower) / 2.0,
            };
            laid.box_width = width;
        }
        if laid.width() > width + 0.5 {
            // A single word is wider than the box: break it rather than overflow.
            laid = self.lay_with(text, style, width, Wrap::WordOrGlyph);
            laid.broke_words = true;
        }
        laid
    }

    /// Lay `text` out at the largest size from `style.size` down to `min` that fits the box,
    /// in steps of 4%. At `min` it may still be taller than `height`: show it by
    /// [`Laid::pages`].
    pub fn fit(&mut self, text: &str, style: Style, width: f32, height: f32, min: f32) -> Laid {
        let mut size = style.size;
        loop {
            let laid = self.lay(text, style.size(size), width);
            let fits = laid.height() <= height + 0.5 && laid.width() <= width + 0.5 && !laid.broke_words;
            if fits || size <= min {
                return laid;
            }
            size = (size * 0.96).max(min);
        }
    }

    fn lay_with(&mut self, text: &str, style: Style, width: f32, wrap: Wrap) -> Laid {
        let metrics = Metrics::new(style.size, (style.size * LINE_HEIGHT).ceil());
        let mut buffer = Buffer::new(&mut self.system, metrics);
        let mut attrs = Attrs::new().family(Family::Name(FAMILY));
        if style.bold {
            attrs = attrs.weight(Weight::BOLD);
        }
        if style.tabular {
            let mut features = FontFeatures::new();
            features.enable(FeatureTag::new(b"tnum"));
            attrs = attrs.font_features(features);
        }
        let align = match style.align {
            Align::Left => CtAlign::Left,
            Align::Right => CtAlign::Right,
            Align::Center => CtAlign::Center,
        };
        {
            let mut b = buffer.borrow_with(&mut self.system);
            b.set_wrap(if style.wrap { wrap } else { Wrap::None });
            b.set_size(Some(width.max(1.0)), None);
            b.set_text(text, &attrs, Shaping::Advanced, Some(align));
            b.shape_until_scroll(true);
        }
        let mut lines = Vec::new();
        let mut missing = 0;
        for run in buffer.layout_runs() {
            let (mut left, mut right) = (f32::MAX, f32::MIN);
            for g in run.glyphs {
                if g.glyph_id == 0
                    && !text
                        .get(g.start..g.end)
                        .is_some_and(|s| s.chars().all(char::is_whitespace))
                {
                    missing += 1;
                }
                if text
                    .get(g.start..g.end)
                    .is_some_and(|s| !s.chars().all(char::is_whitespace))
                {
                    left = left.min(g.x);
                    right = right.max(g.x + g.w);
                }
            }
            let (left, width) = if right >= left {
                (left, right - left)
            } else {
                (0.0, 0.0)
            };
            lines.push(Line {
                top: run.line_top,
                height: run.line_height,
                left,
                width,
            });
        }
        Laid {
            buffer,
            style,
            box_width: width,
            lines,
            missing,
            broke_words: false,
            offset: 0.0,
        }
    }

    /// Draw the lines `range` of `laid` with the box's top-left corner at (`x`, `y`); the
    /// first line of the range sits at `y`.
    pub fn draw(&mut self, frame: &mut Pixmap, laid: &Laid, range: std::ops::Range<usize>, x: f32, y: f32) {
        let Some(first) = laid.lines.get(range.start) else {
            return;
        };
        let shift = y - first.top;
        let x = x + laid.offset;
        let color = laid.style.color;
        let (fw, fh) = (frame.width() as i32, frame.height() as i32);
        let stride = frame.width() as usize;
        let pixels = frame.pixels_mut();
        for (i, run) in laid.buffer.layout_runs().enumerate() {
            if !range.contains(&i) {
                continue;
            }
            for glyph in run.glyphs {
                let physical = glyph.physical((x, shift + run.line_y), 1.0);
                let Some(image) = self.cache.get_image(&mut self.system, physical.cache_key) else {
                    continue;
                };
                let p = image.placement;
                let (ox, oy) = (physical.x + p.left, physical.y - p.top);
                for j in 0..p.height as i32 {
                    let py = oy + j;
                    if py < 0 || py >= fh {
                        continue;
                    }
                    for i in 0..p.width as i32 {
                        let px = ox + i;
                        if px < 0 || px >= fw {
                            continue;
                        }
                        let k = (j * p.width as i32 + i) as usize;
                        let alpha = match image.content {
                            SwashContent::Mask => image.data.get(k).copied(),
                            SwashContent::Color => image.data.get(k * 4 + 3).copied(),
                            SwashContent::SubpixelMask => image.data.get(k * 4 + 1).copied(),
                        }
                        .unwrap_or(0);
                        if alpha == 0 {
                            continue;
                        }
                        if let Some(dst) = pixels.get_mut(py as usize * stride + px as usize) {
                            *dst = blend(*dst, color, alpha);
                        }
                    }
                }
            }
        }
    }

    /// The ink height of capital "H" at `size` (what "cap height" means on the board).
    pub fn cap_height(&mut self, size: f32) -> f32 {
        let laid = self.lay("H", Style::new(size, Rgb(0, 0, 0)).digits(), size * 2.0);
        let side = (size * 2.0).ceil() as u32;
        let Some(mut pixmap) = Pixmap::new(side, side) else {
            return 0.0;
        };
        pixmap.fill(tiny_skia::Color::WHITE);
        self.draw(&mut pixmap, &laid, 0..1, 0.0, 0.0);
        let rows: Vec<u32> = (0..side)
            .filter(|&y| (0..side).any(|x| pixmap.pixel(x, y).is_some_and(|p| p.red() < 128)))
            .collect();
        match (rows.first(), rows.last()) {
            (Some(a), Some(b)) => (b - a + 1) as f32,
            _ => 0.0,
        }
    }
}

/// `color` at coverage `alpha` over an opaque pixel.
fn blend(dst: tiny_skia::PremultipliedColorU8, color: Rgb, alpha: u8) -> tiny_skia::PremultipliedColorU8 {
    let a = u16::from(alpha);
    let mix = |s: u8, d: u8| ((u16::from(s) * a + u16::from(d) * (255 - a) + 127) / 255) as u8;
    tiny_skia::PremultipliedColorU8::from_rgba(
        mix(color.0, dst.red()),
        mix(color.1, dst.green()),
        mix(color.2, dst.blue()),
        255,
    )
    .unwrap_or(dst)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ink_columns(fonts: &mut Fonts, text: &str) -> (Pixmap, Laid) {
        let laid = fonts.lay(text, Style::new(40.0, Rgb(0, 0, 0)).digits(), 2000.0);
        let mut pixmap = Pixmap::new(2000, 80).expect("pixmap");
        pixmap.fill(tiny_skia::Color::WHITE);
        fonts.draw(&mut pixmap, &laid, 0..1, 0.0, 0.0);
        (pixmap, laid)
    }

    #[test]
    fn hebrew_latin_digits_and_points_have_glyphs() {
        let mut fonts = Fonts::embedded();
        for text in ["שַׁבָּת שָׁלוֹם", "בְּרֵאשִׁ֖ית בָּרָ֣א", "Shabbat 12:45", "ט״ו בשבט תשפ״ז", "– — ° ׳ ״"]
        {
            let (_, laid) = ink_columns(&mut fonts, text);
            assert_eq!(laid.missing, 0, "{text}");
        }
        let (_, laid) = ink_columns(&mut fonts, "\u{10FFF0}");
        assert_eq!(laid.missing, 1, "a character no font has is counted");
    }

    #[test]
    fn wraps_at_words_and_breaks_only_giant_words() {
        let mut fonts = Fonts::embedded();
        let style = Style::new(40.0, Rgb(0, 0, 0));
        let laid = fonts.lay("אחת שתיים שלוש ארבע חמש שש שבע שמונה", style, 300.0);
        assert!(laid.lines.len() > 1);
        assert!(!laid.broke_words);
        assert!(laid.width() <= 300.5);
        let giant = "א".repeat(80);
        let laid = fonts.lay(&giant, style, 300.0);
        assert!(laid.broke_words);
        assert!(laid.width() <= 300.5);
    }

    #[test]
    fn fit_shrinks_then_pages() {
        let mut fonts = Fonts::embedded();
        let style = Style::new(60.0, Rgb(0, 0, 0));
        let text = "מילה ".repeat(10);
        let fitted = fonts.fit(&text, style, 400.0, 200.0, 30.0);
        assert!(fitted.style.size < 60.0 && fitted.height() <= 200.5);
        let long = "מילה ".repeat(400);
        let fitted = fonts.fit(&long, style, 400.0, 200.0, 30.0);
        assert_eq!(fitted.style.size, 30.0);
        let pages = fitted.pages(200.0);
        assert!(pages.len() > 1);
        assert_eq!(pages.last().map(|p| p.end), Some(fitted.lines.len()));
        assert!(pages.iter().all(|p| fitted.range_height(p) <= 200.5));
    }

    #[test]
    fn vowel_points_sit_on_their_letters() {
        // With points the ink is no wider than without (marks are positioned over/under the
        // letter by GPOS, not appended as spacing glyphs).
        let mut fonts = Fonts::embedded();
        let (_, plain) = ink_columns(&mut fonts, "שבת");
        let (_, pointed) = ink_columns(&mut fonts, "שַׁבָּת");
        assert!(
            (pointed.width() - plain.width()).abs() < 4.0,
            "{} vs {}",
            pointed.width(),
            plain.width()
        );
    }

    #[test]
    fn cap_height_follows_the_font() {
        let mut fonts = Fonts::embedded();
        let cap = fonts.cap_height(100.0);
        assert!(
            (69.0..=74.0).contains(&cap),
            "Noto Sans cap height is 0.714 em, measured {cap}"
        );
    }
}
