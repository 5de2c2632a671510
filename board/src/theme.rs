//! Colour themes, with the contrast each one promises (WCAG 2.x relative luminance).

use serde::{Deserialize, Serialize};

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// WCAG relative luminance, 0 (black) to 1 (white).
    pub fn luminance(self) -> f64 {
        let lin = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.040_45 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * lin(self.0) + 0.7152 * lin(self.1) + 0.0722 * lin(self.2)
    }

    pub fn to_skia(self) -> tiny_skia::Color {
        tiny_skia::Color::from_rgba8(self.0, self.1, self.2, 255)
    }
}

/// WCAG contrast ratio of two colours, 1 to 21.
pub fn contrast(a: Rgb, b: Rgb) -> f64 {
    let (la, lb) = (a.luminance(), b.luminance());
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

/// A screen's colour theme.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    /// Dark text on warm paper; for bright halls.
    #[default]
    Light,
    /// Light text on deep blue; for dim halls and evenings.
    Dark,
    /// White and yellow on black, large contrast for reading from the back of the hall.
    HighContrast,
}

/// The colours a theme draws with. Every text colour meets [`Theme::min_contrast`] on every
/// surface it is drawn on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Palette {
    /// The frame's background.
    pub background: Rgb,
    /// Panels' background.
    pub panel: Rgb,
    /// Header and footer band.
    pub band: Rgb,
    /// Body text.
    pub text: Rgb,
    /// Headings and emphasis (the clock, times).
    pub accent: Rgb,
    /// Secondary text (notes, continued markers).
    pub muted: Rgb,
    /// Thin rules between panels (decoration, no contrast requirement).
    pub rule: Rgb,
    /// The offline indicator.
    pub warning: Rgb,
}

impl Theme {
    pub const ALL: [Theme; 3] = [Theme::Light, Theme::Dark, Theme::HighContrast];

    pub fn key(self) -> &'static str {
        match self {
            Theme::Light => "light",
            Theme::Dark => "dark",
            Theme::HighContrast => "high_contrast",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.key() == key)
    }

    /// The contrast every text of this theme has on its background (7:1 is WCAG AAA).
    pub fn min_contrast(self) -> f64 {
        match self {
            Theme::HighContrast => 12.0,
            _ => 7.0,
        }
    }

    pub fn palette(self) -> Palette {
        match self {
            Theme::Light => Palette {
                background: Rgb(0xF4, 0xEF, 0xE3),
                panel: Rgb(0xFF, 0xFC, 0xF5),
                band: Rgb(0x1D, 0x2B, 0x4F),
                text: Rgb(0x1A, 0x1A, 0x1A),
                accent: Rgb(0x14, 0x2E, 0x6B),
                muted: Rgb(0x3D, 0x3D, 0x3D),
                rule: Rgb(0xC9, 0xA2, 0x4B),
                warning: Rgb(0x8A, 0x1C, 0x00),
            },
            Theme::Dark => Palette {
                background: Rgb(0x0B, 0x12, 0x24),
                panel: Rgb(0x13, 0x1D, 0x36),
                band: Rgb(0x05, 0x09, 0x14),
                text: Rgb(0xF2, 0xF2, 0xF2),
                accent: Rgb(0xF5, 0xD3, 0x7A),
                muted: Rgb(0xC8, 0xCE, 0xDC),
                rule: Rgb(0x3A, 0x4A, 0x73),
                warning: Rgb(0xFF, 0xB0, 0x8A),
            },
            Theme::HighContrast => Palette {
                background: Rgb(0, 0, 0),
                panel: Rgb(0, 0, 0),
                band: Rgb(0, 0, 0),
                text: Rgb(0xFF, 0xFF, 0xFF),
                accent: Rgb(0xFF, 0xEB, 0x3B),
                muted: Rgb(0xE6, 0xE6, 0xE6),
                rule: Rgb(0xFF, 0xFF, 0xFF),
                warning: Rgb(0xFF, 0xC1, 0x07),
            },
        }
    }

    /// Text colour on the header and footer band (the light theme's band is dark).
    pub fn band_text(self) -> Rgb {
        match self {
            Theme::Light => Rgb(0xFF, 0xFF, 0xFF),
            _ => self.palette().text,
        }
    }

    /// Accent colour on the band.
    pub fn band_accent(self) -> Rgb {
        match self {
            Theme::Light => Rgb(0xF5, 0xD3, 0x7A),
            _ => self.palette().accent,
        }
    }

    /// Warning colour on the band.
    pub fn band_warning(self) -> Rgb {
        match self {
            Theme::Light => Rgb(0xFF, 0xC0, 0xA0),
            _ => self.palette().warning,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contrast_matches_wcag_examples() {
        assert!((contrast(Rgb(0, 0, 0), Rgb(255, 255, 255)) - 21.0).abs() < 0.01);
        assert!((contrast(Rgb(0x77, 0x77, 0x77), Rgb(255, 255, 255)) - 4.48).abs() < 0.02);
    }

    #[test]
    fn every_text_colour_meets_its_theme() {
        for theme in Theme::ALL {
            let p = theme.palette();
            for surface in [p.background, p.panel] {
                for ink in [p.text, p.accent, p.muted, p.warning] {
                    let c = contrast(ink, surface);
                    assert!(c >= theme.min_contrast(), "{theme:?}: {ink:?} on {surface:?} is {c:.2}");
                }
            }
            for ink in [theme.band_text(), theme.band_accent(), theme.band_warning()] {
                let c = contrast(ink, p.band);
                assert!(c >= theme.min_contrast(), "{theme:?}: {ink:?} on band is {c:.2}");
            }
            assert_eq!(Theme::from_key(theme.key()), Some(theme));
        }
    }
}
