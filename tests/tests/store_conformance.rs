//! One conformance suite, run against every storage backend: SQLite (a real file) and
//! MongoDB (SecantusDB speaking the real wire protocol).

use chrono::{Duration, TimeZone, Utc};
use luach_control_plane::store::{
    self, DeviceFilter, DevicePatch, DeviceStatus, DocKind, DynStore, HelloInfo, MemorialInput, NewDevice, PageRequest,
    PassingDate, PresenceWrite, StoreError, SynagogueId, SynagogueProfile, SynagogueRepo, TenantScope, TypedDocs,
};
use luach_schemas::messages::Metrics;
use luach_schemas::{DeviceId, TenantId};
use luach_tests::{MongoWire, Must};

fn id(s: &str) -> DeviceId {
    DeviceId::parse(s).must()
}

fn scope(t: &str) -> TenantScope {
    TenantScope::trusted(TenantId::parse(t).must())
}

fn new(device: &str, tags: &[&str], group: Option<&str>) -> NewDevice {
    NewDevice {
        id: id(device),
        name: format!("Screen {device}"),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        group: group.map(str::to_owned),
        notes: String::new(),
    }
}

fn page(limit: u32, after: Option<&str>) -> PageRequest {
    PageRequest {
        limit,
        after: after.map(id),
    }
}

async fn suite(store: DynStore) {
    let now = Utc
        .with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .unwrap_or_else(Utc::now);
    let a = scope("shul-a");
    let b = scope("shul-b");

    // Create, including Hebrew text, and conflict on a taken id in any tenant.
    let created = store
        .create(&a, new("dev01", &["lobby", "לובי"], Some("main")), now)
        .await
        .must();
    assert_eq!(created.name, "Screen dev01");
    assert_eq!(created.status, DeviceStatus::Offline);
    assert_eq!(created.tags, ["lobby", "לובי"]);
    assert!(matches!(
        store.create(&a, new("dev01", &[], None), now).await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        store.create(&b, new("dev01", &[], None), now).await,
        Err(StoreError::Conflict { .. })
    ));
    for i in 2..=7 {
        let tags: &[&str] = if i % 2 == 0 { &["even"] } else { &[] };
        store
            .create(
                &a,
                new(
                    &format!("dev{i:02}"),
                    tags,
                    Some(if i < 5 { "main" } else { "beit-midrash" }),
                ),
                now,
            )
            .await
            .must();
    }
    store
        .create(&b, new("other01", &["even"], Some("main")), now)
        .await
        .must();

    // Get is tenant-scoped: another tenant's id is simply absent.
    assert!(store.get(&a, &id("dev01")).await.must().is_some());
    assert!(store.get(&b, &id("dev01")).await.must().is_none());
    assert!(store.get(&a, &id("other01")).await.must().is_none());

    // Keyset paging in id order, with totals.
    let all = DeviceFilter::default();
    let p1 = store.list(&a, &all, &page(3, None)).await.must();
    assert_eq!(p1.total, 7);
    assert_eq!(
        p1.items.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        ["dev01", "dev02", "dev03"]
    );
    assert_eq!(p1.next_after.as_deref(), Some("dev03"));
    let p3 = store.list(&a, &all, &page(3, Some("dev06"))).await.must();
    assert_eq!(p3.items.len(), 1);
    assert_eq!(p3.next_after, None);

    // Filters, alone and combined, never cross tenants.
    let by_tag = DeviceFilter {
        tag: Some("even".into()),
        ..Default::default()
    };
    let evens = store.list(&a, &by_tag, &page(50, None)).await.must();
    assert_eq!(
        evens.items.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        ["dev02", "dev04", "dev06"]
    );
    let hebrew = DeviceFilter {
        tag: Some("לובי".into()),
        ..Default::default()
    };
    assert_eq!(store.list(&a, &hebrew, &page(50, None)).await.must().total, 1);
    let combined = DeviceFilter {
        tag: Some("even".into()),
        group: Some("beit-midrash".into()),
        ..Default::default()
    };
    assert_eq!(store.list(&a, &combined, &page(50, None)).await.must().total, 1);
    let b_all = store.list(&b, &all, &page(50, None)).await.must();
    assert_eq!(
        b_all.items.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        ["other01"]
    );

    // Update: partial, clearing the group, scoped.
    let patch = DevicePatch {
        name: Some("Entrance".into()),
        group: Some(None),
        ..Default::default()
    };
    let updated = store
        .update(&a, &id("dev02"), patch.clone(), now + Duration::minutes(1))
        .await
        .must();
    let updated = updated.unwrap_or_else(|| panic!("dev02 missing"));
    assert_eq!(
        (updated.name.as_str(), updated.group.as_deref(), updated.tags.as_slice()),
        ("Entrance", None, ["even".to_owned()].as_slice())
    );
    assert_eq!(updated.updated_at, now + Duration::minutes(1));
    assert_eq!(store.get(&a, &id("dev02")).await.must(), Some(updated));
    assert!(store.update(&b, &id("dev02"), patch, now).await.must().is_none());

    // Presence: ingest resolves tenants; batches set status, hello info, metrics; last_seen
    // never moves backwards.
    let tenant = |t: &str| TenantId::parse(t).must();
    let found = store
        .tenants_of(&[id("dev03"), id("nosuch"), id("other01")])
        .await
        .must();
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found.get(&id("dev03")), Some(&tenant("shul-a")));
    assert_eq!(found.get(&id("other01")), Some(&tenant("shul-b")));

    // Bulk registration on first hello: new ids land in the scope's tenant with default
    // fields; ids that exist anywhere are left untouched.
    let many: Vec<DeviceId> = (0..1200).map(|i| id(&format!("auto{i:04}"))).collect();
    let mut with_existing = many.clone();
    with_existing.push(id("other01"));
    store.register_devices(&a, &with_existing, now).await.must();
    let found = store.tenants_of(&with_existing).await.must();
    assert_eq!(found.len(), 1201);
    assert_eq!(
        found.get(&id("other01")),
        Some(&tenant("shul-b")),
        "existing device moved tenant"
    );
    assert!(many.iter().all(|d| found.get(d) == Some(&tenant("shul-a"))));
    let auto = store
        .get(&a, &id("auto0007"))
        .await
        .must()
        .unwrap_or_else(|| panic!("auto0007"));
    assert_eq!(
        (auto.name.as_str(), auto.status, auto.tags.len()),
        ("auto0007", DeviceStatus::Offline, 0)
    );
    for d in &many {
        assert!(store.delete(&a, d).await.must());
    }
    let metrics = Metrics {
        cpu_percent: 12.5,
        mem_used_bytes: 1 << 30,
        mem_total_bytes: 4 << 30,
        agent_version: "1.2.3".into(),
        uptime_s: 99,
        ..Metrics::default()
    };
    let t1 = now + Duration::seconds(10);
    store
        .apply_presence(&[
            PresenceWrite {
                device: id("dev03"),
                last_seen: Some(t1),
                status: Some(DeviceStatus::Online),
                hello: Some(HelloInfo {
                    agent_version: "1.2.3".into(),
                    platform: "linux-x86_64".into(),
                    ip: Some("10.0.0.7".into()),
                }),
                metrics: Some((metrics.clone(), t1)),
            },
            PresenceWrite {
                device: id("other01"),
                last_seen: Some(t1),
                status: Some(DeviceStatus::Online),
                hello: None,
                metrics: None,
            },
        ])
        .await
        .must();
    store
        .apply_presence(&[PresenceWrite {
            device: id("dev03"),
            last_seen: Some(now),
            status: None,
            hello: None,
            metrics: None,
        }])
        .await
        .must();
    let d3 = store
        .get(&a, &id("dev03"))
        .await
        .must()
        .unwrap_or_else(|| panic!("dev03"));
    assert_eq!(d3.status, DeviceStatus::Online);
    assert_eq!(d3.last_seen, Some(t1));
    assert_eq!(d3.ip.as_deref(), Some("10.0.0.7"));
    assert_eq!(d3.metrics, Some(metrics));
    let online = DeviceFilter {
        status: Some(DeviceStatus::Online),
        ..Default::default()
    };
    assert_eq!(store.list(&a, &online, &page(50, None)).await.must().total, 1);
    assert_eq!(store.mark_all_offline().await.must(), 2);
    assert_eq!(store.list(&a, &online, &page(50, None)).await.must().total, 0);

    // Delete is scoped too.
    assert!(!store.delete(&b, &id("dev01")).await.must());
    assert!(store.delete(&a, &id("dev01")).await.must());
    assert!(!store.delete(&a, &id("dev01")).await.must());
    assert_eq!(store.list(&a, &all, &page(50, None)).await.must().total, 6);
    store.ping().await.must();

    synagogues(&store, now).await;
    memorials(&store, now).await;
}

async fn memorials(store: &DynStore, now: chrono::DateTime<Utc>) {
    let a = scope("shul-a");
    let b = scope("shul-b");
    let plaque = |name: &str| MemorialInput {
        name: name.to_owned(),
        family: "כהן".into(),
        passed: PassingDate::Hebrew {
            year: 5780,
            month: 10,
            day: 10,
        },
        notes: String::new(),
    };
    for i in 0..5 {
        let (_, created) = store
            .put_typed(&a, &format!("m{i}"), plaque(&format!("שם {i}")), now)
            .await
            .must();
        assert!(created);
    }
    // Same id in another tenant, and the same id under another kind, are separate records.
    store.put_typed(&b, "m1", plaque("other"), now).await.must();
    assert!(store.get_doc(&a, DocKind::Synagogue, "m1").await.must().is_none());
    let first = store.list_typed::<MemorialInput>(&a, 2, None).await.must();
    assert_eq!(first.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["m0", "m1"]);
    let rest = store.list_typed::<MemorialInput>(&a, 10, Some("m1")).await.must();
    assert_eq!(
        rest.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["m2", "m3", "m4"]
    );
    let got = store
        .get_typed::<MemorialInput>(&a, "m1")
        .await
        .must()
        .unwrap_or_else(|| panic!("m1"));
    assert_eq!(got.input, plaque("שם 1"));
    assert_eq!(
        store
            .get_typed::<MemorialInput>(&b, "m1")
            .await
            .must()
            .map(|m| m.input.name),
        Some("other".to_owned())
    );
    assert!(store.delete_typed::<MemorialInput>(&a, "m1").await.must());
    assert!(store.get_typed::<MemorialInput>(&a, "m1").await.must().is_none());
    assert!(store.get_typed::<MemorialInput>(&b, "m1").await.must().is_some());
}

fn profile(name: &str) -> SynagogueProfile {
    serde_json::from_value(serde_json::json!({
        "name": name, "latitude": 31.778, "longitude": 35.2354, "elevation_m": 754.0,
        "timezone": "Asia/Jerusalem", "israel": true, "nusach": "sefard", "language": "he",
        "candle_lighting_minutes": 40,
        "schedule": {"rules": [{"name": "מנחה", "time": {"zman": "sunset", "offset_minutes": -15},
                                "round": {"mode": "down", "minutes": 5}, "days": ["weekday"]}]}
    }))
    .must()
}

async fn synagogues(store: &DynStore, now: chrono::DateTime<Utc>) {
    let a = scope("shul-a");
    let b = scope("shul-b");
    let sid = |s: &str| SynagogueId::parse(s).must();
    let (created, is_new) = store
        .put_synagogue(&a, &sid("beit-el"), profile("בית אל"), now)
        .await
        .must();
    assert!(is_new);
    assert_eq!(created.profile, profile("בית אל"));
    // Another tenant may use the same id: it is a different synagogue.
    let (_, is_new) = store
        .put_synagogue(&b, &sid("beit-el"), profile("Other"), now)
        .await
        .must();
    assert!(is_new);
    // Replacing keeps created_at and moves updated_at.
    let later = now + Duration::minutes(5);
    let (replaced, is_new) = store
        .put_synagogue(&a, &sid("beit-el"), profile("בית אל החדש"), later)
        .await
        .must();
    assert!(!is_new);
    assert_eq!((replaced.created_at, replaced.updated_at), (now, later));
    let got = store
        .get_synagogue(&a, &sid("beit-el"))
        .await
        .must()
        .unwrap_or_else(|| panic!("missing"));
    assert_eq!(got, replaced);
    assert_eq!(
        store
            .get_synagogue(&b, &sid("beit-el"))
            .await
            .must()
            .map(|s| s.profile.name),
        Some("Other".to_owned())
    );
    store.put_synagogue(&a, &sid("alef"), profile("א"), now).await.must();
    let names: Vec<String> = store
        .list_synagogues(&a, 10)
        .await
        .must()
        .into_iter()
        .map(|s| s.id.to_string())
        .collect();
    assert_eq!(names, ["alef", "beit-el"]);
    assert_eq!(store.list_synagogues(&a, 1).await.must().len(), 1);
    assert!(!store.delete_synagogue(&b, &sid("alef")).await.must());
    assert!(store.delete_synagogue(&a, &sid("alef")).await.must());
    assert!(store.get_synagogue(&a, &sid("alef")).await.must().is_none());
    assert_eq!(store.list_synagogues(&b, 10).await.must().len(), 1);
}

#[tokio::test]
async fn sqlite_backend_conforms() {
    let dir = tempfile::tempdir().must();
    let url = format!("sqlite:{}", dir.path().join("conformance.sqlite3").display());
    let store = store::open(&url, "unused").await.must();
    assert_eq!(store.backend(), "sqlite");
    suite(store).await;
    // The file is real: reopening sees the data.
    let reopened = store::open(&url, "unused").await.must();
    assert_eq!(
        reopened
            .list(&scope("shul-a"), &DeviceFilter::default(), &page(50, None))
            .await
            .must()
            .total,
        6
    );
}

#[tokio::test]
async fn mongodb_backend_conforms() {
    let mongo = MongoWire::start();
    let store = store::open(&mongo.url, "luach_conformance").await.must();
    assert_eq!(store.backend(), "mongodb");
    suite(store).await;
}

/// Enrolment records: pending requests, device certificates, bulk tokens, and how revocation
/// reaches ingest. Run against every backend like the suite above.
async fn enrolment_suite(store: DynStore) {
    use luach_control_plane::store::{DeviceCertificate, EnrolmentRequest, EnrolmentToken, RequestState};
    let now = Utc
        .with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .unwrap_or_else(Utc::now);
    let a = scope("shul-a");
    let b = scope("shul-b");
    let tenant = |t: &str| TenantId::parse(t).must();
    let request = |device: &str, claim: &str, key: &str| EnrolmentRequest {
        device_id: id(device),
        claim_digest: claim.to_owned(),
        poll_digest: format!("poll-{device}"),
        csr_pem: "-----BEGIN CERTIFICATE REQUEST-----".into(),
        key_fingerprint: key.to_owned(),
        platform: Some("linux-x86_64".into()),
        agent_version: None,
        created_at: now,
        expires_at: now + Duration::minutes(15),
        state: RequestState::Pending,
    };

    // Requests: stored by device id, found by claim digest while pending and unexpired.
    store.put_request(&request("enrol1", "claim-1", "key-1")).await.must();
    store.put_request(&request("enrol2", "claim-2", "key-2")).await.must();
    assert!(matches!(
        store.put_request(&request("enrol3", "claim-1", "key-3")).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(
        store.request(&id("enrol1")).await.must(),
        Some(request("enrol1", "claim-1", "key-1"))
    );
    assert_eq!(store.request(&id("enrol3")).await.must(), None);
    assert_eq!(
        store.pending_by_claim("claim-2", now).await.must().map(|r| r.device_id),
        Some(id("enrol2"))
    );
    assert_eq!(
        store
            .pending_by_claim("claim-2", now + Duration::minutes(16))
            .await
            .must(),
        None
    );
    assert_eq!(store.count_pending(now).await.must(), 2);
    // The same device asking again replaces its request (new code).
    store.put_request(&request("enrol1", "claim-1b", "key-1")).await.must();
    assert_eq!(store.pending_by_claim("claim-1", now).await.must(), None);
    assert_eq!(store.count_pending(now).await.must(), 2);

    // Issuing: once, only with the current digest, extending the expiry for the fetch.
    let later = now + Duration::hours(1);
    assert!(
        !store
            .issue_request(&a, &id("enrol1"), "claim-1", "CERT", now, later)
            .await
            .must()
    );
    assert!(
        store
            .issue_request(&a, &id("enrol1"), "claim-1b", "CERT", now, later)
            .await
            .must()
    );
    assert!(
        !store
            .issue_request(&b, &id("enrol1"), "claim-1b", "CERT", now, later)
            .await
            .must()
    );
    let issued = store.request(&id("enrol1")).await.must().must();
    assert_eq!(
        issued.state,
        RequestState::Issued {
            tenant_id: tenant("shul-a"),
            certificate_pem: "CERT".into()
        }
    );
    assert_eq!(issued.expires_at, later);
    assert_eq!(store.pending_by_claim("claim-1b", now).await.must(), None);
    assert_eq!(store.count_pending(now).await.must(), 1);
    assert_eq!(
        store.delete_expired_requests(now + Duration::minutes(30)).await.must(),
        1
    );
    assert!(store.request(&id("enrol2")).await.must().is_none());
    assert!(store.request(&id("enrol1")).await.must().is_some());

    // Certificates: one per device, tenant-scoped reads and revocation.
    store.create(&a, new("enrol1", &[], None), now).await.must();
    let cert = |device: &str, t: &str, serial: &str| DeviceCertificate {
        device_id: id(device),
        tenant_id: tenant(t),
        serial: serial.to_owned(),
        key_fingerprint: "key-1".into(),
        not_before: now,
        not_after: now + Duration::days(30),
        issued_at: now,
        revoked_at: None,
    };
    store.put_certificate(&a, &cert("enrol1", "shul-a", "s1")).await.must();
    assert!(
        store
            .put_certificate(&b, &cert("enrol1", "shul-a", "s1"))
            .await
            .is_err()
    );
    assert_eq!(
        store.certificate(&id("enrol1")).await.must(),
        Some(cert("enrol1", "shul-a", "s1"))
    );
    assert!(store.certificate_in(&b, &id("enrol1")).await.must().is_none());
    // Renewal replaces only the expected serial.
    assert!(
        store
            .replace_certificate(&a, "s1", &cert("enrol1", "shul-a", "s2"))
            .await
            .must()
    );
    assert!(
        !store
            .replace_certificate(&a, "s1", &cert("enrol1", "shul-a", "s3"))
            .await
            .must()
    );
    assert!(
        !store
            .replace_certificate(&b, "s2", &cert("enrol1", "shul-a", "s3"))
            .await
            .must()
    );
    assert_eq!(
        store.certificate_in(&a, &id("enrol1")).await.must().map(|c| c.serial),
        Some("s2".into())
    );

    // Ingest sees the device until its certificate is revoked (by its own tenant only).
    assert_eq!(store.tenants_of(&[id("enrol1")]).await.must().len(), 1);
    assert!(!store.revoke_certificate(&b, &id("enrol1"), now).await.must());
    assert!(store.revoke_certificate(&a, &id("enrol1"), now).await.must());
    assert!(store.revoke_certificate(&a, &id("enrol1"), later).await.must());
    let revoked = store.certificate(&id("enrol1")).await.must().must();
    assert_eq!(revoked.revoked_at, Some(now), "the first revocation time is kept");
    assert!(store.tenants_of(&[id("enrol1")]).await.must().is_empty());
    // A revoked certificate is not renewed, even with the right serial.
    assert!(
        !store
            .replace_certificate(&a, "s2", &cert("enrol1", "shul-a", "s4"))
            .await
            .must()
    );
    // Re-enrolment (a claim) replaces the record and the device counts again.
    store.put_certificate(&a, &cert("enrol1", "shul-a", "s5")).await.must();
    assert_eq!(store.tenants_of(&[id("enrol1")]).await.must().len(), 1);
    // Deleted and revoked: auto-registration on hello never brings it back.
    assert!(store.revoke_certificate(&a, &id("enrol1"), now).await.must());
    assert!(store.delete(&a, &id("enrol1")).await.must());
    store
        .register_devices(&a, &[id("enrol1"), id("fresh1")], now)
        .await
        .must();
    assert!(store.get(&a, &id("enrol1")).await.must().is_none());
    assert!(store.get(&a, &id("fresh1")).await.must().is_some());

    // Bulk tokens: scoped listing and revocation, atomic uses up to the maximum.
    let token = |tid: &str, digest: &str, t: &str, max_uses: u32, created: chrono::DateTime<Utc>| EnrolmentToken {
        id: tid.to_owned(),
        digest: digest.to_owned(),
        tenant_id: tenant(t),
        name: format!("batch {tid}"),
        max_uses,
        uses: 0,
        created_by: "user-1".into(),
        created_at: created,
        expires_at: now + Duration::days(1),
        revoked_at: None,
    };
    store
        .insert_enrolment_token(&a, &token("t1", "d1", "shul-a", 2, now))
        .await
        .must();
    store
        .insert_enrolment_token(&a, &token("t2", "d2", "shul-a", 5, now + Duration::seconds(1)))
        .await
        .must();
    store
        .insert_enrolment_token(&b, &token("t3", "d3", "shul-b", 5, now))
        .await
        .must();
    assert!(
        store
            .insert_enrolment_token(&b, &token("t4", "d4", "shul-a", 5, now))
            .await
            .is_err()
    );
    let listed: Vec<String> = store
        .list_enrolment_tokens(&a)
        .await
        .must()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(listed, ["t2", "t1"], "newest first, own tenant only");
    let first = store.use_enrolment_token("d1", now).await.must().must();
    assert_eq!((first.uses, first.tenant_id.as_str()), (1, "shul-a"));
    assert_eq!(
        store.use_enrolment_token("d1", now).await.must().map(|t| t.uses),
        Some(2)
    );
    assert!(store.use_enrolment_token("d1", now).await.must().is_none(), "used up");
    store.release_enrolment_token("d1").await.must();
    assert_eq!(
        store.use_enrolment_token("d1", now).await.must().map(|t| t.uses),
        Some(2)
    );
    assert!(
        store
            .use_enrolment_token("d2", now + Duration::days(2))
            .await
            .must()
            .is_none(),
        "expired"
    );
    assert!(store.use_enrolment_token("nosuch", now).await.must().is_none());
    assert!(
        !store.revoke_enrolment_token(&a, "t3", now).await.must(),
        "another tenant's token"
    );
    assert!(store.revoke_enrolment_token(&a, "t2", now).await.must());
    assert!(store.use_enrolment_token("d2", now).await.must().is_none(), "revoked");
    assert!(store.use_enrolment_token("d3", now).await.must().is_some());
    let t2 = store
        .list_enrolment_tokens(&a)
        .await
        .must()
        .into_iter()
        .find(|t| t.id == "t2")
        .must();
    assert_eq!((t2.revoked_at, t2.uses), (Some(now), 0));
}

#[tokio::test]
async fn sqlite_enrolment_records_conform() {
    let dir = tempfile::tempdir().must();
    let url = format!("sqlite:{}", dir.path().join("enrolment.sqlite3").display());
    enrolment_suite(store::open(&url, "unused").await.must()).await;
}

#[tokio::test]
async fn mongodb_enrolment_records_conform() {
    let mongo = MongoWire::start();
    enrolment_suite(store::open(&mongo.url, "luach_enrolment").await.must()).await;
}
