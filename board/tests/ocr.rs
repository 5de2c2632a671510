//! Hebrew comes out shaped, right to left and in logical order: Debian's tesseract with its
//! Hebrew model reads the drawn text back. Drawing the letters in the wrong order (what an
//! unshaped, bidi-less renderer produces) does not read back, so the test can fail.

use std::process::Command;

use luach_board::Rgb;
use luach_board::text::{Fonts, Style};

fn tesseract_available() -> bool {
    let ok = Command::new("tesseract")
        .arg("--list-langs")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.trim() == "heb"));
    if !ok && std::env::var_os("CI").is_some() {
        panic!("tesseract with the Hebrew model is required in CI (scripts/test.sh installs it)");
    }
    ok
}

/// Draws `text` large on white and reads it back.
fn read_back(text: &str) -> String {
    let mut fonts = Fonts::embedded();
    let laid = fonts.lay(text, Style::new(64.0, Rgb(0, 0, 0)).digits(), 3000.0);
    let width = (laid.width() + 120.0).ceil() as u32;
    let mut pixmap = tiny_skia::Pixmap::new(width, 180).unwrap_or_else(|| panic!("pixmap"));
    pixmap.fill(tiny_skia::Color::WHITE);
    let left = 60.0 - laid.lines.first().map_or(0.0, |l| l.left);
    fonts.draw(&mut pixmap, &laid, 0..1, left, 40.0);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let png = dir.path().join("line.png");
    pixmap.save_png(&png).unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new("tesseract")
        .arg(&png)
        .arg("stdout")
        .args(["-l", "heb+eng", "--psm", "7"])
        .output()
        .unwrap_or_else(|e| panic!("tesseract: {e}"));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != ':').to_owned())
        .collect()
}

#[test]
fn hebrew_reads_back_in_order() {
    if !tesseract_available() {
        return;
    }
    let sentence = "שבת שלום לכל הקהל הקדוש";
    let read = read_back(sentence);
    assert_eq!(words(&read), words(sentence), "read back {read:?}");
}

#[test]
fn reversed_letters_do_not_read_back() {
    if !tesseract_available() {
        return;
    }
    // What a renderer without bidi draws: the logical order left to right.
    let sentence = "שבת שלום לכל הקהל הקדוש";
    let reversed: String = sentence.chars().rev().collect();
    let read = read_back(&reversed);
    assert_ne!(
        words(&read),
        words(sentence),
        "reversed drawing read back as the sentence: {read:?}"
    );
}

#[test]
fn mixed_hebrew_numbers_and_english_keep_their_order() {
    if !tesseract_available() {
        return;
    }
    let line = "מנחה 16:25 Mincha";
    let read = read_back(line);
    let got = words(&read);
    assert!(got.iter().any(|w| w == "מנחה"), "{read:?}");
    assert!(got.iter().any(|w| w == "16:25"), "{read:?}");
    assert!(got.iter().any(|w| w.eq_ignore_ascii_case("Mincha")), "{read:?}");
}
