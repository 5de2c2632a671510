//! `luach-bench --quota`: does one tenant driving ten times its API quota slow another down?
//!
//! One server, two tenants with the same data (100 screens, 20 plaques each). The tenant
//! `noisy` has a quota of `--quota-rpm` API requests per minute; `quiet` has none. `quiet`'s
//! REST mix runs at `--rest-rate` three times — alone, beside `noisy` offering ten times its
//! quota, alone again — each load in its own `luach-load` process. The figure is `quiet`'s p99
//! beside `noisy` against its p99 alone (the mean of the two alone runs: the peer of the same
//! run, on the same server and data).

use std::path::Path;

use anyhow::{Context, bail};
use luach_tests::{ADMIN_PASSWORD, Api};
use serde_json::{Value, json};

use super::{Args, Load, REST_MIX, load, start_server};

const SCREENS: usize = 100;
const PLAQUES: usize = 20;

/// A super admin's personal token, through the admin CLI.
pub(crate) fn super_admin_token(dir: &Path) -> anyhow::Result<String> {
    let email = "root@bench.example";
    let (ok, out) = luach_tests::admin(
        dir,
        &[],
        &["create-user", "--email", email, "--role", "super_admin"],
        &format!("{ADMIN_PASSWORD}\n"),
    );
    if !ok {
        bail!("create-user: {out}");
    }
    let (ok, out) = luach_tests::admin(dir, &[], &["create-token", "--email", email, "--name", "bench"], "");
    if !ok {
        bail!("create-token: {out}");
    }
    Ok(out.trim().to_owned())
}

/// Gives a tenant its screens and plaques; returns the screens' ids.
async fn fill(api: &Api, prefix: &str) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    for i in 0..SCREENS {
        let id = format!("{prefix}{i:05}");
        let (status, body) = api
            .post("/api/v1/devices", &json!({"id": id, "name": format!("Screen {i}")}))
            .await;
        if status != 201 {
            bail!("creating {id}: {status} {body}");
        }
        ids.push(id);
    }
    for i in 0..PLAQUES {
        let plaque =
            json!({"name": format!("Plaque {i}"), "passed": {"civil": {"date": format!("2001-02-{:02}", 1 + i % 28)}}});
        let (status, body) = api.post("/api/v1/memorials", &plaque).await;
        if status != 201 {
            bail!("creating a plaque: {status} {body}");
        }
    }
    Ok(ids)
}

fn ms(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(0.0)
}

pub async fn run(bin: &Path, args: &Args, dir: &Path) -> anyhow::Result<()> {
    let quiet_token = luach_tests::seed_tenant(dir, &[], "quiet", "admin@quiet.example");
    let noisy_token = luach_tests::seed_tenant(dir, &[], "noisy", "admin@noisy.example");
    let root_token = super_admin_token(dir)?;
    // No default API quota: only `noisy`'s own applies.
    let (_server, base) = start_server(bin, dir, &[("LUACH_QUOTAS__API_REQUESTS_PER_MINUTE", "0")]).await?;
    let quiet = Api::new(base.clone()).with_token(&quiet_token);
    let noisy = Api::new(base.clone()).with_token(&noisy_token);
    let root = Api::new(base.clone()).with_token(&root_token);
    let quiet_screens = fill(&quiet, "quiet").await?;
    let noisy_screens = fill(&noisy, "noisy").await?;
    let (status, body) = root
        .put(
            "/api/v1/tenants/noisy/quota",
            &json!({"api_requests_per_minute": args.quota_rpm}),
        )
        .await;
    if status != 200 {
        bail!("setting noisy's quota: {status} {body}");
    }
    let noisy_rate = 10.0 * args.quota_rpm as f64 / 60.0;
    println!(
        "quota benchmark: quiet offers {} req/s; noisy's quota is {} req/min, it offers {noisy_rate:.0} req/s (10×); \
         window {} s each",
        args.rest_rate, args.quota_rpm, args.window_secs
    );
    let quiet_load = |label: &'static str| {
        let (bin, base, token, screens) = (bin.to_owned(), base.clone(), quiet_token.clone(), quiet_screens.clone());
        let (rate, secs) = (args.rest_rate, args.window_secs);
        move || {
            load(
                &bin,
                &Load {
                    base: &base,
                    token: &token,
                    rate,
                    secs,
                    mix: REST_MIX,
                    devices: &screens,
                    label,
                },
            )
        }
    };
    // Warm caches and connections first.
    let _ = tokio::task::spawn_blocking(quiet_load("warm-up")).await?;
    let alone = tokio::task::spawn_blocking(quiet_load("quiet alone")).await??;
    let beside = tokio::task::spawn_blocking(quiet_load("quiet beside noisy"));
    let noisy_run = {
        let (bin, base, screens) = (bin.to_owned(), base.clone(), noisy_screens.clone());
        let secs = args.window_secs;
        tokio::task::spawn_blocking(move || {
            load(
                &bin,
                &Load {
                    base: &base,
                    token: &noisy_token,
                    rate: noisy_rate,
                    secs,
                    mix: REST_MIX,
                    devices: &screens,
                    label: "noisy at 10x its quota",
                },
            )
        })
    };
    let beside = beside.await??;
    let noisy_summary = noisy_run.await??;
    let again = tokio::task::spawn_blocking(quiet_load("quiet alone again")).await??;

    let refused = noisy_summary["statuses"]["429"].as_u64().unwrap_or(0);
    let answered = noisy_summary["requests"].as_u64().context("noisy requests")?;
    println!();
    println!("| figure | quiet alone | quiet beside noisy | quiet alone again | beside / alone (mean) |");
    println!("|---|---|---|---|---|");
    for (name, key) in [
        ("p50", "p50_ms"),
        ("p90", "p90_ms"),
        ("p99", "p99_ms"),
        ("max", "max_ms"),
    ] {
        let peer = (ms(&alone, key) + ms(&again, key)) / 2.0;
        let ratio = if peer > 0.0 {
            format!("{:.2}", ms(&beside, key) / peer)
        } else {
            "–".into()
        };
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {:.1} ms | {ratio} |",
            ms(&alone, key),
            ms(&beside, key),
            ms(&again, key)
        );
    }
    println!(
        "| answered 2xx | {}/{} | {}/{} | {}/{} | |",
        alone["ok"], alone["requests"], beside["ok"], beside["requests"], again["ok"], again["requests"]
    );
    println!();
    println!(
        "noisy: {answered} requests, {} answered 2xx, {refused} refused with 429 (quota {} per minute)",
        noisy_summary["ok"], args.quota_rpm
    );
    println!();
    println!(
        "{}",
        json!({"quota": {"alone": alone, "beside": beside, "again": again, "noisy": noisy_summary}})
    );
    Ok(())
}
