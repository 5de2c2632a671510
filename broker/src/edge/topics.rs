//! The topic rules of the edge's jail: a device publishes only to `/tenants/{prefix}/up` (or
//! `/tenants/{prefix}/up/{kind}` for the kinds the control plane reads, the earlier layout), and subscribes only inside `/tenants/{prefix}/`
//! (only messages for `/tenants/{prefix}/down/…` are ever delivered to it). Also MQTT filter matching for the downlink (the edge, not the
//! broker's router, decides what a device receives).

/// The topics devices may use, shared by every session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRules {
    up_kinds: Vec<String>,
}

impl TopicRules {
    /// Devices may publish `/tenants/{prefix}/up/{kind}` for each of `up_kinds`.
    pub fn new<I, S>(up_kinds: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            up_kinds: up_kinds.into_iter().map(Into::into).collect(),
        }
    }

    /// The message kinds devices may publish.
    pub fn up_kinds(&self) -> &[String] {
        &self.up_kinds
    }

    /// True when the device with `prefix` may publish to `topic`: its one uplink topic
    /// `/tenants/{prefix}/up`, or `up/{kind}` for a known kind (the earlier layout).
    pub fn may_publish(&self, prefix: &str, topic: &str) -> bool {
        let Some(rest) = topic
            .strip_prefix("/tenants/")
            .and_then(|t| t.strip_prefix(prefix))
            .and_then(|t| t.strip_prefix("/up"))
        else {
            return false;
        };
        rest.is_empty()
            || rest
                .strip_prefix('/')
                .is_some_and(|kind| self.up_kinds.iter().any(|k| k == kind))
    }

    /// True when the device with `prefix` may subscribe to `filter`: a well-formed filter
    /// inside its own `/tenants/{prefix}/`.
    pub fn may_subscribe(&self, prefix: &str, filter: &str) -> bool {
        let own = filter
            .strip_prefix("/tenants/")
            .and_then(|t| t.strip_prefix(prefix))
            .and_then(|t| t.strip_prefix('/'));
        matches!(own, Some(rest) if !rest.is_empty() && valid_filter(rest))
    }
}

impl TopicRules {
    /// True when `filter` matches one of the uplink topics of `prefix`.
    pub fn watches_up(&self, prefix: &str, filter: &str) -> bool {
        matches(filter, &format!("/tenants/{prefix}/up"))
            || self
                .up_kinds
                .iter()
                .any(|k| matches(filter, &format!("/tenants/{prefix}/up/{k}")))
    }
}

/// The prefix of a downlink topic `/tenants/{prefix}/down/{…}`.
pub fn down_prefix(topic: &str) -> Option<&str> {
    let rest = topic.strip_prefix("/tenants/")?;
    let (prefix, rest) = rest.split_once('/')?;
    (rest.starts_with("down/") && !prefix.is_empty()).then_some(prefix)
}

/// A well-formed MQTT filter: `#` only as the whole last level, `+` only as a whole level.
pub fn valid_filter(filter: &str) -> bool {
    let levels: Vec<&str> = filter.split('/').collect();
    levels.iter().enumerate().all(|(i, level)| match *level {
        "#" => i == levels.len() - 1,
        "+" => true,
        l => !l.contains(['#', '+']),
    })
}

/// True when `topic` (no wildcards) matches `filter` (a [`valid_filter`]).
pub fn matches(filter: &str, topic: &str) -> bool {
    let mut topic_levels = topic.split('/');
    for level in filter.split('/') {
        match (level, topic_levels.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (l, Some(t)) if l == t => {}
            _ => return false,
        }
    }
    topic_levels.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> TopicRules {
        TopicRules::new(["hello", "event"])
    }

    #[test]
    fn a_device_publishes_only_its_own_up_kinds() {
        let r = rules();
        assert!(r.may_publish("p1", "/tenants/p1/up"));
        assert!(r.may_publish("p1", "/tenants/p1/up/hello"));
        assert!(r.may_publish("p1", "/tenants/p1/up/event"));
        for bad in [
            "/tenants/p1/up/nonsense",
            "/tenants/p1/up/hello/x",
            "/tenants/p2/up/hello",
            "/tenants/p1x/up/hello",
            "/tenants/p1/down/command",
            "/tenants/p1/up/",
            "/tenants/p1/upx",
            "/tenants/p2/up",
            "/tenants/p1/down",
            "tenants/p1/up/hello",
            "/tenants/+/up/hello",
            "",
        ] {
            assert!(!r.may_publish("p1", bad), "{bad}");
        }
    }

    #[test]
    fn a_device_subscribes_only_inside_its_own_prefix() {
        let r = rules();
        for good in [
            "/tenants/p1/down/#",
            "/tenants/p1/down/command",
            "/tenants/p1/down/+",
            "/tenants/p1/#",
            "/tenants/p1/+/command",
        ] {
            assert!(r.may_subscribe("p1", good), "{good}");
        }
        for bad in [
            "#",
            "/tenants/+/down/#",
            "/tenants/#",
            "/tenants/p2/down/#",
            "/tenants/p1/",
            "/tenants/p1",
            "/tenants/p1/down/#/x",
            "/tenants/p1/down/a#",
            "/tenants/p1x/down/#",
        ] {
            assert!(!r.may_subscribe("p1", bad), "{bad}");
        }
    }

    #[test]
    fn filters_match_like_mqtt() {
        assert!(matches("/tenants/p/down/#", "/tenants/p/down/command"));
        assert!(matches("/tenants/p/down/+", "/tenants/p/down/bundle"));
        assert!(matches("/tenants/p/down/command", "/tenants/p/down/command"));
        assert!(matches("/a/#", "/a"));
        assert!(!matches("/tenants/p/down/+", "/tenants/p/down/a/b"));
        assert!(!matches("/tenants/p/down/command", "/tenants/p/down/bundle"));
        assert!(!matches("/tenants/p/down/command", "/tenants/p/down/command/x"));
        let r = rules();
        assert!(r.watches_up("p", "/tenants/p/#") && r.watches_up("p", "/tenants/p/up/event"));
        assert!(r.watches_up("p", "/tenants/p/up") && r.watches_up("p", "/tenants/+/up/#"));
        assert!(!r.watches_up("p", "/tenants/p/down/#"));
        assert_eq!(down_prefix("/tenants/p7/down/command"), Some("p7"));
        assert_eq!(down_prefix("/tenants/p7/up/hello"), None);
        assert_eq!(down_prefix("/tenants//down/x"), None);
    }
}
