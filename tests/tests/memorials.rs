//! Memorial plaques and the yahrzeit calendar through the REST API, checked against
//! @hebcal/core's yahrzeit computation.

use chrono::{Duration, NaiveDate};
use luach_tests::{Must, node_script, spawn_app};
use serde_json::{Value, json};

#[tokio::test]
async fn yahrzeit_calendar_matches_hebcal() {
    let app = spawn_app(|_| {}).await;
    let api = &app.api;
    // Deaths every 23 days across 2014–2019 (leap and common years, every month, Adar I/II,
    // 30 Cheshvan and 30 Kislev among them).
    let first = NaiveDate::from_ymd_opt(2014, 1, 3).unwrap_or_default();
    let deaths: Vec<NaiveDate> = (0..100).map(|i| first + Duration::days(23 * i)).collect();
    for (i, d) in deaths.iter().enumerate() {
        let body = json!({"name": format!("נפטר {i}"), "family": "לוי", "passed": {"civil": {"date": d.to_string()}}});
        let (code, resp) = api.post("/api/v1/memorials", &body).await;
        assert_eq!(code, 201, "{resp}");
    }
    let (code, body) = api.get("/api/v1/memorials/yahrzeits?from=2026-01-01&days=400").await;
    assert_eq!(code, 200, "{body}");
    let ours: Vec<(String, String)> = body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|y| {
            let i: usize = y["name"]
                .as_str()
                .and_then(|n| n.rsplit(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(usize::MAX);
            (
                deaths.get(i).map(ToString::to_string).unwrap_or_default(),
                y["date"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();

    let out = std::process::Command::new("node")
        .arg(node_script("hebcal_yahrzeits.mjs"))
        .args(["2026-01-01", "400"])
        .args(deaths.iter().map(ToString::to_string))
        .output()
        .unwrap_or_else(|e| panic!("node not available ({e}); scripts/test.sh installs it"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reference: Vec<Value> = serde_json::from_slice(&out.stdout).must();
    let mut theirs: Vec<(String, String)> = reference
        .iter()
        .map(|r| {
            (
                r["death"].as_str().unwrap_or_default().to_owned(),
                r["date"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let mut ours_sorted = ours.clone();
    ours_sorted.sort();
    theirs.sort();
    assert!(theirs.len() > 90, "reference produced only {} yahrzeits", theirs.len());
    assert_eq!(ours_sorted, theirs);
    // And the answer is in date order.
    assert!(ours.windows(2).all(|w| w[0].1 <= w[1].1));
}

#[tokio::test]
async fn memorial_crud_and_validation() {
    let app = spawn_app(|_| {}).await;
    let api = &app.api;
    let plaque =
        json!({"name": "שרה בת אברהם", "family": "כהן", "passed": {"hebrew": {"year": 5779, "month": 13, "day": 7}}});
    let (code, body) = api.post("/api/v1/memorials", &plaque).await;
    assert_eq!(code, 201, "{body}");
    let id = body["data"]["id"].as_str().unwrap_or_default().to_owned();
    let (code, body) = api.get(&format!("/api/v1/memorials/{id}")).await;
    assert_eq!((code, &body["data"]["name"]), (200, &json!("שרה בת אברהם")));
    let mut changed = plaque.clone();
    changed["notes"] = json!("הונצח על ידי המשפחה");
    let (code, body) = api
        .send(api.http.put(api.url(&format!("/api/v1/memorials/{id}"))).json(&changed))
        .await;
    assert_eq!((code, &body["data"]["notes"]), (200, &json!("הונצח על ידי המשפחה")));
    let (code, _) = api
        .send(api.http.put(api.url("/api/v1/memorials/nosuch")).json(&plaque))
        .await;
    assert_eq!(code, 404);

    // 5779 was a leap year (7 Adar II exists), 5781 was not: no month 13 then.
    for (passed, path) in [
        (json!({"hebrew": {"year": 5781, "month": 13, "day": 7}}), "passed"),
        (json!({"hebrew": {"year": 5781, "month": 2, "day": 30}}), "passed"),
        (json!({"hebrew": {"year": 5781, "month": 14, "day": 1}}), "passed"),
        (json!({"civil": {"date": "2021-02-30"}}), "passed"),
    ] {
        let (code, body) = api
            .post("/api/v1/memorials", &json!({"name": "x", "passed": passed}))
            .await;
        assert_eq!(code, 422, "{passed} → {body}");
        assert!(
            body["error"]["fields"][0]["path"]
                .as_str()
                .is_some_and(|p| p.starts_with(path)),
            "{body}"
        );
    }
    let (code, body) = api
        .post(
            "/api/v1/memorials",
            &json!({"name": " ", "passed": {"civil": {"date": "2020-01-01"}}}),
        )
        .await;
    assert_eq!((code, body["error"]["fields"][0]["path"].as_str()), (422, Some("name")));
    let (code, body) = api.get("/api/v1/memorials/yahrzeits?days=0").await;
    assert_eq!((code, body["error"]["code"].as_str()), (400, Some("invalid_query")));

    let (code, _) = api.delete(&format!("/api/v1/memorials/{id}")).await;
    assert_eq!(code, 204);
    let (code, _) = api.delete(&format!("/api/v1/memorials/{id}")).await;
    assert_eq!(code, 404);
}
