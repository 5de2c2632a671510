//! The device ACL that `luach-server broker-config mosquitto` writes, read by a real Mosquitto
//! 2: its patterns confine every device to `/tenants/{user name}/`, a refused enrolment's
//! entry denies before any pattern grants, and a certificate in the earlier form (user name =
//! device id) reaches its current enrolment's prefix and not `/tenants/{device id}/`.
//!
//! The listener here is plain with the user name given by the client, standing in for the
//! certificate's CN that the TLS listener takes (`use_identity_as_username`): the ACL is
//! checked the same way. `broker/tests/mtls_isolation.rs` runs the TLS listener itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use luach_broker::TopicRules;
use luach_broker::external::mosquitto::{self as conf, Certificate};
use support::free_port;

struct Broker {
    child: Child,
    port: u16,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, acl: &str) -> Broker {
    let port = free_port();
    // The test's own watcher reads and writes everything, as the control plane does.
    std::fs::write(dir.join("acl"), format!("{acl}\nuser watch\ntopic readwrite #\n")).unwrap();
    std::fs::write(
        dir.join("conf"),
        format!(
            "user root\nlistener {port} 127.0.0.1\nallow_anonymous true\nacl_file {}\npersistence false\n",
            dir.join("acl").display()
        ),
    )
    .unwrap();
    let child = Command::new("mosquitto")
        .arg("-c")
        .arg(dir.join("conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto (Debian package mosquitto)");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "mosquitto does not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    Broker { child, port }
}

fn publish(port: u16, user: &str, topic: &str, message: &str) {
    let status = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-u", user, "-q", "1"])
        .args(["-t", topic, "-m", message])
        .status()
        .expect("mosquitto_pub (Debian package mosquitto-clients)");
    assert!(status.success(), "{user} publishing to {topic}");
}

/// Subscribes as `user` to `filter` until `wait` has passed; returns what it received.
fn subscribe(port: u16, user: &str, filter: &str, wait: u32) -> Child {
    Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-u", user, "-q", "1", "-v"])
        .args(["-t", filter, "-W", &wait.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto_sub (Debian package mosquitto-clients)")
}

fn output(child: Child) -> String {
    String::from_utf8_lossy(&child.wait_with_output().unwrap().stdout).into_owned()
}

#[test]
fn the_generated_acl_confines_devices_by_pattern_and_names_only_exceptions() {
    let dir = tempfile::tempdir().unwrap();
    let rules = TopicRules::new(["hello", "heartbeat"]);
    let acl = conf::devices_acl(
        &[
            // pa: current, new form. pr: refused, new form.
            Certificate::new("deva", "pa", false, false),
            Certificate::new("devr", "pr", false, true),
            // legacy1: earlier form, current enrolment pl. legacy2: earlier form, refused.
            Certificate::new("legacy1", "pl", true, false),
            Certificate::new("legacy2", "pm", true, true),
        ],
        &rules,
    );
    let broker = start(dir.path(), &acl);
    let port = broker.port;

    // Uplink: everything the watcher sees.
    let watcher = subscribe(port, "watch", "/tenants/#", 4);
    std::thread::sleep(Duration::from_millis(400));
    let writes = [
        ("pa", "/tenants/pa/up", true),
        ("pa", "/tenants/pa/up/hello", true),
        ("pa", "/tenants/pa/up/nonsense", false),
        ("pa", "/tenants/pb/up", false),
        ("pa", "/tenants/pa/down/command", false),
        ("pr", "/tenants/pr/up", false),
        ("pr", "/tenants/pr/up/hello", false),
        ("legacy1", "/tenants/pl/up", true),
        ("legacy1", "/tenants/pl/up/heartbeat", true),
        ("legacy1", "/tenants/legacy1/up", false),
        ("legacy2", "/tenants/pm/up", false),
        ("legacy2", "/tenants/legacy2/up", false),
    ];
    for (i, (user, topic, _)) in writes.iter().enumerate() {
        publish(port, user, topic, &format!("w{i}"));
    }
    let seen = output(watcher);
    for (i, (user, topic, allowed)) in writes.iter().enumerate() {
        let line = format!("{topic} w{i}");
        assert_eq!(
            seen.lines().any(|l| l == line),
            *allowed,
            "{user} publishing to {topic}: expected {}\nseen:\n{seen}\nacl:\n{acl}",
            if *allowed { "delivered" } else { "dropped" }
        );
    }

    // Downlink: each device subscribes to its own and others' subtrees; the watcher
    // publishes to every down topic.
    let reads = [
        ("pa", "/tenants/pa/down/#", true),
        ("pa", "/tenants/pb/down/#", false),
        ("pr", "/tenants/pr/down/#", false),
        ("legacy1", "/tenants/pl/down/#", true),
        ("legacy1", "/tenants/legacy1/down/#", false),
        ("legacy2", "/tenants/pm/down/#", false),
    ];
    let subs: Vec<Child> = reads
        .iter()
        .map(|(user, filter, _)| subscribe(port, user, filter, 3))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    for prefix in ["pa", "pb", "pr", "pl", "legacy1", "pm"] {
        publish(port, "watch", &format!("/tenants/{prefix}/down/command"), "d");
    }
    for ((user, filter, allowed), sub) in reads.iter().zip(subs) {
        let got = output(sub);
        assert_eq!(
            !got.is_empty(),
            *allowed,
            "{user} reading {filter}: got {got:?}\nacl:\n{acl}"
        );
    }
}
