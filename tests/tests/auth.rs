//! Authentication through the real HTTP API: lockout and rate limits on an injected clock,
//! token expiry, refresh rotation with reuse detection, revocation, a JWT mutation corpus,
//! personal access tokens, the second factor, and a super admin acting inside a tenant.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use luach_control_plane::auth::ManualClock;
use luach_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, Must, TestApp, spawn_app, spawn_app_with_clock};
use serde_json::{Value, json};

const JWT_KEY: &str = "test-key-test-key-test-key-test-key-0123";

fn clock() -> ManualClock {
    ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 5).single().must())
}

async fn app_at(clock: &ManualClock, configure: impl FnOnce(&mut luach_control_plane::Config)) -> TestApp {
    spawn_app_with_clock(
        |c| {
            c.auth.jwt_secret = Some(JWT_KEY.to_owned().into());
            configure(c);
        },
        Arc::new(clock.clone()),
    )
    .await
}

async fn login(api: &Api, email: &str, password: &str) -> (u16, Value) {
    api.anonymous()
        .post("/api/v1/auth/login", &json!({"email": email, "password": password}))
        .await
}

async fn me(api: &Api, token: &str) -> u16 {
    api.with_token(token).get("/api/v1/auth/me").await.0
}

async fn refresh(api: &Api, token: &str) -> (u16, Value) {
    api.anonymous()
        .post("/api/v1/auth/refresh", &json!({"refresh_token": token}))
        .await
}

fn tokens(body: &Value) -> (String, String) {
    (
        body["data"]["access_token"].as_str().must().to_owned(),
        body["data"]["refresh_token"].as_str().must().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_and_unknown_accounts_lock_alike_and_unlock_on_time() {
    let clock = clock();
    let app = app_at(&clock, |c| {
        c.auth.max_failed_logins = 3;
        c.auth.lockout_secs = 600;
        c.auth.login_attempts_per_ip_per_minute = 1000;
    })
    .await;
    let api = app.api.anonymous();
    for attempt in 1..=4 {
        let known = login(&api, ADMIN_EMAIL, "wrong-password-1").await;
        let unknown = login(&api, "nobody@default.example", "wrong-password-1").await;
        assert_eq!(
            known, unknown,
            "attempt {attempt}: known and unknown accounts answer differently"
        );
        let expected = if attempt <= 3 { 401 } else { 429 };
        assert_eq!(known.0, expected, "attempt {attempt}: {}", known.1);
    }
    // Locked: even the right password is refused, with a Retry-After.
    let resp = api
        .http
        .post(api.url("/api/v1/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .must();
    assert_eq!(resp.status().as_u16(), 429);
    let retry: u64 = resp.headers()["retry-after"].to_str().must().parse().must();
    assert!((1..=600).contains(&retry), "retry-after {retry}");
    // The lock lifts by itself when its window ends.
    clock.advance(chrono::Duration::seconds(600));
    assert_eq!(login(&api, ADMIN_EMAIL, ADMIN_PASSWORD).await.0, 200);
    // A success clears the failures.
    for _ in 0..2 {
        assert_eq!(login(&api, ADMIN_EMAIL, "wrong-password-1").await.0, 401);
    }
    assert_eq!(login(&api, ADMIN_EMAIL, ADMIN_PASSWORD).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_per_ip_are_limited_per_minute() {
    let clock = clock();
    let app = app_at(&clock, |c| c.auth.login_attempts_per_ip_per_minute = 5).await;
    let api = app.api.anonymous();
    for i in 0..5 {
        let (status, _) = login(&api, &format!("user{i}@example.org"), "wrong-password-1").await;
        assert_eq!(status, 401);
    }
    let (status, body) = login(&api, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("too_many_requests"))
    );
    clock.advance(chrono::Duration::seconds(60));
    assert_eq!(login(&api, ADMIN_EMAIL, ADMIN_PASSWORD).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire_rotate_and_end() {
    let clock = clock();
    let app = app_at(&clock, |_| {}).await;
    let api = &app.api;

    let (status, body) = login(api, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.to_string().contains("password_hash") && !body.to_string().contains("argon2"));
    let (a1, r1) = tokens(&body);
    assert_eq!(me(api, &a1).await, 200);
    clock.advance(chrono::Duration::minutes(16));
    assert_eq!(me(api, &a1).await, 401, "access token outlived its lifetime");

    // Rotation: each refresh token works once.
    let (status, body) = refresh(api, &r1).await;
    assert_eq!(status, 200, "{body}");
    let (a2, r2) = tokens(&body);
    assert_ne!(r1, r2);
    assert_eq!(me(api, &a2).await, 200);
    // Presenting r1 again means it was copied: the whole session ends.
    assert_eq!(refresh(api, &r1).await.0, 401);
    assert_eq!(refresh(api, &r2).await.0, 401, "reuse did not revoke the session");
    assert_eq!(me(api, &a2).await, 401, "reuse did not end the session's access token");

    // Logout ends the session at once. Its body is optional, but what is sent must be JSON:
    // blanks declared as JSON are refused and end nothing; no body at all is fine.
    let (_, body) = login(api, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (a3, r3) = tokens(&body);
    let session = api.with_token(&a3);
    let logout = || session.http.post(session.url("/api/v1/auth/logout"));
    let blanks = logout().header("content-type", "application/json").body(" ");
    let (status, body) = session.send(blanks).await;
    assert!(matches!(status, 400 | 422), "{status} {body}");
    assert_eq!(me(api, &a3).await, 200, "a refused logout ended the session");
    assert_eq!(session.send(logout()).await.0, 204);
    assert_eq!(me(api, &a3).await, 401);
    assert_eq!(refresh(api, &r3).await.0, 401);
    let (_, body) = login(api, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (a3, r3) = tokens(&body);
    assert_eq!(api.with_token(&a3).post("/api/v1/auth/logout", &json!({})).await.0, 204);
    assert_eq!(me(api, &a3).await, 401);
    assert_eq!(refresh(api, &r3).await.0, 401);

    // A password change ends every session, and the old password stops working.
    let (_, body) = login(api, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (a4, r4) = tokens(&body);
    let (_, other) = login(api, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (a5, _) = tokens(&other);
    let change = json!({"current_password": ADMIN_PASSWORD, "new_password": "a-brand-new-passphrase"});
    let (status, body) = api.with_token(&a4).post("/api/v1/auth/password", &change).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(me(api, &a4).await, 401);
    assert_eq!(me(api, &a5).await, 401, "other sessions survived a password change");
    assert_eq!(refresh(api, &r4).await.0, 401);
    assert_eq!(login(api, ADMIN_EMAIL, ADMIN_PASSWORD).await.0, 401);
    assert_eq!(login(api, ADMIN_EMAIL, "a-brand-new-passphrase").await.0, 200);
    // A wrong current password changes nothing; a weak new one names the field.
    let (_, body) = login(api, ADMIN_EMAIL, "a-brand-new-passphrase").await;
    let (a6, _) = tokens(&body);
    let bad = json!({"current_password": "nope-nope-nope", "new_password": "another-passphrase"});
    assert_eq!(api.with_token(&a6).post("/api/v1/auth/password", &bad).await.0, 401);
    let weak = json!({"current_password": "a-brand-new-passphrase", "new_password": "short"});
    let (status, body) = api.with_token(&a6).post("/api/v1/auth/password", &weak).await;
    assert_eq!(
        (status, body["error"]["fields"][0]["path"].as_str()),
        (422, Some("new_password"))
    );
}

fn b64(v: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(v)
}

fn sign(alg: Algorithm, key: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(key)).must()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_mutated_access_tokens_are_refused() {
    let clock = clock();
    let app = app_at(&clock, |_| {}).await;
    let api = &app.api;
    let (_, body) = login(api, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (valid, _) = tokens(&body);
    let user_id = body["data"]["user"]["id"].as_str().must().to_owned();
    let parts: Vec<&str> = valid.split('.').collect();
    let claims: Value =
        serde_json::from_slice(&data_encoding::BASE64URL_NOPAD.decode(parts[1].as_bytes()).must()).must();
    let now = clock_now(&clock);
    let with = |patch: Value| {
        let mut c = claims.clone();
        for (k, v) in patch.as_object().must() {
            if v.is_null() {
                c.as_object_mut().must().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let key = JWT_KEY.as_bytes();

    // Positive control: a token we sign ourselves with the real key and claims is accepted,
    // so every refusal below is the server's judgement, not a broken harness.
    assert_eq!(me(api, &sign(Algorithm::HS256, key, &claims)).await, 200);
    assert_eq!(me(api, &valid).await, 200);

    // A session that logged out.
    let (_, other) = login(api, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (ended, _) = tokens(&other);
    assert_eq!(
        api.with_token(&ended).post("/api/v1/auth/logout", &json!({})).await.0,
        204
    );

    let none_header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let corpus: Vec<(&str, String)> = vec![
        ("alg none", format!("{none_header}.{}.", parts[1])),
        (
            "alg none with signature",
            format!("{none_header}.{}.{}", parts[1], parts[2]),
        ),
        (
            "wrong key",
            sign(Algorithm::HS256, b"another-key-another-key-another-key!!", &claims),
        ),
        ("other HMAC algorithm", sign(Algorithm::HS512, key, &claims)),
        ("expired", sign(Algorithm::HS256, key, &with(json!({"exp": now - 1})))),
        (
            "issued in the future",
            sign(Algorithm::HS256, key, &with(json!({"iat": now + 3600}))),
        ),
        ("no expiry", sign(Algorithm::HS256, key, &with(json!({"exp": null})))),
        (
            "wrong issuer",
            sign(Algorithm::HS256, key, &with(json!({"iss": "evil"}))),
        ),
        (
            "wrong audience",
            sign(Algorithm::HS256, key, &with(json!({"aud": "other-api"}))),
        ),
        (
            "unknown user",
            sign(Algorithm::HS256, key, &with(json!({"sub": "no-such-user"}))),
        ),
        (
            "unknown session",
            sign(Algorithm::HS256, key, &with(json!({"sid": "nosuchsession"}))),
        ),
        ("ended session", ended.clone()),
        (
            "tampered claims, original signature",
            format!(
                "{}.{}.{}",
                parts[0],
                b64(with(json!({"sub": format!("{user_id}x")})).to_string().as_bytes()),
                parts[2]
            ),
        ),
        (
            "tampered expiry, original signature",
            format!(
                "{}.{}.{}",
                parts[0],
                b64(with(json!({"exp": now + 86_400 * 365})).to_string().as_bytes()),
                parts[2]
            ),
        ),
        ("truncated signature", valid[..valid.len() - 4].to_owned()),
        ("garbage", "not-a-token".to_owned()),
        ("empty", String::new()),
        (
            "personal-token prefix, unknown",
            "lp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_owned(),
        ),
        ("refresh token as bearer", tokens(&other).1),
    ];
    for (name, token) in &corpus {
        let (status, body) = api.with_token(token).get("/api/v1/devices").await;
        assert_eq!(status, 401, "{name}: accepted or wrong answer: {body}");
        assert_eq!(body["error"]["code"], "unauthorized", "{name}: {body}");
    }
    // A personal token capped at viewer: it reads, it cannot write, and no mutation of it is
    // another credential (opaque tokens are looked up by digest, whole).
    let session = api.with_token(&valid);
    let (status, created) = session
        .post("/api/v1/auth/tokens", &json!({"name": "capped", "role": "viewer"}))
        .await;
    assert_eq!(status, 201, "{created}");
    let capped = created["data"]["secret"].as_str().must().to_owned();
    let capped_api = api.with_token(&capped);
    assert_eq!(capped_api.get("/api/v1/devices").await.0, 200);
    let (status, body) = capped_api.post("/api/v1/devices", &json!({"id": "capwrite1"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    let flipped = {
        let mut chars: Vec<char> = capped.chars().collect();
        let last = chars.len() - 1;
        chars[last] = if chars[last] == 'a' { 'b' } else { 'a' };
        chars.into_iter().collect::<String>()
    };
    let mutations: Vec<(&str, String)> = vec![
        ("capped, last character changed", flipped),
        ("capped, truncated", capped[..capped.len() - 1].to_owned()),
        ("capped, extended", format!("{capped}a")),
        ("capped, upper case", capped.to_uppercase()),
        (
            "capped, without its prefix",
            capped.trim_start_matches("lp_").to_owned(),
        ),
        ("capped, twice", format!("{capped}{capped}")),
    ];
    for (name, token) in &mutations {
        let (status, body) = api.with_token(token).get("/api/v1/devices").await;
        assert_eq!(status, 401, "{name}: accepted or wrong answer: {body}");
    }
    let id = created["data"]["id"].as_str().must();
    assert_eq!(session.delete(&format!("/api/v1/auth/tokens/{id}")).await.0, 204);
    assert_eq!(capped_api.get("/api/v1/devices").await.0, 401, "revoked capped token");

    // No credentials at all.
    assert_eq!(api.anonymous().get("/api/v1/devices").await.0, 401);
    // Refresh tokens: unknown, revoked, and an access token in their place.
    assert_eq!(refresh(api, "lr_unknown").await.0, 401);
    assert_eq!(refresh(api, &tokens(&other).1).await.0, 401);
    assert_eq!(refresh(api, &valid).await.0, 401);
}

fn clock_now(clock: &ManualClock) -> i64 {
    use luach_control_plane::auth::Clock;
    clock.now().timestamp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_tokens_are_capped_listed_revoked_and_expire() {
    let clock = clock();
    let app = app_at(&clock, |_| {}).await;
    let admin = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (status, body) = admin
        .post(
            "/api/v1/auth/tokens",
            &json!({"name": "kiosk script", "role": "viewer", "expires_in_days": 2}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let secret = body["data"]["secret"].as_str().must().to_owned();
    let id = body["data"]["id"].as_str().must().to_owned();
    assert!(secret.starts_with("lp_"));
    let viewer = admin.with_token(&secret);
    assert_eq!(viewer.get("/api/v1/devices").await.0, 200);
    let (status, _) = viewer.post("/api/v1/devices", &json!({"id": "capped1"})).await;
    assert_eq!(status, 403, "a viewer-capped token wrote");
    // Listed without the secret.
    let (_, list) = admin.get("/api/v1/auth/tokens").await;
    assert!(list.to_string().contains("kiosk script") && !list.to_string().contains(&secret));
    // A token cannot manage tokens' owner credentials beyond the owner's role.
    let gabbai = app.user("default", "gabbai", "g@default.example").await;
    let (status, body) = gabbai
        .post("/api/v1/auth/tokens", &json!({"name": "x", "role": "operator"}))
        .await;
    assert_eq!(
        (status, body["error"]["fields"][0]["path"].as_str()),
        (422, Some("role"))
    );
    // Expiry follows the clock.
    clock.advance(chrono::Duration::days(2));
    assert_eq!(viewer.get("/api/v1/devices").await.0, 401);
    assert_eq!(
        admin.get("/api/v1/devices").await.0,
        401,
        "the session's access token expired too"
    );
    // Revocation (as the admin's long-lived token).
    let admin = &app.api;
    let (status, body) = admin.post("/api/v1/auth/tokens", &json!({"name": "short-lived"})).await;
    assert_eq!(status, 201);
    let second = admin.with_token(body["data"]["secret"].as_str().must());
    assert_eq!(second.get("/api/v1/devices").await.0, 200);
    let path = format!("/api/v1/auth/tokens/{}", body["data"]["id"].as_str().must());
    assert_eq!(admin.delete(&path).await.0, 204);
    assert_eq!(second.get("/api/v1/devices").await.0, 401);
    assert_eq!(admin.delete(&format!("/api/v1/auth/tokens/{id}x")).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_second_factor_guards_login() {
    let clock = clock();
    let app = app_at(&clock, |_| {}).await;
    let admin = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (status, setup) = admin.post("/api/v1/auth/totp/setup", &json!({})).await;
    assert_eq!(status, 200, "{setup}");
    let setup = &setup["data"];
    assert!(setup["otpauth_url"].as_str().must().starts_with("otpauth://totp/"));
    let secret = data_encoding::BASE32_NOPAD
        .decode(setup["secret"].as_str().must().as_bytes())
        .must();
    let totp = totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, secret, None, String::new());
    let code = |clock: &ManualClock| totp.generate(clock_now(clock) as u64);
    // Not yet confirmed: logins need no code.
    assert_eq!(login(&admin, ADMIN_EMAIL, ADMIN_PASSWORD).await.0, 200);
    assert_eq!(
        admin
            .post("/api/v1/auth/totp/confirm", &json!({"code": "000000"}))
            .await
            .0,
        if code(&clock) == "000000" { 204 } else { 401 }
    );
    let (status, body) = admin
        .post("/api/v1/auth/totp/confirm", &json!({"code": code(&clock)}))
        .await;
    assert_eq!(status, 204, "{body}");

    let (status, body) = login(&admin, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("totp_required")));
    let wrong = if code(&clock) == "123456" { "654321" } else { "123456" };
    let with_code = |c: &str| json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "totp": c});
    let (status, body) = admin.anonymous().post("/api/v1/auth/login", &with_code(wrong)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_credentials"))
    );
    // The code that confirmed the second factor was used: it does not sign in again.
    let (status, _) = admin
        .anonymous()
        .post("/api/v1/auth/login", &with_code(&code(&clock)))
        .await;
    assert_eq!(status, 401, "a used code was accepted again");
    clock.advance(chrono::Duration::seconds(30));
    let (status, _) = admin
        .anonymous()
        .post("/api/v1/auth/login", &with_code(&code(&clock)))
        .await;
    assert_eq!(status, 200);
    // Nor does the code of a sign-in, a second time.
    let (status, _) = admin
        .anonymous()
        .post("/api/v1/auth/login", &with_code(&code(&clock)))
        .await;
    assert_eq!(status, 401, "a replayed code was accepted");
    // A code from five minutes ago no longer works.
    let old = code(&clock);
    clock.advance(chrono::Duration::minutes(5));
    let (status, _) = admin.anonymous().post("/api/v1/auth/login", &with_code(&old)).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_super_admin_acts_inside_a_tenant_with_no_more_than_the_role() {
    let app = spawn_app(|_| {}).await;
    let root = app.user("default", "super_admin", "root@example.org").await;
    // Installation routes work without a tenant; tenant routes need one.
    assert_eq!(root.get("/api/v1/tenants").await.0, 200);
    let (status, body) = root.get("/api/v1/devices").await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("tenant_required")));

    let acting = |role: Option<&str>| {
        let mut req = root
            .http
            .get(root.url("/api/v1/auth/me"))
            .header("x-luach-tenant", "default");
        if let Some(r) = role {
            req = req.header("x-luach-role", r);
        }
        req
    };
    let (status, body) = root.send(acting(None)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["acting_as"]["tenant_id"], "default");
    assert_eq!(body["data"]["role"], "tenant_admin");
    let send_as = |method: reqwest::Method, path: &str, role: &str, body: Value| {
        root.http
            .request(method, root.url(path))
            .header("x-luach-tenant", "default")
            .header("x-luach-role", role)
            .json(&body)
    };
    let (status, _) = root
        .send(send_as(
            reqwest::Method::GET,
            "/api/v1/devices",
            "tenant_admin",
            json!({}),
        ))
        .await;
    assert_eq!(status, 200);
    // Capped by the acted role.
    let (status, _) = root
        .send(send_as(
            reqwest::Method::POST,
            "/api/v1/devices",
            "viewer",
            json!({"id": "nope1"}),
        ))
        .await;
    assert_eq!(status, 403);
    // Never accounts or credentials.
    let user = json!({"email": "x@default.example", "role": "viewer", "password": "long-enough-pass"});
    let (status, _) = root
        .send(send_as(reqwest::Method::POST, "/api/v1/users", "tenant_admin", user))
        .await;
    assert_eq!(status, 403);
    let change = json!({"current_password": ADMIN_PASSWORD, "new_password": "another-passphrase"});
    let (status, _) = root
        .send(send_as(
            reqwest::Method::POST,
            "/api/v1/auth/password",
            "tenant_admin",
            change,
        ))
        .await;
    assert_eq!(status, 403);
    // No acting as super admin, no unknown tenants, and only super admins may act.
    let (status, _) = root.send(acting(Some("super_admin"))).await;
    assert_eq!(status, 400);
    let (status, _) = root
        .send(
            root.http
                .get(root.url("/api/v1/auth/me"))
                .header("x-luach-tenant", "nosuch"),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .api
        .send(
            app.api
                .http
                .get(app.api.url("/api/v1/devices"))
                .header("x-luach-tenant", "default"),
        )
        .await;
    assert_eq!(status, 403, "a tenant admin used the act-as header");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_admins_manage_their_own_users_only() {
    let app = spawn_app(|_| {}).await;
    let admin = &app.api;
    let new = json!({"email": "Gabbai@Default.Example", "name": "Reb Gabbai", "role": "gabbai", "password": "long-enough-pass"});
    let (status, body) = admin.post("/api/v1/users", &new).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["email"], "gabbai@default.example");
    assert!(!body.to_string().contains("password_hash"));
    let id = body["data"]["id"].as_str().must().to_owned();
    assert_eq!(admin.post("/api/v1/users", &new).await.0, 409);
    // Mass assignment and escalation are refused.
    for (bad, path) in [
        (
            json!({"email": "a@b.example", "role": "super_admin", "password": "long-enough-pass"}),
            "role",
        ),
        (
            json!({"email": "a@b.example", "role": "viewer", "password": "long-enough-pass", "tenant_id": "other"}),
            "tenant_id",
        ),
        (
            json!({"email": "not-an-email", "role": "viewer", "password": "long-enough-pass"}),
            "email",
        ),
        (
            json!({"email": "a@b.example", "role": "viewer", "password": "short"}),
            "password",
        ),
    ] {
        let (status, body) = admin.post("/api/v1/users", &bad).await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert!(body.to_string().contains(path), "{bad}: {body}");
    }
    let (status, body) = admin
        .patch(&format!("/api/v1/users/{id}"), &json!({"role": "operator"}))
        .await;
    assert_eq!((status, body["data"]["role"].as_str()), (200, Some("operator")));
    // Another tenant's admin sees none of it.
    let other = app.user("other-shul", "tenant_admin", "admin@other.example").await;
    assert_eq!(other.get(&format!("/api/v1/users/{id}")).await.0, 404);
    assert_eq!(other.delete(&format!("/api/v1/users/{id}")).await.0, 404);
    let (_, list) = other.get("/api/v1/users").await;
    assert!(!list.to_string().contains("gabbai@default.example"));
    // Disabling a user ends their access at once.
    let gabbai = app.login("gabbai@default.example", "long-enough-pass").await;
    assert_eq!(gabbai.get("/api/v1/devices").await.0, 200);
    let (status, _) = admin
        .patch(&format!("/api/v1/users/{id}"), &json!({"disabled": true}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(gabbai.get("/api/v1/devices").await.0, 401);
    assert_eq!(admin.delete(&format!("/api/v1/users/{id}")).await.0, 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockouts_are_shared_through_redis_between_replicas() {
    let mut redis = luach_tests::RedisServer::start();
    let clock = clock();
    let with_redis = |c: &mut luach_control_plane::Config| {
        c.redis = Some(redis.url.clone().into());
        c.auth.max_failed_logins = 2;
    };
    // Two replicas with the same clock and Redis, each with its own store and accounts.
    let a = app_at(&clock, with_redis).await;
    let b = app_at(&clock, with_redis).await;
    for api in [&a.api, &b.api] {
        assert_eq!(login(api, ADMIN_EMAIL, "wrong-password-1").await.0, 401);
    }
    // Two failures in all, one on each replica: both refuse now.
    for api in [&a.api, &b.api] {
        let (status, body) = login(api, ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(status, 429, "{body}");
    }
    clock.advance(chrono::Duration::seconds(900));
    assert_eq!(login(&b.api, ADMIN_EMAIL, ADMIN_PASSWORD).await.0, 200);

    // Redis restarts (empty): the API keeps answering, counting in each replica meanwhile…
    redis.restart();
    for api in [&a.api, &b.api, &a.api, &b.api] {
        let (status, body) = login(api, ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(status, 200, "{body}");
    }
    // …and shares lockouts through Redis again once it answers.
    clock.advance(chrono::Duration::seconds(900));
    for api in [&a.api, &b.api] {
        assert_eq!(login(api, ADMIN_EMAIL, "wrong-password-2").await.0, 401);
    }
    for api in [&a.api, &b.api] {
        let (status, body) = login(api, ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(status, 429, "{body}");
    }
}

/// Concurrent guesses cannot slip past the lockout: each attempt counts before the password is
/// checked, so of thirty guesses at once exactly `max_failed_logins` are checked at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_get_no_more_tries_than_the_lockout_allows() {
    let clock = clock();
    let app = app_at(&clock, |c| {
        c.auth.max_failed_logins = 5;
        c.auth.login_attempts_per_ip_per_minute = 1000;
    })
    .await;
    let api = app.api.anonymous();
    let guesses = (0..30).map(|i| {
        let api = api.clone();
        async move { login(&api, ADMIN_EMAIL, &format!("guess-number-{i}")).await.0 }
    });
    let statuses: Vec<u16> = futures_join_all(guesses).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, refused), (5, 25), "{statuses:?}");
    // Locked: even the right password waits for the window.
    assert_eq!(login(&api, ADMIN_EMAIL, ADMIN_PASSWORD).await.0, 429);
    clock.advance(chrono::Duration::seconds(
        i64::try_from(app.state.config.auth.lockout_secs).must(),
    ));
    assert_eq!(login(&api, ADMIN_EMAIL, ADMIN_PASSWORD).await.0, 200);
}

/// Runs every future at once on the runtime and collects their outputs in order.
async fn futures_join_all<T: Send + 'static>(
    futures: impl Iterator<Item = impl std::future::Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.must());
    }
    out
}

/// A personal access token capped at a low role cannot mint a stronger one, nor touch the
/// owner's credentials; tokens die with a password change or the second factor's removal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capped_tokens_cannot_escalate_and_die_with_the_credentials() {
    let app = spawn_app(|_| {}).await;
    let session = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (status, body) = session
        .post("/api/v1/auth/tokens", &json!({"name": "kiosk", "role": "viewer"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let viewer = app.api.with_token(body["data"]["secret"].as_str().must());
    // Asking for more than the presenting token's cap is refused...
    for role in [Some("tenant_admin"), Some("operator")] {
        let (status, body) = viewer
            .post("/api/v1/auth/tokens", &json!({"name": "escalate", "role": role}))
            .await;
        assert_eq!(
            (status, body["error"]["fields"][0]["path"].as_str()),
            (422, Some("role")),
            "{body}"
        );
    }
    // ...and asking for no cap gives the presenting token's cap.
    let (status, body) = viewer.post("/api/v1/auth/tokens", &json!({"name": "child"})).await;
    assert_eq!((status, body["data"]["role"].as_str()), (201, Some("viewer")), "{body}");
    let child = app.api.with_token(body["data"]["secret"].as_str().must());
    assert_eq!(child.post("/api/v1/devices", &json!({"id": "escalated1"})).await.0, 403);
    let (_, me) = child.get("/api/v1/auth/me").await;
    assert_eq!(me["data"]["token_cap"], "viewer");
    // No second factor, no password change with a token.
    for (path, body) in [
        ("/api/v1/auth/totp/setup", json!({})),
        (
            "/api/v1/auth/password",
            json!({"current_password": ADMIN_PASSWORD, "new_password": "whatever-long-enough"}),
        ),
    ] {
        let (status, answer) = viewer.post(path, &body).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (403, Some("session_required")),
            "{path}"
        );
    }
    // A password change ends every token.
    let (status, _) = session
        .post(
            "/api/v1/auth/password",
            &json!({"current_password": ADMIN_PASSWORD, "new_password": "a-brand-new-passphrase"}),
        )
        .await;
    assert_eq!(status, 204);
    for api in [&viewer, &child, &app.api] {
        assert_eq!(api.get("/api/v1/auth/me").await.0, 401, "a token outlived the password");
    }
}

/// Removing the second factor ends personal tokens too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_second_factor_ends_personal_tokens() {
    let clock = clock();
    let app = app_at(&clock, |_| {}).await;
    let session = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (_, setup) = session.post("/api/v1/auth/totp/setup", &json!({})).await;
    let secret = data_encoding::BASE32_NOPAD
        .decode(setup["data"]["secret"].as_str().must().as_bytes())
        .must();
    let totp = totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, secret, None, String::new());
    let code = |clock: &ManualClock| totp.generate(clock_now(clock) as u64);
    assert_eq!(
        session
            .post("/api/v1/auth/totp/confirm", &json!({"code": code(&clock)}))
            .await
            .0,
        204
    );
    let (_, body) = session.post("/api/v1/auth/tokens", &json!({"name": "script"})).await;
    let token = app.api.with_token(body["data"]["secret"].as_str().must());
    assert_eq!(token.get("/api/v1/auth/me").await.0, 200);
    clock.advance(chrono::Duration::seconds(30));
    let (status, body) = session
        .post(
            "/api/v1/auth/totp/disable",
            &json!({"password": ADMIN_PASSWORD, "code": code(&clock)}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(token.get("/api/v1/auth/me").await.0, 401);
}

/// Behind trusted proxies each client has its own bucket; anyone else's forwarding headers
/// are ignored; IPv6 clients share their /64's bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_key_on_the_forwarded_client_and_ipv6_by_64() {
    let clock = clock();
    let behind_proxy = app_at(&clock, |c| {
        c.auth.login_attempts_per_ip_per_minute = 2;
        // Only the per-client limit is under test, not the account's lockout.
        c.auth.max_failed_logins = 100;
        c.http.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let attempt = |api: &Api, forwarded: Option<(&str, &str)>| {
        let mut req = api
            .http
            .post(api.url("/api/v1/auth/login"))
            .json(&json!({"email": "nobody@example.org", "password": "wrong-password-1"}));
        if let Some((name, value)) = forwarded {
            req = req.header(name, value);
        }
        let api = api.anonymous();
        async move { api.send(req).await.0 }
    };
    let api = behind_proxy.api.anonymous();
    for client in ["198.51.100.1", "198.51.100.2"] {
        for _ in 0..2 {
            assert_eq!(attempt(&api, Some(("x-forwarded-for", client))).await, 401, "{client}");
        }
        assert_eq!(attempt(&api, Some(("x-forwarded-for", client))).await, 429, "{client}");
    }
    // A forged entry on the left does not move the client to a fresh bucket.
    assert_eq!(
        attempt(&api, Some(("x-forwarded-for", "203.0.113.9, 198.51.100.1"))).await,
        429
    );
    // RFC 7239 Forwarded, IPv6 by /64.
    for host in ["2001:db8:1:2::1", "2001:db8:1:2::2"] {
        let value = format!("for=\"[{host}]:4711\"");
        assert_eq!(attempt(&api, Some(("forwarded", &value))).await, 401, "{host}");
    }
    assert_eq!(
        attempt(&api, Some(("forwarded", "for=\"[2001:db8:1:2:ffff::3]\""))).await,
        429,
        "same /64"
    );
    assert_eq!(
        attempt(&api, Some(("forwarded", "for=\"[2001:db8:1:3::1]\""))).await,
        401,
        "another /64"
    );

    // Without trusted proxies, the headers are ignored: one bucket for the peer.
    let direct = app_at(&clock, |c| {
        c.auth.login_attempts_per_ip_per_minute = 2;
        c.auth.max_failed_logins = 100;
    })
    .await;
    let api = direct.api.anonymous();
    for (i, client) in ["198.51.100.1", "198.51.100.2", "198.51.100.3"].iter().enumerate() {
        let want = if i < 2 { 401 } else { 429 };
        assert_eq!(attempt(&api, Some(("x-forwarded-for", client))).await, want, "{client}");
    }
}

/// One source cannot fill the pending enrolment requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_claims_are_capped_per_source() {
    let app = spawn_app(|c| {
        c.enrolment.max_pending_per_source = 2;
        c.http.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let api = app.api.anonymous();
    let request = |device: String, client: &'static str| {
        let key = luach_pki::DeviceKey::generate().must();
        let csr = key.csr_pem(&device).must();
        let req = api
            .http
            .post(api.url("/api/v1/enrolment/requests"))
            .header("x-forwarded-for", client)
            .json(&json!({"device_id": device, "csr_pem": csr}));
        let api = api.clone();
        async move { api.send(req).await }
    };
    for i in 0..2 {
        assert_eq!(request(format!("flood{i}"), "198.51.100.7").await.0, 201);
    }
    let (status, body) = request("flood2".into(), "198.51.100.7").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("too_many_requests")),
        "{body}"
    );
    assert_eq!(
        request("honest1".into(), "198.51.100.8").await.0,
        201,
        "another source still enrols"
    );
}
