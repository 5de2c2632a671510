//! MQTT topic layout: `/tenants/{prefix}/{up|down}/{kind}`.
//!
//! The prefix is the screen's [`TopicPrefix`]: its certificate's organisation (fresh for each
//! enrolment) on the mutual-TLS listener, its device id on the development listener. The
//! control plane maps prefixes to devices; a prefix it does not know is dropped.

use std::fmt;

use crate::ids::{IdError, TopicPrefix};

/// Messages a device sends to the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpKind {
    Hello,
    Heartbeat,
    Metrics,
    Telemetry,
    Ack,
    Event,
}

/// Messages the control plane sends to a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DownKind {
    Command,
    Bundle,
    Ota,
    /// The control plane stored a telemetry batch.
    Stored,
}

impl UpKind {
    pub const ALL: [UpKind; 6] = [
        Self::Hello,
        Self::Heartbeat,
        Self::Metrics,
        Self::Telemetry,
        Self::Ack,
        Self::Event,
    ];

    /// The last topic segment, also the envelope's `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hello => "hello",
            Self::Heartbeat => "heartbeat",
            Self::Metrics => "metrics",
            Self::Telemetry => "telemetry",
            Self::Ack => "ack",
            Self::Event => "event",
        }
    }

    /// The kind named `s`, if there is one.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl DownKind {
    pub const ALL: [DownKind; 4] = [Self::Command, Self::Bundle, Self::Ota, Self::Stored];

    /// The last topic segment, also the envelope's `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Command => "command",
            Self::Bundle => "bundle",
            Self::Ota => "ota",
            Self::Stored => "stored",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A parsed Luach topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// `/tenants/{prefix}/up`: a screen's one uplink topic; the envelope's `type` names the
    /// kind. Agents publish here; the control plane also reads the earlier per-kind topics.
    Uplink(TopicPrefix),
    /// `/tenants/{prefix}/up/{kind}`: the earlier layout, one uplink topic per kind, still
    /// accepted from agents in the field (and used for messages the edge writes itself).
    Up(TopicPrefix, UpKind),
    Down(TopicPrefix, DownKind),
}

/// Why a topic is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("topic does not follow /tenants/{{prefix}}/{{up|down}}/{{kind}}")]
    Layout,
    #[error("topic names an invalid prefix: {0}")]
    Prefix(#[from] IdError),
    #[error("unknown {direction} message kind {kind:?}")]
    Kind { direction: &'static str, kind: String },
}

impl Topic {
    /// Filter the control plane subscribes to for everything devices send.
    pub const ALL_UP_FILTER: &'static str = "/tenants/+/up/#";

    /// Parses a topic name received from the broker.
    pub fn parse(topic: &str) -> Result<Self, TopicError> {
        let mut parts = topic.split('/');
        if let (Some(""), Some("tenants"), Some(prefix), Some("up"), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        {
            return Ok(Topic::Uplink(TopicPrefix::parse(prefix)?));
        }
        let mut parts = topic.split('/');
        let (Some(""), Some("tenants"), Some(prefix), Some(direction), Some(kind), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(TopicError::Layout);
        };
        let prefix = TopicPrefix::parse(prefix)?;
        match direction {
            "up" => UpKind::parse(kind)
                .map(|k| Topic::Up(prefix, k))
                .ok_or_else(|| TopicError::Kind {
                    direction: "up",
                    kind: kind.to_owned(),
                }),
            "down" => DownKind::parse(kind)
                .map(|k| Topic::Down(prefix, k))
                .ok_or_else(|| TopicError::Kind {
                    direction: "down",
                    kind: kind.to_owned(),
                }),
            _ => Err(TopicError::Layout),
        }
    }

    /// The prefix (the screen's connection) this topic belongs to.
    pub fn prefix(&self) -> &TopicPrefix {
        match self {
            Topic::Uplink(p) | Topic::Up(p, _) | Topic::Down(p, _) => p,
        }
    }

    /// The filter a screen subscribes to for everything addressed to it.
    pub fn down_filter(prefix: &TopicPrefix) -> String {
        format!("/tenants/{prefix}/down/#")
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::Uplink(d) => write!(f, "/tenants/{d}/up"),
            Topic::Up(d, k) => write!(f, "/tenants/{d}/up/{}", k.as_str()),
            Topic::Down(d, k) => write!(f, "/tenants/{d}/down/{}", k.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dev() -> TopicPrefix {
        TopicPrefix::parse("abc123").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn every_kind_roundtrips() {
        for k in UpKind::ALL {
            let t = Topic::Up(dev(), k);
            assert_eq!(Topic::parse(&t.to_string()), Ok(t));
        }
        for k in DownKind::ALL {
            let t = Topic::Down(dev(), k);
            assert_eq!(Topic::parse(&t.to_string()), Ok(t));
        }
        let t = Topic::Uplink(dev());
        assert_eq!(t.to_string(), "/tenants/abc123/up");
        assert_eq!(Topic::parse("/tenants/abc123/up"), Ok(t));
    }

    #[test]
    fn foreign_layouts_are_rejected() {
        for bad in [
            "",
            "tenants/abc/up/hello",
            "/tenants/abc/down",
            "/tenants/abc/up/",
            "/tenants/ABC/up",
            "/tenants/abc/up/hello/extra",
            "/tenants/ABC/up/hello",
            "/tenants/abc/sideways/hello",
            "/tenants/abc/up/nonsense",
            "/other/abc/up/hello",
        ] {
            assert!(Topic::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "(/[a-z+#]{0,8}){0,6}") {
            let _ = Topic::parse(&s);
        }
    }
}
