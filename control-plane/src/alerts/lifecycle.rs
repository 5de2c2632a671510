//! An alert's lifecycle and the decision the evaluator takes for one (rule, screen).
//!
//! ```text
//!   (breach)──for_s──▶ open ──operator──▶ acknowledged
//!                        │                     │
//!                        └──condition clears───┴──▶ resolved   (final; a new breach opens a new alert)
//! ```
//!
//! A breach that has not lasted `for_s` yet is *pending*: the evaluator keeps its start in memory
//! only (one evaluator runs at a time, under a lease); a new evaluator starts counting again,
//! which delays an alert by at most `for_s` and never opens one early.

use chrono::{DateTime, Utc};

use super::rule::{Condition, Reading};
pub use crate::store::AlertState;

/// What to do with the (rule, screen) after one reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    Nothing,
    /// Open an alert; the condition has held since `since`.
    Open {
        value: Option<f64>,
        since: DateTime<Utc>,
    },
    /// Resolve the active alert: the condition cleared.
    Resolve {
        value: Option<f64>,
    },
}

/// The evaluator's decision: the action and the pending breach to remember.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub action: Action,
    pub pending: Option<DateTime<Utc>>,
}

impl Decision {
    fn just(action: Action) -> Self {
        Self { action, pending: None }
    }
}

/// Decides for one (rule, screen): `reading` now, the breach pending since `pending`, whether
/// an alert is `active`.
pub fn decide(
    condition: &Condition,
    reading: Reading,
    pending: Option<DateTime<Utc>>,
    active: bool,
    now: DateTime<Utc>,
) -> Decision {
    match (condition.threshold(), reading) {
        (Some(t), Reading::Value(v)) if active => Decision::just(if t.cleared(v) {
            Action::Resolve { value: Some(v) }
        } else {
            Action::Nothing
        }),
        (Some(t), Reading::Value(v)) => {
            if !t.breached(v) {
                return Decision::just(Action::Nothing);
            }
            let since = pending.unwrap_or(now);
            if (now - since).num_seconds() >= i64::from(t.for_s) {
                Decision::just(Action::Open { value: Some(v), since })
            } else {
                Decision {
                    action: Action::Nothing,
                    pending: Some(since),
                }
            }
        }
        (None, Reading::Online) if active => Decision::just(Action::Resolve { value: None }),
        (None, Reading::QuietSince(at)) if !active => Decision::just(match condition {
            Condition::Offline(o) if (now - at).num_seconds() >= i64::from(o.for_s) => {
                Action::Open { value: None, since: at }
            }
            _ => Action::Nothing,
        }),
        // No fresh reading: whatever was pending stays pending, an open alert stays open.
        (_, Reading::Unknown) => Decision {
            action: Action::Nothing,
            pending,
        },
        _ => Decision::just(Action::Nothing),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use proptest::prelude::*;

    use super::*;
    use crate::alerts::rule::{Direction, MetricCondition, MetricField, OfflineCondition};

    fn hot(for_s: u32) -> Condition {
        Condition::Metric(MetricCondition {
            metric: MetricField::TemperatureC,
            direction: Direction::Above,
            value: 75.0,
            clear: Some(70.0),
            for_s,
        })
    }

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(1_800_000_000 + s)
    }

    /// Runs readings every 10 s from t(0); returns the actions taken, with their times.
    fn run(condition: &Condition, readings: &[Reading]) -> Vec<(i64, Action)> {
        let (mut pending, mut active, mut out) = (None, false, Vec::new());
        for (i, r) in readings.iter().enumerate() {
            let now = t(i as i64 * 10);
            let d = decide(condition, *r, pending, active, now);
            pending = d.pending;
            match d.action {
                Action::Open { .. } => active = true,
                Action::Resolve { .. } => active = false,
                Action::Nothing => {}
            }
            if d.action != Action::Nothing {
                out.push((i as i64 * 10, d.action));
            }
        }
        out
    }

    #[test]
    fn a_breach_opens_after_its_duration_and_resolves_past_the_clear_line() {
        let v = Reading::Value;
        let seen = run(
            &hot(30),
            &[v(80.0), v(80.0), v(80.0), v(81.0), v(72.0), v(74.0), v(69.0), v(76.0)],
        );
        assert_eq!(
            seen,
            [
                (
                    30,
                    Action::Open {
                        value: Some(81.0),
                        since: t(0)
                    }
                ),
                (60, Action::Resolve { value: Some(69.0) })
            ]
        );
        // A dip below the threshold restarts the count; an unknown reading does not.
        let seen = run(&hot(20), &[v(80.0), v(74.0), v(80.0), Reading::Unknown, v(80.0)]);
        assert_eq!(
            seen,
            [(
                40,
                Action::Open {
                    value: Some(80.0),
                    since: t(20)
                }
            )]
        );
    }

    #[test]
    fn offline_opens_after_the_quiet_time_and_resolves_when_back() {
        let c = Condition::Offline(OfflineCondition { for_s: 600 });
        assert_eq!(
            decide(&c, Reading::QuietSince(t(0)), None, false, t(599)).action,
            Action::Nothing
        );
        assert_eq!(
            decide(&c, Reading::QuietSince(t(0)), None, false, t(600)).action,
            Action::Open {
                value: None,
                since: t(0)
            }
        );
        assert_eq!(
            decide(&c, Reading::QuietSince(t(0)), None, true, t(900)).action,
            Action::Nothing
        );
        assert_eq!(
            decide(&c, Reading::Online, None, true, t(901)).action,
            Action::Resolve { value: None }
        );
        assert_eq!(decide(&c, Reading::Online, None, false, t(902)).action, Action::Nothing);
    }

    #[test]
    fn transitions_follow_the_lifecycle() {
        use AlertState::*;
        for from in AlertState::ALL {
            for to in AlertState::ALL {
                let allowed = matches!(
                    (from, to),
                    (Open, Acknowledged) | (Open, Resolved) | (Acknowledged, Resolved)
                );
                assert_eq!(from.can_move_to(to), allowed, "{from:?} → {to:?}");
            }
        }
    }

    proptest! {
        /// Hysteresis: between consecutive actions the value crossed the whole band, so a
        /// value wandering inside the band (70, 75] never opens or resolves anything, and
        /// actions alternate open, resolve, open…
        #[test]
        fn alerts_never_flap_inside_the_band(values in prop::collection::vec(60.0f64..90.0, 1..200)) {
            let readings: Vec<Reading> = values.iter().map(|v| Reading::Value(*v)).collect();
            let seen = run(&hot(0), &readings);
            for (i, (at, action)) in seen.iter().enumerate() {
                let v = values[(*at / 10) as usize];
                match action {
                    Action::Open { .. } => prop_assert!(i % 2 == 0 && v > 75.0),
                    Action::Resolve { .. } => prop_assert!(i % 2 == 1 && v <= 70.0),
                    Action::Nothing => prop_assert!(false),
                }
            }
            let inside = values.iter().all(|v| *v > 70.0 && *v <= 75.0);
            prop_assert!(!inside || seen.is_empty());
        }
    }
}
