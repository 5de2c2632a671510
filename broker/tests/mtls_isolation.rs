//! Device isolation on the broker's mutual-TLS listener, checked with real MQTT clients
//! (Debian's mosquitto_pub / mosquitto_sub, OpenSSL underneath) and certificates from
//! `luach-pki`. A missing client fails the tests; nothing is skipped.
//!
//! Negative checks never sleep: after a message that must not arrive, a sentinel that must
//! arrive is sent along the same path; once the sentinel is there, the forbidden message would
//! have been too.

#![allow(clippy::unwrap_used)]

mod support;

use luach_broker::external::mosquitto::{self as conf, Listeners};
use luach_broker::{ExternalBroker, ExternalSettings, ExternalTls};
use luach_pki::{DeviceCa, Duration, OffsetDateTime};
use support::{
    Broker, Device, Matrix, Mosquitto, Pki, Sub, device, devices, free_port, plain_publish, require_tool, runtime,
    tls_publish, write_creds,
};

fn tools() {
    require_tool("mosquitto_pub", "mosquitto-clients");
    require_tool("mosquitto_sub", "mosquitto-clients");
    require_tool("stdbuf", "coreutils");
}

#[test]
fn devices_are_confined_to_their_own_subtree() {
    tools();
    let pki = Pki::new();
    let deva = pki.current_device("deva", "deva");
    let devb = pki.current_device("devb", "devb");
    let mut broker = Broker::start(&pki.settings(false));
    assert!(broker.broker.plain_addr().is_none(), "plain listener must be off");
    let port = broker.tls_port();
    let ca = pki.ca_path.clone();
    let mut m = Matrix::default();

    let mut sub_a = Sub::tls(port, &ca, &deva, "listener", "/tenants/deva/#");
    let mut sub_b = Sub::tls(port, &ca, &devb, "sub", "/tenants/devb/#");
    let ok = sub_a.subscribed() && sub_b.subscribed();
    m.row(
        "deva and devb subscribe to their own /tenants/{id}/#",
        "SUBACK",
        format!("deva: {} / devb: {}", sub_a.summary(), sub_b.summary()),
        ok,
    );

    // Positive controls: the same clients and paths that must stay closed below do work.
    let out = tls_publish(port, &ca, Some(&deva), "pub", "/tenants/deva/up/hello", "hello-a1", 1);
    let (to_self, to_link) = (sub_a.received("hello-a1"), broker.link_wait("hello-a1"));
    m.row(
        "deva publishes /tenants/deva/up/hello (QoS 1)",
        "accepted; deva's subscriber and the LocalLink receive it",
        format!("{}; subscriber: {to_self}; link: {to_link}", out.summary()),
        out.status.success() && to_self && to_link,
    );
    broker.link_publish("/tenants/deva/down/command", "cmd-a1");
    let got = sub_a.received("cmd-a1");
    m.row(
        "LocalLink publishes /tenants/deva/down/command",
        "deva receives it",
        format!("received: {got}"),
        got,
    );
    let out = tls_publish(port, &ca, Some(&devb), "pub", "/tenants/devb/up/hello", "hello-b1", 1);
    let got = broker.link_wait("hello-b1") && sub_b.received("hello-b1");
    m.row(
        "devb publishes /tenants/devb/up/hello",
        "accepted; link and devb's subscriber receive it",
        out.summary(),
        out.status.success() && got,
    );

    // Subscriptions outside the device's prefix.
    for (i, filter) in [
        "#",
        "/tenants/+/#",
        "/tenants/devb/#",
        "/tenants/+/up/#",
        "$share/g//tenants/devb/#",
    ]
    .into_iter()
    .enumerate()
    {
        let mut spy = Sub::tls(port, &ca, &deva, &format!("spy{i}"), filter);
        let subacked = spy.subscribed();
        let exit = spy.wait_exit();
        // Traffic the filter would match, then a sentinel on the same paths.
        let token = format!("spy{i}-b");
        tls_publish(port, &ca, Some(&devb), "pub", "/tenants/devb/up/telemetry", &token, 1);
        broker.link_publish("/tenants/devb/down/command", &token);
        let sentinel_ok = broker.link_wait(&token) && sub_b.received(&token);
        if spy.saw(&token) {
            m.leak(&format!("deva subscribes {filter}"), &token);
        }
        m.row(
            format!("deva subscribes {filter:?}"),
            "no SUBACK, disconnected, receives nothing of devb's",
            format!(
                "suback: {subacked}; exit: {:?}; output: {}",
                exit.and_then(|s| s.code()),
                spy.summary()
            ),
            !subacked && exit.is_some() && sentinel_ok,
        );
    }

    // Publishing into devb's subtree: commands to devb, and forged uplink in devb's name.
    for qos in [0u8, 1] {
        let token = format!("evil-cmd-q{qos}");
        let out = tls_publish(port, &ca, Some(&deva), "pub", "/tenants/devb/down/command", &token, qos);
        let sentinel = format!("sentinel-cmd-q{qos}");
        broker.link_publish("/tenants/devb/down/command", &sentinel);
        let sentinel_ok = sub_b.received(&sentinel);
        if sub_b.saw(&token) {
            m.leak("deva publishes to devb's command topic", &token);
        }
        m.row(
            format!("deva publishes /tenants/devb/down/command (QoS {qos})"),
            "dropped and deva disconnected; devb's subscriber never sees it",
            out.summary(),
            sentinel_ok,
        );

        let token = format!("evil-up-q{qos}");
        let out = tls_publish(port, &ca, Some(&deva), "pub", "/tenants/devb/up/hello", &token, qos);
        let sentinel = format!("sentinel-up-q{qos}");
        tls_publish(port, &ca, Some(&devb), "pub", "/tenants/devb/up/hello", &sentinel, 1);
        let sentinel_ok = broker.link_wait(&sentinel);
        if broker.link_saw(&token) || sub_b.saw(&token) {
            m.leak("deva publishes as devb to the control plane", &token);
        }
        m.row(
            format!("deva publishes /tenants/devb/up/hello (QoS {qos})"),
            "dropped and deva disconnected; the link never sees it",
            out.summary(),
            sentinel_ok,
        );
    }
    let token = "evil-outside";
    let out = tls_publish(port, &ca, Some(&deva), "pub", "/luach/probe", token, 1);
    m.row(
        "deva publishes outside /tenants (/luach/probe)",
        "disconnected",
        out.summary(),
        !out.status.success(),
    );

    // Session takeover: rumqttd prefixes the client id with the certificate's O.
    for id in ["sub", "devb.sub"] {
        let out = tls_publish(
            port,
            &ca,
            Some(&deva),
            id,
            "/tenants/deva/up/hello",
            &format!("as-{id}"),
            1,
        );
        let sentinel = format!("after-takeover-{id}");
        broker.link_publish("/tenants/devb/down/command", &sentinel);
        let still = sub_b.running() && sub_b.received(&sentinel);
        m.row(
            format!("deva connects with client id {id:?} while devb's \"sub\" is connected"),
            "deva gets its own session (deva.{id}); devb stays connected and keeps receiving",
            format!("{}; devb still connected and receiving: {still}", out.summary()),
            out.status.success() && still,
        );
    }

    // Certificates the broker must refuse.
    let (foreign, expired) = pki.foreign_and_expired("deva");
    let server = pki.server.clone();
    for (i, (case, creds)) in [
        (
            "certificate for O=deva from another CA with the same name",
            Some(&foreign),
        ),
        ("expired certificate for O=deva", Some(&expired)),
        ("the broker's server certificate (serverAuth only)", Some(&server)),
        ("no client certificate", None),
    ]
    .into_iter()
    .enumerate()
    {
        let token = format!("refused-{i}");
        let out = tls_publish(port, &ca, creds, "pub", "/tenants/deva/up/hello", &token, 1);
        let sentinel = format!("sentinel-{token}");
        tls_publish(port, &ca, Some(&deva), "pub", "/tenants/deva/up/hello", &sentinel, 1);
        let sentinel_ok = broker.link_wait(&sentinel);
        if broker.link_saw(&token) || sub_a.saw(&token) {
            m.leak(case, &token);
        }
        m.row(
            case,
            "TLS handshake refused, nothing delivered",
            out.summary(),
            !out.status.success() && sentinel_ok,
        );
    }

    let ok = sub_a.running() && sub_b.running();
    m.row(
        "the devices' own subscribers after all of the above",
        "still connected",
        format!("deva: {}, devb: {}", sub_a.running(), sub_b.running()),
        ok,
    );
    m.finish();
}

/// The same attacks against Mosquitto 2 configured as `luach-server broker-config mosquitto`
/// configures it (external broker mode): the control plane on its own listener through
/// [`ExternalBroker`], the devices on theirs. Where Mosquitto differs from the embedded edge
/// the rows say so: a forbidden publish is dropped (no disconnect), a subscription beyond the
/// device's downlink is granted and carries nothing it may not read, and the certificate's
/// CN (its topic prefix) is the user name and the client id, so a device holds one
/// connection at a time and cannot take over another's session whatever id it asks for.
#[test]
fn devices_are_confined_on_external_mosquitto() {
    tools();
    let pki = Pki::new();
    let deva = pki.current_device("deva", "deva");
    let devb = pki.current_device("devb", "devb");
    let revoked = pki.current_device("devc", "devc");
    let service_ca = DeviceCa::generate("Luach test service CA", Duration::days(30)).unwrap();
    let control = service_ca
        .issue_client_certificate("luach-control-plane", Duration::days(1))
        .unwrap();
    let control_creds = write_creds(
        pki.dir.path(),
        "control",
        &control.certificate.pem,
        &control.key_pem,
        &control.certificate.serial,
    );

    // The broker's files as the server writes them; devc is revoked but not denied in the ACL,
    // so the CRL alone has to keep it out.
    let dir = pki.path("mosquitto");
    std::fs::create_dir(&dir).unwrap();
    let now = OffsetDateTime::now_utc();
    let enrolled = ["deva", "devb", "devc"].map(|d| conf::Certificate::new(d, d, false, false));
    for (name, text) in [
        (conf::DEVICE_CA_FILE, pki.ca.certificate_pem().to_owned()),
        (conf::SERVICE_CA_FILE, service_ca.certificate_pem().to_owned()),
        (
            conf::BROKER_CERT_FILE,
            std::fs::read_to_string(&pki.server.cert).unwrap(),
        ),
        (conf::BROKER_KEY_FILE, std::fs::read_to_string(&pki.server.key).unwrap()),
        (
            conf::CRL_FILE,
            pki.ca
                .revocation_list(std::slice::from_ref(&revoked.serial), now, now + Duration::days(7), 1)
                .unwrap(),
        ),
        (conf::DEVICES_ACL_FILE, conf::devices_acl(&enrolled, &devices().rules)),
        (conf::CONTROL_ACL_FILE, conf::control_acl("luach-control-plane")),
    ] {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let listeners = Listeners {
        devices_bind: "127.0.0.1".into(),
        devices_port: free_port(),
        control_bind: "127.0.0.1".into(),
        control_port: free_port(),
        max_connections: 100,
        max_packet_bytes: 256 * 1024,
    };
    let mosquitto = Mosquitto::start(&dir, &listeners);
    let (port, control_port) = (listeners.devices_port, listeners.control_port);

    let rt = runtime();
    let settings = ExternalSettings {
        host: "localhost".into(),
        port: control_port,
        connect_timeout_secs: 15,
        ..ExternalSettings::default()
    };
    let tls = ExternalTls {
        ca_pem: pki.ca.certificate_pem().to_owned(),
        cert_pem: control.certificate.pem.clone(),
        key_pem: control.key_pem.clone(),
    };
    let (external, link) = rt
        .block_on(ExternalBroker::connect(&settings, &tls, "/tenants/+/up/#"))
        .unwrap_or_else(|e| panic!("control plane did not connect: {e}\n{}", mosquitto.log()));
    let mut broker = Broker::with_link(rt, external, link);
    let ca = pki.ca_path.clone();
    let mut m = Matrix::default();

    // Positive controls: the paths that must stay closed below work for their owners.
    let mut b = Device::connect(&broker.rt, device(&pki, &devb, port, "agent"), "/tenants/devb/down/#");
    b.publish(&broker.rt, "/tenants/devb/up/hello", "hello-b1");
    broker.link_publish("/tenants/devb/down/command", "cmd-b1");
    let (up, down) = (broker.link_wait("hello-b1"), b.received("cmd-b1"));
    m.row(
        "devb (one connection, as the agent) publishes its uplink and reads its downlink",
        "the control plane receives the uplink; devb receives its command",
        format!("uplink: {up}; command: {down}"),
        up && down,
    );
    {
        let mut sub_a = Sub::tls(port, &ca, &deva, "listener", "/tenants/deva/down/#");
        let subscribed = sub_a.subscribed();
        broker.link_publish("/tenants/deva/down/command", "cmd-a1");
        let got = sub_a.received("cmd-a1");
        m.row(
            "deva subscribes /tenants/deva/down/# and the control plane sends it a command",
            "deva receives it",
            format!("suback: {subscribed}; received: {got}"),
            subscribed && got,
        );
    }
    let out = tls_publish(port, &ca, Some(&deva), "pub", "/tenants/deva/up/hello", "hello-a1", 1);
    let got = broker.link_wait("hello-a1");
    m.row(
        "deva publishes /tenants/deva/up/hello (QoS 1)",
        "the control plane receives it",
        format!("{}; link: {got}", out.summary()),
        out.status.success() && got,
    );

    // Subscriptions outside the device's own downlink.
    for (i, filter) in [
        "#",
        "/tenants/+/#",
        "/tenants/devb/#",
        "/tenants/devb/down/#",
        "/tenants/+/up/#",
        "/tenants/deva/up/#",
        "$share/g//tenants/devb/#",
    ]
    .into_iter()
    .enumerate()
    {
        let mut spy = Sub::tls(port, &ca, &deva, &format!("spy{i}"), filter);
        let answered = spy.subscribed();
        let token = format!("spy{i}-b");
        b.publish(&broker.rt, "/tenants/devb/up/telemetry", &token);
        broker.link_publish("/tenants/devb/down/command", &token);
        let a_token = format!("spy{i}-a");
        tls_publish(port, &ca, Some(&deva), "pub", "/tenants/deva/up/hello", &a_token, 1);
        let sentinel_ok = broker.link_wait(&token) && b.received(&token) && broker.link_wait(&a_token);
        for t in [&token, &a_token] {
            if spy.saw(t) {
                m.leak(&format!("deva subscribes {filter}"), t);
            }
        }
        m.row(
            format!("deva subscribes {filter:?}"),
            "SUBACK (Mosquitto checks read rights per delivered message); receives nothing of devb's and no uplink",
            format!("suback: {answered}; output: {}", spy.summary()),
            answered && sentinel_ok,
        );
    }

    // Publishing outside the device's own uplink kinds.
    for qos in [0u8, 1] {
        let token = format!("evil-cmd-q{qos}");
        let out = tls_publish(port, &ca, Some(&deva), "pub", "/tenants/devb/down/command", &token, qos);
        let sentinel = format!("sentinel-cmd-q{qos}");
        broker.link_publish("/tenants/devb/down/command", &sentinel);
        let sentinel_ok = b.received(&sentinel);
        if b.saw(&token) {
            m.leak("deva publishes to devb's command topic", &token);
        }
        m.row(
            format!("deva publishes /tenants/devb/down/command (QoS {qos})"),
            "dropped by the ACL; devb never sees it",
            out.summary(),
            sentinel_ok,
        );

        for (topic, case) in [
            ("/tenants/devb/up/hello", "as devb"),
            ("/tenants/deva/up/forged", "a message kind the rules do not name"),
        ] {
            let token = format!("evil-{}-q{qos}", m_len(case));
            let out = tls_publish(port, &ca, Some(&deva), "pub", topic, &token, qos);
            let sentinel = format!("sentinel-{token}");
            b.publish(&broker.rt, "/tenants/devb/up/hello", &sentinel);
            let sentinel_ok = broker.link_wait(&sentinel);
            if broker.link_saw(&token) || b.saw(&token) {
                m.leak(&format!("deva publishes {case}"), &token);
            }
            m.row(
                format!("deva publishes {topic} ({case}, QoS {qos})"),
                "dropped by the ACL; the control plane never sees it",
                out.summary(),
                sentinel_ok,
            );
        }
    }

    // Session takeover: the client id is the certificate's CN, whatever deva asks for.
    for id in ["agent", "devb"] {
        let token = format!("as-{}", m_len(id));
        let out = tls_publish(port, &ca, Some(&deva), id, "/tenants/deva/up/hello", &token, 1);
        let sentinel = format!("after-takeover-{}", m_len(id));
        broker.link_publish("/tenants/devb/down/command", &sentinel);
        let still = b.received(&sentinel) && b.never_dropped();
        let delivered = broker.link_wait(&token);
        m.row(
            format!("deva connects with client id {id:?} while devb's \"agent\" is connected"),
            "deva gets its own session; devb is never disconnected and keeps receiving",
            format!(
                "{}; link got deva's message: {delivered}; devb never dropped and receiving: {still}",
                out.summary(),
            ),
            out.status.success() && delivered && still,
        );
    }

    // Certificates the broker must refuse.
    let (foreign, expired) = pki.foreign_and_expired("deva");
    let server = pki.server.clone();
    let (own, devc_up, devb_down) = (
        "/tenants/deva/up/hello",
        "/tenants/devc/up/hello",
        "/tenants/devb/down/command",
    );
    for (i, (case, target, creds, topic)) in [
        (
            "certificate for O=deva from another CA with the same name",
            port,
            Some(&foreign),
            own,
        ),
        ("expired certificate for O=deva", port, Some(&expired), own),
        (
            "revoked certificate (in the CRL) still named in the ACL",
            port,
            Some(&revoked),
            devc_up,
        ),
        (
            "the broker's server certificate (serverAuth only)",
            port,
            Some(&server),
            own,
        ),
        ("no client certificate", port, None, own),
        (
            "the control plane's certificate on the devices' listener",
            port,
            Some(&control_creds),
            devb_down,
        ),
        (
            "devb's certificate on the control plane's listener",
            control_port,
            Some(&devb),
            devb_down,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let token = format!("refused-{i}");
        let out = tls_publish(target, &ca, creds, &format!("refused{i}"), topic, &token, 1);
        let sentinel = format!("sentinel-{token}");
        b.publish(&broker.rt, "/tenants/devb/up/hello", &sentinel);
        broker.link_publish("/tenants/devb/down/command", &sentinel);
        let sentinel_ok = broker.link_wait(&sentinel) && b.received(&sentinel);
        if broker.link_saw(&token) || b.saw(&token) {
            m.leak(case, &token);
        }
        m.row(
            case,
            "TLS handshake refused, nothing delivered",
            out.summary(),
            !out.status.success() && sentinel_ok,
        );
    }

    m.row(
        "devb's connection after all of the above",
        "never disconnected",
        format!("never dropped: {}", b.never_dropped()),
        b.never_dropped(),
    );
    m.finish();
}

/// rumqttd re-reads `ca_path` for every connection and trusts only its first certificate; a
/// cross-certificate carries devices through a CA rotation.
#[test]
fn ca_rotation_with_a_cross_certificate() {
    tools();
    let pki = Pki::new();
    let ca = pki.ca_path.clone();
    let mut m = Matrix::default();
    let now = OffsetDateTime::now_utc();
    let (from, to) = (now - Duration::minutes(5), now + Duration::days(1));

    let old_device = pki.current_device("olddev", "olddev");
    let new_ca = DeviceCa::generate("Luach test device CA 2", Duration::days(730)).unwrap();
    let new_device = pki.device(&new_ca, "newdev", "newdev", from, to);
    let cross = pki.ca.cross_certify(new_ca.certificate_pem()).unwrap();
    let chained = support::Creds {
        cert: pki.path("newdev-chain.pem"),
        key: new_device.key.clone(),
        serial: new_device.serial.clone(),
    };
    let leaf = std::fs::read_to_string(&new_device.cert).unwrap();
    std::fs::write(&chained.cert, format!("{leaf}{}", cross.pem)).unwrap();

    let attempt =
        |broker: &mut Broker, m: &mut Matrix, case: &str, creds: &support::Creds, device: &str, expect: bool| {
            let port = broker.tls_port();
            let token = format!("rot-{}", m_len(case));
            let out = tls_publish(
                port,
                &ca,
                Some(creds),
                "pub",
                &format!("/tenants/{device}/up/hello"),
                &token,
                1,
            );
            let delivered = if expect {
                broker.link_wait(&token)
            } else {
                // Sentinel from a device of the old CA, which every CA file here accepts.
                let sentinel = format!("{token}-sentinel");
                tls_publish(
                    port,
                    &ca,
                    Some(&old_device),
                    "pub",
                    "/tenants/olddev/up/hello",
                    &sentinel,
                    1,
                );
                assert!(broker.link_wait(&sentinel), "sentinel for {case}");
                broker.link_saw(&token)
            };
            m.row(
                case,
                if expect { "accepted" } else { "refused" },
                out.summary(),
                out.status.success() == expect && delivered == expect,
            );
        };

    // ca_path = old CA.
    let mut broker = Broker::start(&pki.settings(false));
    attempt(
        &mut broker,
        &mut m,
        "ca=old: device of the old CA",
        &old_device,
        "olddev",
        true,
    );
    attempt(
        &mut broker,
        &mut m,
        "ca=old: device of the new CA, leaf only",
        &new_device,
        "newdev",
        false,
    );
    attempt(
        &mut broker,
        &mut m,
        "ca=old: device of the new CA, leaf + cross-certificate",
        &chained,
        "newdev",
        true,
    );

    // A bundle, read when the broker starts: every CA in it is trusted, in either order.
    for order in ["[old, new]", "[new, old]"] {
        let pems = if order == "[old, new]" {
            [pki.ca.certificate_pem(), new_ca.certificate_pem()]
        } else {
            [new_ca.certificate_pem(), pki.ca.certificate_pem()]
        };
        std::fs::write(&ca, pems.concat()).unwrap();
        let mut broker = Broker::start(&pki.settings(false));
        for (who, creds, device) in [
            ("device of the old CA", &old_device, "olddev"),
            ("device of the new CA, leaf only", &new_device, "newdev"),
            ("device of the new CA, leaf + cross-certificate", &chained, "newdev"),
        ] {
            attempt(&mut broker, &mut m, &format!("ca={order}: {who}"), creds, device, true);
        }
    }
    m.finish();
}

fn m_len(case: &str) -> String {
    case.chars().filter(char::is_ascii_alphanumeric).collect()
}

/// The plain listener is unconfined (as it always was): why it must be off in production. It
/// sees what TLS devices send (their uplink passes the router) but cannot take over or write
/// to their sessions, which live on the edge.
#[test]
fn plain_listener_is_unconfined_but_cannot_reach_device_sessions() {
    tools();
    let pki = Pki::new();
    let deva = pki.current_device("deva", "deva");
    let mut broker = Broker::start(&pki.settings(true));
    let (tls, plain) = (broker.tls_port(), broker.plain_port());
    let ca = pki.ca_path.clone();
    let mut m = Matrix::default();

    let mut watcher = Sub::plain(plain, "watcher", "/tenants/+/#");
    let subscribed = watcher.subscribed();
    tls_publish(
        tls,
        &ca,
        Some(&deva),
        "pub",
        "/tenants/deva/up/hello",
        "seen-by-plain",
        1,
    );
    let seen = watcher.received("seen-by-plain");
    m.row(
        "plain client subscribes /tenants/+/# and deva publishes over TLS",
        "plain client receives it (no prefix on the plain listener)",
        format!("suback: {subscribed}; received: {seen}"),
        subscribed && seen,
    );
    let out = plain_publish(plain, "ctl", "/tenants/deva/up/hello", "plain-forged-up", 1);
    let got = broker.link_wait("plain-forged-up");
    m.row(
        "plain client publishes /tenants/deva/up/hello",
        "accepted; the link cannot tell it from deva",
        format!("{}; link received: {got}", out.summary()),
        out.status.success() && got,
    );

    let mut sub_a = Sub::tls(tls, &ca, &deva, "sub", "/tenants/deva/#");
    let subscribed = sub_a.subscribed();
    let out = plain_publish(plain, "deva.sub", "/tenants/deva/down/command", "takeover", 1);
    broker.link_publish("/tenants/deva/down/command", "after-takeover-attempt");
    let still = sub_a.received("after-takeover-attempt") && sub_a.running();
    m.row(
        "plain client connects with client id \"deva.sub\" while deva's TLS \"sub\" is connected",
        "deva's TLS session stays (TLS sessions live on the edge, out of the plain listener's reach)",
        format!(
            "{}; deva subscribed: {subscribed}; deva still connected and receiving: {still}",
            out.summary()
        ),
        subscribed && out.status.success() && still && !sub_a.saw("takeover"),
    );
    m.finish();
}
