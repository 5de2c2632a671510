//! Synagogue profiles and the day preview through the REST API.

use luach_tests::{Must, spawn_app};
use serde_json::{Value, json};

fn jerusalem() -> Value {
    json!({
        "name": "בית הכנסת הגדול", "address": "King George 56", "latitude": 31.778, "longitude": 35.2354,
        "elevation_m": 754, "timezone": "Asia/Jerusalem", "israel": true, "nusach": "ashkenaz",
        "language": "he", "candle_lighting_minutes": 40,
        "schedule": {
            "rules": [
                {"name": "Shacharit", "time": {"fixed": "06:30"}, "days": ["weekday"]},
                {"name": "Mincha", "time": {"zman": "sunset", "offset_minutes": -15},
                 "round": {"mode": "down", "minutes": 5}, "days": ["every_day"]}
            ],
            "overrides": [{"date": "2026-12-03", "name": "Shacharit", "time": "06:00"}]
        }
    })
}

#[tokio::test]
async fn profile_round_trip_and_preview_matches_the_engine() {
    let app = spawn_app(|_| {}).await;
    let api = &app.api;
    let (code, body) = api
        .send(api.http.put(api.url("/api/v1/synagogues/hagadol")).json(&jerusalem()))
        .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["data"]["name"], "בית הכנסת הגדול");
    let created_at = body["data"]["created_at"].clone();
    let (code, body) = api
        .send(api.http.put(api.url("/api/v1/synagogues/hagadol")).json(&jerusalem()))
        .await;
    assert_eq!((code, &body["data"]["created_at"]), (200, &created_at));
    let (_, body) = api.get("/api/v1/synagogues").await;
    assert_eq!(body["data"].as_array().map(Vec::len), Some(1));

    // Friday 2026-12-04 in Jerusalem: the preview carries the engine's own day, and the rule
    // "Mincha = sunset − 15, rounded down to 5 minutes" evaluated on it.
    let (code, body) = api.get("/api/v1/synagogues/hagadol/preview?date=2026-12-04").await;
    assert_eq!(code, 200, "{body}");
    let day = &body["data"]["day"];
    let cli = std::process::Command::new(luach_tests::bin_path("luach-agent"))
        .args([
            "zmanim",
            "--lat",
            "31.778",
            "--lon",
            "35.2354",
            "--elevation",
            "754",
            "--tz",
            "Asia/Jerusalem",
        ])
        .args(["--date", "2026-12-04", "--israel", "--candle-minutes", "40", "--json"])
        .output()
        .must();
    let engine: Value = serde_json::from_slice(&cli.stdout).must();
    assert_eq!(day["zmanim"], engine["zmanim"]);
    assert_eq!(day["hebrew_date"], engine["hebrew_date"]);
    let sunset = chrono::DateTime::parse_from_rfc3339(day["zmanim"]["sunset"].as_str().unwrap_or_default()).must();
    let schedule = body["data"]["schedule"].as_array().cloned().unwrap_or_default();
    let mincha = schedule
        .iter()
        .find(|t| t["name"] == "Mincha")
        .unwrap_or_else(|| panic!("{schedule:?}"));
    let mincha = chrono::DateTime::parse_from_rfc3339(mincha["time"].as_str().unwrap_or_default()).must();
    let fifteen_before = sunset - chrono::Duration::minutes(15);
    assert!(
        mincha <= fifteen_before && fifteen_before - mincha < chrono::Duration::minutes(5),
        "{mincha} vs {sunset}"
    );
    assert_eq!(chrono::Timelike::minute(&mincha) % 5, 0);
    assert_eq!(chrono::Timelike::second(&mincha), 0);
    let shacharit = schedule
        .iter()
        .find(|t| t["name"] == "Shacharit")
        .unwrap_or_else(|| panic!("{schedule:?}"));
    assert_eq!(shacharit["time"], "2026-12-04T06:30:00+02:00");
    // The one-off override applies on its date only.
    let (_, body) = api.get("/api/v1/synagogues/hagadol/preview?date=2026-12-03").await;
    let schedule = body["data"]["schedule"].as_array().cloned().unwrap_or_default();
    assert!(
        schedule
            .iter()
            .any(|t| t["name"] == "Shacharit" && t["time"] == "2026-12-03T06:00:00+02:00"),
        "{schedule:?}"
    );

    let (code, _) = api.delete("/api/v1/synagogues/hagadol").await;
    assert_eq!(code, 204);
    let (code, body) = api.get("/api/v1/synagogues/hagadol/preview").await;
    assert_eq!((code, body["error"]["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn invalid_profiles_name_every_bad_field() {
    let app = spawn_app(|_| {}).await;
    let api = &app.api;
    let put = |body: Value| api.send(api.http.put(api.url("/api/v1/synagogues/test")).json(&body));

    let mut bad = jerusalem();
    bad["latitude"] = json!(95);
    bad["timezone"] = json!("Mars/Olympus");
    bad["candle_lighting_minutes"] = json!(400);
    bad["schedule"]["rules"][1]["round"]["minutes"] = json!(7);
    let (code, body) = put(bad).await;
    assert_eq!(code, 422, "{body}");
    let paths: Vec<&str> = body["error"]["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert!(
        paths.contains(&"latitude") && paths.contains(&"timezone") && paths.contains(&"candle_lighting_minutes"),
        "{paths:?}"
    );
    assert!(paths.iter().any(|p| p.starts_with("schedule.rules[1]")), "{paths:?}");

    let mut unknown = jerusalem();
    unknown["tenant_id"] = json!("someone-else");
    let (code, body) = put(unknown).await;
    assert_eq!(
        (code, body["error"]["fields"][0]["path"].as_str()),
        (422, Some("tenant_id"))
    );
    let mut wrong_type = jerusalem();
    wrong_type["schedule"]["rules"][0]["days"] = json!("weekday");
    let (code, body) = put(wrong_type).await;
    assert_eq!(code, 422, "{body}");
    assert!(
        body["error"]["fields"][0]["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("schedule.rules[0]")),
        "{body}"
    );

    let (code, _) = api
        .send(api.http.put(api.url("/api/v1/synagogues/Bad_Id")).json(&jerusalem()))
        .await;
    assert_eq!(code, 422);
    let (code, body) = api
        .send(api.http.put(api.url("/api/v1/synagogues/ok")).json(&jerusalem()))
        .await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = api.get("/api/v1/synagogues/ok/preview?date=2026-02-30").await;
    assert_eq!((code, body["error"]["code"].as_str()), (400, Some("invalid_query")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holiday_times_page_lists_the_holidays_of_the_window() {
    let app = spawn_app(|_| {}).await;
    let api = &app.api;
    let (code, body) = api.put("/api/v1/synagogues/hagadol", &jerusalem()).await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = api
        .get("/api/v1/synagogues/hagadol/holiday-times?from=2026-12-01&days=30")
        .await;
    assert_eq!(code, 200, "{body}");
    let days = body["data"]["days"].as_array().must();
    // Exactly the days whose own preview has a holiday (the engine is checked against hebcal
    // elsewhere); here the page must agree with the day view, date by date.
    let mut expected = Vec::new();
    for offset in 0..30 {
        let date = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).must() + chrono::Duration::days(offset);
        let (_, day) = api
            .get(&format!("/api/v1/synagogues/hagadol/preview?date={date}"))
            .await;
        if !day["data"]["day"]["holidays"].as_array().must().is_empty() {
            expected.push(date.to_string());
        }
    }
    let listed: Vec<&str> = days.iter().filter_map(|d| d["date"].as_str()).collect();
    assert_eq!(listed, expected);
    let all: Vec<String> = days
        .iter()
        .flat_map(|d| d["holidays"].as_array().must().clone())
        .map(|h| h.to_string())
        .collect();
    assert!(all.iter().any(|h| h.contains("Chanukah")), "{all:?}");
    // The fast of 10 Tevet (2026-12-20) has its times, beginning at dawn and ending at night.
    let fast = days.iter().find(|d| d["fast"].is_object()).must();
    assert_eq!(fast["date"], "2026-12-20");
    assert!(fast["fast"]["name"].as_str().must().contains("Tevet"));
    assert!(fast["fast"]["begins"].as_str().must() < fast["fast"]["ends"].as_str().must());
    // Ordinary Shabbatot only on request; then Friday lists candle lighting.
    let (_, with_shabbat) = api
        .get("/api/v1/synagogues/hagadol/holiday-times?from=2026-12-01&days=30&shabbat=true")
        .await;
    let friday = with_shabbat["data"]["days"]
        .as_array()
        .must()
        .iter()
        .find(|d| d["date"] == "2026-12-11")
        .must()
        .clone();
    assert!(friday["candle_lighting"].is_string(), "{friday}");
    // Shown to the minute stringently: candle lighting (a deadline) down, havdalah (a start)
    // up, the fast's beginning down and its end up.
    let minute = |v: &Value, up: bool| Value::from(luach_tests::minute_of(v.as_str().must(), |s| up && s > 0));
    assert_eq!(
        friday["candle_lighting_shown"],
        minute(&friday["candle_lighting"], false)
    );
    let saturday = with_shabbat["data"]["days"]
        .as_array()
        .must()
        .iter()
        .find(|d| d["date"] == "2026-12-12")
        .must()
        .clone();
    assert_eq!(
        saturday["havdalah_shown"],
        minute(&saturday["havdalah"], true),
        "{saturday}"
    );
    assert_eq!(
        fast["fast"]["begins_shown"],
        minute(&fast["fast"]["begins"], false),
        "{fast}"
    );
    assert_eq!(
        fast["fast"]["ends_shown"],
        minute(&fast["fast"]["ends"], true),
        "{fast}"
    );
    let (code, _) = api.get("/api/v1/synagogues/hagadol/holiday-times?days=61").await;
    assert_eq!(code, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn display_preferences_round_trip_and_are_checked() {
    let app = spawn_app(|_| {}).await;
    let api = &app.api;
    let mut profile = jerusalem();
    let (_, body) = api.put("/api/v1/synagogues/hagadol", &profile).await;
    assert_eq!(
        body["data"]["display"]["page_seconds"], 15,
        "defaults are filled in: {body}"
    );
    profile["display"] = json!({"daily": ["daf_yomi", "omer"], "zmanim": ["sunrise", "sunset"], "page_seconds": 30});
    let (code, body) = api.put("/api/v1/synagogues/hagadol", &profile).await;
    assert_eq!(code, 200, "{body}");
    let (_, preview) = api.get("/api/v1/synagogues/hagadol/preview?date=2026-12-04").await;
    assert_eq!(preview["data"]["display"]["daily"], json!(["daf_yomi", "omer"]));
    assert_eq!(
        preview["data"]["display"]["minutes"],
        json!({"mode": "stringent", "zmanim": {}}),
        "stringent by default"
    );
    // Nearest minute, sunset as an exception: the preview's shown times follow.
    profile["display"]["minutes"] = json!({"mode": "nearest", "zmanim": {"sunset": "up"}});
    let (code, body) = api.put("/api/v1/synagogues/hagadol", &profile).await;
    assert_eq!(code, 200, "{body}");
    let (_, preview) = api.get("/api/v1/synagogues/hagadol/preview?date=2026-12-04").await;
    let day = &preview["data"]["day"];
    for (key, expected) in [
        ("sunset", "up"),
        ("tzeit_8_5", "nearest"),
        ("candle_lighting", "nearest"),
    ] {
        let exact = day["zmanim"][key].as_str().must();
        let minute = luach_tests::minute_of(exact, |seconds| match expected {
            "up" => seconds > 0,
            _ => seconds >= 30,
        });
        assert_eq!(day["shown"][key], minute, "{key}: {exact}");
    }
    for (display, path) in [
        (json!({"daily": ["omer", "omer"]}), "display.daily"),
        (json!({"page_seconds": 1}), "display.page_seconds"),
        (json!({"zmanim": ["sunrise", "sunrise"]}), "display.zmanim"),
        (json!({"zmanim": ["moonrise"]}), "display"),
        (json!({"colour": "blue"}), "display"),
        (json!({"minutes": {"mode": "sideways"}}), "display"),
        (json!({"minutes": {"zmanim": {"noon": "up"}}}), "display"),
        (json!({"minutes": {"zmanim": {"sunset": "later"}}}), "display"),
    ] {
        profile["display"] = display.clone();
        let (code, body) = api.put("/api/v1/synagogues/hagadol", &profile).await;
        assert_eq!(code, 422, "{display}: {body}");
        assert!(body.to_string().contains(path), "{display}: {body}");
    }
}
