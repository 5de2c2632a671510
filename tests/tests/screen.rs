//! `luach-agent run` on a real X display (Xvfb): the window shows exactly the frame the PNG
//! renderer draws for the same bundle and instant; the board keeps drawing with the server
//! gone; an injected clock runs the screen across midnight, nightfall and a DST change, and
//! the board shows each side of the moment.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use luach_board::{Board, Options, Status};
use luach_content::Bundle;
use luach_tests::{Agent, Must, Xvfb, bulk_token, spawn_app, wait_for};
use serde_json::json;

const WIDTH: u32 = 960;
const HEIGHT: u32 = 540;

fn rgb(frame: &luach_board::Frame) -> Vec<u8> {
    frame.rgba().chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect()
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).must().with_timezone(&Utc)
}

/// The bundle the agent keeps as current.
fn stored_bundle(state: &Path) -> Bundle {
    luach_tests::stored_bundle(state).must()
}

/// Which second in `from..=to` the screen shows, searching from the latest.
fn shown_instant(
    board: &mut Board,
    bundle: &Bundle,
    screen: &[u8],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let mut t = to;
    while t >= from {
        let frame = board
            .render(bundle, t, Options::size(WIDTH, HEIGHT), Status::default())
            .must();
        if rgb(&frame) == screen {
            return Some(t);
        }
        t -= chrono::Duration::seconds(1);
    }
    None
}

/// Runs the agent with its clock starting at `start` and running `speed`× (server gone, so
/// from its stored bundle), samples the window until it has shown frames past `moment` (or a
/// minute has passed), and returns the instants it showed. A loaded machine
/// only makes the sampling slower, never the result different: each sample is searched from
/// the latest instant the clock can have reached down to the last one matched.
fn run_clock(
    x: &Xvfb,
    server: &str,
    state: &Path,
    start: DateTime<Utc>,
    speed: i64,
    moment: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let bundle = stored_bundle(state);
    let mut board = Board::new();
    let speed_arg = speed.to_string();
    let start_arg = start.to_rfc3339();
    let agent = Agent::start_with_env(
        server,
        state,
        &[
            "--display",
            "x11",
            "--window",
            "960x540",
            "--clock-start",
            &start_arg,
            "--clock-speed",
            &speed_arg,
        ],
        &[("DISPLAY", x.display.as_str())],
    );
    let began = Instant::now();
    let mut shown: Vec<DateTime<Utc>> = Vec::new();
    let second = chrono::Duration::seconds(1);
    // Once the moment has passed no frame before it can come, so two after it (and three in
    // all) end the sampling.
    let enough =
        |shown: &[DateTime<Utc>]| shown.len() >= 3 && shown.iter().filter(|t| **t > moment + second).count() >= 2;
    while began.elapsed() < Duration::from_secs(60) && !enough(&shown) {
        std::thread::sleep(Duration::from_millis(400));
        let screen = x.grab_all().must();
        let elapsed = chrono::Duration::milliseconds(i64::try_from(began.elapsed().as_millis()).must());
        let latest = start + elapsed * i32::try_from(speed).must() + chrono::Duration::seconds(2);
        let earliest = shown.last().copied().unwrap_or(start);
        if let Some(t) = shown_instant(&mut board, &bundle, &screen, earliest, latest) {
            shown.push(t);
        }
    }
    drop(agent);
    shown
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_is_the_rendered_frame_and_follows_the_clock_offline() {
    let x = Xvfb::start(WIDTH, HEIGHT, 200 + std::process::id() % 300).must();
    let app = spawn_app(|_| {}).await;
    let api = &app.api;
    let profile = json!({
        "name": "בית הכנסת אהל משה", "latitude": 31.778, "longitude": 35.2354, "elevation_m": 754,
        "timezone": "Asia/Jerusalem", "israel": true, "nusach": "ashkenaz", "language": "he",
        "candle_lighting_minutes": 40,
        "schedule": {"rules": [{"name": "מנחה", "time": {"zman": "sunset", "offset_minutes": -15}, "days": ["every_day"]}]}
    });
    assert_eq!(api.put("/api/v1/synagogues/main", &profile).await.0, 201);
    let (status, _) = api
        .post(
            "/api/v1/announcements",
            &json!({"text_he": "שבת שלום לכל הקהל", "priority": 50}),
        )
        .await;
    assert_eq!(status, 201);
    let token = bulk_token(api, 1).await;
    let state = tempfile::tempdir().must();
    let state_path: PathBuf = state.path().to_owned();

    // Online, clock stopped: the window is exactly the renderer's frame of the stored bundle.
    let friday = "2026-12-04T13:10:00Z";
    let agent = Agent::start_with_env(
        &api.base,
        &state_path,
        &[
            "--enrolment-token",
            &token,
            "--display",
            "x11",
            "--clock-start",
            friday,
            "--clock-speed",
            "0",
        ],
        &[("DISPLAY", x.display.as_str())],
    );
    let current = state_path.join("bundle").join("current");
    wait_for("the agent to store its bundle", Duration::from_secs(60), || {
        let current = current.clone();
        async move { std::fs::read_to_string(current).ok() }
    })
    .await;
    let bundle = stored_bundle(&state_path);
    let expected = Board::new()
        .render(&bundle, at(friday), Options::size(WIDTH, HEIGHT), Status::default())
        .must();
    let expected = rgb(&expected);
    let x_ref = &x;
    let matched = wait_for("the window to show the rendered frame", Duration::from_secs(30), || {
        let same = x_ref.grab_all().must() == expected;
        async move { same.then_some(()) }
    })
    .await;
    let () = matched;

    // Nightfall on Thursday 3 December, as the calendar computes it (to the second).
    let (status, day) = api.get("/api/v1/synagogues/main/preview?date=2026-12-03").await;
    assert_eq!(status, 200, "{day}");
    let nightfall = at(day["data"]["day"]["zmanim"]["tzeit_8_5"].as_str().must());

    // The server goes away: the screen keeps its board.
    app.shutdown.cancel();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        x.grab_all().must() == expected,
        "the board changed when the server went away"
    );
    drop(agent);

    // Offline from here on, the injected clock runs ten times as fast across three moments.
    let server = api.base.clone();
    let cases = [
        // Midnight in Jerusalem (UTC+2): the civil date turns.
        ("midnight", at("2026-12-04T22:00:00Z")),
        // Nightfall (tzeit 8.5°): the Hebrew date turns.
        ("nightfall", nightfall),
        // Israel's clocks go forward at 02:00 on 27 March 2026: 01:59:59 is followed by 03:00:00.
        ("dst", at("2026-03-27T00:00:00Z")),
    ];
    for (what, moment) in cases {
        // Forty clock seconds ahead: four seconds of real time before the moment, so a slow
        // agent start still leaves frames to see on the near side.
        let start = moment - chrono::Duration::seconds(40);
        let shown = tokio::task::block_in_place(|| run_clock(&x, &server, &state_path, start, 10, moment));
        println!("{what}: the window showed {shown:?}");
        assert!(shown.len() >= 3, "{what}: the window matched few frames: {shown:?}");
        assert!(
            shown.windows(2).all(|w| w[0] <= w[1]),
            "{what}: time ran backwards: {shown:?}"
        );
        // The calendar's instant is rounded to the second: a second either side is the moment.
        let second = chrono::Duration::seconds(1);
        let before = shown.iter().filter(|t| **t < moment - second).count();
        let after = shown.iter().filter(|t| **t > moment + second).count();
        assert!(
            before > 0 && after > 0,
            "{what}: no frames on both sides of {moment}: {shown:?}"
        );
        // The board differs across the moment (the date, the Hebrew date, the clock's hour).
        let mut board = Board::new();
        let last_before = shown.iter().filter(|t| **t < moment - second).max().must();
        let first_after = shown.iter().filter(|t| **t > moment + second).min().must();
        // The texts drawn at `t`: the clock's, and all the others.
        let drawn = |t: DateTime<Utc>, board: &mut Board| {
            let frame = board
                .render(&bundle, t, Options::size(WIDTH, HEIGHT), Status::default())
                .must();
            let (clock, others): (Vec<_>, Vec<_>) =
                frame.elements.iter().partition(|e| e.role == luach_board::Role::Clock);
            let text = |v: Vec<&luach_board::Element>| v.into_iter().map(|e| e.text.clone()).collect::<Vec<_>>();
            (text(clock).concat(), text(others))
        };
        let texts = |t, board: &mut Board| drawn(t, board).1;
        let clock = |t, board: &mut Board| drawn(t, board).0;
        match what {
            "dst" => {
                assert!(clock(*last_before, &mut board).starts_with("01:59"), "{what}");
                assert!(clock(*first_after, &mut board).starts_with("03:00"), "{what}");
            }
            _ => assert_ne!(
                texts(*last_before, &mut board),
                texts(*first_after, &mut board),
                "{what}: the board did not change at {moment}"
            ),
        }
    }
}
