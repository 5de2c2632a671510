//! Device enrolment end to end: real `luach-agent` processes, the real HTTP API, and real MQTT
//! over mutual TLS to the embedded broker (the plain listener is off in these tests, so
//! nothing can come online without a certificate).

use std::time::Duration;

use luach_pki::DeviceKey;
use luach_schemas::TopicPrefix;
use luach_tests::mtls::{MtlsDevice, WAIT, csr, device_status, enrol_with_token, poll, request, wait_status};
use luach_tests::{Agent, Api, Must, Sim, TestApp, bulk_token, spawn_app, wait_for};
use serde_json::{Value, json};

/// An app whose broker runs only its mutual-TLS listener and registers nobody on hello.
async fn tls_only_app(configure: impl FnOnce(&mut luach_control_plane::Config)) -> TestApp {
    spawn_app(|c| {
        c.mqtt.plain_listener = false;
        c.presence.auto_register = false;
        configure(c);
    })
    .await
}

fn tls_port(app: &TestApp) -> u16 {
    app.state.broker.tls_addr().must().port()
}

/// A renewal nonce for `device` (every caller gets one; only an enrolled device's works).
async fn nonce(api: &Api, device: &str) -> String {
    let (status, body) = api
        .anonymous()
        .post(&format!("/api/v1/devices/{device}/certificate/nonce"), &json!({}))
        .await;
    assert_eq!(status, 201, "{body}");
    body["data"]["nonce"].as_str().must().to_owned()
}

/// A renewal request of `key` for `device` carrying a fresh nonce, as the agent sends it.
async fn renewal_csr(api: &Api, device: &str, key: &DeviceKey) -> String {
    let n = nonce(api, device).await;
    key.csr_pem_with_challenge(device, &n).must()
}

async fn renew(api: &Api, device: &str, csr: &str) -> (u16, Value) {
    let (status, body) = api
        .anonymous()
        .post(
            &format!("/api/v1/devices/{device}/certificate"),
            &json!({"csr_pem": csr}),
        )
        .await;
    assert!(status < 500, "server error renewing {device}: {body}");
    (status, body)
}

fn code(body: &Value) -> Option<&str> {
    body["error"]["code"].as_str()
}

/// (a) A real agent shows a claim code; a tenant admin claims it; the agent fetches its
/// certificate, connects over mutual TLS and is online in that tenant only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_screen_comes_online_over_mtls_in_the_claiming_tenant_only() {
    let app = tls_only_app(|_| {}).await;
    let shul_a = app.user("shul-a", "tenant_admin", "admin@shul-a.example").await;
    let shul_b = app.user("shul-b", "tenant_admin", "admin@shul-b.example").await;
    let state = tempfile::tempdir().must();
    let agent = Agent::start(&app.api.base, state.path(), &[]);

    let claim_code = agent.line_after("claim code: ").await;
    assert!(
        claim_code.len() == 9 && claim_code.as_bytes()[4] == b'-',
        "{claim_code}"
    );
    let id = std::fs::read_to_string(state.path().join("device-id")).must();
    // Nothing is registered before the claim; the code does not exist in the wrong form.
    let (_, list) = shul_a.get("/api/v1/devices").await;
    assert_eq!(list["data"]["total"], 0, "{list}");
    let (status, body) = shul_b
        .post("/api/v1/enrolment/claims", &json!({"claim_code": "2345-6789"}))
        .await;
    assert_eq!((status, code(&body)), (404, Some("not_found")), "{body}");

    // Typed loosely (lower case, no dash), claimed by shul-a with a name.
    let typed = claim_code.replace('-', "").to_lowercase();
    let (status, body) = shul_a
        .post(
            "/api/v1/enrolment/claims",
            &json!({"claim_code": typed, "name": "Lobby"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        (body["data"]["id"].as_str(), body["data"]["name"].as_str()),
        (Some(id.as_str()), Some("Lobby"))
    );
    assert_eq!(body["data"]["tenant_id"], "shul-a");
    // A code works once.
    let (status, _) = shul_a
        .post("/api/v1/enrolment/claims", &json!({"claim_code": claim_code}))
        .await;
    assert_eq!(status, 404);

    wait_status(&shul_a, &id, "online").await;
    // The other tenant sees nothing of it.
    let (status, _) = shul_b.get(&format!("/api/v1/devices/{id}")).await;
    assert_eq!(status, 404);
    let (_, list) = shul_b.get("/api/v1/devices").await;
    assert_eq!(list["data"]["total"], 0, "{list}");
    let (status, _) = shul_b.get(&format!("/api/v1/devices/{id}/certificate")).await;
    assert_eq!(status, 404);

    // Commands travel down the mutual-TLS session.
    let (status, body) = shul_a.post(&format!("/api/v1/devices/{id}/ping"), &json!({})).await;
    assert_eq!((status, body["data"]["status"].as_str()), (200, Some("ok")), "{body}");

    // The certificate the agent stored is the one the control plane recorded.
    let stored = std::fs::read_to_string(state.path().join("device.pem")).must();
    let leaf = luach_pki::inspect_chain(&stored).must().remove(0);
    // OU = the device, O = CN = the topic prefix drawn for this enrolment.
    assert_eq!(leaf.organisational_unit.as_deref(), Some(id.as_str()));
    let prefix = leaf.organisation.clone().must();
    assert_eq!(leaf.common_name.as_ref(), Some(&prefix));
    assert!(TopicPrefix::parse(&prefix).is_ok() && prefix != id, "{prefix}");
    let (status, cert) = shul_a.get(&format!("/api/v1/devices/{id}/certificate")).await;
    assert_eq!(status, 200, "{cert}");
    assert_eq!(cert["data"]["serial"].as_str(), Some(leaf.serial.as_str()));
    assert_eq!(cert["data"]["status"], "valid");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(state.path().join("device.key"))
            .must()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
}

/// The agent renews its certificate (same key) after 2/3 of its lifetime and stays online.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_renews_its_certificate_before_it_expires() {
    let app = tls_only_app(|c| c.pki.device_cert_lifetime_secs = 12).await;
    let token = bulk_token(&app.api, 1).await;
    let state = tempfile::tempdir().must();
    let _agent = Agent::start(&app.api.base, state.path(), &["--enrolment-token", &token]);
    let id = wait_for("the agent's device id", Duration::from_secs(30), || {
        let file = state.path().join("device-id");
        async move { std::fs::read_to_string(file).ok() }
    })
    .await;
    wait_status(&app.api, &id, "online").await;
    let (_, first) = app.api.get(&format!("/api/v1/devices/{id}/certificate")).await;
    let first_serial = first["data"]["serial"].as_str().must().to_owned();
    let api = app.api.clone();
    wait_for("a renewed certificate", Duration::from_secs(30), || {
        let (api, id, first_serial) = (api.clone(), id.clone(), first_serial.clone());
        async move {
            let (_, body) = api.get(&format!("/api/v1/devices/{id}/certificate")).await;
            body["data"]["serial"]
                .as_str()
                .filter(|s| *s != first_serial)
                .map(|_| ())
        }
    })
    .await;
    // Saved to disk for the next connection, and the screen is still online.
    wait_for("the renewed certificate on disk", WAIT, || {
        let file = state.path().join("device.pem");
        let first_serial = first_serial.clone();
        async move {
            let pem = std::fs::read_to_string(file).ok()?;
            let chain = luach_pki::inspect_chain(&pem).ok()?;
            (chain.first()?.serial != first_serial).then_some(())
        }
    })
    .await;
    assert_eq!(device_status(&app.api, &id).await.as_deref(), Some("online"));
}

/// (b) Simulated screens enrol with a bulk token and come online over mutual TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_screens_enrol_with_a_bulk_token() {
    let app = tls_only_app(|_| {}).await;
    let other = app.user("other-shul", "tenant_admin", "admin@other.example").await;
    let _sim = Sim::start(&app.api, 5, "bulk", &[]).await;
    let api = app.api.clone();
    wait_for("5 screens online", Duration::from_secs(60), || {
        let api = api.clone();
        async move { (api.count("online").await? == 5).then_some(()) }
    })
    .await;
    let (_, tokens) = app.api.get("/api/v1/enrolment/tokens").await;
    let token = &tokens["data"][0];
    assert_eq!(
        (token["uses"].as_u64(), token["usable"].as_bool()),
        (Some(5), Some(false)),
        "{tokens}"
    );
    assert!(
        token.get("token").is_none(),
        "the secret is shown only at creation: {tokens}"
    );
    let (_, cert) = app.api.get("/api/v1/devices/bulk00003/certificate").await;
    assert_eq!(cert["data"]["status"], "valid", "{cert}");
    // The other tenant has no screens and sees no tokens.
    assert_eq!(other.count("online").await, Some(0));
    let (_, tokens) = other.get("/api/v1/enrolment/tokens").await;
    assert_eq!(tokens["data"].as_array().map(Vec::len), Some(0), "{tokens}");
}

/// (c) Bad and hostile requests get clear 4xx answers, never 5xx, and never move a device
/// between tenants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_and_devices_stay_in_their_tenant() {
    let app = tls_only_app(|_| {}).await;
    let shul_b = app.user("shul-b", "tenant_admin", "admin@shul-b.example").await;
    let (_, good_csr) = csr("dev1");

    // Garbage, a certificate where a CSR belongs, a forged signature: 422 on csr_pem.
    let cert_pem = luach_pki::DeviceCa::generate("x", luach_pki::Duration::days(1))
        .must()
        .certificate_pem()
        .to_owned();
    let mut forged: Vec<char> = good_csr.chars().collect();
    let at = good_csr.find("-----END").must() - 10;
    forged[at] = if forged[at] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    for bad in ["not a csr", "", cert_pem.as_str(), forged.as_str()] {
        let (status, body) = request(&app.api, &json!({"device_id": "dev1", "csr_pem": bad})).await;
        assert_eq!(
            (status, code(&body)),
            (422, Some("validation_failed")),
            "{bad:?}: {body}"
        );
        assert_eq!(body["error"]["fields"][0]["path"], "csr_pem", "{body}");
    }
    let (status, body) = request(&app.api, &json!({"device_id": "Not/An/Id", "csr_pem": good_csr})).await;
    assert_eq!(
        (status, body["error"]["fields"][0]["path"].as_str()),
        (422, Some("device_id")),
        "{body}"
    );
    let (status, _) = request(
        &app.api,
        &json!({"device_id": "dev1", "csr_pem": good_csr, "tenant": "x"}),
    )
    .await;
    assert_eq!(status, 422, "unknown fields are refused");
    let (status, body) = app
        .api
        .anonymous()
        .send(
            app.api
                .http
                .post(app.api.url("/api/v1/enrolment/requests"))
                .header("content-type", "application/json")
                .body("{"),
        )
        .await;
    assert_eq!((status, code(&body)), (400, Some("malformed_json")));

    // Tokens that do not exist, are used up or revoked.
    for token in ["le_nope", "no-prefix"] {
        let (status, body) = enrol_with_token(&app.api, "dev1", &good_csr, token).await;
        assert_eq!((status, code(&body)), (401, Some("enrolment_token_invalid")), "{body}");
    }
    let token_a = bulk_token(&app.api, 3).await;
    let one_use = bulk_token(&app.api, 1).await;
    let (k1, csr1) = csr("dev1");
    let (status, body) = enrol_with_token(&app.api, "dev1", &csr1, &one_use).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["status"], "issued");
    assert_eq!(
        body["data"]["mqtt_tls"]["port"].as_u64(),
        Some(u64::from(tls_port(&app)))
    );
    k1.check_certificate(leaf(body["data"]["certificate_pem"].as_str().must()))
        .must();
    // The same screen asking again with the same key (its answer was lost) is enrolled
    // afresh and takes no further use: dev2 twice on token_a leaves one use taken.
    let (_, csr2) = csr("dev2");
    for _ in 0..2 {
        let (status, body) = enrol_with_token(&app.api, "dev2", &csr2, &token_a).await;
        assert_eq!(status, 201, "{body}");
    }
    let (_, tokens) = app.api.get("/api/v1/enrolment/tokens").await;
    let uses = tokens["data"]
        .as_array()
        .must()
        .iter()
        .find(|t| t["max_uses"] == 3)
        .must()["uses"]
        .clone();
    assert_eq!(uses, 1, "{tokens}");
    let (_, other_csr) = csr("dev9");
    let (status, body) = enrol_with_token(&app.api, "dev9", &other_csr, &one_use).await;
    assert_eq!(
        (status, code(&body)),
        (401, Some("enrolment_token_invalid")),
        "used up: {body}"
    );
    let (_, tokens) = app.api.get("/api/v1/enrolment/tokens").await;
    let revoke_id = tokens["data"]
        .as_array()
        .must()
        .iter()
        .find(|t| t["max_uses"] == 3)
        .map(|t| t["id"].as_str().must().to_owned())
        .must();
    let (status, _) = shul_b.delete(&format!("/api/v1/enrolment/tokens/{revoke_id}")).await;
    assert_eq!(status, 404, "another tenant's token cannot be revoked");
    let doomed = bulk_token(&app.api, 7).await;
    let (_, tokens) = app.api.get("/api/v1/enrolment/tokens").await;
    let doomed_id = tokens["data"]
        .as_array()
        .must()
        .iter()
        .find(|t| t["max_uses"] == 7)
        .map(|t| t["id"].as_str().must().to_owned())
        .must();
    let (status, _) = app.api.delete(&format!("/api/v1/enrolment/tokens/{doomed_id}")).await;
    assert_eq!(status, 204);
    let (status, body) = enrol_with_token(&app.api, "dev9", &other_csr, &doomed).await;
    assert_eq!(
        (status, code(&body)),
        (401, Some("enrolment_token_invalid")),
        "revoked: {body}"
    );

    // dev1 is enrolled in `default`. shul-b's token cannot take it over, with any key.
    let token_b = bulk_token(&shul_b, 5).await;
    let (_, csr_b) = csr("dev1");
    for c in [&csr_b, &csr1] {
        let (status, body) = enrol_with_token(&app.api, "dev1", c, &token_b).await;
        assert_eq!((status, code(&body)), (409, Some("device_enrolled")), "{body}");
    }
    // Nor can `default`'s own token re-key it; the same key is simply re-issued.
    let (status, body) = enrol_with_token(&app.api, "dev1", &csr_b, &token_a).await;
    assert_eq!((status, code(&body)), (409, Some("conflict")), "{body}");
    let (status, _) = enrol_with_token(&app.api, "dev1", &csr1, &token_a).await;
    assert_eq!(status, 201);
    // The refused attempts did not use up shul-b's token.
    let (_, tokens) = shul_b.get("/api/v1/enrolment/tokens").await;
    assert_eq!(tokens["data"][0]["uses"], 0, "{tokens}");

    // A claim code for dev1 with a new key (a re-keyed screen, or someone posing as it): the
    // claimer is shown that dev1 is enrolled; shul-b cannot claim it at all, `default` only
    // with an explicit re-key.
    let (status, pending) = request(&app.api, &json!({"device_id": "dev1", "csr_pem": csr_b})).await;
    assert_eq!(status, 201, "{pending}");
    let claim = pending["data"]["claim_code"].as_str().must().to_owned();
    let secret = pending["data"]["poll_secret"].as_str().must().to_owned();
    let (status, body) = shul_b
        .post("/api/v1/enrolment/claims", &json!({"claim_code": claim}))
        .await;
    assert_eq!((status, code(&body)), (409, Some("device_enrolled")), "{body}");
    let (status, preview) = shul_b
        .post("/api/v1/enrolment/claims/preview", &json!({"claim_code": claim}))
        .await;
    assert_eq!(
        (status, preview["data"]["status"].as_str()),
        (200, Some("enrolled_elsewhere")),
        "{preview}"
    );
    let (status, preview) = app
        .api
        .post("/api/v1/enrolment/claims/preview", &json!({"claim_code": claim}))
        .await;
    assert_eq!(
        (status, preview["data"]["status"].as_str()),
        (200, Some("enrolled")),
        "{preview}"
    );
    assert_eq!(preview["data"]["device_id"], "dev1");
    assert_ne!(
        preview["data"]["key_fingerprint"],
        preview["data"]["enrolled_key_fingerprint"]
    );
    let (status, body) = app
        .api
        .post("/api/v1/enrolment/claims", &json!({"claim_code": claim}))
        .await;
    assert_eq!(
        (status, code(&body)),
        (409, Some("device_enrolled")),
        "no silent re-key: {body}"
    );
    let (status, _) = shul_b.get("/api/v1/devices/dev1").await;
    assert_eq!(status, 404);
    // While it is pending another key cannot replace the request.
    let (_, csr_c) = csr("dev1");
    let (status, body) = request(&app.api, &json!({"device_id": "dev1", "csr_pem": csr_c})).await;
    assert_eq!((status, code(&body)), (409, Some("conflict")), "{body}");

    // Polling: wrong secret, no secret, unknown device all look the same.
    for (device, s) in [
        ("dev1", Some("lq_wrong")),
        ("dev1", None),
        ("nosuch", Some(secret.as_str())),
    ] {
        let (status, body) = poll(&app.api, device, s).await;
        assert_eq!(
            (status, code(&body)),
            (404, Some("not_found")),
            "{device} {s:?}: {body}"
        );
    }
    let (status, body) = poll(&app.api, "dev1", Some(&secret)).await;
    assert_eq!(
        (status, body["data"]["status"].as_str()),
        (202, Some("pending")),
        "{body}"
    );
    let (status, body) = app
        .api
        .post("/api/v1/enrolment/claims", &json!({"claim_code": claim, "rekey": true}))
        .await;
    assert_eq!((status, body["data"]["rekeyed"].as_bool()), (201, Some(true)), "{body}");
    let (status, body) = poll(&app.api, "dev1", Some(&secret)).await;
    assert_eq!(
        (status, body["data"]["status"].as_str()),
        (200, Some("issued")),
        "{body}"
    );

    // Claim codes: malformed is a field error, unknown is not found.
    for (typed, want) in [("ABCD-EFG", 422), ("ABCD-EF0H", 422), ("ABCD-EFGH", 404)] {
        let (status, _) = app
            .api
            .post("/api/v1/enrolment/claims", &json!({"claim_code": typed}))
            .await;
        assert_eq!(status, want, "{typed}");
    }
    // Anonymous callers cannot claim or manage tokens.
    let (status, _) = app
        .api
        .anonymous()
        .post("/api/v1/enrolment/claims", &json!({"claim_code": claim}))
        .await;
    assert_eq!(status, 401);
    let viewer = app.user("default", "viewer", "viewer@default.example").await;
    let (status, _) = viewer.get("/api/v1/enrolment/tokens").await;
    assert_eq!(status, 403);
}

/// Claim codes expire, and anonymous requests are rate limited per IP: on a clock the test
/// moves, so neither waits for real time nor races a minute boundary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_codes_expire_and_anonymous_requests_are_rate_limited() {
    use chrono::TimeZone;
    let clock =
        luach_control_plane::auth::ManualClock::new(chrono::Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 5).single().must());
    let app = luach_tests::spawn_app_with_clock(
        |c| {
            c.mqtt.plain_listener = false;
            c.presence.auto_register = false;
            c.enrolment.claim_ttl_secs = 60;
            c.enrolment.requests_per_ip_per_minute = 3;
        },
        std::sync::Arc::new(clock.clone()),
    )
    .await;
    let (_, csr1) = csr("late1");
    let (status, pending) = request(&app.api, &json!({"device_id": "late1", "csr_pem": csr1})).await;
    assert_eq!(status, 201, "{pending}");
    let claim = pending["data"]["claim_code"].as_str().must().to_owned();
    let secret = pending["data"]["poll_secret"].as_str().must().to_owned();
    assert_eq!(poll(&app.api, "late1", Some(&secret)).await.0, 202);
    clock.advance(chrono::Duration::seconds(61));
    assert_eq!(poll(&app.api, "late1", Some(&secret)).await.0, 404);
    let (status, body) = app
        .api
        .post("/api/v1/enrolment/claims", &json!({"claim_code": claim}))
        .await;
    assert_eq!((status, code(&body)), (404, Some("not_found")), "{body}");
    let (status, _) = app.api.get("/api/v1/devices/late1").await;
    assert_eq!(status, 404);

    // A fresh minute (10:01): three requests pass, the fourth is refused until the next.
    for i in 0..3 {
        let (_, c) = csr(&format!("rate{i}"));
        let (status, body) = request(&app.api, &json!({"device_id": format!("rate{i}"), "csr_pem": c})).await;
        assert_eq!(status, 201, "request {i}: {body}");
    }
    let (_, c) = csr("rate3");
    let body = json!({"device_id": "rate3", "csr_pem": c});
    let (status, refused) = request(&app.api, &body).await;
    assert_eq!((status, code(&refused)), (429, Some("too_many_requests")), "{refused}");
    clock.advance(chrono::Duration::seconds(60));
    let (status, again) = request(&app.api, &body).await;
    assert_eq!(status, 201, "the next minute: {again}");
}

/// (d) Renewal needs the key of the current, unrevoked certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_needs_the_same_key_and_an_unrevoked_certificate() {
    let app = tls_only_app(|_| {}).await;
    let shul_b = app.user("shul-b", "tenant_admin", "admin@shul-b.example").await;
    let token = bulk_token(&app.api, 10).await;
    let (key, csr1) = csr("renew1");
    let (status, first) = enrol_with_token(&app.api, "renew1", &csr1, &token).await;
    assert_eq!(status, 201, "{first}");

    // Same key, with a fresh nonce: a new certificate, recorded.
    let request1 = renewal_csr(&app.api, "renew1", &key).await;
    let (status, renewed) = renew(&app.api, "renew1", &request1).await;
    assert_eq!(status, 201, "{renewed}");
    assert_ne!(renewed["data"]["serial"], first["data"]["serial"]);
    key.check_certificate(leaf(renewed["data"]["certificate_pem"].as_str().must()))
        .must();
    let (_, cert) = app.api.get("/api/v1/devices/renew1/certificate").await;
    assert_eq!(cert["data"]["serial"], renewed["data"]["serial"]);
    // The renewed certificate keeps the enrolment's topic prefix.
    let prefix_of = |v: &Value| {
        luach_pki::inspect_chain(v["data"]["certificate_pem"].as_str().must()).must()[0]
            .organisation
            .clone()
    };
    assert_eq!(prefix_of(&renewed), prefix_of(&first));

    // A replayed request (its nonce was used), a request without a nonce, another key, an
    // unknown device, garbage: refused.
    let (status, body) = renew(&app.api, "renew1", &request1).await;
    assert_eq!(
        (status, code(&body)),
        (403, Some("renewal_refused")),
        "replayed: {body}"
    );
    let (status, body) = renew(&app.api, "renew1", &key.csr_pem("renew1").must()).await;
    assert_eq!(
        (status, code(&body)),
        (403, Some("renewal_refused")),
        "no nonce: {body}"
    );
    let stranger = DeviceKey::generate().must();
    let other = renewal_csr(&app.api, "renew1", &stranger).await;
    let (status, body) = renew(&app.api, "renew1", &other).await;
    assert_eq!((status, code(&body)), (403, Some("renewal_refused")), "{body}");
    let unknown = renewal_csr(&app.api, "nosuch", &key).await;
    let (status, body) = renew(&app.api, "nosuch", &unknown).await;
    assert_eq!((status, code(&body)), (403, Some("renewal_refused")), "{body}");
    let (status, _) = renew(&app.api, "renew1", "garbage").await;
    assert_eq!(status, 422);

    // Revoked: by its own tenant only; then renewal is refused and a token cannot revive it.
    let (status, _) = shul_b.post("/api/v1/devices/renew1/revoke", &json!({})).await;
    assert_eq!(status, 404);
    let (status, body) = app.api.post("/api/v1/devices/renew1/revoke", &json!({})).await;
    assert_eq!(
        (status, body["data"]["status"].as_str()),
        (200, Some("revoked")),
        "{body}"
    );
    let revoked = renewal_csr(&app.api, "renew1", &key).await;
    let (status, body) = renew(&app.api, "renew1", &revoked).await;
    assert_eq!((status, code(&body)), (403, Some("renewal_refused")), "{body}");
    let (status, body) = enrol_with_token(&app.api, "renew1", &csr1, &token).await;
    assert_eq!((status, code(&body)), (409, Some("conflict")), "{body}");

    // Claiming it again re-enrols it (new key), and renewal works again.
    let (new_key, new_csr) = csr("renew1");
    let (_, pending) = request(&app.api, &json!({"device_id": "renew1", "csr_pem": new_csr})).await;
    let claim = pending["data"]["claim_code"].as_str().must();
    let (status, _) = app
        .api
        .post("/api/v1/enrolment/claims", &json!({"claim_code": claim}))
        .await;
    assert_eq!(status, 201);
    let fresh = renewal_csr(&app.api, "renew1", &new_key).await;
    let (status, _) = renew(&app.api, "renew1", &fresh).await;
    assert_eq!(status, 201);

    // Deleting a device revokes its certificate too.
    let (key2, csr2) = csr("renew2");
    let (status, _) = enrol_with_token(&app.api, "renew2", &csr2, &token).await;
    assert_eq!(status, 201);
    let (status, _) = app.api.delete("/api/v1/devices/renew2").await;
    assert_eq!(status, 204);
    let deleted = renewal_csr(&app.api, "renew2", &key2).await;
    let (status, _) = renew(&app.api, "renew2", &deleted).await;
    assert_eq!(status, 403);

    // A pre-registered device that never enrolled has nothing to revoke.
    let (status, _) = app.api.post("/api/v1/devices", &json!({"id": "prereg1"})).await;
    assert_eq!(status, 201);
    let (status, body) = app.api.post("/api/v1/devices/prereg1/revoke", &json!({})).await;
    assert_eq!((status, code(&body)), (409, Some("conflict")), "{body}");
}

/// The leaf (first PEM block) of a chain.
fn leaf(chain: &str) -> &str {
    const END: &str = "-----END CERTIFICATE-----";
    chain.find(END).map_or(chain, |i| &chain[..i + END.len()])
}

/// (e) A revoked certificate is cut off at once, refused at the TLS handshake when it comes
/// back, and still refused after the server restarts (the refusals are loaded from the store
/// before the first device connects).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_certificate_is_disconnected_and_refused_at_connect() {
    revoked_certificate_refused(None).await;
}

/// The same on MongoDB (the refusals are read back from its `certificates` collection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_certificate_is_refused_after_a_restart_on_mongodb() {
    let mongo = luach_tests::MongoWire::start();
    revoked_certificate_refused(Some(mongo.url.clone())).await;
}

async fn revoked_certificate_refused(store: Option<String>) {
    let with_store = |c: &mut luach_control_plane::Config| {
        if let Some(url) = &store {
            c.store.url = url.clone().into();
        }
    };
    let app = tls_only_app(with_store).await;
    let token = bulk_token(&app.api, 2).await;
    let port = tls_port(&app);
    let (key, csr1) = csr("revoked1");
    let (_, issued) = enrol_with_token(&app.api, "revoked1", &csr1, &token).await;
    let (sentinel_key, csr2) = csr("sentinel1");
    let (_, sentinel_issued) = enrol_with_token(&app.api, "sentinel1", &csr2, &token).await;

    let mut device = MtlsDevice::connect(port, "revoked1", &key, &issued).await;
    device.hello("s1").await;
    wait_status(&app.api, "revoked1", "online").await;

    let (status, _) = app.api.post("/api/v1/devices/revoked1/revoke", &json!({})).await;
    assert_eq!(status, 200);
    assert!(device.closed_within(WAIT).await, "the revoked device stayed connected");
    wait_status(&app.api, "revoked1", "offline").await;
    let refused = MtlsDevice::try_connect(port, "revoked1", &key, &issued).await;
    assert!(refused.is_err(), "a revoked certificate connected again");
    // A healthy device is untouched.
    let mut sentinel = MtlsDevice::connect(port, "sentinel1", &sentinel_key, &sentinel_issued).await;
    sentinel.hello("t1").await;
    wait_status(&app.api, "sentinel1", "online").await;

    // The same installation after a restart.
    let dir = app.data_dir().to_owned();
    app.shutdown.cancel();
    assert!(sentinel.closed_within(WAIT).await, "the edge let go on shutdown");
    let again = tls_only_app(|c| {
        with_store(c);
        c.data_dir = dir;
    })
    .await;
    let port = tls_port(&again);
    let refused = MtlsDevice::try_connect(port, "revoked1", &key, &issued).await;
    assert!(refused.is_err(), "a revoked certificate connected after a restart");
    let mut sentinel = MtlsDevice::connect(port, "sentinel1", &sentinel_key, &sentinel_issued).await;
    sentinel.hello("t2").await;
    let metrics = again.api.metrics_text().await;
    assert!(
        metrics.contains("luach_mqtt_edge_refused_enrolments 1"),
        "the refused enrolment is loaded:\n{metrics}"
    );
}

/// After a stolen screen is revoked and enrolled again (or deleted and enrolled by another
/// tenant), the thief's old certificate is cut off and refused at connect, its old device token
/// is refused, and the replacement gets everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_or_superseded_certificate_gets_nothing() {
    let app = tls_only_app(|_| {}).await;
    let port = tls_port(&app);
    let token = bulk_token(&app.api, 5).await;
    let (stolen_key, stolen_csr) = csr("stolen1");
    let (_, stolen) = enrol_with_token(&app.api, "stolen1", &stolen_csr, &token).await;
    let mut thief = MtlsDevice::connect(port, "stolen1", &stolen_key, &stolen).await;
    thief.listen().await;
    thief.hello("t1").await;
    wait_status(&app.api, "stolen1", "online").await;
    let old_token = thief.notice(WAIT).await.must().token;
    let fetch = |device_token: String| {
        let api = app.api.anonymous();
        async move {
            let req = api
                .http
                .get(api.url("/api/v1/agent/bundle"))
                .header("x-luach-device-token", device_token);
            api.send(req).await.0
        }
    };
    assert_eq!(
        fetch(old_token.clone()).await,
        200,
        "the token works while the certificate does"
    );

    // The tenant revokes the stolen screen and enrols its replacement under the same id.
    let (status, _) = app.api.post("/api/v1/devices/stolen1/revoke", &json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(fetch(old_token.clone()).await, 401, "a revoked certificate's token");
    assert!(thief.closed_within(WAIT).await, "the thief stayed connected");
    let (new_key, new_csr) = csr("stolen1");
    let (_, pending) = request(&app.api, &json!({"device_id": "stolen1", "csr_pem": new_csr})).await;
    let claim = pending["data"]["claim_code"].as_str().must();
    let (status, body) = app
        .api
        .post("/api/v1/enrolment/claims", &json!({"claim_code": claim}))
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, issued) = poll(&app.api, "stolen1", pending["data"]["poll_secret"].as_str()).await;
    let mut replacement = MtlsDevice::connect(port, "stolen1", &new_key, &issued).await;
    assert_ne!(replacement.prefix, thief.prefix, "a new enrolment, a new prefix");
    replacement.listen().await;
    replacement.hello("r1").await;
    let new_token = replacement.notice(WAIT).await.must().token;
    assert_eq!(fetch(new_token).await, 200);
    assert_eq!(fetch(old_token).await, 401, "the old token stays dead");

    // The thief cannot come back with the old certificate; an edit reaches the replacement.
    assert!(
        MtlsDevice::try_connect(port, "stolen1", &stolen_key, &stolen)
            .await
            .is_err()
    );
    let (status, _) = app
        .api
        .post("/api/v1/announcements", &json!({"text_en": "New notice"}))
        .await;
    assert_eq!(status, 201);
    assert!(replacement.notice(WAIT).await.is_some());

    // A device deleted in one tenant and enrolled in another: the old certificate gets nothing
    // of the new tenant, and the move is on the record in the new tenant's audit.
    let (moved_key, moved_csr) = csr("moved1");
    let (_, moved) = enrol_with_token(&app.api, "moved1", &moved_csr, &token).await;
    let mut old = MtlsDevice::connect(port, "moved1", &moved_key, &moved).await;
    old.listen().await;
    assert_eq!(app.api.delete("/api/v1/devices/moved1").await.0, 204);
    assert!(old.closed_within(WAIT).await, "the deleted device stayed connected");
    let shul_b = app.user("shul-b", "tenant_admin", "admin@shul-b.example").await;
    let (fresh_key, fresh_csr) = csr("moved1");
    let (_, pending) = request(&app.api, &json!({"device_id": "moved1", "csr_pem": fresh_csr})).await;
    let claim = pending["data"]["claim_code"].as_str().must();
    let (status, body) = shul_b
        .post("/api/v1/enrolment/claims", &json!({"claim_code": claim}))
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, issued) = poll(&app.api, "moved1", pending["data"]["poll_secret"].as_str()).await;
    let mut now_b = MtlsDevice::connect(port, "moved1", &fresh_key, &issued).await;
    now_b.listen().await;
    now_b.hello("b1").await;
    assert!(now_b.notice(WAIT).await.is_some());
    assert!(
        MtlsDevice::try_connect(port, "moved1", &moved_key, &moved)
            .await
            .is_err()
    );
    let (_, audit) = shul_b.get("/api/v1/audit").await;
    let enrol = audit["data"]
        .as_array()
        .must()
        .iter()
        .find(|r| r["action"] == "device.enrol")
        .must()
        .clone();
    assert_eq!(enrol["detail"]["previous_tenant"], "default", "{enrol}");
}
