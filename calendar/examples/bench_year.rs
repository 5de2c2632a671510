//! Benchmark: one "screen-year" — 365 full day computations (Hebrew date, holidays, parsha,
//! daf yomi, omer, all zmanim, candle lighting) plus a realistic prayer-schedule rule set and
//! the JSON a screen renders — and the cost of one day.
//!
//! Run: `cargo run --release -p luach-calendar --example bench_year`
//! Compare: `node calendar/tests/reference/bench_hebcal.mjs` (same days with @hebcal/core).

use std::hint::black_box;
use std::time::Instant;

use chrono::{Duration, NaiveDate};
use luach_calendar::{DayInfo, DayOptions, Location, RuleSet, ZmanimOptions};

const RULES: &str = r#"{"rules": [
  {"name": "Shacharit", "time": {"fixed": "06:30"}, "days": ["weekday"]},
  {"name": "Shacharit", "time": {"fixed": "06:15"}, "days": ["rosh_chodesh", "fast", "chol_hamoed"]},
  {"name": "Shacharit", "time": {"fixed": "08:30"}, "days": ["shabbat", "yom_tov"]},
  {"name": "Shacharit (vatikin)", "time": {"zman": "sea_level_sunrise", "offset_minutes": -30},
   "round": {"mode": "down", "minutes": 5}, "days": ["every_day"]},
  {"name": "Mincha", "time": {"zman": "sunset", "offset_minutes": -15}, "round": {"mode": "down", "minutes": 5},
   "not_before": {"fixed": "13:30"}, "not_after": {"fixed": "19:45"}, "days": ["weekday"], "except": ["friday"]},
  {"name": "Mincha", "time": {"zman": "candle_lighting", "offset_minutes": 0}, "days": ["erev"]},
  {"name": "Mincha", "time": {"zman": "sunset", "offset_minutes": -40}, "round": {"mode": "nearest", "minutes": 5},
   "days": ["shabbat"]},
  {"name": "Maariv", "time": {"zman": "tzeit_8_5"}, "round": {"mode": "up", "minutes": 5},
   "not_before": {"zman": "plag_hamincha", "offset_minutes": 0}, "days": ["every_day"]},
  {"name": "Daf Yomi shiur", "time": {"zman": "tzeit_8_5", "offset_minutes": 15}, "round": {"mode": "up", "minutes": 15},
   "days": ["sunday", "monday", "tuesday", "wednesday", "thursday"]}
], "overrides": [{"date": "2025-12-25", "name": "Shacharit", "time": "08:00"}]}"#;

fn screen_year(loc: &Location, opts: &DayOptions, rules: &RuleSet, start: NaiveDate) -> usize {
    let mut bytes = 0;
    for i in 0..365 {
        let date = start + Duration::days(i);
        let Ok(day) = DayInfo::compute(loc, date, opts) else {
            continue;
        };
        let times = rules.evaluate(&day);
        let json = day.to_json().to_string();
        bytes += json.len() + times.len();
    }
    bytes
}

fn main() {
    let rules = match RuleSet::from_json(RULES) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bad benchmark rules: {e}");
            return;
        }
    };
    let places = [
        ("Jerusalem", 31.778, 35.2354, 754.0, "Asia/Jerusalem", true, 40),
        ("New York", 40.7128, -74.006, 10.0, "America/New_York", false, 18),
    ];
    let start = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or_default();
    for (name, lat, lon, elev, tz, israel, candles) in places {
        let Ok(loc) = Location::new(lat, lon, elev, tz) else {
            continue;
        };
        let opts = DayOptions {
            israel,
            zmanim: ZmanimOptions {
                candle_lighting_minutes: candles,
                ..ZmanimOptions::default()
            },
        };
        black_box(screen_year(&loc, &opts, &rules, start)); // warm-up
        let runs = 20;
        let t0 = Instant::now();
        for _ in 0..runs {
            black_box(screen_year(&loc, &opts, &rules, start));
        }
        let year = t0.elapsed() / runs;
        let t1 = Instant::now();
        let n = 2000;
        for i in 0..n {
            let date = start + Duration::days(i % 365);
            if let Ok(day) = DayInfo::compute(&loc, date, &opts) {
                black_box(day);
            }
        }
        let one = t1.elapsed() / u32::try_from(n).unwrap_or(1);
        println!(
            "{name:<10} screen-year (365 days: DayInfo + rules + JSON): {:>8.2} ms   one DayInfo::compute: {:>6.1} µs",
            year.as_secs_f64() * 1e3,
            one.as_secs_f64() * 1e6
        );
    }
}
