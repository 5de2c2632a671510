//! Mosquitto (2.0) configured with the edge's rules: what `luach-server broker-config
//! mosquitto` writes.
//!
//! Two listeners, each with its own settings (`per_listener_settings true`):
//!
//! - **devices** (default port 8883): mutual TLS against the device CA, with the certificate
//!   revocation list ([`CRL_FILE`]) so revoked and superseded enrolments are refused at the
//!   handshake. The certificate's common name is the user name (`use_identity_as_username`):
//!   device certificates carry the enrolment's topic prefix as CN (and as O; the device id is
//!   the OU), so one set of `pattern` lines in [`DEVICES_ACL_FILE`] confines every screen to
//!   `/tenants/{its prefix}/`: publish only `up/{kind}` and `up`, read only `down/#`. The user
//!   name is also the client id (`use_username_as_clientid`): no device can take over
//!   another's session. QoS ≤ 1 and no retained messages, as on the edge.
//! - **control plane** (default port 8884, keep it on a private network): mutual TLS against
//!   a separate service CA that signs only control-plane certificates, so no device
//!   certificate opens it; [`CONTROL_ACL_FILE`] lets the control plane read every device's
//!   uplink and write every device's downlink.
//!
//! Why patterns: an ACL entry per enrolment makes Mosquitto re-read the whole file, and match
//! every connected client against every entry, after every enrolment; at ten thousand screens
//! each reload took the broker's one thread for long enough to starve every connection (see
//! BENCHMARKS.md). With patterns a new enrolment changes nothing the broker holds. The file
//! names only exceptions, and changes only when an enrolment is refused or an earlier
//! certificate expires:
//!
//! - a revoked or superseded enrolment: `user {prefix}` with `topic deny #` (a deny in a user's
//!   entry is checked before any pattern), until its certificates expire;
//! - a certificate in the earlier form (CN = device id, before the device id moved to OU): its
//!   user name is the device id, so its entry denies the pattern's `/tenants/{device id}/` and
//!   grants its enrolment's prefix while that enrolment is current.
//!
//! What differs from the embedded edge, because Mosquitto works this way: a device that
//! breaks the rules is not disconnected: its forbidden publish is dropped, and a subscription
//! beyond its own downlink is granted but carries nothing it may not read (Mosquitto 2.0
//! checks the ACL for every message it delivers, not at SUBSCRIBE). Mosquitto reads the CRL and
//! the CA file only when it starts (a SIGHUP re-reads the ACL files, not the CRL): a refused
//! enrolment loses every topic at the next SIGHUP and is refused at the handshake from the
//! next restart.

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

/// An unexpired device certificate, as the device ACL needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub device_id: String,
    pub prefix: String,
    /// Issued in the earlier form, whose CN (the user name) is the device id.
    pub device_in_cn: bool,
    /// Its enrolment was revoked or superseded.
    pub refused: bool,
}

impl Certificate {
    pub fn new(device_id: impl Into<String>, prefix: impl Into<String>, device_in_cn: bool, refused: bool) -> Self {
        Self {
            device_id: device_id.into(),
            prefix: prefix.into(),
            device_in_cn,
            refused,
        }
    }
}

/// The user name of a control-plane certificate with common name `cn`
/// (`use_subject_as_username` on the control listener).
pub fn control_username(cn: &str) -> String {
    format!("CN={cn}")
}

/// [`DEVICES_ACL_FILE`]: the patterns that confine every device to its own prefix, then the
/// exceptions ([module docs](self)), sorted so the file changes only where the fleet did.
pub fn devices_acl(certificates: &[Certificate], rules: &TopicRules) -> String {
    let mut out = String::from(
        "# Written by luach-server. Do not edit; it is rewritten.\n\
         # Every device: its user name is its certificate's CN, the topic prefix of its enrolment.\n",
    );
    let _ = writeln!(out, "pattern write /tenants/%u/up");
    for kind in rules.up_kinds() {
        let _ = writeln!(out, "pattern write /tenants/%u/up/{kind}");
    }
    let _ = writeln!(out, "pattern read /tenants/%u/down/#");

    let refused: std::collections::BTreeSet<&str> = certificates
        .iter()
        .filter(|c| c.refused && !c.device_in_cn)
        .map(|c| c.prefix.as_str())
        .collect();
    if !refused.is_empty() {
        out.push_str("\n# Revoked or superseded enrolments, until their certificates expire.\n");
    }
    for prefix in refused {
        let _ = writeln!(out, "user {prefix}\ntopic deny #");
    }

    // Earlier-form certificates: user name = device id; grants for current enrolments only.
    let mut earlier: std::collections::BTreeMap<&str, std::collections::BTreeSet<&str>> = Default::default();
    for c in certificates.iter().filter(|c| c.device_in_cn) {
        let grants = earlier.entry(c.device_id.as_str()).or_default();
        if !c.refused {
            grants.insert(c.prefix.as_str());
        }
    }
    if !earlier.is_empty() {
        out.push_str("\n# Certificates in the earlier form (CN = device id), until they expire.\n");
    }
    for (device, prefixes) in earlier {
        let _ = writeln!(out, "user {device}");
        if !prefixes.contains(device) {
            let _ = writeln!(out, "topic deny /tenants/{device}/#");
        }
        for prefix in prefixes {
            let _ = writeln!(out, "topic write /tenants/{prefix}/up");
            for kind in rules.up_kinds() {
                let _ = writeln!(out, "topic write /tenants/{prefix}/up/{kind}");
            }
            let _ = writeln!(out, "topic read /tenants/{prefix}/down/#");
        }
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
         # Devices: mutual TLS, certificate CN (the topic prefix) as user name and client id,\n\
         # confined by patterns; revoked enrolments refused by the CRL.\n\
         {devices}\n\
         max_connections {max_connections}\n\
         max_qos 1\n\
         max_packet_size {max_packet}\n\
         cafile {device_ca}\n\
         certfile {cert}\n\
         keyfile {key}\n\
         crlfile {crl}\n\
         require_certificate true\n\
         use_identity_as_username true\n\
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

    fn cert(device: &str, prefix: &str, device_in_cn: bool, refused: bool) -> Certificate {
        Certificate::new(device, prefix, device_in_cn, refused)
    }

    #[test]
    fn patterns_confine_every_device_and_only_exceptions_are_named() {
        let rules = TopicRules::new(["hello", "ack"]);
        let patterns = "pattern write /tenants/%u/up\npattern write /tenants/%u/up/hello\n\
                        pattern write /tenants/%u/up/ack\npattern read /tenants/%u/down/#\n";
        let empty = devices_acl(&[], &rules);
        assert!(empty.contains(patterns), "{empty}");
        assert!(!empty.lines().any(|l| l.starts_with("user ")), "{empty}");
        // Current enrolments in the new form change nothing: enrolling needs no reload.
        assert_eq!(
            devices_acl(
                &[cert("deva", "pa", false, false), cert("devb", "pb", false, false)],
                &rules
            ),
            empty
        );

        let acl = devices_acl(
            &[
                cert("devb", "pb", false, true),
                cert("devd", "pd", false, false),
                cert("devc", "pc1", true, true),
                cert("devc", "pc2", true, false),
                cert("deve", "pe", true, true),
            ],
            &rules,
        );
        assert!(acl.contains("user pb\ntopic deny #\n"), "{acl}");
        assert!(!acl.contains("user pd"), "{acl}");
        assert!(
            acl.contains(
                "user devc\ntopic deny /tenants/devc/#\ntopic write /tenants/pc2/up\n\
                 topic write /tenants/pc2/up/hello\ntopic write /tenants/pc2/up/ack\ntopic read /tenants/pc2/down/#\n"
            ),
            "{acl}"
        );
        assert!(!acl.contains("pc1"), "a refused enrolment is granted nothing: {acl}");
        assert!(
            acl.contains("user deve\ntopic deny /tenants/deve/#\n\n")
                || acl.ends_with("user deve\ntopic deny /tenants/deve/#\n"),
            "{acl}"
        );
        assert!(
            !acl.contains("topic write /tenants/+") && !acl.contains("topic read /tenants/#"),
            "{acl}"
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
            "use_identity_as_username true",
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
