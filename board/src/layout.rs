//! Where everything goes: panels in reference units (a 1920×1080 landscape or 1080×1920
//! portrait canvas, scaled uniformly to the frame), text fitted into boxes, lists split into
//! columns and pages.
//!
//! Rules every layout keeps (and the tests check on the longest content the API accepts):
//! - text never leaves its box: it wraps at words, shrinks down to a floor size, and what
//!   still does not fit is shown a page of whole lines at a time, rotating with the
//!   synagogue's `page_seconds`;
//! - at 1080 lines the clock and prayer times have a cap height of at least 60 px and all
//!   other text at least 28 px (the floor sizes below);
//! - a Hebrew board is the mirror of an English one: panels and alignment flip, the clock stays
//!   in the middle.

use tiny_skia::{Pixmap, Rect};

use crate::compose::{Card, Group, Row, Sheet};
use crate::text::{Align, Fonts, Laid, Style};
use crate::theme::{Rgb, Theme};

/// Font size of the clock, in reference pixels.
pub const CLOCK_PX: f32 = 150.0;
/// Font size of prayer times and countdowns: a cap height of about 63 px at 1080 lines.
pub const TIME_PX: f32 = 88.0;
/// The smallest text drawn: a cap height of about 28.6 px at 1080 lines.
pub const MIN_PX: f32 = 40.0;
/// Titles of panels and cards.
const TITLE_PX: f32 = 46.0;
/// Row labels.
const LABEL_PX: f32 = 42.0;
/// Zman values.
const ZMAN_PX: f32 = 50.0;
const GAP: f32 = 16.0;
const MARGIN: f32 = 28.0;

/// A board's orientation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    Landscape,
    Portrait,
}

impl Layout {
    pub const ALL: [Layout; 2] = [Layout::Landscape, Layout::Portrait];

    pub fn key(self) -> &'static str {
        match self {
            Layout::Landscape => "landscape",
            Layout::Portrait => "portrait",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.key() == key)
    }

    /// The reference canvas.
    pub fn reference(self) -> (f32, f32) {
        match self {
            Layout::Landscape => (1920.0, 1080.0),
            Layout::Portrait => (1080.0, 1920.0),
        }
    }

    /// The orientation a display of this size suits.
    pub fn for_size(width: u32, height: u32) -> Self {
        if height > width {
            Layout::Portrait
        } else {
            Layout::Landscape
        }
    }
}

/// What a drawn piece of text is, for the readability tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Clock,
    /// A prayer time or a countdown: held to the clock's readability.
    Time,
    Text,
}

/// One piece of text as drawn, in frame pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    pub role: Role,
    pub text: String,
    /// The box the text was laid in (x, y of its top-left corner; the height the drawn lines
    /// take).
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
    /// Font size in frame pixels.
    pub size: f32,
    pub color: Rgb,
    pub background: Rgb,
    /// Glyphs no font has.
    pub missing: usize,
    /// A word had to be broken.
    pub broke_words: bool,
    /// Some lines are on other pages (shown in turn).
    pub paged: bool,
}

/// A rectangle in reference units.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Area {
    x: f32,
    y: f32,
    w: f32,
    h: f32,
}

impl Area {
    fn new(x: f32, y: f32, w: f32, h: f32) -> Self {
        Self { x, y, w, h }
    }
    /// The area below the first `h` units.
    fn below(self, h: f32) -> Self {
        Self::new(self.x, self.y + h, self.w, (self.h - h).max(0.0))
    }
    fn inset(self, d: f32) -> Self {
        Self::new(
            self.x + d,
            self.y + d,
            (self.w - 2.0 * d).max(1.0),
            (self.h - 2.0 * d).max(1.0),
        )
    }
    /// `n` equal columns with gaps.
    fn columns(self, n: usize) -> Vec<Area> {
        let n = n.max(1);
        let w = (self.w - GAP * (n as f32 - 1.0)) / n as f32;
        (0..n)
            .map(|i| Area::new(self.x + i as f32 * (w + GAP), self.y, w, self.h))
            .collect()
    }
}

/// Draws one frame: holds the pixmap, the scale and the direction.
pub struct Painter<'a> {
    pub frame: Pixmap,
    fonts: &'a mut Fonts,
    theme: Theme,
    scale: f32,
    /// Reference canvas width (wider than the reference when the frame is wider).
    width: f32,
    height: f32,
    rtl: bool,
    page: u64,
    pub elements: Vec<Element>,
}

/// A text to draw in a box.
#[derive(Debug, Clone, Copy)]
struct Spec<'t> {
    text: &'t str,
    role: Role,
    size: f32,
    min: f32,
    bold: bool,
    color: Rgb,
    background: Rgb,
    /// Start (reading direction), end, or centre.
    align: Place,
    digits: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Start,
    End,
    Center,
}

impl<'a> Painter<'a> {
    pub fn new(
        fonts: &'a mut Fonts,
        layout: Layout,
        theme: Theme,
        width: u32,
        height: u32,
        rtl: bool,
        page: u64,
    ) -> Option<Self> {
        let mut frame = Pixmap::new(width, height)?;
        let (rw, rh) = layout.reference();
        let scale = (width as f32 / rw).min(height as f32 / rh);
        frame.fill(theme.palette().background.to_skia());
        Some(Self {
            frame,
            fonts,
            theme,
            scale,
            width: width as f32 / scale,
            height: height as f32 / scale,
            rtl,
            page,
            elements: Vec::new(),
        })
    }

    /// `area` mirrored for a right-to-left board.
    fn place(&self, a: Area) -> Area {
        if self.rtl {
            Area::new(self.width - a.x - a.w, a.y, a.w, a.h)
        } else {
            a
        }
    }

    fn fill(&mut self, a: Area, color: Rgb) {
        let s = self.scale;
        if let Some(rect) = Rect::from_xywh(a.x * s, a.y * s, a.w * s, a.h * s) {
            let mut paint = tiny_skia::Paint::default();
            paint.set_color(color.to_skia());
            self.frame
                .fill_rect(rect, &paint, tiny_skia::Transform::identity(), None);
        }
    }

    fn style(&self, spec: &Spec<'_>) -> Style {
        let align = match (spec.align, self.rtl) {
            (Place::Center, _) => Align::Center,
            (Place::Start, false) | (Place::End, true) => Align::Left,
            (Place::Start, true) | (Place::End, false) => Align::Right,
        };
        let mut style = Style::new(spec.size * self.scale, spec.color).align(align);
        if spec.bold {
            style = style.bold();
        }
        if spec.digits {
            style = style.digits();
        }
        style
    }

    /// Lays `spec` out for a box of `a` (already placed) without drawing.
    fn lay(&mut self, spec: &Spec<'_>, a: Area) -> Laid {
        let style = self.style(spec);
        let s = self.scale;
        self.fonts.fit(spec.text, style, a.w * s, a.h * s, spec.min * s)
    }

    /// Draws laid text in a placed box: the page of lines due now; returns the height drawn
    /// (reference units).
    fn draw(&mut self, spec: &Spec<'_>, laid: &Laid, a: Area, vcenter: bool) -> f32 {
        let s = self.scale;
        let pages = laid.pages(a.h * s);
        let index = usize::try_from(self.page % pages.len().max(1) as u64).unwrap_or(0);
        let range = pages.get(index).cloned().unwrap_or(0..0);
        let h = laid.range_height(&range);
        let y = if vcenter {
            a.y * s + ((a.h * s - h) / 2.0).max(0.0)
        } else {
            a.y * s
        };
        self.fonts.draw(&mut self.frame, laid, range, a.x * s, y);
        self.elements.push(Element {
            role: spec.role,
            text: spec.text.to_owned(),
            x: a.x * s,
            y,
            width: a.w * s,
            height: h,
            size: laid.style.size,
            color: spec.color,
            background: spec.background,
            missing: laid.missing,
            broke_words: laid.broke_words,
            paged: pages.len() > 1,
        });
        h / s
    }

    /// Fits and draws `spec` in `a` (reference area, mirrored here).
    fn text(&mut self, spec: Spec<'_>, a: Area, vcenter: bool) -> f32 {
        if spec.text.trim().is_empty() {
            return 0.0;
        }
        let a = self.place(a);
        let laid = self.lay(&spec, a);
        self.draw(&spec, &laid, a, vcenter)
    }

    /// A panel's background with a rule along its top.
    fn panel(&mut self, a: Area) {
        let p = self.theme.palette();
        let a = self.place(a);
        self.fill(a, p.panel);
        self.fill(Area::new(a.x, a.y, a.w, 4.0), p.rule);
    }

    fn spec<'t>(&self, text: &'t str, size: f32, color: Rgb, background: Rgb) -> Spec<'t> {
        Spec {
            text,
            role: Role::Text,
            size,
            min: MIN_PX,
            bold: false,
            color,
            background,
            align: Place::Start,
            digits: false,
        }
    }

    /// Draws the whole sheet.
    pub fn sheet(&mut self, sheet: &Sheet, layout: Layout) {
        match layout {
            Layout::Landscape => self.landscape(sheet),
            Layout::Portrait => self.portrait(sheet),
        }
    }

    fn landscape(&mut self, sheet: &Sheet) {
        let (w, h) = (self.width, self.height);
        let header = Area::new(0.0, 0.0, w, 220.0);
        let footer = Area::new(0.0, h - 92.0, w, 92.0);
        self.band(header);
        self.band(footer);
        let side_w = (w - 2.0 * MARGIN - 2.0 * GAP - 540.0 - 640.0).max(400.0);
        let (zx, px, sx) = (MARGIN, MARGIN + 540.0 + GAP, MARGIN + 540.0 + GAP + 640.0 + GAP);
        let ztop = header.h + GAP;
        let body_h = footer.y - GAP - ztop;

        // Header: name and occasion at the start, clock in the middle, dates at the end.
        let zone = (w - 2.0 * MARGIN - 2.0 * GAP - 560.0) / 2.0;
        let start = Area::new(MARGIN, 14.0, zone, 200.0);
        let end = Area::new(w - MARGIN - zone, 14.0, zone, 200.0);
        let clock = Area::new(MARGIN + zone + GAP, 10.0, 560.0, 200.0);
        self.clock(&sheet.clock, clock);
        self.header_pair(&sheet.name, &sheet.occasion, start, Place::Start);
        self.header_pair(&sheet.hebrew, &sheet.gregorian, end, Place::End);

        self.list_panel(
            std::slice::from_ref(&sheet.zmanim),
            Area::new(zx, ztop, 540.0, body_h),
            1,
            ZMAN_PX,
            Role::Text,
        );
        self.list_panel(
            &sheet.prayers,
            Area::new(px, ztop, 640.0, body_h),
            1,
            TIME_PX,
            Role::Time,
        );
        self.side(sheet, Area::new(sx, ztop, side_w, body_h));
        self.footer(sheet, footer);
    }

    fn portrait(&mut self, sheet: &Sheet) {
        let (w, h) = (self.width, self.height);
        let header = Area::new(0.0, 0.0, w, 404.0);
        let footer = Area::new(0.0, h - 92.0, w, 92.0);
        self.band(header);
        self.band(footer);
        let inner = w - 2.0 * MARGIN;
        self.text(
            Spec {
                bold: true,
                align: Place::Center,
                ..self.spec(&sheet.name, 56.0, self.theme.band_accent(), self.theme.palette().band)
            },
            Area::new(MARGIN, 10.0, inner, 96.0),
            true,
        );
        self.clock(&sheet.clock, Area::new(MARGIN, 104.0, inner, 190.0));
        let half = (inner - GAP) / 2.0;
        let band = self.theme.palette().band;
        self.text(
            Spec {
                bold: true,
                ..self.spec(&sheet.hebrew, 48.0, self.theme.band_text(), band)
            },
            Area::new(MARGIN, 292.0, half, 106.0),
            true,
        );
        self.text(
            Spec {
                align: Place::End,
                ..self.spec(&sheet.gregorian, 42.0, self.theme.band_text(), band)
            },
            Area::new(MARGIN + half + GAP, 292.0, half, 106.0),
            true,
        );
        let mut top = header.h + GAP;
        // The occasion gets a strip of its own under the header.
        if !sheet.occasion.is_empty() {
            let p = self.theme.palette();
            self.text(
                Spec {
                    bold: true,
                    align: Place::Center,
                    ..self.spec(&sheet.occasion, 46.0, p.accent, p.background)
                },
                Area::new(MARGIN, top, inner, 62.0),
                true,
            );
            top += 62.0 + GAP;
        }
        // Zmanim labels are long ("latest Shema (GRA)"): one wide column; prayer names are
        // short: two columns of big times.
        let zmanim_h = 520.0;
        let prayers_h = 470.0;
        self.list_panel(
            std::slice::from_ref(&sheet.zmanim),
            Area::new(MARGIN, top, inner, zmanim_h),
            1,
            ZMAN_PX,
            Role::Text,
        );
        top += zmanim_h + GAP;
        self.list_panel(
            &sheet.prayers,
            Area::new(MARGIN, top, inner, prayers_h),
            2,
            TIME_PX,
            Role::Time,
        );
        top += prayers_h + GAP;
        self.side(sheet, Area::new(MARGIN, top, inner, (footer.y - GAP - top).max(1.0)));
        self.footer(sheet, footer);
    }

    fn band(&mut self, a: Area) {
        let p = self.theme.palette();
        self.fill(a, p.band);
        let edge = if a.y == 0.0 { a.y + a.h - 4.0 } else { a.y };
        self.fill(Area::new(a.x, edge, a.w, 4.0), p.rule);
    }

    fn clock(&mut self, text: &str, a: Area) {
        let spec = Spec {
            role: Role::Clock,
            bold: true,
            digits: true,
            align: Place::Center,
            min: CLOCK_PX * 0.8,
            ..self.spec(text, CLOCK_PX, self.theme.band_accent(), self.theme.palette().band)
        };
        self.text(spec, a, true);
    }

    /// Two texts stacked in a header zone: a prominent one over a quieter one; each gets
    /// half the zone and pages its lines if it must.
    fn header_pair(&mut self, first: &str, second: &str, a: Area, align: Place) {
        let band = self.theme.palette().band;
        let (h1, h2) = match (first.is_empty(), second.is_empty()) {
            (false, true) => (a.h, 0.0),
            (true, false) => (0.0, a.h),
            _ => (a.h * 0.55, a.h * 0.45),
        };
        self.text(
            Spec {
                bold: true,
                align,
                ..self.spec(first, 52.0, self.theme.band_accent(), band)
            },
            Area::new(a.x, a.y, a.w, h1),
            true,
        );
        self.text(
            Spec {
                align,
                ..self.spec(second, 42.0, self.theme.band_text(), band)
            },
            Area::new(a.x, a.y + h1, a.w, h2),
            true,
        );
    }

    /// Groups of rows in a panel of `columns` columns; pages rotate when they do not fit.
    fn list_panel(&mut self, groups: &[Group], a: Area, columns: usize, value_px: f32, value_role: Role) {
        self.panel(a);
        let inner = a.inset(GAP).below(4.0);
        let cols = inner.columns(columns);
        let col_w = cols.first().map_or(inner.w, |c| c.w);
        let items = self.measure(groups, col_w, inner.h, value_px);
        let pages = paginate(&items, inner.h, columns);
        let index = usize::try_from(self.page % pages.len().max(1) as u64).unwrap_or(0);
        let Some(page) = pages.get(index) else { return };
        for (col, entries) in cols.iter().zip(page) {
            let mut y = col.y;
            for entry in entries {
                let item = &items[entry.item];
                let area = Area::new(col.x, y, col.w, item.height);
                self.item(item, area, entry.continued, value_px, value_role);
                y += item.height;
            }
        }
    }

    /// Heights of titles and rows in a column `width` wide.
    fn measure(&mut self, groups: &[Group], width: f32, column_h: f32, value_px: f32) -> Vec<Item> {
        let mut items = Vec::new();
        for (g, group) in groups.iter().enumerate() {
            if !group.title.is_empty() {
                // Measured with the "continued" marker a repeated title carries.
                let longest = self.continued(&group.title);
                let spec = self.title_spec(&longest);
                let laid = self.lay(&spec, Area::new(0.0, 0.0, width, column_h * 0.3));
                items.push(Item {
                    group: g,
                    kind: ItemKind::Title(group.title.clone()),
                    height: (laid.height() / self.scale).min(column_h * 0.3) + 10.0,
                });
            }
            for row in &group.rows {
                let height = self.row_height(row, width, column_h * 0.7, value_px);
                items.push(Item {
                    group: g,
                    kind: ItemKind::Row(row.clone()),
                    height,
                });
            }
        }
        items
    }

    fn title_spec<'t>(&self, text: &'t str) -> Spec<'t> {
        let p = self.theme.palette();
        Spec {
            bold: true,
            ..self.spec(text, TITLE_PX, p.accent, p.panel)
        }
    }

    /// Row geometry: the value's width and whether the value goes under the label (values too
    /// wide to sit beside it, like a person's name).
    fn row_parts(&mut self, row: &Row, width: f32, value_px: f32) -> (f32, bool) {
        let p = self.theme.palette();
        let spec = self.value_spec(&row.value, value_px, p.panel);
        let laid = self.lay(
            &Spec { min: spec.size, ..spec },
            Area::new(0.0, 0.0, width * 4.0, 1000.0),
        );
        let value_w = laid.width() / self.scale + 4.0;
        // Names (an honour's person) go under their label; so does a time whose label has a
        // word too long for the room beside it.
        let stacked = if spec.digits {
            let label = self.spec(&row.label, LABEL_PX, p.text, p.panel);
            let beside = (width - value_w - GAP).max(1.0);
            self.lay(&label, Area::new(0.0, 0.0, beside, 10_000.0)).broke_words
        } else {
            value_w > width * 0.45
        };
        (value_w, stacked)
    }

    fn value_spec<'t>(&self, text: &'t str, value_px: f32, background: Rgb) -> Spec<'t> {
        let p = self.theme.palette();
        let digits = text.chars().all(|c| c.is_ascii_digit() || c == ':' || c == '—');
        Spec {
            bold: true,
            digits,
            align: Place::End,
            ..self.spec(text, if digits { value_px } else { LABEL_PX }, p.accent, background)
        }
    }

    fn row_height(&mut self, row: &Row, width: f32, max_h: f32, value_px: f32) -> f32 {
        let p = self.theme.palette();
        let (value_w, stacked) = self.row_parts(row, width, value_px);
        let label = self.spec(&row.label, LABEL_PX, p.text, p.panel);
        let value = self.value_spec(&row.value, value_px, p.panel);
        let h = if stacked {
            let l = self.lay(&label, Area::new(0.0, 0.0, width, max_h / 2.0));
            let v = self.lay(&value, Area::new(0.0, 0.0, width, max_h / 2.0));
            (l.height() + v.height()) / self.scale
        } else {
            let l = self.lay(&label, Area::new(0.0, 0.0, (width - value_w - GAP).max(1.0), max_h));
            let v_line = value.size * 1.3;
            (l.height() / self.scale).max(v_line)
        };
        h.min(max_h) + 8.0
    }

    fn item(&mut self, item: &Item, a: Area, continued: bool, value_px: f32, value_role: Role) {
        let p = self.theme.palette();
        match &item.kind {
            ItemKind::Title(title) => {
                let text = if continued {
                    self.continued(title)
                } else {
                    title.clone()
                };
                let spec = self.title_spec(&text);
                self.text(spec, Area::new(a.x, a.y, a.w, a.h - 10.0), false);
            }
            ItemKind::Row(row) => {
                let (value_w, stacked) = self.row_parts(row, a.w, value_px);
                let label = self.spec(&row.label, LABEL_PX, p.text, p.panel);
                let mut value = self.value_spec(&row.value, value_px, p.panel);
                if value.digits {
                    value.role = value_role;
                }
                let inner = Area::new(a.x, a.y, a.w, a.h - 8.0);
                if stacked {
                    if !value.digits {
                        value.align = Place::Start;
                    }
                    let lh = self.text(label, Area::new(inner.x, inner.y, inner.w, inner.h / 2.0), false);
                    let rest = inner.below(lh);
                    self.text(value, rest, false);
                } else {
                    let value_area = Area::new(inner.x + inner.w - value_w, inner.y, value_w, inner.h);
                    let label_area = Area::new(inner.x, inner.y, (inner.w - value_w - GAP).max(1.0), inner.h);
                    self.text(label, label_area, true);
                    self.text(value, value_area, true);
                }
            }
        }
    }

    /// A repeated title: "(continued)" in the board's language after its first line.
    fn continued(&self, title: &str) -> String {
        let lang = if self.rtl {
            crate::names::Lang::He
        } else {
            crate::names::Lang::En
        };
        let marker = crate::names::label(crate::names::Label::Continued, lang);
        match title.split_once('\n') {
            Some((first, rest)) => format!("{first} {marker}\n{rest}"),
            None => format!("{title} {marker}"),
        }
    }

    /// The rotating side panel: countdowns on top, then one card page at a time.
    fn side(&mut self, sheet: &Sheet, a: Area) {
        self.panel(a);
        let p = self.theme.palette();
        let mut area = a.inset(GAP).below(4.0);
        for countdown in sheet.countdowns.iter().take(2) {
            if area.h < 180.0 {
                break;
            }
            let label_h = self.text(
                self.spec(&countdown.label, LABEL_PX, p.text, p.panel),
                Area::new(area.x, area.y, area.w, 60.0),
                false,
            );
            let spec = Spec {
                role: Role::Time,
                bold: true,
                digits: true,
                ..self.spec(&countdown.remaining, TIME_PX, p.accent, p.panel)
            };
            self.text(
                spec,
                Area::new(area.x, area.y + label_h.max(56.0), area.w, 120.0),
                false,
            );
            area = area.below(label_h.max(56.0) + 130.0);
            self.fill(self.place(Area::new(area.x, area.y, area.w, 2.0)), p.rule);
            area = area.below(GAP);
        }
        if area.h < 120.0 {
            return;
        }
        // Every card's pages, in order; the one due now is drawn.
        let mut pages: Vec<(usize, usize)> = Vec::new();
        for (c, card) in sheet.cards.iter().enumerate() {
            let n = match card {
                Card::Text { title, text } => {
                    let t = self.title_spec(title);
                    let th = self.lay(&t, area).height() / self.scale + 10.0;
                    let body = self.spec(text, LABEL_PX, p.text, p.panel);
                    let laid = self.lay(&body, area.below(th));
                    laid.pages(area.below(th).h * self.scale).len()
                }
                Card::Rows(group) => {
                    let items = self.measure(std::slice::from_ref(group), area.w, area.h, LABEL_PX);
                    paginate(&items, area.h, 1).len()
                }
            };
            pages.extend((0..n).map(|i| (c, i)));
        }
        if pages.is_empty() {
            return;
        }
        let (card, sub) = pages[usize::try_from(self.page % pages.len() as u64).unwrap_or(0)];
        let saved = self.page;
        self.page = sub as u64;
        match &sheet.cards[card] {
            Card::Text { title, text } => {
                let t = self.title_spec(title);
                let th = self.text(t, area, false) + 10.0;
                self.text(self.spec(text, LABEL_PX, p.text, p.panel), area.below(th), false);
            }
            Card::Rows(group) => {
                let items = self.measure(std::slice::from_ref(group), area.w, area.h, LABEL_PX);
                let paged = paginate(&items, area.h, 1);
                if let Some(page) = paged.get(sub) {
                    let mut y = area.y;
                    for entry in page.iter().flatten() {
                        let item = &items[entry.item];
                        self.item(
                            item,
                            Area::new(area.x, y, area.w, item.height),
                            entry.continued,
                            LABEL_PX,
                            Role::Text,
                        );
                        y += item.height;
                    }
                }
            }
        }
        self.page = saved;
    }

    fn footer(&mut self, sheet: &Sheet, a: Area) {
        let band = self.theme.palette().band;
        let inner = Area::new(MARGIN, a.y + 10.0, a.w - 2.0 * MARGIN, a.h - 14.0);
        let text = sheet.footer.clone();
        let offline_w = if sheet.offline.is_some() { inner.w * 0.34 } else { 0.0 };
        self.text(
            self.spec(&text, 42.0, self.theme.band_text(), band),
            Area::new(inner.x, inner.y, inner.w - offline_w - GAP, inner.h),
            true,
        );
        if let Some(offline) = &sheet.offline {
            self.text(
                Spec {
                    align: Place::End,
                    bold: true,
                    ..self.spec(offline, 40.0, self.theme.band_warning(), band)
                },
                Area::new(inner.x + inner.w - offline_w, inner.y, offline_w, inner.h),
                true,
            );
        }
    }

    /// A full-screen notice (claim code, nothing assigned yet): a big line and an explanation.
    pub fn notice(&mut self, big: &str, title: &str, hint: &str, big_px: f32) {
        let p = self.theme.palette();
        let (w, h) = (self.width, self.height);
        let card = Area::new(MARGIN * 2.0, h * 0.12, w - MARGIN * 4.0, h * 0.76);
        self.panel(card);
        let inner = card.inset(MARGIN * 2.0);
        let th = self.text(
            Spec {
                bold: true,
                align: Place::Center,
                ..self.spec(title, 60.0, p.accent, p.panel)
            },
            Area::new(inner.x, inner.y, inner.w, inner.h * 0.3),
            false,
        );
        let big_area = Area::new(inner.x, inner.y + th + GAP, inner.w, inner.h * 0.4);
        let bh = if big.is_empty() {
            0.0
        } else {
            self.text(
                Spec {
                    role: Role::Clock,
                    bold: true,
                    digits: true,
                    align: Place::Center,
                    min: TIME_PX,
                    ..self.spec(big, big_px, p.text, p.panel)
                },
                big_area,
                true,
            );
            big_area.h
        };
        let rest = inner.below(th + GAP + bh + GAP);
        self.text(
            Spec {
                align: Place::Center,
                ..self.spec(hint, 44.0, p.text, p.panel)
            },
            rest,
            false,
        );
    }
}

#[derive(Debug, Clone)]
enum ItemKind {
    Title(String),
    Row(Row),
}

/// A title or a row with its height in a column.
#[derive(Debug, Clone)]
struct Item {
    group: usize,
    kind: ItemKind,
    height: f32,
}

/// An item placed in a column (a title repeated in a new column is `continued`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    item: usize,
    continued: bool,
}

/// Splits items into pages of `columns` columns `height` tall. A title never ends a column,
/// and a group continued in a new column repeats its title.
fn paginate(items: &[Item], height: f32, columns: usize) -> Vec<Vec<Vec<Entry>>> {
    let mut cols: Vec<Vec<Entry>> = vec![Vec::new()];
    let mut used = 0.0;
    let mut title_of: Option<usize> = None;
    for (i, item) in items.iter().enumerate() {
        let is_title = matches!(item.kind, ItemKind::Title(_));
        if is_title {
            title_of = Some(i);
        }
        // A title needs room for itself and its first row.
        let need = item.height
            + if is_title {
                items
                    .get(i + 1)
                    .filter(|n| n.group == item.group)
                    .map_or(0.0, |n| n.height)
            } else {
                0.0
            };
        let current_empty = cols.last().is_none_or(Vec::is_empty);
        if used + need > height + 0.5 && !current_empty {
            cols.push(Vec::new());
            used = 0.0;
            if !is_title && let Some(t) = title_of.filter(|t| items[*t].group == item.group) {
                if let Some(col) = cols.last_mut() {
                    col.push(Entry {
                        item: t,
                        continued: true,
                    });
                }
                used += items[t].height;
            }
        }
        if let Some(col) = cols.last_mut() {
            col.push(Entry {
                item: i,
                continued: false,
            });
        }
        used += item.height;
    }
    cols.chunks(columns.max(1)).map(<[Vec<Entry>]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(spec: &[(usize, bool, f32)]) -> Vec<Item> {
        spec.iter()
            .map(|&(group, title, height)| Item {
                group,
                kind: if title {
                    ItemKind::Title("t".into())
                } else {
                    ItemKind::Row(Row {
                        label: "l".into(),
                        value: "v".into(),
                    })
                },
                height,
            })
            .collect()
    }

    #[test]
    fn titles_never_end_a_column_and_repeat_when_continued() {
        // Column 100 tall: title 20 + rows of 30.
        let list = items(&[
            (0, true, 20.0),
            (0, false, 30.0),
            (0, false, 30.0),
            (0, false, 30.0),
            (1, true, 20.0),
            (1, false, 30.0),
        ]);
        let pages = paginate(&list, 100.0, 1);
        let cols: Vec<Vec<usize>> = pages
            .iter()
            .flatten()
            .map(|c| c.iter().map(|e| e.item).collect())
            .collect();
        assert_eq!(cols, vec![vec![0, 1, 2], vec![0, 3, 4, 5]]);
        assert!(pages[1][0][0].continued);
        for col in pages.iter().flatten() {
            let last = col.last().map(|e| e.item).unwrap_or(0);
            assert!(!matches!(list[last].kind, ItemKind::Title(_)), "a title ends a column");
        }
    }

    #[test]
    fn columns_group_into_pages() {
        let list = items(&[(0, false, 60.0); 5]);
        let pages = paginate(&list, 100.0, 2);
        assert_eq!(pages.len(), 3);
        assert_eq!(pages.iter().flatten().flatten().count(), 5);
    }
}
