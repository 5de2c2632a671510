//! Validation of a [`RuleSet`] with errors that name the offending field.

use chrono::NaiveTime;

use super::{RuleSet, TimeSpec};
use crate::Error;

/// Longest accepted prayer name, in characters.
pub const MAX_NAME: usize = 64;
/// Largest offset from a zman, minutes.
const MAX_OFFSET: i32 = 12 * 60;

fn err(path: String, message: impl Into<String>) -> Error {
    Error::InvalidRule {
        path,
        message: message.into(),
    }
}

/// Parse `"HH:MM"` (24-hour clock).
pub(crate) fn parse_hhmm(s: &str) -> Option<NaiveTime> {
    let (h, m) = s.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, 0)
}

fn check_name(path: String, name: &str) -> Result<(), Error> {
    if name.trim().is_empty() {
        return Err(err(path, "must not be empty"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(err(path, format!("must be at most {MAX_NAME} characters")));
    }
    Ok(())
}

fn check_time(path: String, spec: &TimeSpec) -> Result<(), Error> {
    match spec {
        TimeSpec::Fixed { fixed } => match parse_hhmm(fixed) {
            Some(_) => Ok(()),
            None => Err(err(format!("{path}.fixed"), format!("{fixed:?} is not a HH:MM time"))),
        },
        TimeSpec::Relative { offset_minutes, .. } => {
            if !(-MAX_OFFSET..=MAX_OFFSET).contains(offset_minutes) {
                Err(err(
                    format!("{path}.offset_minutes"),
                    format!("must be within ±{MAX_OFFSET} minutes"),
                ))
            } else {
                Ok(())
            }
        }
    }
}

impl RuleSet {
    /// Check every rule and override; the error names the first bad field.
    pub fn validate(&self) -> Result<(), Error> {
        for (i, r) in self.rules.iter().enumerate() {
            let p = format!("rules[{i}]");
            check_name(format!("{p}.name"), &r.name)?;
            check_time(format!("{p}.time"), &r.time)?;
            if let Some(nb) = &r.not_before {
                check_time(format!("{p}.not_before"), nb)?;
            }
            if let Some(na) = &r.not_after {
                check_time(format!("{p}.not_after"), na)?;
            }
            if let (Some(TimeSpec::Fixed { fixed: a }), Some(TimeSpec::Fixed { fixed: b })) =
                (&r.not_before, &r.not_after)
                && parse_hhmm(a) > parse_hhmm(b)
            {
                return Err(err(
                    format!("{p}.not_after"),
                    format!("{b} is earlier than not_before {a}"),
                ));
            }
            if let Some(round) = r.round
                && !((1..=60).contains(&round.minutes) && 60 % round.minutes == 0)
            {
                return Err(err(
                    format!("{p}.round.minutes"),
                    "must divide an hour: 1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 or 60",
                ));
            }
            if r.days.is_empty() {
                return Err(err(format!("{p}.days"), "must list at least one kind of day"));
            }
            if let (Some(from), Some(until)) = (r.from, r.until)
                && from > until
            {
                return Err(err(format!("{p}.until"), format!("{until} is before from {from}")));
            }
        }
        for (i, o) in self.overrides.iter().enumerate() {
            let p = format!("overrides[{i}]");
            check_name(format!("{p}.name"), &o.name)?;
            if let Some(t) = &o.time
                && parse_hhmm(t).is_none()
            {
                return Err(err(
                    format!("{p}.time"),
                    format!("{t:?} is not a HH:MM time (or null to cancel)"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hhmm() {
        assert!(parse_hhmm("06:30").is_some());
        assert!(parse_hhmm("6:30").is_some());
        assert!(parse_hhmm("24:00").is_none());
        assert!(parse_hhmm("06:3").is_none());
        assert!(parse_hhmm("x").is_none());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in ".{0,200}") {
            let _ = RuleSet::from_json(&s);
        }
    }

    #[test]
    fn extreme_offsets_are_refused_not_overflowed() {
        for offset in [i32::MIN, i32::MAX, -721, 721] {
            let json = format!(
                r#"{{"rules":[{{"name":"M","time":{{"zman":"sunset","offset_minutes":{offset}}},"days":["weekday"]}}]}}"#
            );
            assert!(
                matches!(RuleSet::from_json(&json), Err(Error::InvalidRule { path, .. }) if path == "rules[0].time.offset_minutes"),
                "{offset}"
            );
        }
    }

    #[test]
    fn errors_name_the_field() {
        let bad = r#"{"rules":[{"name":"Mincha","time":{"zman":"sunset","offset_minutes":-15},"days":["weekday"]},
                     {"name":"Maariv","time":{"fixed":"25:00"},"days":["weekday"]}]}"#;
        match RuleSet::from_json(bad) {
            Err(Error::InvalidRule { path, .. }) => assert_eq!(path, "rules[1].time.fixed"),
            other => panic!("unexpected {other:?}"),
        }
        let bad = r#"{"rules":[{"name":"M","time":{"fixed":"13:00"},"round":{"mode":"down","minutes":0},"days":["shabbat"]}]}"#;
        assert!(
            matches!(RuleSet::from_json(bad), Err(Error::InvalidRule { path, .. }) if path == "rules[0].round.minutes")
        );
        let bad = r#"{"rules":[{"name":"M","time":{"fixed":"13:00"},"days":[]}]}"#;
        assert!(matches!(RuleSet::from_json(bad), Err(Error::InvalidRule { path, .. }) if path == "rules[0].days"));
        let bad = r#"{"rules":[{"name":"M","time":{"zman":"noon"},"days":["shabbat"]}]}"#;
        assert!(matches!(RuleSet::from_json(bad), Err(Error::RuleJson(_))));
        let bad = r#"{"rules":[], "extra": 1}"#;
        assert!(matches!(RuleSet::from_json(bad), Err(Error::RuleJson(_))));
    }
}
