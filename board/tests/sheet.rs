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

/// Every zman on the board to the minute it is shown at: by default a deadline rounded down
/// and a start rounded up, on a day when each has seconds to round; a synagogue's other rules
/// and exceptions are followed.
#[test]
fn each_zman_is_shown_rounded_by_its_role() {
    use luach_board::names::{self, Lang};
    use luach_calendar::{MinuteRounding, Role, RoundingMode, Zman};

    let when = "2026-12-04T08:00:00Z";
    let mut bundle = demo::bundle_at(at(when));
    let synagogue = bundle
        .synagogue
        .as_mut()
        .unwrap_or_else(|| panic!("demo has a synagogue"));
    synagogue.input.display.zmanim = Zman::ALL.to_vec();
    let profile = synagogue.input.clone();
    let location = luach_content::day::location(&profile).unwrap_or_else(|e| panic!("{e}"));
    let day =
        luach_content::day::compute_day(&profile, &location, at(when).date_naive()).unwrap_or_else(|e| panic!("{e}"));
    let shown = |bundle: &luach_content::bundle::Bundle| {
        let sheet =
            sheet(bundle, at(when), BoardLanguage::English, Status::default()).unwrap_or_else(|e| panic!("{e}"));
        sheet.zmanim.rows
    };
    let exact = |z: Zman| {
        let t = day.get(z).unwrap_or_else(|m| panic!("{}: {m:?}", z.key()));
        day.local_iso(t)
    };
    let expect = |z: Zman, rounding: MinuteRounding| -> String {
        let iso = exact(z);
        let (minute, seconds) = (&iso[11..16], &iso[17..19]);
        let t = chrono::NaiveTime::parse_from_str(minute, "%H:%M").unwrap_or_else(|e| panic!("{e}"));
        let up = match rounding {
            MinuteRounding::Down => false,
            MinuteRounding::Up => seconds != "00",
            MinuteRounding::Nearest => seconds >= "30",
        };
        (if up { t + Duration::minutes(1) } else { t })
            .format("%H:%M")
            .to_string()
    };
    let check = |bundle: &luach_content::bundle::Bundle, rule: &dyn Fn(Zman) -> MinuteRounding| {
        let rows = shown(bundle);
        let mut with_seconds = 0;
        for z in Zman::ALL {
            if day.get(z).is_err() {
                continue; // no candle lighting or havdalah that day
            }
            let label = names::zman(z, Lang::En);
            let row = rows
                .iter()
                .find(|r| r.label == label)
                .unwrap_or_else(|| panic!("{label} not on the board: {rows:?}"));
            assert_eq!(row.value, expect(z, rule(z)), "{} (exact {})", z.key(), exact(z));
            with_seconds += usize::from(!exact(z).ends_with(":00+02:00"));
        }
        // The day tests rounding: nearly every time has seconds to round.
        assert!(with_seconds >= 15, "{with_seconds}");
    };

    check(&bundle, &|z| match z.role() {
        Role::Deadline => MinuteRounding::Down,
        Role::Start => MinuteRounding::Up,
    });
    let policy = &mut bundle
        .synagogue
        .as_mut()
        .unwrap_or_else(|| panic!("demo"))
        .input
        .display
        .minutes;
    policy.mode = RoundingMode::Nearest;
    policy.zmanim.insert(Zman::Tzeit8_5, MinuteRounding::Down);
    check(&bundle, &|z| {
        if z == Zman::Tzeit8_5 {
            MinuteRounding::Down
        } else {
            MinuteRounding::Nearest
        }
    });
}
