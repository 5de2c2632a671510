//! Mosquitto (2.0) configured with the edge's rules: what `luach-server broker-config
//! mosquitto` writes.
//!
//! Two listeners, each with its own settings (`per_listener_settings true`):
//!
//! - **devices** (default port 8883): mutual TLS against the device CA, with the certificate
//!   revocation list ([`CRL_FILE`]) so revoked and superseded enrolments are refused at the
//!   handshake. The certificate's subject is the user name (`use_subject_as_username`):
//!   `CN={device id},O={topic prefix}`, different for every enrolment, so an ACL entry names
//!   one enrolment and no earlier certificate of the same screen. The user name is also the
//!   client id (`use_username_as_clientid`): no device can take over another's session.
//!   [`DEVICES_ACL_FILE`] lets each enrolment publish only `/tenants/{prefix}/up/{kind}` and
//!   read only `/tenants/{prefix}/down/#`. QoS ≤ 1 and no retained messages, as on the edge.
//! - **control plane** (default port 8884, keep it on a private network): mutual TLS against
//!   a separate service CA that signs only control-plane certificates, so no device
//!   certificate opens it; [`CONTROL_ACL_FILE`] lets the control plane read every device's
//!   uplink and write every device's downlink.
//!
//! What differs from the embedded edge, because Mosquitto works this way: a device that
//! breaks the rules is not disconnected: its forbidden publish is dropped, and a subscription
//! beyond its own downlink is granted but carries nothing it may not read (Mosquitto 2.0
//! checks the ACL for every message it delivers, not at SUBSCRIBE). Mosquitto reads the CRL and the CA file only
//! when it starts (a SIGHUP re-reads the ACL files, not the CRL): a revoked enrolment loses
//! every topic at the next SIGHUP, because the ACL no longer names it, and is refused at the
//! handshake from the next restart.

use std::fmt::Write as _;
use std::path::Path;

use crate::TopicRules;

/// The device CA (or CAs, during a rotation) the device listener trusts.
pub const DEVICE_CA_FILE: &str = "device-ca.pem";
/// The service CA the control-plane listener trusts.
pub const SERVICE_CA_FILE: &str = "service-ca.pem";
/// The broker's server certificate chain (issued by the device CA).
pub const BROKER_CERT_FILE: &str = "broker.pem";
/// Its private key (mode 0600).
pub const BROKER_KEY_FILE: &str = "broker.key";
/// Revoked and superseded device certificates, one CRL per device CA.
pub const CRL_FILE: &str = "devices.crl";
/// One entry per current enrolment.
pub const DEVICES_ACL_FILE: &str = "devices.acl";
/// The control plane's rights.
pub const CONTROL_ACL_FILE: &str = "control-plane.acl";
/// The configuration itself (include it from the main file, or run `mosquitto -c` on it).
pub const CONFIG_FILE: &str = "mosquitto.conf";

/// A current enrolment: the device and the topic prefix of its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolled {
    pub device_id: String,
    pub prefix: String,
}

/// The user name Mosquitto derives from a device certificate (`use_subject_as_username`:
/// the subject in RFC 2253 form, last attribute first). Device ids and prefixes hold only
/// characters RFC 2253 leaves unescaped.
pub fn device_username(device_id: &str, prefix: &str) -> String {
    format!("CN={device_id},O={prefix}")
}

/// The user name of a control-plane certificate with common name `cn`.
pub fn control_username(cn: &str) -> String {
    format!("CN={cn}")
}

/// [`DEVICES_ACL_FILE`]: each enrolment may publish its own uplink kinds and read its own
/// downlink. Sorted by user name, so the file changes only where the fleet did.
pub fn devices_acl(enrolled: &[Enrolled], rules: &TopicRules) -> String {
    let mut sorted: Vec<&Enrolled> = enrolled.iter().collect();
    sorted.sort_by(|a, b| (&a.prefix, &a.device_id).cmp(&(&b.prefix, &b.device_id)));
    let mut out =
        String::from("# Written by luach-server: one entry per current enrolment. Do not edit; it is rewritten.\n");
    for e in sorted {
        let _ = writeln!(out, "\nuser {}", device_username(&e.device_id, &e.prefix));
        for kind in rules.up_kinds() {
            let _ = writeln!(out, "topic write /tenants/{}/up/{kind}", e.prefix);
        }
        let _ = writeln!(out, "topic read /tenants/{}/down/#", e.prefix);
    }
    out
}

/// [`CONTROL_ACL_FILE`]: the control plane (common name `cn`) reads every device's uplink and
/// writes every device's downlink.
pub fn control_acl(cn: &str) -> String {
    format!(
        "# Written by luach-server. Do not edit; it is rewritten.\n\nuser {}\ntopic read /tenants/+/up/#\ntopic write /tenants/+/down/#\n",
        control_username(cn)
    )
}

/// Where the two listeners listen and their limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listeners {
    /// Devices' listener: bind address (empty: every interface) and port.
    pub devices_bind: String,
    pub devices_port: u16,
    /// Control plane's listener.
    pub control_bind: String,
    pub control_port: u16,
    /// Most device connections.
    pub max_connections: usize,
    /// Largest packet a client may send, in bytes.
    pub max_packet_bytes: usize,
}

/// [`CONFIG_FILE`] for the files in `dir` (as the broker sees them).
pub fn config(dir: &Path, listeners: &Listeners) -> String {
    let file = |name: &str| dir.join(name).display().to_string();
    let listener = |port: u16, bind: &str| {
        if bind.is_empty() {
            format!("listener {port}")
        } else {
            format!("listener {port} {bind}")
        }
    };
    format!(
        "# Written by luach-server broker-config mosquitto. Rewritten with the fleet; do not edit.\n\
         # SIGHUP re-reads the ACL files; the CRL and CA files are read when mosquitto starts.\n\
         per_listener_settings true\n\
         persistence false\n\
         retain_available false\n\
         # Per client, for every client: the control plane's one connection carries every\n\
         # screen's uplink, and past these Mosquitto drops messages to it (a fleet reconnecting\n\
         # at once sends three per screen). Screens receive few messages; the command outbox\n\
         # bounds what waits for one.\n\
         max_inflight_messages 1000\n\
         max_queued_messages 200000\n\
         \n\
         # Devices: mutual TLS, certificate subject as user name and client id, one ACL entry\n\
         # per enrolment, revoked enrolments refused by the CRL.\n\
         {devices}\n\
         max_connections {max_connections}\n\
         max_qos 1\n\
         max_packet_size {max_packet}\n\
         cafile {device_ca}\n\
         certfile {cert}\n\
         keyfile {key}\n\
         crlfile {crl}\n\
         require_certificate true\n\
         use_subject_as_username true\n\
         use_username_as_clientid true\n\
         allow_anonymous false\n\
         acl_file {devices_acl}\n\
         \n\
         # The control plane: mutual TLS against the service CA only.\n\
         {control}\n\
         max_qos 1\n\
         cafile {service_ca}\n\
         certfile {cert}\n\
         keyfile {key}\n\
         require_certificate true\n\
         use_subject_as_username true\n\
         allow_anonymous false\n\
         acl_file {control_acl}\n",
        devices = listener(listeners.devices_port, &listeners.devices_bind),
        control = listener(listeners.control_port, &listeners.control_bind),
        max_connections = listeners.max_connections,
        max_packet = listeners.max_packet_bytes,
        device_ca = file(DEVICE_CA_FILE),
        service_ca = file(SERVICE_CA_FILE),
        cert = file(BROKER_CERT_FILE),
        key = file(BROKER_KEY_FILE),
        crl = file(CRL_FILE),
        devices_acl = file(DEVICES_ACL_FILE),
        control_acl = file(CONTROL_ACL_FILE),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_entries_name_one_enrolment_each() {
        let rules = TopicRules::new(["hello", "ack"]);
        let acl = devices_acl(
            &[
                Enrolled {
                    device_id: "devb".into(),
                    prefix: "pb".into(),
                },
                Enrolled {
                    device_id: "deva".into(),
                    prefix: "pa".into(),
                },
            ],
            &rules,
        );
        let a = acl.find("user CN=deva,O=pa\n").expect("deva");
        let b = acl.find("user CN=devb,O=pb\n").expect("devb");
        assert!(a < b, "sorted by prefix");
        assert!(acl.contains(
            "user CN=deva,O=pa\ntopic write /tenants/pa/up/hello\ntopic write /tenants/pa/up/ack\ntopic read /tenants/pa/down/#\n"
        ));
        assert!(
            !acl.contains("+") && !acl.contains("/tenants/#"),
            "no wildcard grants: {acl}"
        );
        assert_eq!(
            devices_acl(&[], &rules)
                .lines()
                .filter(|l| l.starts_with("user"))
                .count(),
            0
        );
    }

    #[test]
    fn config_points_at_the_files_and_splits_the_listeners() {
        let conf = config(
            Path::new("/etc/mosquitto/luach"),
            &Listeners {
                devices_bind: String::new(),
                devices_port: 8883,
                control_bind: "10.0.0.5".into(),
                control_port: 8884,
                max_connections: 20_000,
                max_packet_bytes: 66_560,
            },
        );
        let (devices, control) = conf.split_once("listener 8884 10.0.0.5\n").expect("control listener");
        assert!(devices.contains("listener 8883\n"));
        for line in [
            "cafile /etc/mosquitto/luach/device-ca.pem",
            "crlfile /etc/mosquitto/luach/devices.crl",
            "use_username_as_clientid true",
            "acl_file /etc/mosquitto/luach/devices.acl",
        ] {
            assert!(devices.contains(line), "{line}");
            assert!(!control.contains(line), "{line} on the control listener");
        }
        assert!(control.contains("cafile /etc/mosquitto/luach/service-ca.pem"));
        assert!(control.contains("acl_file /etc/mosquitto/luach/control-plane.acl"));
        assert_eq!(control_acl("cp").lines().nth(2), Some("user CN=cp"));
    }
}
