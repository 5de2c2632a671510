//! The connection edge on the mutual-TLS port, through real MQTT clients (rumqttc) and raw
//! sockets: idle and half-open sockets do not hold a screen back, and every limit of the jail
//! (topics, QoS, retain, packet size, rates, subscriptions, sessions, revocation) holds.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, LastWill, Packet, QoS};
use rustls::pki_types::ServerName;
use support::{Broker, DEADLINE, Pki, client_config, device};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Polls until the CONNACK; the error if the connection fails first.
async fn connected(events: &mut EventLoop) -> Result<(), ConnectionError> {
    loop {
        match tokio::time::timeout(DEADLINE, events.poll()).await {
            Err(_) => panic!("no CONNACK within {DEADLINE:?}"),
            Ok(Err(e)) => return Err(e),
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => return Ok(()),
            Ok(Ok(_)) => {}
        }
    }
}

/// Polls until `want` matches an incoming packet (`Some`) or the connection ends (`None`).
async fn until<T>(events: &mut EventLoop, want: impl Fn(&Packet) -> Option<T>) -> Option<T> {
    loop {
        match tokio::time::timeout(DEADLINE, events.poll()).await {
            Err(_) => panic!("nothing expected happened within {DEADLINE:?}"),
            Ok(Err(_)) => return None,
            Ok(Ok(Event::Incoming(p))) => {
                if let Some(t) = want(&p) {
                    return Some(t);
                }
            }
            Ok(Ok(_)) => {}
        }
    }
}

/// True when the broker closes the connection (whatever arrives before).
async fn closed(events: &mut EventLoop) -> bool {
    until(events, |_| None::<()>).await.is_none()
}

fn start(pki: &Pki, configure: impl FnOnce(&mut luach_broker::BrokerSettings)) -> Broker {
    let mut settings = pki.settings(false);
    configure(&mut settings);
    Broker::start(&settings)
}

#[test]
fn idle_and_half_open_sockets_do_not_hold_a_screen_back_and_time_out() {
    let pki = Pki::new();
    let creds = pki.current_device("screen1", "screen1");
    let mut broker = start(&pki, |s| s.edge.handshake_timeout_secs = 3);
    let port = broker.tls_port();
    let edge = broker.broker.edge().unwrap().clone();
    let (idle, client, mut events) = broker.rt.block_on(async {
        // Three hundred sockets that never speak, and fifty that stop half-way through a
        // TLS ClientHello.
        let mut idle = Vec::new();
        for i in 0..350 {
            let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            if i >= 300 {
                s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).await.unwrap();
            }
            idle.push(s);
        }
        // A real screen connects, subscribes and gets a command while they are all held.
        let (client, mut events) = AsyncClient::new(device(&pki, &creds, port, "agent"), 16);
        connected(&mut events).await.unwrap();
        let c = edge.counts();
        let (open, handshaking) = (c.open, c.handshaking);
        assert!(
            handshaking >= 350 && open >= 351,
            "the idle sockets were let go too early: {open} open, {handshaking} handshaking"
        );
        client
            .subscribe("/tenants/screen1/down/#", QoS::AtLeastOnce)
            .await
            .unwrap();
        until(&mut events, |p| matches!(p, Packet::SubAck(_)).then_some(()))
            .await
            .unwrap();
        (idle, client, events)
    });
    broker.link_publish("/tenants/screen1/down/command", "run-this");
    broker.rt.block_on(async {
        let got = until(&mut events, |p| match p {
            Packet::Publish(p) if p.payload.as_ref() == b"run-this" => Some(p.qos),
            _ => None,
        })
        .await;
        assert_eq!(got, Some(QoS::AtLeastOnce), "the command arrives at the subscribed QoS");
        client
            .publish("/tenants/screen1/up/hello", QoS::AtLeastOnce, false, "hello-1")
            .await
            .unwrap();
        until(&mut events, |p| matches!(p, Packet::PubAck(_)).then_some(()))
            .await
            .unwrap();
    });
    assert!(broker.link_wait("hello-1"), "the hello reached the control plane");

    // The half-open handshakes time out: the edge closes every idle socket by itself.
    broker.rt.block_on(async {
        for mut s in idle {
            let mut buf = [0u8; 64];
            let read = tokio::time::timeout(Duration::from_secs(15), s.read(&mut buf)).await;
            assert!(
                matches!(read, Ok(Ok(0)) | Ok(Err(_))),
                "an idle socket was not closed: {read:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let c = edge.counts();
        assert_eq!((c.open, c.handshaking), (1, 0), "only the screen is left");
    });
}

#[test]
fn the_jail_holds_for_topics_qos_retain_size_and_rate() {
    let pki = Pki::new();
    let creds = pki.current_device("screen2", "screen2");
    let mut broker = start(&pki, |s| {
        s.edge.message_burst = 20;
        s.edge.messages_per_sec = 5;
    });
    let port = broker.tls_port();
    let edge = broker.broker.edge().unwrap().clone();
    type Case = (&'static str, &'static str, QoS, bool, usize);
    let cases: [Case; 6] = [
        (
            "another device's uplink",
            "/tenants/other/up/hello",
            QoS::AtLeastOnce,
            false,
            10,
        ),
        (
            "its own downlink",
            "/tenants/screen2/down/command",
            QoS::AtLeastOnce,
            false,
            10,
        ),
        (
            "an unknown kind",
            "/tenants/screen2/up/nonsense",
            QoS::AtMostOnce,
            false,
            10,
        ),
        (
            "a retained message",
            "/tenants/screen2/up/event",
            QoS::AtLeastOnce,
            true,
            10,
        ),
        ("QoS 2", "/tenants/screen2/up/event", QoS::ExactlyOnce, false, 10),
        (
            "a 70 KiB payload",
            "/tenants/screen2/up/telemetry",
            QoS::AtLeastOnce,
            false,
            70 * 1024,
        ),
    ];
    for (case, topic, qos, retain, size) in cases {
        let token = format!("forbidden-{}", case.len());
        let mut payload = token.clone().into_bytes();
        payload.resize(size.max(payload.len()), b'.');
        let closed_by_edge = broker.rt.block_on(async {
            let (client, mut events) = AsyncClient::new(device(&pki, &creds, port, "agent"), 16);
            connected(&mut events).await.unwrap();
            client.publish(topic, qos, retain, payload).await.unwrap();
            closed(&mut events).await
        });
        assert!(closed_by_edge, "{case}: the device was not disconnected");
        let sentinel = format!("sentinel-{}", case.len());
        broker.rt.block_on(async {
            let (client, mut events) = AsyncClient::new(device(&pki, &creds, port, "agent"), 16);
            connected(&mut events).await.unwrap();
            client
                .publish("/tenants/screen2/up/event", QoS::AtLeastOnce, false, sentinel.clone())
                .await
                .unwrap();
            until(&mut events, |p| matches!(p, Packet::PubAck(_)).then_some(()))
                .await
                .unwrap();
        });
        assert!(broker.link_wait(&sentinel), "{case}: sentinel");
        assert!(!broker.link_saw(&token), "{case}: the control plane got it");
    }
    assert_eq!(edge.counts().violations, 6);

    // A flood past the burst is cut off.
    let flooded = broker.rt.block_on(async {
        let (client, mut events) = AsyncClient::new(device(&pki, &creds, port, "agent"), 200);
        connected(&mut events).await.unwrap();
        for i in 0..100 {
            client
                .publish(
                    "/tenants/screen2/up/heartbeat",
                    QoS::AtMostOnce,
                    false,
                    format!("beat-{i}"),
                )
                .await
                .unwrap();
        }
        closed(&mut events).await
    });
    assert!(flooded, "a flood was not cut off");
    assert!(broker.link_wait("beat-19"), "the burst itself passes");
    assert!(!broker.link_saw("beat-99"), "past the burst nothing passes");
    assert_eq!(edge.counts().over_rate, 1);
}

#[test]
fn subscriptions_wills_takeover_and_revocation() {
    let pki = Pki::new();
    let creds = pki.current_device("screen3", "screen3");
    let mut broker = start(&pki, |_| {});
    let port = broker.tls_port();
    let edge = broker.broker.edge().unwrap().clone();
    let will = |payload: &str| LastWill::new("/tenants/screen3/up/event", payload.to_owned(), QoS::AtLeastOnce, false);

    // Subscriptions: four inside its own prefix; a fifth is refused in the SUBACK.
    let codes = broker.rt.block_on(async {
        let (client, mut events) = AsyncClient::new(device(&pki, &creds, port, "agent"), 16);
        connected(&mut events).await.unwrap();
        for f in ["command", "bundle", "ota", "stored", "extra"] {
            client
                .subscribe(format!("/tenants/screen3/down/{f}"), QoS::AtLeastOnce)
                .await
                .unwrap();
        }
        let mut codes = Vec::new();
        for _ in 0..5 {
            codes.extend(
                until(&mut events, |p| match p {
                    Packet::SubAck(a) => Some(a.return_codes.clone()),
                    _ => None,
                })
                .await
                .unwrap(),
            );
        }
        codes
    });
    assert_eq!(codes.len(), 5);
    assert!(
        codes[..4]
            .iter()
            .all(|c| matches!(c, rumqttc::SubscribeReasonCode::Success(QoS::AtLeastOnce)))
    );
    assert_eq!(codes[4], rumqttc::SubscribeReasonCode::Failure);

    // A connection that breaks publishes its will; one that says DISCONNECT does not.
    broker.rt.block_on(async {
        let mut options = device(&pki, &creds, port, "agent");
        options.set_last_will(will("will-on-loss"));
        let (_client, mut events) = AsyncClient::new(options, 16);
        connected(&mut events).await.unwrap();
        drop(events);
        let mut options = device(&pki, &creds, port, "agent");
        options.set_last_will(will("will-on-goodbye"));
        let (client, mut events) = AsyncClient::new(options, 16);
        connected(&mut events).await.unwrap();
        client.disconnect().await.unwrap();
        let _ = tokio::time::timeout(DEADLINE, async { while events.poll().await.is_ok() {} }).await;
    });
    assert!(broker.link_wait("will-on-loss"));
    assert!(!broker.link_saw("will-on-goodbye"));
    // A will outside the device's topics is refused with the CONNACK.
    let refused = broker.rt.block_on(async {
        let mut options = device(&pki, &creds, port, "agent");
        options.set_last_will(LastWill::new("/tenants/other/up/event", "x", QoS::AtMostOnce, false));
        let (_client, mut events) = AsyncClient::new(options, 16);
        connected(&mut events).await
    });
    assert!(
        matches!(refused, Err(ConnectionError::ConnectionRefused(_))),
        "{refused:?}"
    );

    // The same client id again takes the session over; another client id is a session of its own.
    broker.rt.block_on(async {
        let (_a, mut first) = AsyncClient::new(device(&pki, &creds, port, "agent"), 16);
        connected(&mut first).await.unwrap();
        let (_b, mut tool) = AsyncClient::new(device(&pki, &creds, port, "tool"), 16);
        connected(&mut tool).await.unwrap();
        let (_c, mut second) = AsyncClient::new(device(&pki, &creds, port, "agent"), 16);
        connected(&mut second).await.unwrap();
        assert!(closed(&mut first).await, "the first session was not taken over");
        assert_eq!(edge.counts().sessions, 2, "the second agent session and the tool");

        // Revocation cuts both off at once, and the certificate cannot come back.
        edge.refuse_prefix("screen3");
        assert!(closed(&mut second).await && closed(&mut tool).await);
        let (_d, mut again) = AsyncClient::new(device(&pki, &creds, port, "agent"), 16);
        assert!(connected(&mut again).await.is_err(), "a revoked certificate connected");
        assert_eq!(edge.counts().sessions, 0);
    });
}

#[test]
fn a_screen_that_does_not_read_costs_only_its_own_messages() {
    let pki = Pki::new();
    let slow = pki.current_device("slow1", "slow1");
    let good = pki.current_device("good1", "good1");
    let broker = start(&pki, |s| s.edge.downlink_queue = 8);
    let port = broker.tls_port();
    let edge = broker.broker.edge().unwrap().clone();
    let connector = tokio_rustls::TlsConnector::from(client_config(&pki, &slow));
    let (_slow_socket, client, mut events) = broker.rt.block_on(async {
        // The slow screen: a raw connection that subscribes, then never reads again.
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let mut out = bytes::BytesMut::new();
        rumqttc::mqttbytes::v4::Connect::new("slow").write(&mut out).unwrap();
        rumqttc::mqttbytes::v4::Subscribe::new("/tenants/slow1/down/#", rumqttc::mqttbytes::QoS::AtLeastOnce)
            .write(&mut out)
            .unwrap();
        tls.write_all(&out).await.unwrap();
        let mut connack = [0u8; 4];
        tls.read_exact(&mut connack).await.unwrap();
        assert_eq!(connack, [0x20, 0x02, 0x00, 0x00]);
        let (client, mut events) = AsyncClient::new(device(&pki, &good, port, "agent"), 16);
        connected(&mut events).await.unwrap();
        client
            .subscribe("/tenants/good1/down/#", QoS::AtLeastOnce)
            .await
            .unwrap();
        until(&mut events, |p| matches!(p, Packet::SubAck(_)).then_some(()))
            .await
            .unwrap();
        (tls, client, events)
    });
    // Far more than its socket buffers and queue take: publishing never waits on it.
    let big = vec![b'x'; 16 * 1024];
    for _ in 0..2000 {
        broker
            .rt
            .block_on(
                broker
                    .publisher
                    .publish("/tenants/slow1/down/command".into(), big.clone()),
            )
            .unwrap();
    }
    broker.link_publish("/tenants/good1/down/command", "for-the-good-one");
    broker.rt.block_on(async {
        let got = until(&mut events, |p| match p {
            Packet::Publish(p) => Some(p.payload.clone()),
            _ => None,
        })
        .await;
        assert_eq!(got.as_deref(), Some(&b"for-the-good-one"[..]));
        client.disconnect().await.unwrap();
    });
    assert!(edge.counts().downlink_full > 0, "{:?}", edge.counts());
}

#[test]
fn an_mqtt_5_connect_is_refused() {
    let pki = Pki::new();
    let creds = pki.current_device("screen5", "screen5");
    let broker = start(&pki, |_| {});
    let port = broker.tls_port();
    let connector = tokio_rustls::TlsConnector::from(client_config(&pki, &creds));
    let answer = broker.rt.block_on(async {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        // CONNECT, protocol "MQTT" level 5, clean start, keep-alive 30, no properties, id "v5".
        let connect = [
            0x10, 0x0f, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x1e, 0x00, 0x00, 0x02, b'v', b'5',
        ];
        tls.write_all(&connect).await.unwrap();
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(DEADLINE, tls.read_to_end(&mut rest)).await;
        rest
    });
    assert!(answer.is_empty(), "an MQTT 5 client was answered: {answer:?}");
}
