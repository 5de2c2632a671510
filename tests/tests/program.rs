//! The programme beside the prayer times (Torah-reading honours, shiurim, countdown timers)
//! through the REST API, and what the synagogue preview makes of it on a given day.

use luach_tests::{Must, spawn_app};
use serde_json::{Value, json};

fn jerusalem() -> Value {
    json!({
        "name": "Beit Knesset", "address": "King George 56", "latitude": 31.778, "longitude": 35.2354,
        "elevation_m": 754, "timezone": "Asia/Jerusalem", "israel": true, "nusach": "ashkenaz",
        "language": "he", "candle_lighting_minutes": 40,
        "schedule": {"rules": [
            {"name": "Mincha", "time": {"zman": "sunset", "offset_minutes": -15},
             "round": {"mode": "down", "minutes": 5}, "days": ["every_day"]}
        ]}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honours_lessons_and_timers_appear_in_the_day_preview() {
    let app = spawn_app(|_| {}).await;
    let api = &app.api;
    assert_eq!(api.put("/api/v1/synagogues/main", &jerusalem()).await.0, 201);

    let aliyot = json!({"date": "2026-12-05", "synagogue": "main", "note": "Vayishlach", "honours": [
        {"honour": "kohen", "name": "ר׳ אהרן כהן"}, {"honour": "levi", "name": "ר׳ משה לוי"},
        {"honour": "maftir", "name": "בר מצוה"}, {"honour": "extra", "name": "א"}, {"honour": "extra", "name": "ב"}
    ]});
    let (status, body) = api.post("/api/v1/aliyot", &aliyot).await;
    assert_eq!(status, 201, "{body}");
    let shiur = json!({"teacher": "הרב כהן", "location": "Beit midrash",
        "schedule": {"name": "Daf Yomi", "time": {"zman": "sunset", "offset_minutes": -60},
                     "round": {"mode": "down", "minutes": 5}, "days": ["weekday"]}});
    let (status, body) = api.post("/api/v1/shiurim", &shiur).await;
    assert_eq!(status, 201, "{body}");
    for timer in [
        json!({"label_en": "Candle lighting", "label_he": "הדלקת נרות", "target": {"zman": "candle_lighting"}, "show_before_minutes": 90}),
        json!({"label_en": "Mincha", "target": {"prayer": "Mincha"}, "show_before_minutes": 30}),
        json!({"label_en": "Chanukah party", "target": {"at": "2026-12-06T16:00:00Z"}, "show_before_minutes": 120}),
    ] {
        let (status, body) = api.post("/api/v1/timers", &timer).await;
        assert_eq!(status, 201, "{body}");
    }

    // Friday 2026-12-04: candle lighting, Mincha, the shiur; no honours (they are for Shabbat).
    let (status, body) = api.get("/api/v1/synagogues/main/preview?date=2026-12-04").await;
    assert_eq!(status, 200, "{body}");
    let p = &body["data"];
    assert_eq!(p["aliyot"], json!([]));
    let candles = p["day"]["zmanim"]["candle_lighting"].as_str().must();
    let mincha = p["schedule"][0]["time"].as_str().must();
    let timers = p["timers"].as_array().must();
    assert_eq!(timers.len(), 2, "{timers:?}");
    assert_eq!(timers[0]["target"], candles);
    assert_eq!(timers[1]["target"], mincha);
    // Shown 90 minutes before candle lighting.
    let at = |s: &Value| chrono::DateTime::parse_from_rfc3339(s.as_str().must()).must();
    assert_eq!(
        (at(&timers[0]["target"]) - at(&timers[0]["shows_from"])).num_minutes(),
        90
    );
    let shiurim = p["shiurim"].as_array().must();
    assert_eq!(shiurim.len(), 1);
    assert_eq!(shiurim[0]["title"], "Daf Yomi");
    // Sunset − 60, rounded down to 5 minutes: on the 5-minute grid and before Mincha.
    let daf = at(&shiurim[0]["time"]);
    assert_eq!(chrono::Timelike::minute(&daf) % 5, 0);
    assert!(daf < at(&p["schedule"][0]["time"]));

    // Shabbat: the honours, no weekday shiur; Sunday: the party countdown.
    let (_, body) = api.get("/api/v1/synagogues/main/preview?date=2026-12-05").await;
    let p = &body["data"];
    assert_eq!(p["aliyot"][0]["honours"][0]["name"], "ר׳ אהרן כהן");
    assert_eq!(p["shiurim"], json!([]));
    let (_, body) = api.get("/api/v1/synagogues/main/preview?date=2026-12-06").await;
    let labels: Vec<&str> = body["data"]["timers"]
        .as_array()
        .must()
        .iter()
        .filter_map(|t| t["label_en"].as_str())
        .collect();
    assert!(labels.contains(&"Chanukah party"), "{labels:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_programme_entries_name_their_fields() {
    let app = spawn_app(|_| {}).await;
    let api = &app.api;
    for (path, body, field) in [
        (
            "/api/v1/aliyot",
            json!({"date": "2026-12-05", "honours": [{"honour": "kohen", "name": "a"}, {"honour": "kohen", "name": "b"}]}),
            "honours[1].honour",
        ),
        (
            "/api/v1/aliyot",
            json!({"date": "2026-12-05", "honours": []}),
            "honours",
        ),
        (
            "/api/v1/aliyot",
            json!({"date": "1066-10-14", "honours": [{"honour": "levi", "name": "x"}]}),
            "date",
        ),
        (
            "/api/v1/aliyot",
            json!({"date": "2026-12-05", "honours": [{"honour": "levi", "name": " "}]}),
            "honours[0].name",
        ),
        (
            "/api/v1/shiurim",
            json!({"teacher": "x", "schedule": {"name": "Gemara", "time": {"fixed": "25:00"}, "days": ["weekday"]}}),
            "schedule.time",
        ),
        (
            "/api/v1/shiurim",
            json!({"teacher": "", "schedule": {"name": "Gemara", "time": {"fixed": "20:00"}, "days": ["weekday"]}}),
            "teacher",
        ),
        (
            "/api/v1/timers",
            json!({"label_en": "x", "target": {"zman": "sunset"}, "show_before_minutes": 0}),
            "show_before_minutes",
        ),
        (
            "/api/v1/timers",
            json!({"target": {"zman": "sunset"}, "show_before_minutes": 5}),
            "label_he",
        ),
        (
            "/api/v1/timers",
            json!({"label_en": "x", "target": {"zman": "sunset"}, "show_before_minutes": 5, "targets": {"devices": ["Not/Ok"]}}),
            "targets.devices[0]",
        ),
        (
            "/api/v1/timers",
            json!({"label_en": "x", "target": {"moon": "full"}, "show_before_minutes": 5}),
            "target",
        ),
    ] {
        let (status, answer) = api.post(path, &body).await;
        assert_eq!(status, 422, "{path} {body}: {answer}");
        let fields = answer["error"]["fields"].to_string();
        assert!(fields.contains(field), "{path} {body}: expected {field} in {answer}");
    }
}
