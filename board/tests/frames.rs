//! The board as pixels: golden images per layout and theme, readability measured on the
//! rendered frames, the longest content the API accepts, scaling.
//!
//! Goldens live in `tests/golden/`. After a deliberate change to the board's look, rewrite
//! them with `LUACH_BLESS=1 cargo nextest run -p luach-board` and look at the new images
//! before committing them.

use std::path::PathBuf;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use luach_board::layout::Role;
use luach_board::{Board, Fonts, Frame, Layout, Options, Rgb, Status, Theme, contrast, demo};
use luach_content::BoardLanguage;

/// Pixels whose channels differ by more than this count as different.
const CHANNEL_TOLERANCE: u8 = 8;
/// Share of pixels that may differ from the golden.
const PIXEL_TOLERANCE: f64 = 0.002;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// Friday 4 December 2026, 13:20 in Jerusalem: candle lighting countdown not yet shown.
const FRIDAY_NOON: &str = "2026-12-04T11:20:00Z";
/// The same Friday 15:10: within two hours of candle lighting, so the countdown shows.
const FRIDAY_AFTERNOON: &str = "2026-12-04T13:10:00Z";

fn size(layout: Layout) -> (u32, u32) {
    match layout {
        Layout::Landscape => (1920, 1080),
        Layout::Portrait => (1080, 1920),
    }
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Compares `frame` with `tests/golden/NAME.png`, or writes it when `LUACH_BLESS` is set.
fn golden(name: &str, frame: &Frame) {
    let path = golden_dir().join(format!("{name}.png"));
    let png = frame.png().unwrap_or_else(|e| panic!("{e}"));
    if std::env::var_os("LUACH_BLESS").is_some() {
        std::fs::create_dir_all(golden_dir()).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&path, &png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (write goldens with LUACH_BLESS=1)", path.display()));
    let want = tiny_skia::Pixmap::decode_png(&bytes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (want.width(), want.height()),
        (frame.width(), frame.height()),
        "{name}: size"
    );
    let differing = want
        .data()
        .chunks(4)
        .zip(frame.rgba().chunks(4))
        .filter(|(a, b)| a.iter().zip(b.iter()).any(|(x, y)| x.abs_diff(*y) > CHANNEL_TOLERANCE))
        .count();
    let share = differing as f64 / f64::from(frame.width() * frame.height());
    if share > PIXEL_TOLERANCE {
        let out = std::env::temp_dir().join(format!("luach-board-{name}.png"));
        let _ = std::fs::write(&out, &png);
        panic!(
            "{name}: {:.3}% of pixels differ from the golden (allowed {:.1}%); this frame is at {}",
            share * 100.0,
            PIXEL_TOLERANCE * 100.0,
            out.display()
        );
    }
}

fn render(board: &mut Board, bundle: &luach_content::Bundle, when: &str, options: Options) -> Frame {
    board
        .render(bundle, at(when), options, Status::default())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// `check` on the frame of every layout (at its reference size) and theme.
fn every_layout_and_theme(
    board: &mut Board,
    bundle: &luach_content::Bundle,
    mut check: impl FnMut(Layout, Theme, &Frame),
) {
    for layout in Layout::ALL {
        let (w, h) = size(layout);
        for theme in Theme::ALL {
            let options = Options::size(w, h).layout(layout).theme(theme);
            check(layout, theme, &render(board, bundle, FRIDAY_AFTERNOON, options));
        }
    }
}

#[test]
fn goldens_for_every_layout_and_theme() {
    let mut board = Board::new();
    let bundle = demo::bundle_at(at(FRIDAY_AFTERNOON));
    every_layout_and_theme(&mut board, &bundle, |layout, theme, frame| {
        golden(&format!("{}-{}", layout.key(), theme.key()), frame);
    });
    let english = render(
        &mut board,
        &bundle,
        FRIDAY_NOON,
        Options::size(1920, 1080)
            .layout(Layout::Landscape)
            .language(BoardLanguage::English),
    );
    golden("landscape-light-english", &english);
    let both = render(
        &mut board,
        &bundle,
        FRIDAY_NOON,
        Options::size(1080, 1920)
            .layout(Layout::Portrait)
            .theme(Theme::Dark)
            .language(BoardLanguage::Both),
    );
    golden("portrait-dark-both", &both);
    let date = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap_or_default();
    for layout in Layout::ALL {
        let (w, h) = size(layout);
        let longest = render(
            &mut board,
            &demo::longest(date),
            FRIDAY_AFTERNOON,
            Options::size(w, h).layout(layout),
        );
        golden(&format!("{}-longest", layout.key()), &longest);
    }
    let claim = board
        .render_claim("K7QF-3XPA", BoardLanguage::Hebrew, Options::size(1920, 1080))
        .unwrap_or_else(|e| panic!("{e}"));
    golden("claim", &claim);
    let unassigned = render(&mut board, &demo::empty(), FRIDAY_NOON, Options::size(1920, 1080));
    golden("no-synagogue", &unassigned);
}

/// The background of an element's box: its most common colour.
fn background(frame: &Frame, e: &luach_board::Element) -> Rgb {
    let mut counts = std::collections::HashMap::new();
    for (x, y) in box_pixels(frame, e) {
        if let Some(p) = frame.pixel(x, y) {
            *counts.entry(p).or_insert(0u32) += 1;
        }
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(c, _)| c)
        .unwrap_or(Rgb(0, 0, 0))
}

fn box_pixels(frame: &Frame, e: &luach_board::Element) -> impl Iterator<Item = (u32, u32)> {
    let (x0, y0) = (e.x.max(0.0) as u32, e.y.max(0.0) as u32);
    let x1 = ((e.x + e.width).ceil() as u32).min(frame.width());
    let y1 = ((e.y + e.height).ceil() as u32).min(frame.height());
    (y0..y1).flat_map(move |y| (x0..x1).map(move |x| (x, y)))
}

/// Rows of the element's box holding ink (pixels far from the background).
fn ink_height(frame: &Frame, e: &luach_board::Element, bg: Rgb) -> u32 {
    let far = |p: Rgb| contrast(p, bg) > 2.0;
    let rows: Vec<u32> = box_pixels(frame, e)
        .filter(|&(x, y)| frame.pixel(x, y).is_some_and(far))
        .map(|(_, y)| y)
        .collect();
    match (rows.iter().min(), rows.iter().max()) {
        (Some(a), Some(b)) => b - a + 1,
        _ => 0,
    }
}

/// Clock and times: at least 60 px of digit ink; other text: a cap height of at least 28 px;
/// every text's ink on its background at the theme's contrast.
fn check_readable(frame: &Frame, fonts: &mut Fonts, what: &str) {
    assert!(!frame.elements.is_empty(), "{what}: nothing drawn");
    for e in &frame.elements {
        let bg = background(frame, e);
        match e.role {
            Role::Clock | Role::Time => {
                let ink = ink_height(frame, e, bg);
                assert!(ink >= 60, "{what}: {:?} {:?} has {ink} px of ink", e.role, e.text);
            }
            Role::Text => {
                let cap = fonts.cap_height(e.size);
                assert!(
                    cap >= 28.0,
                    "{what}: {:?} at {} px has a cap height of {cap}",
                    e.text,
                    e.size
                );
            }
        }
        let strongest = box_pixels(frame, e)
            .filter_map(|(x, y)| frame.pixel(x, y))
            .map(|p| contrast(p, bg))
            .fold(1.0, f64::max);
        let min = frame.theme.min_contrast();
        assert!(
            strongest >= min,
            "{what}: {:?} has contrast {strongest:.2} < {min}",
            e.text
        );
        assert_eq!(
            bg, e.background,
            "{what}: {:?} is drawn on an unexpected background",
            e.text
        );
    }
}

#[test]
fn readable_across_the_hall_in_every_layout_and_theme() {
    let mut board = Board::new();
    let mut fonts = Fonts::embedded();
    let date = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap_or_default();
    for bundle in [demo::bundle(date), demo::longest(date)] {
        every_layout_and_theme(&mut board, &bundle, |layout, theme, frame| {
            check_readable(frame, &mut fonts, &format!("{layout:?} {theme:?}"));
        });
    }
    let claim = board
        .render_claim("K7QF-3XPA", BoardLanguage::English, Options::size(1920, 1080))
        .unwrap_or_else(|e| panic!("{e}"));
    check_readable(&claim, &mut fonts, "claim");
}

fn overlaps(a: &luach_board::Element, b: &luach_board::Element) -> bool {
    let ix = (a.x + a.width).min(b.x + b.width) - a.x.max(b.x);
    let iy = (a.y + a.height).min(b.y + b.height) - a.y.max(b.y);
    ix > 1.0 && iy > 1.0
}

#[test]
fn the_longest_content_fits_every_layout_language_and_page() {
    let mut board = Board::new();
    let date = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap_or_default();
    let bundle = demo::longest(date);
    let sizes = [
        (1920, 1080),
        (1280, 720),
        (3840, 2160),
        (1080, 1920),
        (1366, 768),
        (1024, 1280),
    ];
    for (w, h) in sizes {
        for language in [BoardLanguage::Hebrew, BoardLanguage::English, BoardLanguage::Both] {
            let mut seen_paged = false;
            // Ten rotation periods: every page of every rotating panel comes round.
            for k in 0..10 {
                let when = (at(FRIDAY_AFTERNOON) + Duration::seconds(15 * k)).to_rfc3339();
                let frame = render(&mut board, &bundle, &when, Options::size(w, h).language(language));
                let what = format!("{w}×{h} {language:?} page {k}");
                for e in &frame.elements {
                    assert_eq!(e.missing, 0, "{what}: missing glyphs in {:?}", e.text);
                    assert!(!e.broke_words, "{what}: a word was broken in {:?}", e.text);
                    assert!(
                        e.x >= 0.0 && e.y >= 0.0 && e.x + e.width <= w as f32 + 0.5 && e.y + e.height <= h as f32 + 0.5,
                        "{what}: {:?} leaves the frame",
                        e.text
                    );
                    seen_paged |= e.paged;
                }
                for (i, a) in frame.elements.iter().enumerate() {
                    for b in &frame.elements[i + 1..] {
                        assert!(!overlaps(a, b), "{what}: {:?} overlaps {:?}", a.text, b.text);
                    }
                }
            }
            assert!(
                seen_paged,
                "{w}×{h} {language:?}: the longest announcement should need pages"
            );
        }
    }
}

#[test]
fn frames_scale_with_the_screen() {
    let mut board = Board::new();
    let bundle = demo::bundle_at(at(FRIDAY_AFTERNOON));
    let base = render(&mut board, &bundle, FRIDAY_AFTERNOON, Options::size(1920, 1080));
    for (w, h) in [(1280, 720), (3840, 2160)] {
        let k = w as f32 / 1920.0;
        let frame = render(&mut board, &bundle, FRIDAY_AFTERNOON, Options::size(w, h));
        assert_eq!(frame.layout, Layout::Landscape);
        let texts = |f: &Frame| f.elements.iter().map(|e| e.text.clone()).collect::<Vec<_>>();
        assert_eq!(texts(&frame), texts(&base), "{w}×{h}: the same texts");
        for (a, b) in base.elements.iter().zip(&frame.elements) {
            assert!((a.x * k - b.x).abs() <= 4.0 * k.max(1.0), "{w}×{h}: {:?} moved", a.text);
            assert!(
                (a.size * k - b.size).abs() <= 0.06 * b.size,
                "{w}×{h}: {:?} resized",
                a.text
            );
        }
    }
    let portrait = render(&mut board, &bundle, FRIDAY_AFTERNOON, Options::size(1080, 1920));
    assert_eq!(
        portrait.layout,
        Layout::Portrait,
        "a tall display gets the portrait layout"
    );
}

#[test]
fn the_board_follows_the_instant() {
    let mut board = Board::new();
    let bundle = demo::bundle_at(at(FRIDAY_AFTERNOON));
    let texts = |f: &Frame| f.elements.iter().map(|e| e.text.clone()).collect::<Vec<_>>();
    let noon = render(&mut board, &bundle, FRIDAY_NOON, Options::size(1920, 1080));
    let afternoon = render(&mut board, &bundle, FRIDAY_AFTERNOON, Options::size(1920, 1080));
    assert!(texts(&noon).contains(&"13:20:00".to_owned()), "{:?}", texts(&noon));
    // The candle-lighting countdown appears two hours before.
    let countdown = |f: &Frame| f.elements.iter().any(|e| e.text == "הדלקת נרות בעוד");
    assert!(!countdown(&noon) && countdown(&afternoon));
    // Offline for more than ten minutes: the board says since when.
    let mut offline_since = |since: &str| {
        let status = Status {
            offline_since: Some(at(since)),
        };
        board
            .render(&bundle, at(FRIDAY_NOON), Options::size(1920, 1080), status)
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let offline = offline_since("2026-12-04T11:00:00Z");
    assert!(
        texts(&offline).iter().any(|t| t.contains("13:00")),
        "{:?}",
        texts(&offline)
    );
    let briefly = offline_since("2026-12-04T11:15:00Z");
    assert_eq!(texts(&briefly), texts(&noon), "a short outage is not announced");
}

#[test]
fn bad_sizes_are_refused() {
    let mut board = Board::new();
    let bundle = demo::empty();
    for (w, h) in [(0, 0), (100, 1080), (1920, 8000), (u32::MAX, 1)] {
        let err = board.render(&bundle, at(FRIDAY_NOON), Options::size(w, h), Status::default());
        assert!(matches!(err, Err(luach_board::BoardError::Size(..))), "{w}×{h}");
    }
}
