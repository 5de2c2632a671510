//! One conformance suite for every storage backend: each behaviour is one test, run against
//! SQLite (a real file) and against MongoDB (SecantusDB speaking the real wire protocol),
//! through the handles the application uses ([`TenantStore`], [`SystemStore`]).

use chrono::{DateTime, Duration, TimeZone, Utc};
use luach_control_plane::chain::{Actor, ChainKey, verify_chain};
use luach_control_plane::store::{
    self, CertificateEnd, DeviceCertificate, DeviceFilter, DevicePatch, DeviceStatus, EnrolmentRequest, EnrolmentToken,
    HelloInfo, MemorialInput, NewDevice, PageRequest, PassingDate, PresenceWrite, Quota, RequestState, Revoke,
    StoreError, StoreOptions, SynagogueId, SynagogueProfile, SystemStore, TenantScope, TokenKind, TokenRecord, User,
};
use luach_control_plane::store::{AlertFilter, AlertRecord, AlertState, Delivery, DeliveryState, Severity};
use luach_control_plane::store::{ExecFilter, ExecState, ExecUpdate, Execution, JobFilter, JobRecord, JobState};
use luach_schemas::messages::Metrics;
use luach_schemas::{DeviceId, TenantId, TopicPrefix};
use luach_tests::{MongoWire, Must};

/// A store under test, with what keeps it alive.
struct Ctx {
    system: SystemStore,
    key: ChainKey,
    _dir: Option<tempfile::TempDir>,
    _mongo: Option<MongoWire>,
}

fn key() -> ChainKey {
    ChainKey::new(b"conformance-chain-key-conformance").must()
}

fn options(url: String) -> StoreOptions {
    StoreOptions {
        url,
        database: "luach_conformance".into(),
        chain_key: key(),
        quota_defaults: Quota::default(),
        sqlite_readers: 2,
        migrate: true,
    }
}

impl Ctx {
    /// The actions in `tenant`'s audit chain, oldest first.
    async fn actions(&self, tenant: &str) -> Vec<String> {
        let scope = self.scope(tenant);
        let records = self.system.tenant(&scope).audit(0, 100).await.must();
        records.into_iter().map(|r| r.action).collect()
    }

    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().must();
        let url = format!("sqlite:{}", dir.path().join("conformance.sqlite3").display());
        let system = store::open(&options(url), luach_control_plane::metrics::Metrics::new())
            .await
            .must();
        assert_eq!(system.backend(), "sqlite");
        Self {
            system,
            key: key(),
            _dir: Some(dir),
            _mongo: None,
        }
    }

    async fn mongodb() -> Self {
        let mongo = MongoWire::start();
        let system = store::open(
            &options(mongo.url.clone()),
            luach_control_plane::metrics::Metrics::new(),
        )
        .await
        .must();
        assert_eq!(system.backend(), "mongodb");
        Self {
            system,
            key: key(),
            _dir: None,
            _mongo: Some(mongo),
        }
    }

    fn scope(&self, tenant: &str) -> TenantScope {
        self.system.scope(TenantId::parse(tenant).must(), Actor::cli())
    }

    /// Creates tenants `shul-a` and `shul-b`.
    async fn tenants(&self) {
        let cli = self.system.installation_scope(Actor::cli());
        for t in ["shul-a", "shul-b"] {
            self.system
                .installation(&cli)
                .create_tenant(TenantId::parse(t).must(), t.into(), now())
                .await
                .must();
        }
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .unwrap_or_else(Utc::now)
}

fn id(s: &str) -> DeviceId {
    DeviceId::parse(s).must()
}

fn tenant(s: &str) -> TenantId {
    TenantId::parse(s).must()
}

fn prefix(s: &str) -> TopicPrefix {
    TopicPrefix::parse(s).must()
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

macro_rules! conformance {
    ($($behaviour:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $behaviour() {
                    super::$behaviour(super::Ctx::sqlite().await).await;
                }
            )*
        }
        mod mongodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $behaviour() {
                    super::$behaviour(super::Ctx::mongodb().await).await;
                }
            )*
        }
    };
}

conformance!(
    devices_are_created_once_across_tenants,
    device_listings_page_filter_and_stay_in_their_tenant,
    device_updates_compare_and_set_their_revision,
    deleting_a_device_is_scoped_and_revokes_its_certificate,
    presence_batches_apply_and_reset,
    presence_transitions_are_reported_once,
    leases_have_one_holder_until_they_lapse,
    prefixes_resolve_to_devices_and_registration_skips_enrolled_ids,
    documents_are_kept_apart_by_tenant_and_kind,
    synagogues_keep_their_creation_time,
    content_quota_counts_stored_bytes,
    tenants_are_unique_and_keep_their_quota,
    users_are_unique_by_email_and_reached_through_their_tenant,
    second_factor_steps_only_move_forward,
    refresh_tokens_are_consumed_once_and_families_revoke,
    personal_tokens_list_touch_and_revoke_with_audit,
    enrolment_requests_move_by_compare_and_set,
    certificates_supersede_renew_and_revoke_by_serial,
    a_certificate_never_moves_a_device_between_tenants,
    renewal_nonces_are_single_use,
    enrolment_tokens_count_uses_and_stay_in_their_tenant,
    every_change_is_chained_under_the_key,
    concurrent_changes_keep_one_unbroken_chain,
    migrations_are_recorded_once,
    jobs_and_executions_move_by_compare_and_set_in_their_tenant,
    ended_jobs_are_deleted_with_their_executions_after_their_retention,
    job_idempotency_keys_are_unique_per_tenant,
    telemetry_is_stored_once_rolled_up_and_kept_in_its_tenant,
    alerts_move_by_compare_and_set_in_their_tenant,
    messages_are_written_with_their_alert_and_settled_once,
    drops_bundle_fetches_and_requeued_messages,
);

fn message(id: &str, to: &str) -> Delivery {
    Delivery {
        id: id.into(),
        tenant_id: tenant("shul-b"),
        channel_id: "ch1".into(),
        kind: "email".into(),
        recipient: to.into(),
        event: "alert.opened".into(),
        subject_id: None,
        payload: serde_json::json!({"subject": "Hot"}),
        state: DeliveryState::Pending,
        attempts: 0,
        next_at: now(),
        last_error: None,
        hold: None,
        receipt: None,
        created_at: now(),
        updated_at: now(),
        sent_at: None,
    }
}

async fn messages_are_written_with_their_alert_and_settled_once(ctx: Ctx) {
    ctx.tenants().await;
    let (a, b) = (ctx.scope("shul-a"), ctx.scope("shul-b"));
    let (sa, sb) = (ctx.system.tenant(&a), ctx.system.tenant(&b));
    // Written with the alert, in the alert's tenant whatever they said.
    let opened = sa
        .alerts()
        .open(
            alert("0190-m1", "ms01", "r1"),
            vec![
                message("0190-d1", "gabbai@a.example"),
                message("0190-d2", "rav@a.example"),
            ],
        )
        .await
        .must();
    let log = sa.deliveries().list(10, None).await.must();
    assert_eq!(log.total, 2);
    assert!(log.items.iter().all(|d| d.tenant_id.as_str() == "shul-a"));
    assert_eq!(sb.deliveries().list(10, None).await.must().total, 0);
    // A move that does not happen writes none of its messages.
    let mut resolved = opened.clone();
    resolved.state = AlertState::Resolved;
    resolved.resolved_at = Some(now());
    let mut stale = opened.clone();
    stale.state = AlertState::Acknowledged;
    assert!(
        !sa.alerts()
            .moved(&stale, &resolved, vec![message("0190-dx", "x@a.example")])
            .await
            .must()
    );
    assert_eq!(sa.deliveries().list(10, None).await.must().total, 2);
    assert!(
        sa.alerts()
            .moved(&opened, &resolved, vec![message("0190-d3", "gabbai@a.example")])
            .await
            .must()
    );
    assert_eq!(sa.deliveries().list(10, None).await.must().total, 3);

    // Due ones, oldest first; one not due yet stays out.
    let due = ctx.system.due_deliveries(now(), 10).await.must();
    let ids: Vec<&str> = due.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["0190-d1", "0190-d2", "0190-d3"]);
    // A failed attempt: pending again later; a second sender with the same view loses.
    let first = due[0].clone();
    let mut retry = first.clone();
    retry.attempts = 1;
    retry.next_at = now() + Duration::minutes(1);
    retry.last_error = Some("connection refused".into());
    assert!(ctx.system.settle_delivery(&first, &retry).await.must());
    assert!(!ctx.system.settle_delivery(&first, &retry).await.must());
    assert_eq!(ctx.system.due_deliveries(now(), 10).await.must().len(), 2);
    // Sent: final; nothing moves it again.
    let mut sent = retry.clone();
    sent.state = DeliveryState::Sent;
    sent.attempts = 2;
    sent.sent_at = Some(now());
    assert!(ctx.system.settle_delivery(&retry, &sent).await.must());
    assert!(ctx.system.settle_delivery(&sent, &retry).await.is_err());
    let due_later = ctx.system.due_deliveries(now() + Duration::hours(1), 10).await.must();
    assert_eq!(due_later.len(), 2, "{due_later:?}");
    let stored = sa.deliveries().list(10, None).await.must();
    let d1 = stored.items.iter().find(|d| d.id == "0190-d1").must();
    assert_eq!((d1.state, d1.attempts), (DeliveryState::Sent, 2));
}

fn alert(id: &str, device: &str, rule: &str) -> AlertRecord {
    AlertRecord {
        id: id.into(),
        tenant_id: tenant("shul-b"),
        rule_id: rule.into(),
        rule_name: "Hot".into(),
        device_id: self::id(device),
        severity: Severity::Critical,
        state: AlertState::Resolved,
        summary: "Hot: temperature_c is 80.0 °C".into(),
        value: Some(80.0),
        since: now(),
        opened_at: now(),
        acknowledged_at: None,
        acknowledged_by: None,
        resolved_at: None,
        resolution: None,
        resolved_value: None,
        updated_at: now(),
    }
}

async fn alerts_move_by_compare_and_set_in_their_tenant(ctx: Ctx) {
    ctx.tenants().await;
    let (a, b) = (ctx.scope("shul-a"), ctx.scope("shul-b"));
    let (sa, sb) = (ctx.system.tenant(&a), ctx.system.tenant(&b));
    // Opened through shul-a's handle: in shul-a and open, whatever the record said.
    let first = sa
        .alerts()
        .open(alert("0190-a1", "al01", "r1"), Vec::new())
        .await
        .must();
    assert_eq!((first.tenant_id.as_str(), first.state), ("shul-a", AlertState::Open));
    sa.alerts()
        .open(alert("0190-a2", "al02", "r1"), Vec::new())
        .await
        .must();
    sa.alerts()
        .open(alert("0190-a3", "al01", "r2"), Vec::new())
        .await
        .must();
    let mut theirs = alert("0190-b1", "al09", "r1");
    theirs.tenant_id = tenant("shul-b");
    sb.alerts().open(theirs, Vec::new()).await.must();
    assert!(sb.alerts().get("0190-a1").await.must().is_none());
    assert_eq!(sb.alerts().active().await.must().len(), 1);

    // Newest first, filtered by state and screen, paged.
    let all = sa.alerts().list(&AlertFilter::default(), 2, None).await.must();
    let ids: Vec<&str> = all.items.iter().map(|x| x.id.as_str()).collect();
    assert_eq!((ids, all.total), (vec!["0190-a3", "0190-a2"], 3));
    let rest = sa
        .alerts()
        .list(&AlertFilter::default(), 2, all.next_after.as_deref())
        .await
        .must();
    assert_eq!(rest.items.len(), 1);
    let by_screen = AlertFilter {
        device: Some(id("al01")),
        ..AlertFilter::default()
    };
    assert_eq!(sa.alerts().list(&by_screen, 10, None).await.must().total, 2);

    // Acknowledged (audited), then resolved; a stale move and a forbidden one are refused.
    let mut acked = first.clone();
    acked.state = AlertState::Acknowledged;
    acked.acknowledged_at = Some(now());
    acked.acknowledged_by = Some("cli".into());
    assert!(sa.alerts().moved(&first, &acked, Vec::new()).await.must());
    assert!(
        !sa.alerts().moved(&first, &acked, Vec::new()).await.must(),
        "it is no longer open"
    );
    let audit = sa.audit(0, 100).await.must();
    assert!(audit.iter().any(|r| r.action == "alert.acknowledge"), "{audit:?}");
    let mut resolved = acked.clone();
    resolved.state = AlertState::Resolved;
    resolved.resolved_at = Some(now() + Duration::hours(1));
    resolved.resolution = Some("the condition cleared".into());
    resolved.resolved_value = Some(65.0);
    assert!(sa.alerts().moved(&acked, &resolved, Vec::new()).await.must());
    assert!(
        sa.alerts().moved(&resolved, &first, Vec::new()).await.is_err(),
        "resolved is final"
    );
    // Another tenant's handle cannot move one of shul-a's alerts.
    let second = sa.alerts().get("0190-a2").await.must().must();
    let mut taken = second.clone();
    taken.state = AlertState::Acknowledged;
    assert!(sb.alerts().moved(&second, &taken, Vec::new()).await.is_err());
    assert_eq!(sa.alerts().get("0190-a2").await.must(), Some(second));
    assert_eq!(sa.alerts().get("0190-a1").await.must(), Some(resolved));
    let active = AlertFilter {
        active: true,
        ..AlertFilter::default()
    };
    assert_eq!(sa.alerts().list(&active, 10, None).await.must().total, 2);
    let resolved_only = AlertFilter {
        state: Some(AlertState::Resolved),
        ..AlertFilter::default()
    };
    assert_eq!(sa.alerts().list(&resolved_only, 10, None).await.must().total, 1);

    // Retention takes resolved alerts only, once past the cut-off.
    assert_eq!(ctx.system.delete_alerts_resolved_before(now()).await.must(), 0);
    assert_eq!(
        ctx.system
            .delete_alerts_resolved_before(now() + Duration::days(1))
            .await
            .must(),
        1
    );
    assert_eq!(
        sa.alerts().list(&AlertFilter::default(), 10, None).await.must().total,
        2
    );
}

fn sample(seq: u64, at: &str, cpu: f64) -> store::TelemetryRow {
    let at: DateTime<Utc> = at.parse().must();
    store::TelemetryRow {
        tenant_id: tenant("shul-a"),
        device_id: id("tel01"),
        stream: "stream01".into(),
        seq,
        at,
        received: now(),
        kind: "metrics".into(),
        body: serde_json::json!({"cpu_percent": cpu, "uptime_s": seq}),
    }
}

fn report(highest_seq: u64, dropped: u64) -> store::StreamReport {
    store::StreamReport {
        tenant_id: tenant("shul-a"),
        device_id: id("tel01"),
        stream: "stream01".into(),
        dropped,
        highest_seq,
        stored: 0,
        missing: 0,
        updated_at: now(),
    }
}

async fn telemetry_is_stored_once_rolled_up_and_kept_in_its_tenant(ctx: Ctx) {
    ctx.tenants().await;
    let (a, b) = (ctx.scope("shul-a"), ctx.scope("shul-b"));
    let sa = ctx.system.tenant(&a);
    sa.create_device(new("tel01", &[], None), now()).await.must();
    let mut rows = vec![
        sample(1, "2026-02-01T10:05:00Z", 10.0),
        sample(2, "2026-02-01T10:30:00Z", 30.0),
        sample(3, "2026-02-01T11:10:00Z", 50.0),
        sample(4, "2026-02-28T12:00:00Z", 70.0),
    ];
    let mut event = sample(6, "2026-02-28T12:01:00Z", 0.0);
    event.kind = "event".into();
    event.body = serde_json::json!({"name": "agent_started", "detail": "0.1.0"});
    rows.push(event);
    assert_eq!(ctx.system.store_telemetry(&rows, &[report(6, 1)]).await.must(), 5);
    // Sent again (a lost answer): nothing new; the report only rises.
    assert_eq!(ctx.system.store_telemetry(&rows[1..], &[report(4, 0)]).await.must(), 0);
    let history = sa.telemetry();
    let streams = history.streams(&id("tel01")).await.must();
    assert_eq!(streams.len(), 1);
    assert_eq!(
        (
            streams[0].stored,
            streams[0].dropped,
            streams[0].highest_seq,
            streams[0].missing
        ),
        (5, 1, 6, 1)
    );
    let first = history.records(&id("tel01"), None, None, 3).await.must();
    assert_eq!(first.total, 5);
    assert_eq!(first.next_after.as_deref(), Some("stream01:3"));
    let after = store::After::parse("stream01:3").must();
    let rest = history.records(&id("tel01"), None, Some(&after), 3).await.must();
    let seqs: Vec<u64> = rest.items.iter().map(|r| r.seq).collect();
    assert_eq!((seqs, rest.next_after), (vec![4, 6], None));
    let events = history.records(&id("tel01"), Some("event"), None, 10).await.must();
    assert_eq!(events.items.len(), 1);
    assert_eq!(events.items[0].body["name"], "agent_started");

    // Another tenant reaches none of it.
    let hb = ctx.system.tenant(&b).telemetry();
    assert_eq!(hb.records(&id("tel01"), None, None, 10).await.must().total, 0);
    assert!(hb.streams(&id("tel01")).await.must().is_empty());
    let (from, to) = ("2026-02-01T00:00:00Z".parse().must(), now());
    assert!(
        hb.series(&id("tel01"), "cpu_percent", from, to, 3600)
            .await
            .must()
            .points
            .is_empty()
    );

    let series = || async { history.series(&id("tel01"), "cpu_percent", from, to, 3600).await.must() };
    let before = series().await;
    let summary: Vec<(f64, u64)> = before.points.iter().map(|p| (p.avg, p.count)).collect();
    assert_eq!(summary, [(20.0, 2), (50.0, 1), (70.0, 1)]);

    // Past the raw retention, hours replace the raw records: the series reads the same, and a
    // second roll-up changes nothing.
    let retention = store::Retention::default();
    assert_eq!(ctx.system.compact_telemetry(retention, now()).await.must(), (3, 0));
    assert_eq!(series().await, before);
    assert_eq!(ctx.system.compact_telemetry(retention, now()).await.must(), (0, 0));
    assert_eq!(series().await, before);
    assert_eq!(history.records(&id("tel01"), None, None, 10).await.must().total, 2);
    // Hours go after the hourly retention.
    let later = now() + Duration::days(400);
    assert_eq!(ctx.system.compact_telemetry(retention, later).await.must(), (2, 6));
    assert!(series().await.points.is_empty());

    // A deleted screen's history goes with it.
    assert_eq!(ctx.system.store_telemetry(&rows[3..4], &[report(6, 1)]).await.must(), 1);
    assert!(sa.delete_device(&id("tel01")).await.must());
    assert!(history.streams(&id("tel01")).await.must().is_empty());
    assert_eq!(history.records(&id("tel01"), None, None, 10).await.must().total, 0);
}

async fn devices_are_created_once_across_tenants(ctx: Ctx) {
    ctx.tenants().await;
    let (a, b) = (ctx.scope("shul-a"), ctx.scope("shul-b"));
    let created = ctx
        .system
        .tenant(&a)
        .create_device(new("dev01", &["lobby", "לובי"], Some("main")), now())
        .await
        .must();
    assert_eq!(created.name, "Screen dev01");
    assert_eq!(created.status, DeviceStatus::Offline);
    assert_eq!(created.tags, ["lobby", "לובי"]);
    assert_eq!(created.revision, 1);
    for scope in [&a, &b] {
        assert!(matches!(
            ctx.system
                .tenant(scope)
                .create_device(new("dev01", &[], None), now())
                .await,
            Err(StoreError::Conflict { .. })
        ));
    }
    assert_eq!(ctx.system.tenant(&a).device(&id("dev01")).await.must(), Some(created));
    assert!(ctx.system.tenant(&b).device(&id("dev01")).await.must().is_none());
}

async fn device_listings_page_filter_and_stay_in_their_tenant(ctx: Ctx) {
    ctx.tenants().await;
    let (a, b) = (ctx.scope("shul-a"), ctx.scope("shul-b"));
    let (sa, sb) = (ctx.system.tenant(&a), ctx.system.tenant(&b));
    for i in 1..=7 {
        let tags: &[&str] = if i % 2 == 0 { &["even"] } else { &["odd", "לובי"] };
        let group = if i < 5 { "main" } else { "beit-midrash" };
        sa.create_device(new(&format!("dev{i:02}"), tags, Some(group)), now())
            .await
            .must();
    }
    sb.create_device(new("other01", &["even"], Some("main")), now())
        .await
        .must();
    let all = DeviceFilter::default();
    let p1 = sa.devices(&all, &page(3, None)).await.must();
    assert_eq!(p1.total, 7);
    assert_eq!(
        p1.items.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        ["dev01", "dev02", "dev03"]
    );
    assert_eq!(p1.next_after.as_deref(), Some("dev03"));
    let p3 = sa.devices(&all, &page(3, Some("dev06"))).await.must();
    assert_eq!((p3.items.len(), p3.next_after), (1, None));
    let filter = |tag: Option<&str>, group: Option<&str>| DeviceFilter {
        tag: tag.map(str::to_owned),
        group: group.map(str::to_owned),
        ..DeviceFilter::default()
    };
    let evens = sa.devices(&filter(Some("even"), None), &page(50, None)).await.must();
    assert_eq!(
        evens.items.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        ["dev02", "dev04", "dev06"]
    );
    assert_eq!(
        sa.devices(&filter(Some("לובי"), None), &page(50, None))
            .await
            .must()
            .total,
        4
    );
    assert_eq!(
        sa.devices(&filter(Some("even"), Some("beit-midrash")), &page(50, None))
            .await
            .must()
            .total,
        1
    );
    let online = DeviceFilter {
        status: Some(DeviceStatus::Online),
        ..DeviceFilter::default()
    };
    assert_eq!(sa.devices(&online, &page(50, None)).await.must().total, 0);
    assert_eq!(sb.devices(&all, &page(50, None)).await.must().total, 1);
}

async fn device_updates_compare_and_set_their_revision(ctx: Ctx) {
    ctx.tenants().await;
    let (a, b) = (ctx.scope("shul-a"), ctx.scope("shul-b"));
    let sa = ctx.system.tenant(&a);
    sa.create_device(new("dev01", &["x"], Some("main")), now()).await.must();
    let later = now() + Duration::minutes(1);
    let board = luach_content::BoardSettings {
        layout: luach_content::BoardLayout::Portrait,
        theme: luach_content::BoardTheme::HighContrast,
        language: luach_content::BoardLanguage::Both,
        // The power schedule is kept whole, whatever its kinds of time.
        power: Some(
            serde_json::from_value(serde_json::json!({
                "off": {"zman": "sunset", "offset_minutes": 90}, "on": {"first_prayer": -30}
            }))
            .must(),
        ),
    };
    let patch = DevicePatch {
        name: Some("Lobby".into()),
        group: Some(None),
        board: Some(board.clone()),
        ..DevicePatch::default()
    };
    let updated = sa.update_device(&id("dev01"), &patch, later).await.must().must();
    assert_eq!(
        (
            updated.name.as_str(),
            updated.group.as_deref(),
            updated.revision,
            &updated.board
        ),
        ("Lobby", None, 2, &board)
    );
    assert_eq!(updated.tags, ["x"]);
    assert_eq!(sa.device(&id("dev01")).await.must(), Some(updated));
    // Another tenant cannot touch it.
    assert!(
        ctx.system
            .tenant(&b)
            .update_device(&id("dev01"), &patch, later)
            .await
            .must()
            .is_none()
    );
    // Concurrent updates of different fields both land: each retries on the newer revision.
    let notes = DevicePatch {
        notes: Some("notes".into()),
        ..DevicePatch::default()
    };
    let tags = DevicePatch {
        tags: Some(vec!["y".into()]),
        ..DevicePatch::default()
    };
    let dev = id("dev01");
    let (x, y) = tokio::join!(
        sa.update_device(&dev, &notes, later),
        sa.update_device(&dev, &tags, later)
    );
    x.must();
    y.must();
    let now_stored = sa.device(&id("dev01")).await.must().must();
    assert_eq!(
        (now_stored.notes.as_str(), now_stored.tags.as_slice()),
        ("notes", &["y".to_owned()][..])
    );
    assert_eq!(now_stored.revision, 4);
}

async fn deleting_a_device_is_scoped_and_revokes_its_certificate(ctx: Ctx) {
    ctx.tenants().await;
    let (a, b) = (ctx.scope("shul-a"), ctx.scope("shul-b"));
    let sa = ctx.system.tenant(&a);
    sa.create_device(new("dev01", &[], None), now()).await.must();
    sa.issue_certificate(&cert("dev01", "shul-a", "s1", "p1"), "claim", false, None)
        .await
        .must();
    assert!(!ctx.system.tenant(&b).delete_device(&id("dev01")).await.must());
    assert!(sa.delete_device(&id("dev01")).await.must());
    assert!(!sa.delete_device(&id("dev01")).await.must());
    let current = ctx.system.certificate(&id("dev01")).await.must().must();
    assert!(current.is_revoked(), "deleting revokes");
    assert!(ctx.system.resolve_prefixes(&[prefix("p1")]).await.must().is_empty());
}

async fn presence_batches_apply_and_reset(ctx: Ctx) {
    ctx.tenants().await;
    let a = ctx.scope("shul-a");
    let sa = ctx.system.tenant(&a);
    for d in ["dev01", "dev02"] {
        sa.create_device(new(d, &[], None), now()).await.must();
    }
    let t1 = now() + Duration::seconds(5);
    let metrics = Metrics {
        cpu_percent: 12.5,
        mem_used_bytes: 512 << 20,
        mem_total_bytes: 2048 << 20,
        disk_used_bytes: 1 << 30,
        disk_total_bytes: 8 << 30,
        temperature_c: Some(51.5),
        uptime_s: 60,
        agent_version: "1.2.3".into(),
    };
    let batch = vec![
        PresenceWrite {
            device: id("dev01"),
            last_seen: Some(t1),
            status: Some(DeviceStatus::Online),
            hello: Some(HelloInfo {
                agent_version: "1.2.3".into(),
                platform: "linux-x86_64".into(),
                ip: Some("10.0.0.5".into()),
            }),
            metrics: Some((metrics.clone(), t1)),
        },
        PresenceWrite {
            device: id("dev02"),
            last_seen: Some(t1),
            status: None,
            hello: None,
            metrics: None,
        },
        // A late write never moves last_seen back.
        PresenceWrite {
            device: id("dev01"),
            last_seen: Some(now()),
            status: None,
            hello: None,
            metrics: None,
        },
        // Unknown devices are ignored.
        PresenceWrite {
            device: id("ghost"),
            last_seen: Some(t1),
            status: Some(DeviceStatus::Online),
            hello: None,
            metrics: None,
        },
    ];
    let moved = ctx.system.apply_presence(&batch).await.must();
    assert_eq!(
        moved,
        [(id("dev01"), DeviceStatus::Online)],
        "only dev01's status moved"
    );
    let d1 = sa.device(&id("dev01")).await.must().must();
    assert_eq!((d1.status, d1.last_seen), (DeviceStatus::Online, Some(t1)));
    assert_eq!(d1.agent_version.as_deref(), Some("1.2.3"));
    assert_eq!(d1.metrics, Some(metrics));
    assert_eq!(d1.revision, 1, "presence is not an operator change");
    assert_eq!(ctx.system.mark_all_offline().await.must(), 1);
    assert_eq!(
        sa.device(&id("dev01")).await.must().must().status,
        DeviceStatus::Offline
    );
}

fn status(device: &str, status: DeviceStatus, seen: Option<DateTime<Utc>>) -> PresenceWrite {
    PresenceWrite {
        device: id(device),
        last_seen: seen,
        status: Some(status),
        hello: None,
        metrics: None,
    }
}

/// Two replicas proposing the same status: the store reports the transition to one of them;
/// the sweep moves each silent device once and leaves devices heard since the cut-off alone.
async fn presence_transitions_are_reported_once(ctx: Ctx) {
    ctx.tenants().await;
    let (a, b) = (ctx.scope("shul-a"), ctx.scope("shul-b"));
    ctx.system
        .tenant(&a)
        .create_device(new("dev01", &[], None), now())
        .await
        .must();
    ctx.system
        .tenant(&a)
        .create_device(new("dev02", &[], None), now())
        .await
        .must();
    ctx.system
        .tenant(&b)
        .create_device(new("dev03", &[], None), now())
        .await
        .must();
    let t0 = now();
    let first = ctx
        .system
        .apply_presence(&[status("dev01", DeviceStatus::Online, Some(t0))])
        .await
        .must();
    let second = ctx
        .system
        .apply_presence(&[status("dev01", DeviceStatus::Online, Some(t0))])
        .await
        .must();
    assert_eq!((first.len(), second.len()), (1, 0), "{first:?} {second:?}");
    let late = t0 + Duration::seconds(60);
    ctx.system
        .apply_presence(&[
            status("dev02", DeviceStatus::Online, Some(late)),
            status("dev03", DeviceStatus::Online, Some(t0)),
        ])
        .await
        .must();
    assert_eq!(ctx.system.count_online().await.must(), 3);
    // Cut-off between t0 and late: dev01 (tenant a) and dev03 (tenant b) go, dev02 stays.
    let cutoff = t0 + Duration::seconds(30);
    let mut gone = ctx.system.expire_presence(cutoff).await.must();
    gone.sort_by(|x, y| x.0.as_str().cmp(y.0.as_str()));
    assert_eq!(gone, [(id("dev01"), tenant("shul-a")), (id("dev03"), tenant("shul-b"))]);
    assert!(ctx.system.expire_presence(cutoff).await.must().is_empty(), "moved once");
    assert_eq!(ctx.system.count_online().await.must(), 1);
    let moved = ctx
        .system
        .apply_presence(&[status("dev01", DeviceStatus::Offline, None)])
        .await
        .must();
    assert!(moved.is_empty(), "already offline: {moved:?}");
}

/// What alert rules read off a device (drops counted at each move to offline, the bundle it
/// last fetched, never moved back) and a message queued again under its id (kept once).
async fn drops_bundle_fetches_and_requeued_messages(ctx: Ctx) {
    ctx.tenants().await;
    let (a, b) = (ctx.scope("shul-a"), ctx.scope("shul-b"));
    let sa = ctx.system.tenant(&a);
    sa.create_device(new("dev01", &[], None), now()).await.must();
    let t0 = now();
    for (i, s) in [
        DeviceStatus::Online,
        DeviceStatus::Offline,
        DeviceStatus::Offline,
        DeviceStatus::Online,
    ]
    .into_iter()
    .enumerate()
    {
        ctx.system
            .apply_presence(&[status("dev01", s, Some(t0 + Duration::seconds(i as i64)))])
            .await
            .must();
    }
    // Online → offline once by a status, once by silence.
    ctx.system.expire_presence(t0 + Duration::seconds(60)).await.must();
    let d = sa.device(&id("dev01")).await.must().must();
    assert_eq!(d.drops, 2, "{d:?}");
    assert_eq!((d.bundle_sha256.as_deref(), d.bundle_fetched_at), (None, None));
    let later = t0 + Duration::seconds(10);
    sa.record_bundle_fetch(&id("dev01"), "bbb", later).await.must();
    sa.record_bundle_fetch(&id("dev01"), "aaa", t0).await.must();
    // Another tenant names the same device: nothing changes.
    ctx.system
        .tenant(&b)
        .record_bundle_fetch(&id("dev01"), "ccc", later + Duration::seconds(1))
        .await
        .must();
    let d = sa.device(&id("dev01")).await.must().must();
    assert_eq!(d.bundle_sha256.as_deref(), Some("bbb"), "{d:?}");
    assert_eq!(
        d.bundle_fetched_at.map(|t| t.timestamp_millis()),
        Some(later.timestamp_millis())
    );
    // A message queued twice under one id is kept once, as first written; others go in.
    let sb = ctx.system.tenant(&b);
    let first = message("0190f000-0000-7000-8000-000000000001", "first@example.org");
    sb.deliveries().enqueue(vec![first.clone()]).await.must();
    let again = message("0190f000-0000-7000-8000-000000000001", "again@example.org");
    let other = message("0190f000-0000-7000-8000-000000000002", "other@example.org");
    sb.deliveries().enqueue(vec![again, other]).await.must();
    let log = sb.deliveries().list(10, None).await.must();
    let mut to: Vec<&str> = log.items.iter().map(|d| d.recipient.as_str()).collect();
    to.sort_unstable();
    assert_eq!(to, ["first@example.org", "other@example.org"]);
}

async fn leases_have_one_holder_until_they_lapse(ctx: Ctx) {
    let t0 = now();
    let term = Duration::seconds(15);
    assert!(ctx.system.take_lease("jobs", "r1", t0, t0 + term).await.must());
    assert!(
        !ctx.system.take_lease("jobs", "r2", t0, t0 + term).await.must(),
        "held by r1"
    );
    assert!(
        ctx.system.take_lease("other", "r2", t0, t0 + term).await.must(),
        "names are apart"
    );
    // The holder renews; another takes it only once it lapsed.
    let t1 = t0 + Duration::seconds(10);
    assert!(ctx.system.take_lease("jobs", "r1", t1, t1 + term).await.must());
    assert!(
        !ctx.system
            .take_lease("jobs", "r2", t0 + term + Duration::seconds(1), t1)
            .await
            .must()
    );
    let lapsed = t1 + term + Duration::seconds(1);
    assert!(ctx.system.take_lease("jobs", "r2", lapsed, lapsed + term).await.must());
    assert!(!ctx.system.take_lease("jobs", "r1", lapsed, lapsed + term).await.must());
    // Released by its holder only, then free at once.
    ctx.system.release_lease("jobs", "r1").await.must();
    assert!(!ctx.system.take_lease("jobs", "r3", lapsed, lapsed + term).await.must());
    ctx.system.release_lease("jobs", "r2").await.must();
    assert!(ctx.system.take_lease("jobs", "r3", lapsed, lapsed + term).await.must());
}

async fn prefixes_resolve_to_devices_and_registration_skips_enrolled_ids(ctx: Ctx) {
    ctx.tenants().await;
    let a = ctx.scope("shul-a");
    let sa = ctx.system.tenant(&a);
    // A registered device listens under its id until it is enrolled.
    sa.create_device(new("dev01", &[], None), now()).await.must();
    let found = ctx
        .system
        .resolve_prefixes(&[prefix("dev01"), prefix("nosuch")])
        .await
        .must();
    assert_eq!(found.get(&prefix("dev01")), Some(&(id("dev01"), tenant("shul-a"))));
    assert_eq!(found.len(), 1);
    // Enrolled: only the certificate's prefix resolves.
    sa.issue_certificate(&cert("dev01", "shul-a", "s1", "fresh7"), "claim", false, None)
        .await
        .must();
    let found = ctx
        .system
        .resolve_prefixes(&[prefix("dev01"), prefix("fresh7")])
        .await
        .must();
    assert_eq!(found.keys().collect::<Vec<_>>(), [&prefix("fresh7")]);
    assert_eq!(
        ctx.system.prefixes_of(&[id("dev01")]).await.must().get(&id("dev01")),
        Some(&prefix("fresh7"))
    );
    // Development registration: new ids in the given tenant, never an id with a certificate
    // history (revoked or deleted devices must not come back).
    sa.revoke_certificate(&id("dev01"), now()).await.must();
    assert!(sa.delete_device(&id("dev01")).await.must());
    ctx.system
        .register_devices(&tenant("shul-b"), &[id("dev01"), id("sim001")], now())
        .await
        .must();
    let b = ctx.scope("shul-b");
    assert!(ctx.system.tenant(&b).device(&id("dev01")).await.must().is_none());
    assert!(ctx.system.tenant(&b).device(&id("sim001")).await.must().is_some());
    assert_eq!(
        ctx.system
            .resolve_prefixes(&[prefix("sim001")])
            .await
            .must()
            .get(&prefix("sim001")),
        Some(&(id("sim001"), tenant("shul-b")))
    );
}

fn plaque(name: &str) -> MemorialInput {
    MemorialInput {
        name: name.to_owned(),
        family: "כהן".into(),
        passed: PassingDate::Hebrew {
            year: 5780,
            month: 10,
            day: 10,
        },
        notes: String::new(),
    }
}

async fn documents_are_kept_apart_by_tenant_and_kind(ctx: Ctx) {
    ctx.tenants().await;
    let (a, b) = (ctx.scope("shul-a"), ctx.scope("shul-b"));
    let (sa, sb) = (ctx.system.tenant(&a), ctx.system.tenant(&b));
    for i in 0..5 {
        let (_, created) = sa.put(&format!("m{i}"), plaque(&format!("שם {i}")), now()).await.must();
        assert!(created);
    }
    sb.put("m1", plaque("other"), now()).await.must();
    assert!(
        sa.get::<SynagogueProfile>("m1").await.must().is_none(),
        "kinds are apart"
    );
    let first = sa.list::<MemorialInput>(2, None).await.must();
    assert_eq!(first.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["m0", "m1"]);
    let rest = sa.list::<MemorialInput>(10, Some("m1")).await.must();
    assert_eq!(
        rest.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["m2", "m3", "m4"]
    );
    assert_eq!(sa.get::<MemorialInput>("m1").await.must().must().input, plaque("שם 1"));
    assert_eq!(sb.get::<MemorialInput>("m1").await.must().must().input.name, "other");
    assert!(sa.delete::<MemorialInput>("m1").await.must());
    assert!(!sa.delete::<MemorialInput>("m1").await.must());
    assert!(sa.get::<MemorialInput>("m1").await.must().is_none());
    assert!(sb.get::<MemorialInput>("m1").await.must().is_some());
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

async fn synagogues_keep_their_creation_time(ctx: Ctx) {
    ctx.tenants().await;
    let (a, b) = (ctx.scope("shul-a"), ctx.scope("shul-b"));
    let (sa, sb) = (ctx.system.tenant(&a), ctx.system.tenant(&b));
    let sid = |s: &str| SynagogueId::parse(s).must();
    let (created, is_new) = sa.put_synagogue(&sid("beit-el"), profile("בית אל"), now()).await.must();
    assert!(is_new);
    assert_eq!(created.profile, profile("בית אל"));
    assert!(
        sb.put_synagogue(&sid("beit-el"), profile("Other"), now())
            .await
            .must()
            .1
    );
    let later = now() + Duration::minutes(5);
    let (replaced, is_new) = sa
        .put_synagogue(&sid("beit-el"), profile("בית אל החדש"), later)
        .await
        .must();
    assert!(!is_new);
    assert_eq!((replaced.created_at, replaced.updated_at), (now(), later));
    assert_eq!(sa.synagogue(&sid("beit-el")).await.must(), Some(replaced));
    sa.put_synagogue(&sid("alef"), profile("א"), now()).await.must();
    let ids: Vec<String> = sa
        .synagogues(10)
        .await
        .must()
        .into_iter()
        .map(|s| s.id.to_string())
        .collect();
    assert_eq!(ids, ["alef", "beit-el"]);
    assert!(!sb.delete_synagogue(&sid("alef")).await.must());
    assert!(sa.delete_synagogue(&sid("alef")).await.must());
    assert_eq!(sb.synagogues(10).await.must().len(), 1);
}

async fn content_quota_counts_stored_bytes(ctx: Ctx) {
    ctx.tenants().await;
    let cli = ctx.system.installation_scope(Actor::cli());
    let quota = Quota {
        max_content_bytes: Some(600),
        max_devices: Some(1),
        ..Quota::default()
    };
    ctx.system
        .installation(&cli)
        .set_quota(&tenant("shul-a"), quota, now())
        .await
        .must();
    let (a, b) = (ctx.scope("shul-a"), ctx.scope("shul-b"));
    let sa = ctx.system.tenant(&a);
    sa.put("m1", plaque("one"), now()).await.must();
    let used = sa.usage().await.must().content_bytes;
    assert!(used > 50 && used < 300, "{used}");
    // Replacing a document counts its new size, not both.
    for _ in 0..5 {
        sa.put("m1", plaque("one again"), now()).await.must();
    }
    assert!(matches!(
        sa.put("m2", plaque(&"long name ".repeat(60)), now()).await,
        Err(StoreError::QuotaExceeded { .. })
    ));
    assert!(sa.get::<MemorialInput>("m2").await.must().is_none(), "nothing stored");
    // Devices: one allowed.
    sa.create_device(new("dev01", &[], None), now()).await.must();
    assert!(matches!(
        sa.create_device(new("dev02", &[], None), now()).await,
        Err(StoreError::QuotaExceeded {
            resource: "devices",
            limit: 1
        })
    ));
    // Another tenant has its own usage.
    let sb = ctx.system.tenant(&b);
    sb.create_device(new("dev02", &[], None), now()).await.must();
    assert_eq!(sb.usage().await.must().content_bytes, 0);
}

async fn tenants_are_unique_and_keep_their_quota(ctx: Ctx) {
    ctx.tenants().await;
    let cli = ctx.system.installation_scope(Actor::cli());
    let inst = ctx.system.installation(&cli);
    assert!(matches!(
        inst.create_tenant(tenant("shul-a"), "again".into(), now()).await,
        Err(StoreError::Conflict { .. })
    ));
    let quota = Quota {
        api_requests_per_minute: Some(120),
        ..Quota::default()
    };
    let saved = inst.set_quota(&tenant("shul-b"), quota, now()).await.must().must();
    assert_eq!(saved.quota, quota);
    assert!(inst.set_quota(&tenant("nosuch"), quota, now()).await.must().is_none());
    let listed: Vec<(String, Quota)> = inst
        .tenants()
        .await
        .must()
        .into_iter()
        .map(|t| (t.id.to_string(), t.quota))
        .collect();
    assert_eq!(listed, [("shul-a".into(), Quota::default()), ("shul-b".into(), quota)]);
    // The tenant's own chain records it too, so its administrators see it.
    let actions = ctx.actions("shul-b").await;
    assert!(actions.contains(&"tenant.quota".to_owned()), "{actions:?}");
}

fn user(id: &str, email: &str, t: Option<&str>) -> User {
    User {
        id: id.into(),
        email: email.into(),
        name: "Name".into(),
        role: luach_control_plane::auth::Role::Gabbai,
        tenant_id: t.map(tenant),
        password_hash: "$argon2id$fake".into(),
        totp_secret: None,
        totp_enabled: false,
        disabled: false,
        credentials_changed_at: now(),
        totp_last_step: None,
        created_at: now(),
        updated_at: now(),
    }
}

async fn users_are_unique_by_email_and_reached_through_their_tenant(ctx: Ctx) {
    ctx.tenants().await;
    let (a, b) = (ctx.scope("shul-a"), ctx.scope("shul-b"));
    let actor = Actor::cli();
    ctx.system
        .create_user(&user("u1", "one@a.example", Some("shul-a")), &actor)
        .await
        .must();
    ctx.system
        .create_user(&user("u2", "two@b.example", Some("shul-b")), &actor)
        .await
        .must();
    assert!(matches!(
        ctx.system
            .create_user(&user("u3", "one@a.example", Some("shul-b")), &actor)
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(
        ctx.system.user_by_email("one@a.example").await.must().map(|u| u.id),
        Some("u1".into())
    );
    let (sa, sb) = (ctx.system.tenant(&a), ctx.system.tenant(&b));
    assert_eq!(sa.users().await.must().len(), 1);
    assert!(sa.user("u2").await.must().is_none(), "another tenant's user is absent");
    // Saving through the wrong tenant does nothing, through the right one works.
    let mut renamed = user("u2", "two@b.example", Some("shul-b"));
    renamed.name = "Renamed".into();
    assert!(!sa.save_user(&renamed).await.must());
    let mut moved = renamed.clone();
    moved.tenant_id = Some(tenant("shul-a"));
    assert!(!sa.save_user(&moved).await.must(), "a user never moves between tenants");
    assert!(sb.save_user(&renamed).await.must());
    assert_eq!(sb.user("u2").await.must().map(|u| u.name), Some("Renamed".into()));
    // Deleting is scoped and takes the user's tokens along.
    ctx.system.insert_refresh_token(&refresh("h1", "u2", "f1")).await.must();
    assert!(!sa.delete_user("u2").await.must());
    assert!(sb.delete_user("u2").await.must());
    assert!(ctx.system.token("h1").await.must().is_none());
}

async fn second_factor_steps_only_move_forward(ctx: Ctx) {
    ctx.tenants().await;
    let actor = Actor::cli();
    let u = user("u1", "one@a.example", Some("shul-a"));
    ctx.system.create_user(&u, &actor).await.must();
    assert!(ctx.system.advance_totp_step("u1", 100).await.must());
    assert!(
        !ctx.system.advance_totp_step("u1", 100).await.must(),
        "the same code twice"
    );
    assert!(!ctx.system.advance_totp_step("u1", 99).await.must(), "an older code");
    // A save of a copy read before the step does not take it back.
    let mut stale = u.clone();
    stale.name = "Stale copy".into();
    assert!(ctx.system.save_user(&stale, &actor).await.must());
    let stored = ctx.system.user_by_id("u1").await.must().must();
    assert_eq!((stored.name.as_str(), stored.totp_last_step), ("Stale copy", Some(100)));
    assert!(!ctx.system.advance_totp_step("u1", 100).await.must());
    assert!(ctx.system.advance_totp_step("u1", 101).await.must());
    // Two logins with one code race: exactly one wins.
    let (x, y) = tokio::join!(
        ctx.system.advance_totp_step("u1", 150),
        ctx.system.advance_totp_step("u1", 150)
    );
    assert_eq!(u8::from(x.must()) + u8::from(y.must()), 1);
}

fn refresh(hash: &str, user: &str, family: &str) -> TokenRecord {
    TokenRecord {
        hash: hash.into(),
        kind: TokenKind::Refresh,
        user_id: user.into(),
        family: family.into(),
        name: String::new(),
        role: None,
        created_at: now(),
        expires_at: now() + Duration::days(1),
        used_at: None,
        revoked_at: None,
        last_used_at: None,
    }
}

async fn refresh_tokens_are_consumed_once_and_families_revoke(ctx: Ctx) {
    ctx.tenants().await;
    ctx.system
        .create_user(&user("u1", "one@a.example", Some("shul-a")), &Actor::cli())
        .await
        .must();
    for (hash, family) in [("h1", "f1"), ("h2", "f1"), ("h3", "f2")] {
        ctx.system
            .insert_refresh_token(&refresh(hash, "u1", family))
            .await
            .must();
    }
    let t = now() + Duration::minutes(1);
    assert!(ctx.system.consume_token("h1", t).await.must());
    assert!(!ctx.system.consume_token("h1", t).await.must(), "a second use");
    assert!(ctx.system.session_live("u1", "f1").await.must());
    let which = Revoke::Family {
        user: "u1",
        family: "f1",
    };
    assert_eq!(ctx.system.revoke_tokens(which, t, None).await.must(), 2);
    assert!(!ctx.system.session_live("u1", "f1").await.must());
    assert!(ctx.system.session_live("u1", "f2").await.must());
    assert!(
        !ctx.system.consume_token("h2", t).await.must(),
        "revoked tokens are not consumed"
    );
    assert!(ctx.system.token("h2").await.must().must().revoked_at.is_some());
}

async fn personal_tokens_list_touch_and_revoke_with_audit(ctx: Ctx) {
    ctx.tenants().await;
    let u = user("u1", "one@a.example", Some("shul-a"));
    let actor = Actor::user("u1", "one@a.example");
    ctx.system.create_user(&u, &actor).await.must();
    let personal = |hash: &str, family: &str, at: DateTime<Utc>| TokenRecord {
        kind: TokenKind::Personal,
        name: format!("token {family}"),
        role: Some(luach_control_plane::auth::Role::Viewer),
        created_at: at,
        ..refresh(hash, "u1", family)
    };
    ctx.system
        .insert_personal_token(&u, &personal("p1", "tok1", now()), &actor)
        .await
        .must();
    ctx.system
        .insert_personal_token(&u, &personal("p2", "tok2", now() + Duration::seconds(1)), &actor)
        .await
        .must();
    ctx.system.insert_refresh_token(&refresh("r1", "u1", "f1")).await.must();
    let listed: Vec<String> = ctx
        .system
        .list_tokens("u1", TokenKind::Personal)
        .await
        .must()
        .into_iter()
        .map(|t| t.family)
        .collect();
    assert_eq!(listed, ["tok2", "tok1"], "newest first, personal only");
    let t = now() + Duration::minutes(3);
    ctx.system.touch_token("p1", t).await.must();
    assert_eq!(ctx.system.token("p1").await.must().must().last_used_at, Some(t));
    assert_eq!(ctx.system.revoke_personal_token(&u, "tok1", t, &actor).await.must(), 1);
    // Ending credentials revokes sessions and personal tokens alike.
    assert_eq!(
        ctx.system
            .end_credentials(&u, "password_changed", t, &actor)
            .await
            .must(),
        2
    );
    assert!(ctx.system.token("r1").await.must().must().revoked_at.is_some());
    assert!(ctx.system.token("p2").await.must().must().revoked_at.is_some());
    let actions = ctx.actions("shul-a").await;
    for expected in ["token.create", "token.revoke", "user.credentials_end"] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} missing from {actions:?}"
        );
    }
    // Nothing to revoke: nothing recorded.
    let before = actions.len();
    assert_eq!(ctx.system.end_credentials(&u, "again", t, &actor).await.must(), 0);
    assert_eq!(ctx.actions("shul-a").await.len(), before);
}

fn request(device: &str, claim: &str, key: &str, source: &str) -> EnrolmentRequest {
    EnrolmentRequest {
        device_id: id(device),
        claim_digest: claim.to_owned(),
        poll_digest: format!("poll-{device}"),
        csr_pem: "-----BEGIN CERTIFICATE REQUEST-----".into(),
        key_fingerprint: key.to_owned(),
        platform: Some("linux-x86_64".into()),
        agent_version: None,
        created_at: now(),
        expires_at: now() + Duration::minutes(15),
        state: RequestState::Pending,
        source: source.to_owned(),
    }
}

async fn enrolment_requests_move_by_compare_and_set(ctx: Ctx) {
    ctx.tenants().await;
    let s = &ctx.system;
    s.put_request(&request("enrol1", "claim-1", "key-1", "ip:1.1.1.1"))
        .await
        .must();
    s.put_request(&request("enrol2", "claim-2", "key-2", "ip:1.1.1.1"))
        .await
        .must();
    s.put_request(&request("enrol4", "claim-4", "key-4", "ip:2.2.2.2"))
        .await
        .must();
    assert!(matches!(
        s.put_request(&request("enrol3", "claim-1", "key-3", "ip:3.3.3.3"))
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(
        s.request(&id("enrol1")).await.must(),
        Some(request("enrol1", "claim-1", "key-1", "ip:1.1.1.1"))
    );
    assert_eq!(
        s.pending_by_claim("claim-2", now()).await.must().map(|r| r.device_id),
        Some(id("enrol2"))
    );
    assert_eq!(
        s.pending_by_claim("claim-2", now() + Duration::minutes(16))
            .await
            .must(),
        None
    );
    assert_eq!(s.count_pending(now(), None).await.must(), 3);
    assert_eq!(s.count_pending(now(), Some("ip:1.1.1.1")).await.must(), 2);
    // A new request of the same device replaces its code.
    s.put_request(&request("enrol1", "claim-1b", "key-1", "ip:1.1.1.1"))
        .await
        .must();
    assert_eq!(s.pending_by_claim("claim-1", now()).await.must(), None);
    // Claim: pending → issued, once, only with the current digest, in the claimer's tenant.
    let a = ctx.scope("shul-a");
    let b = ctx.scope("shul-b");
    let later = now() + Duration::hours(1);
    assert!(
        !s.tenant(&a)
            .claim_request(&id("enrol1"), "claim-1", "CERT", now(), later)
            .await
            .must()
    );
    assert!(
        s.tenant(&a)
            .claim_request(&id("enrol1"), "claim-1b", "CERT", now(), later)
            .await
            .must()
    );
    assert!(
        !s.tenant(&b)
            .claim_request(&id("enrol1"), "claim-1b", "CERT", now(), later)
            .await
            .must()
    );
    let issued = s.request(&id("enrol1")).await.must().must();
    let expected = RequestState::Issued {
        tenant_id: tenant("shul-a"),
        certificate_pem: "CERT".into(),
    };
    assert_eq!((issued.state.clone(), issued.expires_at), (expected, later));
    // Fetch: issued → delivered, by compare-and-set on the state it was read in.
    let delivered = RequestState::Delivered {
        tenant_id: tenant("shul-a"),
        certificate_pem: "CERT".into(),
    };
    assert!(s.transition_request(&issued, &delivered, now()).await.must());
    assert!(
        !s.transition_request(&issued, &delivered, now()).await.must(),
        "read state is stale"
    );
    assert_eq!(s.request(&id("enrol1")).await.must().must().state, delivered);
    assert_eq!(s.count_pending(now(), None).await.must(), 2);
    assert_eq!(s.delete_expired_requests(now() + Duration::minutes(30)).await.must(), 2);
    assert!(s.request(&id("enrol2")).await.must().is_none());
    assert!(
        s.request(&id("enrol1")).await.must().is_some(),
        "kept while its certificate is fetchable"
    );
}

fn cert(device: &str, t: &str, serial: &str, p: &str) -> DeviceCertificate {
    DeviceCertificate {
        device_id: id(device),
        tenant_id: tenant(t),
        prefix: prefix(p),
        serial: serial.to_owned(),
        key_fingerprint: "key-1".into(),
        not_before: now(),
        not_after: now() + Duration::days(30),
        issued_at: now(),
        revoked_at: None,
    }
}

async fn certificates_supersede_renew_and_revoke_by_serial(ctx: Ctx) {
    ctx.tenants().await;
    let (a, b) = (ctx.scope("shul-a"), ctx.scope("shul-b"));
    let (s, sa) = (&ctx.system, ctx.system.tenant(&a));
    sa.create_device(new("enrol1", &[], None), now()).await.must();
    sa.issue_certificate(&cert("enrol1", "shul-a", "s1", "p1"), "claim", false, None)
        .await
        .must();
    assert_eq!(
        s.certificate(&id("enrol1")).await.must(),
        Some(cert("enrol1", "shul-a", "s1", "p1"))
    );
    assert!(ctx.system.tenant(&b).certificate(&id("enrol1")).await.must().is_none());
    // Renewal replaces only the expected serial, keeps the prefix.
    let renewed = DeviceCertificate {
        issued_at: now() + Duration::days(20),
        ..cert("enrol1", "shul-a", "s2", "p1")
    };
    assert!(s.renew_certificate("s1", &renewed).await.must());
    assert!(
        !s.renew_certificate("s1", &cert("enrol1", "shul-a", "s3", "p1"))
            .await
            .must()
    );
    assert!(
        !s.renew_certificate("s2", &cert("enrol1", "shul-b", "s3", "p1"))
            .await
            .must()
    );
    // A new enrolment supersedes it with a new prefix: the old one stops resolving.
    let superseding = DeviceCertificate {
        issued_at: now() + Duration::days(20) + Duration::hours(1),
        ..cert("enrol1", "shul-a", "s4", "p2")
    };
    sa.issue_certificate(&superseding, "claim", true, None).await.must();
    assert!(s.resolve_prefixes(&[prefix("p1")]).await.must().is_empty());
    assert_eq!(s.resolve_prefixes(&[prefix("p2")]).await.must().len(), 1);
    // What an external broker's ACL names: every unexpired certificate, refused when its
    // enrolment was superseded (renewed ones included); issued here, so in the current form.
    let broker = |at| async move {
        s.broker_certificates(at)
            .await
            .must()
            .into_iter()
            .map(|c| (c.serial, c.prefix.to_string(), c.device_in_cn, c.refused))
            .collect::<Vec<_>>()
    };
    let row = |serial: &str, p: &str, refused| (serial.to_owned(), p.to_owned(), false, refused);
    assert_eq!(
        broker(now()).await,
        vec![row("s1", "p1", true), row("s2", "p1", true), row("s4", "p2", false)]
    );
    assert!(
        broker(now() + Duration::days(31)).await.is_empty(),
        "expired ones are left out"
    );
    // Revocation by its own tenant only; the first time is kept; the prefix stops resolving.
    assert!(
        !ctx.system
            .tenant(&b)
            .revoke_certificate(&id("enrol1"), now())
            .await
            .must()
    );
    let t = now() + Duration::days(21);
    assert!(sa.revoke_certificate(&id("enrol1"), t).await.must());
    assert!(sa.revoke_certificate(&id("enrol1"), t + Duration::days(1)).await.must());
    assert_eq!(s.certificate(&id("enrol1")).await.must().must().revoked_at, Some(t));
    assert_eq!(broker(now()).await.last(), Some(&row("s4", "p2", true)));
    assert!(s.resolve_prefixes(&[prefix("p2")]).await.must().is_empty());
    assert!(s.prefixes_of(&[id("enrol1")]).await.must().is_empty());
    assert!(
        !s.renew_certificate("s4", &cert("enrol1", "shul-a", "s5", "p2"))
            .await
            .must()
    );
    // The history tracks every serial and how it ended.
    let history: Vec<(String, Option<CertificateEnd>)> = sa
        .certificate_history(&id("enrol1"))
        .await
        .must()
        .into_iter()
        .map(|c| (c.serial, c.end))
        .collect();
    let expected = vec![
        ("s4".to_owned(), Some(CertificateEnd::Revoked)),
        ("s2".to_owned(), Some(CertificateEnd::Superseded)),
        ("s1".to_owned(), Some(CertificateEnd::Renewed)),
    ];
    assert_eq!(history, expected);
    // Another tenant sees none of it.
    assert!(
        ctx.system
            .tenant(&b)
            .certificate_history(&id("enrol1"))
            .await
            .must()
            .is_empty()
    );
}

async fn a_certificate_never_moves_a_device_between_tenants(ctx: Ctx) {
    ctx.tenants().await;
    let (a, b) = (ctx.scope("shul-a"), ctx.scope("shul-b"));
    ctx.system
        .tenant(&a)
        .create_device(new("enrol1", &[], None), now())
        .await
        .must();
    let outcome = ctx
        .system
        .tenant(&b)
        .issue_certificate(&cert("enrol1", "shul-b", "s1", "p1"), "claim", false, None)
        .await;
    assert!(matches!(outcome, Err(StoreError::Conflict { .. })), "{outcome:?}");
    assert!(ctx.system.certificate(&id("enrol1")).await.must().is_none());
    assert_eq!(ctx.system.resolve_prefixes(&[prefix("enrol1")]).await.must().len(), 1);
    // A certificate of another tenant cannot be written through this tenant's handle.
    assert!(
        ctx.system
            .tenant(&a)
            .issue_certificate(&cert("enrol1", "shul-b", "s2", "p2"), "claim", false, None)
            .await
            .is_err()
    );
}

async fn renewal_nonces_are_single_use(ctx: Ctx) {
    let s = &ctx.system;
    let exp = now() + Duration::minutes(5);
    s.put_nonce(&id("dev1"), "n1", exp).await.must();
    s.put_nonce(&id("dev1"), "n2", exp).await.must();
    assert!(
        !s.take_nonce(&id("dev2"), "n1", now()).await.must(),
        "another device's nonce"
    );
    assert!(s.take_nonce(&id("dev1"), "n1", now()).await.must());
    assert!(!s.take_nonce(&id("dev1"), "n1", now()).await.must(), "used");
    assert!(!s.take_nonce(&id("dev1"), "n2", exp).await.must(), "expired");
    // Only the newest few are kept.
    for i in 0..10 {
        s.put_nonce(&id("dev3"), &format!("k{i}"), exp + Duration::seconds(i))
            .await
            .must();
    }
    assert!(!s.take_nonce(&id("dev3"), "k0", now()).await.must());
    assert!(s.take_nonce(&id("dev3"), "k9", now()).await.must());
}

async fn enrolment_tokens_count_uses_and_stay_in_their_tenant(ctx: Ctx) {
    ctx.tenants().await;
    let (a, b) = (ctx.scope("shul-a"), ctx.scope("shul-b"));
    let (s, sa, sb) = (&ctx.system, ctx.system.tenant(&a), ctx.system.tenant(&b));
    let token = |tid: &str, digest: &str, t: &str, max_uses: u32, created: DateTime<Utc>| EnrolmentToken {
        id: tid.to_owned(),
        digest: digest.to_owned(),
        tenant_id: tenant(t),
        name: format!("batch {tid}"),
        max_uses,
        uses: 0,
        created_by: "user-1".into(),
        created_at: created,
        expires_at: now() + Duration::days(1),
        revoked_at: None,
    };
    sa.create_enrolment_token(&token("t1", "d1", "shul-a", 2, now()))
        .await
        .must();
    sa.create_enrolment_token(&token("t2", "d2", "shul-a", 5, now() + Duration::seconds(1)))
        .await
        .must();
    sb.create_enrolment_token(&token("t3", "d3", "shul-b", 5, now()))
        .await
        .must();
    assert!(
        sb.create_enrolment_token(&token("t4", "d4", "shul-a", 5, now()))
            .await
            .is_err()
    );
    let listed: Vec<String> = sa.enrolment_tokens().await.must().into_iter().map(|t| t.id).collect();
    assert_eq!(listed, ["t2", "t1"], "newest first, own tenant only");
    let first = s.use_enrolment_token("d1", now()).await.must().must();
    assert_eq!((first.uses, first.tenant_id.as_str()), (1, "shul-a"));
    assert_eq!(s.use_enrolment_token("d1", now()).await.must().map(|t| t.uses), Some(2));
    assert!(s.use_enrolment_token("d1", now()).await.must().is_none(), "used up");
    s.release_enrolment_token("d1").await.must();
    assert_eq!(s.use_enrolment_token("d1", now()).await.must().map(|t| t.uses), Some(2));
    assert!(
        s.use_enrolment_token("d2", now() + Duration::days(2))
            .await
            .must()
            .is_none(),
        "expired"
    );
    assert!(
        !sa.revoke_enrolment_token("t3", now()).await.must(),
        "another tenant's token"
    );
    assert!(sa.revoke_enrolment_token("t2", now()).await.must());
    assert!(
        sa.revoke_enrolment_token("t2", now()).await.must(),
        "revoking again is fine"
    );
    assert!(s.use_enrolment_token("d2", now()).await.must().is_none(), "revoked");
    assert!(s.use_enrolment_token("d3", now()).await.must().is_some());
    let actions: Vec<String> = sa.audit(0, 100).await.must().into_iter().map(|r| r.action).collect();
    let revokes = actions.iter().filter(|a| *a == "enrolment_token.revoke").count();
    assert_eq!(revokes, 1, "the second revocation changed nothing and recorded nothing");
}

async fn every_change_is_chained_under_the_key(ctx: Ctx) {
    ctx.tenants().await;
    let a = ctx.scope("shul-a");
    let sa = ctx.system.tenant(&a);
    sa.create_device(new("dev01", &[], None), now()).await.must();
    let patch = DevicePatch {
        notes: Some("x".into()),
        ..DevicePatch::default()
    };
    sa.update_device(&id("dev01"), &patch, now()).await.must();
    sa.put("m1", plaque("א"), now()).await.must();
    sa.delete::<MemorialInput>("m1").await.must();
    sa.delete_device(&id("dev01")).await.must();
    ctx.system
        .record_login(
            None,
            "digest-of-an-email",
            false,
            "unknown_email",
            Some("ip:1.2.3.4"),
            now(),
        )
        .await
        .must();
    let records = ctx.system.audit_records("shul-a", 0, None).await.must();
    let actions: Vec<&str> = records.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "device.create",
            "device.update",
            "memorial.put",
            "memorial.delete",
            "device.delete"
        ]
    );
    assert!(records.iter().all(|r| r.actor == Actor::cli()));
    assert!(verify_chain("shul-a", &records, None, &ctx.key).is_empty());
    // Under another key the chain does not verify: re-hashing needs the key.
    let other = ChainKey::new(b"another-key-another-key-another-k").must();
    assert!(!verify_chain("shul-a", &records, None, &other).is_empty());
    let heads = ctx.system.audit_heads().await.must();
    assert_eq!(heads.get("shul-a").map(|h| h.seq), Some(5));
    let installation = ctx.system.audit_records("_installation", 0, None).await.must();
    assert!(installation.iter().any(|r| r.action == "login.failure"));
    assert!(verify_chain("_installation", &installation, heads.get("_installation"), &ctx.key).is_empty());
}

async fn concurrent_changes_keep_one_unbroken_chain(ctx: Ctx) {
    ctx.tenants().await;
    let a = ctx.scope("shul-a");
    let mut writes = tokio::task::JoinSet::new();
    for i in 0..12 {
        let system = ctx.system.clone();
        let a = a.clone();
        writes.spawn(async move {
            let sa = system.tenant(&a);
            sa.put(&format!("m{i}"), plaque(&format!("{i}")), now()).await
        });
    }
    while let Some(r) = writes.join_next().await {
        r.must().must();
    }
    let records = ctx.system.audit_records("shul-a", 0, None).await.must();
    assert_eq!(records.len(), 12);
    assert!(verify_chain("shul-a", &records, None, &ctx.key).is_empty());
}

async fn migrations_are_recorded_once(ctx: Ctx) {
    assert!(
        ctx.system.migrate(true).await.must().is_empty(),
        "nothing pending after open"
    );
    assert!(
        ctx.system.migrate(false).await.must().is_empty(),
        "migrating again changes nothing"
    );
}

fn job(id: &str, key: Option<(&str, &str)>) -> JobRecord {
    JobRecord {
        id: id.to_owned(),
        tenant_id: tenant("shul-a"),
        spec: serde_json::json!({"command": {"type": "ping"}, "nested": {"n": 1, "list": [1, "x"]}}),
        state: JobState::Running,
        reason: None,
        created_by: String::new(),
        created_at: now(),
        updated_at: now(),
        expires_at: now() + Duration::days(7),
        total: 0,
        idempotency: key.map(|(k, d)| (k.to_owned(), d.to_owned())),
        phase: 0,
        phase_at: None,
    }
}

fn sent(e: &Execution, at: DateTime<Utc>) -> ExecUpdate {
    ExecUpdate {
        seq: e.seq,
        from: e.state,
        attempt: e.attempt,
        next: Execution {
            state: ExecState::Sent,
            attempt: e.attempt + 1,
            command_id: Some(Execution::command_id_of(&e.job_id, e.seq, e.attempt + 1)),
            sent_at: Some(at),
            deadline: Some(at + Duration::seconds(60)),
            updated_at: at,
            ..e.clone()
        },
    }
}

async fn ended_jobs_are_deleted_with_their_executions_after_their_retention(ctx: Ctx) {
    ctx.tenants().await;
    let (a, b) = (ctx.scope("shul-a"), ctx.scope("shul-b"));
    let (sa, sb) = (ctx.system.tenant(&a), ctx.system.tenant(&b));
    sa.create_device(new("ret01", &[], None), now()).await.must();
    sb.create_device(new("ret02", &[], None), now()).await.must();
    let devices = [id("ret01")];
    // Ended an hour after now(), ended two days later, and still running.
    let ended = now() + Duration::hours(1);
    for (job_id, to) in [("0190-old", JobState::Cancelled), ("0190-new", JobState::Cancelled)] {
        sa.jobs().create(job(job_id, None), &devices, now()).await.must();
        let at = if job_id == "0190-old" {
            ended
        } else {
            ended + Duration::days(2)
        };
        assert!(
            sa.jobs()
                .set_state(job_id, JobState::Running, to, None, at, false)
                .await
                .must()
        );
    }
    sa.jobs().create(job("0190-run", None), &devices, now()).await.must();
    let mut other = job("0190-b", None);
    other.tenant_id = tenant("shul-b");
    sb.jobs().create(other, &[id("ret02")], now()).await.must();
    assert!(
        sb.jobs()
            .set_state("0190-b", JobState::Running, JobState::Cancelled, None, ended, false)
            .await
            .must()
    );

    // A cut-off a day after the first ended: it goes (in either tenant), the rest stay.
    let cutoff = ended + Duration::days(1);
    assert_eq!(ctx.system.delete_jobs_ended_before(cutoff).await.must(), 2);
    let left: Vec<String> = sa
        .jobs()
        .list(&JobFilter::default(), 10, None)
        .await
        .must()
        .items
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(!left.contains(&"0190-old".to_owned()), "{left:?}");
    assert!(
        sa.jobs().execution("0190-old", 0).await.must().is_none(),
        "its executions went too"
    );
    assert!(sa.jobs().execution("0190-new", 0).await.must().is_some());
    assert!(sb.jobs().get("0190-b").await.must().is_none());
    // Nothing more to do at the same cut-off; a running job is never deleted.
    assert_eq!(ctx.system.delete_jobs_ended_before(cutoff).await.must(), 0);
    assert_eq!(
        ctx.system
            .delete_jobs_ended_before(now() + Duration::days(365))
            .await
            .must(),
        1
    );
    assert!(sa.jobs().get("0190-run").await.must().is_some());
}

async fn jobs_and_executions_move_by_compare_and_set_in_their_tenant(ctx: Ctx) {
    ctx.tenants().await;
    let (a, b) = (ctx.scope("shul-a"), ctx.scope("shul-b"));
    let sa = ctx.system.tenant(&a);
    for d in ["job01", "job02", "job03"] {
        sa.create_device(new(d, &[], None), now()).await.must();
    }
    let devices = [id("job03"), id("job01"), id("job02")];
    let created = sa.jobs().create(job("0190-a", None), &devices, now()).await.must();
    assert_eq!((created.total, created.created_by.as_str()), (3, "cli"));
    let jobs = sa.jobs();
    let stored = jobs.get("0190-a").await.must().must();
    assert_eq!(stored, created, "a job reads back as written, spec and all");
    // Another tenant sees nothing of it.
    let sb = ctx.system.tenant(&b);
    assert!(sb.jobs().get("0190-a").await.must().is_none());
    assert_eq!(sb.jobs().list(&JobFilter::default(), 10, None).await.must().total, 0);
    assert_eq!(sb.jobs().counts("0190-a").await.must().0.total(), 0);
    assert!(sb.jobs().execution("0190-a", 0).await.must().is_none());

    // Executions keep the target's order; the first is sent by compare-and-set, once.
    let all = jobs.executions("0190-a", &ExecFilter::default(), 10, None).await.must();
    let order: Vec<&str> = all.items.iter().map(|e| e.device_id.as_str()).collect();
    assert_eq!(order, ["job03", "job01", "job02"]);
    let first = all.items[0].clone();
    let at = now() + Duration::seconds(1);
    assert_eq!(jobs.update("0190-a", &[sent(&first, at)]).await.must(), [true]);
    assert_eq!(
        jobs.update("0190-a", &[sent(&first, at)]).await.must(),
        [false],
        "stale compare-and-set"
    );
    assert_eq!(
        sb.jobs().update("0190-a", &[sent(&all.items[1], at)]).await.must(),
        [false]
    );
    let now_sent = jobs.execution("0190-a", 0).await.must().must();
    assert_eq!(now_sent, sent(&first, at).next);
    // A transition the state machine forbids never reaches the backend.
    let mut bad = sent(&now_sent, at);
    bad.next.state = ExecState::Cancelled;
    assert!(jobs.update("0190-a", &[bad]).await.is_err());

    let (counts, ever_sent) = jobs.counts("0190-a").await.must();
    assert_eq!((counts.queued, counts.sent, ever_sent), (2, 1, 1));
    // A range of the roll-out order counts only its own executions.
    let first_phase = jobs.tally("0190-a", 0..1).await.must();
    assert_eq!(
        (
            first_phase.counts.sent,
            first_phase.counts.total(),
            first_phase.ever_sent
        ),
        (1, 1, 1)
    );
    assert_eq!(first_phase.last_final, None, "nothing final yet");
    assert_eq!(jobs.tally("0190-a", 1..3).await.must().counts.queued, 2);
    assert_eq!(sb.jobs().tally("0190-a", 0..3).await.must().counts.total(), 0);
    // A roll-out's phase opens by compare-and-set, forward only, in its tenant.
    let opened = now() + Duration::seconds(2);
    assert!(jobs.set_phase("0190-a", 0, 1, opened).await.must());
    assert!(!jobs.set_phase("0190-a", 0, 1, opened).await.must(), "stale");
    assert!(!sb.jobs().set_phase("0190-a", 1, 2, opened).await.must());
    assert!(jobs.set_phase("0190-a", 1, 1, opened).await.is_err());
    let phased = jobs.get("0190-a").await.must().must();
    assert_eq!((phased.phase, phased.phase_at), (1, Some(opened)));
    let queued = jobs
        .executions(
            "0190-a",
            &ExecFilter {
                state: Some(ExecState::Queued),
                device: None,
            },
            1,
            None,
        )
        .await
        .must();
    assert_eq!(
        (queued.total, queued.items.len(), queued.next_after.as_deref()),
        (2, 1, Some("1"))
    );
    let rest = jobs
        .executions(
            "0190-a",
            &ExecFilter {
                state: Some(ExecState::Queued),
                device: None,
            },
            1,
            Some(1),
        )
        .await
        .must();
    assert_eq!(rest.items[0].device_id, id("job02"));

    // Cancelling moves the queued ones only; the job's state moves by compare-and-set.
    assert_eq!(
        jobs.move_all(
            "0190-a",
            ExecState::Queued,
            ExecState::Cancelled,
            "cancelled by test",
            at
        )
        .await
        .must(),
        2
    );
    assert!(
        jobs.set_state(
            "0190-a",
            JobState::Running,
            JobState::Cancelled,
            Some("by test"),
            at,
            true
        )
        .await
        .must()
    );
    assert!(
        !jobs
            .set_state("0190-a", JobState::Running, JobState::Paused, None, at, false)
            .await
            .must()
    );
    assert!(
        !sb.jobs()
            .set_state("0190-a", JobState::Cancelled, JobState::Running, None, at, false)
            .await
            .is_ok_and(|m| m)
    );
    let cancelled = jobs.get("0190-a").await.must().must();
    assert_eq!(
        (cancelled.state, cancelled.reason.as_deref()),
        (JobState::Cancelled, Some("by test"))
    );
    assert!(ctx.system.active_jobs().await.must().is_empty());
    let actions = ctx.actions("shul-a").await;
    assert!(
        actions.ends_with(&["job.create".to_owned(), "job.cancelled".to_owned()]),
        "{actions:?}"
    );

    // Only online screens with a prefix are reachable.
    jobs.create(job("0190-b", None), &devices, now()).await.must();
    assert_eq!(ctx.system.active_jobs().await.must().len(), 1);
    ctx.system
        .apply_presence(&[PresenceWrite {
            device: id("job01"),
            last_seen: Some(at),
            status: Some(DeviceStatus::Online),
            hello: None,
            metrics: None,
        }])
        .await
        .must();
    let online = jobs.online(&devices).await.must();
    assert_eq!(online.keys().collect::<Vec<_>>(), [&id("job01")]);
    assert!(sb.jobs().online(&devices).await.must().is_empty());
}

async fn job_idempotency_keys_are_unique_per_tenant(ctx: Ctx) {
    ctx.tenants().await;
    let (a, b) = (ctx.scope("shul-a"), ctx.scope("shul-b"));
    let (sa, sb) = (ctx.system.tenant(&a), ctx.system.tenant(&b));
    sa.create_device(new("idem01", &[], None), now()).await.must();
    sb.create_device(new("idem02", &[], None), now()).await.must();
    sa.jobs()
        .create(job("0190-k1", Some(("k", "d1"))), &[id("idem01")], now())
        .await
        .must();
    let again = sa
        .jobs()
        .create(job("0190-k2", Some(("k", "d2"))), &[id("idem01")], now())
        .await;
    assert!(matches!(again, Err(StoreError::Conflict { .. })), "{again:?}");
    assert!(
        sa.jobs().get("0190-k2").await.must().is_none(),
        "nothing of the refused job was kept"
    );
    assert_eq!(sa.jobs().by_key("k").await.must().must().id, "0190-k1");
    // Keys are per tenant.
    let mut other = job("0190-k3", Some(("k", "d1")));
    other.tenant_id = tenant("shul-b");
    sb.jobs().create(other, &[id("idem02")], now()).await.must();
    // A forgotten key can be used again.
    sa.jobs().clear_key("0190-k1").await.must();
    assert!(sa.jobs().by_key("k").await.must().is_none());
    sa.jobs()
        .create(job("0190-k4", Some(("k", "d3"))), &[id("idem01")], now())
        .await
        .must();
    let listed = sa.jobs().list(&JobFilter::default(), 10, None).await.must();
    let ids: Vec<&str> = listed.items.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, ["0190-k4", "0190-k1"], "newest first");
}
