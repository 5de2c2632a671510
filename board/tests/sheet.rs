//! What the board says at an instant: the day's moments (nightfall, Shabbat, countdowns,
//! offline) from the demo synagogue in Jerusalem.

use chrono::{DateTime, Duration, Utc};
use luach_board::compose::{Card, Status, sheet};
use luach_board::demo;
use luach_content::BoardLanguage;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn compose(when: &str, language: BoardLanguage) -> luach_board::Sheet {
    let t = at(when);
    sheet(&demo::bundle_at(t), t, language, Status::default()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_hebrew_date_turns_at_nightfall_not_midnight() {
    // Thursday 3 December 2026 is 23 Kislev 5787; nightfall in Jerusalem is about 17:00.
    let afternoon = compose("2026-12-03T13:00:00Z", BoardLanguage::English);
    let evening = compose("2026-12-03T16:30:00Z", BoardLanguage::English);
    assert_eq!(afternoon.hebrew, "23 Kislev 5787");
    assert_eq!(evening.hebrew, "24 Kislev 5787");
    assert!(evening.gregorian.contains("3 December 2026"), "{}", evening.gregorian);
    // 24 Kislev in the evening is Erev Chanukah's night: the occasion follows the Hebrew day.
    assert_ne!(afternoon.occasion, evening.occasion);
}

#[test]
fn the_coming_shabbat_shows_candles_shabbat_times_and_havdalah() {
    let wednesday = compose("2026-12-02T08:00:00Z", BoardLanguage::English);
    assert_eq!(wednesday.prayers.len(), 2, "{:?}", wednesday.prayers);
    let shabbat = &wednesday.prayers[1];
    let labels: Vec<&str> = shabbat.rows.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels.first(), Some(&"Candle lighting"), "{labels:?}");
    assert_eq!(labels.last(), Some(&"Havdalah"), "{labels:?}");
    assert!(labels.contains(&"שחרית"));
    // On Friday, candle lighting is today's first time.
    let friday = compose("2026-12-04T08:00:00Z", BoardLanguage::English);
    assert_eq!(
        friday.prayers[0].rows.first().map(|r| r.label.as_str()),
        Some("Candle lighting")
    );
    // On Shabbat itself: today's times end with havdalah and there is no second group.
    let saturday = compose("2026-12-05T08:00:00Z", BoardLanguage::English);
    assert_eq!(saturday.prayers.len(), 1);
    assert_eq!(
        saturday.prayers[0].rows.last().map(|r| r.label.as_str()),
        Some("Havdalah")
    );
}

#[test]
fn countdowns_run_only_in_their_window() {
    let early = compose("2026-12-04T11:00:00Z", BoardLanguage::English);
    assert!(early.countdowns.is_empty());
    let near = compose("2026-12-04T13:10:00Z", BoardLanguage::English);
    assert_eq!(near.countdowns.len(), 1);
    assert_eq!(near.countdowns[0].label, "Candle lighting in");
    let later = compose("2026-12-04T13:10:01Z", BoardLanguage::English);
    assert_ne!(
        near.countdowns[0].remaining, later.countdowns[0].remaining,
        "the countdown ticks"
    );
    let after = compose("2026-12-04T15:00:00Z", BoardLanguage::English);
    assert!(after.countdowns.is_empty(), "gone once candle lighting has passed");
}

#[test]
fn languages_and_direction() {
    let he = compose("2026-12-04T08:00:00Z", BoardLanguage::Synagogue);
    assert!(he.rtl, "the demo synagogue's language is Hebrew");
    assert!(he.zmanim.title.chars().any(|c| ('\u{5d0}'..='\u{5ea}').contains(&c)));
    let en = compose("2026-12-04T08:00:00Z", BoardLanguage::English);
    assert!(!en.rtl);
    let both = compose("2026-12-04T08:00:00Z", BoardLanguage::Both);
    assert!(both.rtl);
    assert!(both.zmanim.title.contains(&he.zmanim.title) && both.zmanim.title.contains(&en.zmanim.title));
    // An announcement entered in both languages shows the board's language.
    let text = |s: &luach_board::Sheet| match s.cards.first() {
        Some(Card::Text { text, .. }) => text.clone(),
        other => panic!("{other:?}"),
    };
    assert!(text(&en).starts_with("Kiddush"));
    assert!(text(&he).starts_with("קידוש"));
}

#[test]
fn offline_is_shown_after_the_threshold() {
    let t = at("2026-12-04T08:00:00Z");
    let bundle = demo::bundle_at(t);
    let since = |minutes: i64| Status {
        offline_since: Some(t - Duration::minutes(minutes)),
    };
    let s = |status| sheet(&bundle, t, BoardLanguage::English, status).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s(Status::default()).offline, None);
    assert_eq!(s(since(9)).offline, None);
    assert_eq!(s(since(10)).offline.as_deref(), Some("Offline since 09:50"));
}

#[test]
fn pages_advance_with_page_seconds() {
    let a = compose("2026-12-04T08:00:00Z", BoardLanguage::English);
    let b = compose("2026-12-04T08:00:14Z", BoardLanguage::English);
    let c = compose("2026-12-04T08:00:15Z", BoardLanguage::English);
    assert_eq!(a.page, b.page);
    assert_eq!(a.page + 1, c.page);
}
