//! Cost of keeping a tenant's screens current (a measurement, not a test).
//!
//! Seeds a SQLite store with one tenant: a synagogue with a prayer schedule, announcements,
//! memorial plaques, shiurim, timers, a season of honours, and N screens. Then times what the
//! bundle notifier does after an edit (load the tenant's documents once, build and hash every
//! screen's bundle) and what a screen does offline (`Bundle::screen_day` for a year of days).
//!
//! ```text
//! cargo run --release -p luach-control-plane --example bench_bundles -- 1000
//! ```

use std::time::Instant;

use chrono::{Duration, NaiveDate, Utc};
use luach_control_plane::bundle::TenantContent;
use luach_control_plane::chain::{Actor, ChainKey};
use luach_control_plane::store::{
    self, AliyotInput, AnnouncementInput, MemorialInput, NewDevice, Quota, ShiurInput, StoreOptions, TimerInput,
};
use luach_schemas::{DeviceId, TenantId};
use serde_json::json;

fn parse<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> anyhow::Result<T> {
    Ok(serde_json::from_value(v)?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let screens: usize = std::env::args().nth(1).map_or(Ok(1000), |s| s.parse())?;
    let dir = tempfile::tempdir()?;
    let options = StoreOptions {
        url: format!("sqlite:{}", dir.path().join("bench.sqlite3").display()),
        database: String::new(),
        chain_key: ChainKey::new(&[7; 32]).ok_or_else(|| anyhow::anyhow!("key"))?,
        quota_defaults: Quota::default(),
        sqlite_readers: 4,
        migrate: true,
    };
    let system = store::open(&options, luach_control_plane::metrics::Metrics::new()).await?;
    let scope = system.scope(TenantId::builtin(), Actor::cli());
    let store = system.tenant(&scope);
    let now = Utc::now();
    let today = now.date_naive();

    let profile = parse(json!({
        "name": "Beit Knesset", "latitude": 40.7128, "longitude": -74.006, "elevation_m": 10,
        "timezone": "America/New_York", "nusach": "ashkenaz", "language": "en",
        "schedule": {"rules": [
            {"name": "Shacharit", "time": {"fixed": "06:45"}, "days": ["weekday"]},
            {"name": "Shacharit", "time": {"fixed": "09:00"}, "days": ["shabbat"]},
            {"name": "Mincha", "time": {"zman": "sunset", "offset_minutes": -15},
             "round": {"mode": "down", "minutes": 5}, "days": ["every_day"]},
            {"name": "Maariv", "time": {"zman": "tzeit_8_5"}, "round": {"mode": "up", "minutes": 5},
             "days": ["every_day"]}
        ]}
    }))?;
    store.put_synagogue(&TenantId::parse("main")?, profile, now).await?;
    for i in 0..100 {
        let a: AnnouncementInput = parse(
            json!({"text_he": format!("הודעה {i}"), "text_en": format!("Notice {i}"),
            "priority": i % 10, "targets": if i % 4 == 0 { json!({"tags": [format!("floor{}", i % 3)]}) } else { json!({}) }}),
        )?;
        store.put(&format!("a{i:03}"), a, now).await?;
    }
    for i in 0..500 {
        let m: MemorialInput = parse(json!({"name": format!("Plaque {i}"),
            "passed": {"civil": {"date": (NaiveDate::from_ymd_opt(1950, 1, 1).unwrap_or_default() + Duration::days(i * 53)).to_string()}}}))?;
        store.put(&format!("m{i:03}"), m, now).await?;
    }
    for i in 0..30 {
        let s: ShiurInput = parse(json!({"teacher": format!("Rabbi {i}"),
            "schedule": {"name": format!("Shiur {i}"), "time": {"zman": "sunset", "offset_minutes": -45}, "days": ["weekday"]}}))?;
        store.put(&format!("s{i:02}"), s, now).await?;
        let t: TimerInput = parse(
            json!({"label_en": format!("Timer {i}"), "target": {"zman": "candle_lighting"}, "show_before_minutes": 30}),
        )?;
        store.put(&format!("t{i:02}"), t, now).await?;
    }
    for i in 0..60 {
        let a: AliyotInput = parse(json!({"date": (today + Duration::days(i)).to_string(),
            "honours": [{"honour": "kohen", "name": "Cohen"}, {"honour": "levi", "name": "Levi"}, {"honour": "maftir", "name": "Maftir"}]}))?;
        store.put(&format!("l{i:02}"), a, now).await?;
    }
    for i in 0..screens {
        let device = NewDevice {
            id: DeviceId::parse(&format!("screen{i:05}"))?,
            name: format!("Screen {i}"),
            tags: vec![format!("floor{}", i % 3)],
            group: None,
            notes: String::new(),
        };
        store.create_device(device, now).await?;
    }
    let devices = store
        .devices(
            &Default::default(),
            &luach_control_plane::store::PageRequest {
                limit: 500,
                after: None,
            },
        )
        .await?
        .items;

    // What the notifier does after one edit: one load, then every screen's bundle.
    let t = Instant::now();
    let content = TenantContent::load(&store, today).await?;
    let load = t.elapsed();
    let t = Instant::now();
    let mut bytes = 0;
    for i in 0..screens {
        bytes += content.build_for(&devices[i % devices.len()]).bytes.len();
    }
    let build = t.elapsed();
    println!(
        "tenant load: {:.1} ms; {screens} bundles built and hashed: {:.1} ms ({:.0} µs per screen, {} KiB each)",
        load.as_secs_f64() * 1e3,
        build.as_secs_f64() * 1e3,
        build.as_secs_f64() * 1e6 / screens as f64,
        bytes / screens / 1024
    );

    // What a screen does offline: parse its bundle, then a year of days.
    let built = content.build_for(&devices[0]);
    let t = Instant::now();
    let bundle = luach_content::Bundle::parse(&built.bytes, Some(&built.sha256), None)?;
    let parse_time = t.elapsed();
    let t = Instant::now();
    for d in 0..365 {
        bundle.screen_day(today + Duration::days(d))?;
    }
    let year = t.elapsed();
    println!(
        "screen: parse + verify {:.1} ms; 365 days of screen_day: {:.0} ms ({:.2} ms per day)",
        parse_time.as_secs_f64() * 1e3,
        year.as_secs_f64() * 1e3,
        year.as_secs_f64() * 1e3 / 365.0
    );
    Ok(())
}
