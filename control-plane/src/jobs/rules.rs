//! The job engine's decisions, as pure functions of records and the time: what an
//! acknowledgement or a time-out does to an execution, when a job aborts or completes, and how
//! many executions may start now. The engine only reads, calls these and writes.

use chrono::{DateTime, Utc};
use luach_schemas::messages::{Ack, AckStatus};

use super::spec::{JobSpec, Mode};
use crate::store::{Counts, ExecState, ExecUpdate, Execution, JobState};

fn update(e: &Execution, next: Execution) -> ExecUpdate {
    ExecUpdate {
        seq: e.seq,
        from: e.state,
        attempt: e.attempt,
        next,
    }
}

/// Back to the queue for another attempt (`same_id`: after a time-out the same command id is
/// sent again, so a screen that did act answers from memory instead of acting twice).
fn retry(e: &Execution, spec: &JobSpec, now: DateTime<Utc>, same_id: bool, why: String) -> ExecUpdate {
    update(
        e,
        Execution {
            state: ExecState::Queued,
            command_id: if same_id { e.command_id.clone() } else { None },
            detail: Some(why),
            not_before: Some(now + spec.backoff(e.attempt)),
            deadline: None,
            updated_at: now,
            ..e.clone()
        },
    )
}

fn retries_left(e: &Execution, spec: &JobSpec) -> bool {
    e.attempt <= spec.retries
}

/// What `ack` does to execution `e`, if anything. Acks for another attempt, or for an
/// execution no longer waiting for one, change nothing.
pub fn on_ack(e: &Execution, spec: &JobSpec, ack: &Ack, now: DateTime<Utc>) -> Option<ExecUpdate> {
    if !e.state.in_flight() || e.command_id.as_deref() != Some(ack.command_id.as_str()) {
        return None;
    }
    let finished = |state: ExecState| {
        update(
            e,
            Execution {
                state,
                detail: ack.detail.clone(),
                deadline: None,
                updated_at: now,
                ..e.clone()
            },
        )
    };
    Some(match ack.status {
        AckStatus::Received if e.state == ExecState::Sent => update(
            e,
            Execution {
                state: ExecState::Received,
                updated_at: now,
                ..e.clone()
            },
        ),
        AckStatus::Received => return None,
        AckStatus::Ok => finished(ExecState::Succeeded),
        AckStatus::Error if retries_left(e, spec) => retry(
            e,
            spec,
            now,
            false,
            format!(
                "attempt {} failed: {}",
                e.attempt,
                ack.detail.as_deref().unwrap_or("no reason given")
            ),
        ),
        AckStatus::Error => finished(ExecState::Failed),
        AckStatus::Unsupported => {
            let mut u = finished(ExecState::Failed);
            u.next.detail = Some(format!(
                "unsupported: {}",
                ack.detail.as_deref().unwrap_or("the screen cannot do this")
            ));
            u
        }
    })
}

/// What the passing of its deadline does to an in-flight execution.
pub fn on_timeout(e: &Execution, spec: &JobSpec, now: DateTime<Utc>) -> Option<ExecUpdate> {
    if !e.state.in_flight() || e.deadline.is_none_or(|d| d > now) {
        return None;
    }
    let why = format!("no answer within {} s", spec.timeout_s);
    if retries_left(e, spec) {
        return Some(retry(e, spec, now, true, format!("attempt {}: {why}", e.attempt)));
    }
    Some(update(
        e,
        Execution {
            state: ExecState::TimedOut,
            detail: Some(why),
            deadline: None,
            updated_at: now,
            ..e.clone()
        },
    ))
}

/// Sends execution `e` now: a new attempt with a new command id, or (after a time-out) the
/// same command id again.
pub fn send(e: &Execution, spec: &JobSpec, now: DateTime<Utc>) -> ExecUpdate {
    let attempt = e.attempt + 1;
    let command_id = e
        .command_id
        .clone()
        .unwrap_or_else(|| Execution::command_id_of(&e.job_id, e.seq, attempt));
    update(
        e,
        Execution {
            state: ExecState::Sent,
            attempt,
            command_id: Some(command_id),
            detail: None,
            not_before: None,
            sent_at: Some(now),
            deadline: Some(now + spec.timeout()),
            updated_at: now,
            ..e.clone()
        },
    )
}

/// Keeps a queued execution waiting until `until`, saying why.
pub fn hold(e: &Execution, until: DateTime<Utc>, why: String, now: DateTime<Utc>) -> ExecUpdate {
    update(
        e,
        Execution {
            not_before: Some(until),
            detail: Some(why),
            updated_at: now,
            ..e.clone()
        },
    )
}

/// Where a job should go from `state` given its executions' counts, and why; `None`: stay.
pub fn next_state(spec: &JobSpec, state: JobState, counts: &Counts) -> Option<(JobState, String)> {
    if state.is_final() {
        return None;
    }
    let failures = counts.failed + counts.timed_out;
    if spec.mode == Mode::Sequential && failures > 0 && counts.queued > 0 {
        return Some((
            JobState::Aborted,
            "sequential: stopped at the first failed execution".into(),
        ));
    }
    if let Some(rule) = spec.abort
        && counts.queued > 0
    {
        let finished = counts.finished();
        if finished >= u64::from(rule.min_executions)
            && (failures as f64) * 100.0 > rule.failure_percent * finished as f64
        {
            return Some((
                JobState::Aborted,
                format!(
                    "{failures} of {finished} finished executions failed, more than {}%",
                    rule.failure_percent
                ),
            ));
        }
    }
    (counts.open() == 0).then(|| (JobState::Completed, "every execution ended".into()))
}

/// How many more executions may start now: the concurrency left, and under a rate limit, the
/// starts the rate has allowed since the job was created (one at once, then `rate` a minute)
/// less those already made. Counted from stored records, so a restart keeps the pace.
pub fn capacity(spec: &JobSpec, counts: &Counts, ever_sent: u64, created: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    let free = u64::from(spec.concurrency).saturating_sub(counts.in_flight());
    match spec.rate_per_minute {
        None => free,
        Some(rate) => {
            let elapsed_ms = u64::try_from((now - created).num_milliseconds()).unwrap_or(0);
            let allowed = 1 + u64::from(rate) * elapsed_ms / 60_000;
            free.min(allowed.saturating_sub(ever_sent))
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use luach_schemas::DeviceId;

    use super::*;
    use crate::jobs::spec::JobRequest;

    fn spec(extra: serde_json::Value) -> JobSpec {
        let mut v = serde_json::json!({"command": {"type": "ping"}, "target": {"all": true}});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        serde_json::from_value::<JobRequest>(v)
            .unwrap_or_else(|e| panic!("{e}"))
            .check()
            .unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    fn queued() -> Execution {
        Execution::queued("job", DeviceId::parse("d1").unwrap_or_else(|e| panic!("{e}")), 3, t0())
    }

    fn apply(e: &Execution, u: ExecUpdate) -> Execution {
        assert_eq!((u.seq, u.from, u.attempt), (e.seq, e.state, e.attempt));
        assert!(
            u.from.can_move_to(u.next.state) || u.from == u.next.state,
            "{:?} → {:?}",
            u.from,
            u.next.state
        );
        u.next
    }

    fn ack(e: &Execution, status: AckStatus) -> Ack {
        Ack {
            command_id: e.command_id.clone().unwrap_or_default(),
            status,
            detail: Some("d".into()),
        }
    }

    #[test]
    fn an_execution_goes_from_queued_to_succeeded() {
        let s = spec(serde_json::json!({}));
        let e = apply(&queued(), send(&queued(), &s, t0()));
        assert_eq!(
            (e.state, e.attempt, e.command_id.as_deref()),
            (ExecState::Sent, 1, Some("job.3.1"))
        );
        assert_eq!(e.deadline, Some(t0() + Duration::seconds(60)));
        let e = apply(
            &e,
            on_ack(&e, &s, &ack(&e, AckStatus::Received), t0()).unwrap_or_else(|| panic!()),
        );
        assert_eq!(e.state, ExecState::Received);
        // A second "received" changes nothing.
        assert!(on_ack(&e, &s, &ack(&e, AckStatus::Received), t0()).is_none());
        let e = apply(
            &e,
            on_ack(&e, &s, &ack(&e, AckStatus::Ok), t0()).unwrap_or_else(|| panic!()),
        );
        assert_eq!(e.state, ExecState::Succeeded);
        // Nothing moves a final execution.
        assert!(on_ack(&e, &s, &ack(&e, AckStatus::Error), t0()).is_none());
        assert!(on_timeout(&e, &s, t0() + Duration::days(1)).is_none());
    }

    #[test]
    fn acks_for_another_attempt_are_ignored() {
        let s = spec(serde_json::json!({}));
        let e = apply(&queued(), send(&queued(), &s, t0()));
        let mut stale = ack(&e, AckStatus::Ok);
        stale.command_id = "job.3.0".into();
        assert!(on_ack(&e, &s, &stale, t0()).is_none());
        assert!(on_ack(&queued(), &s, &stale, t0()).is_none());
    }

    #[test]
    fn a_failure_retries_with_a_new_id_and_a_timeout_with_the_same() {
        let s = spec(serde_json::json!({"retries": 2, "retry_backoff_s": 10}));
        let e = apply(&queued(), send(&queued(), &s, t0()));
        let e = apply(
            &e,
            on_ack(&e, &s, &ack(&e, AckStatus::Error), t0()).unwrap_or_else(|| panic!()),
        );
        assert_eq!((e.state, e.command_id.clone()), (ExecState::Queued, None));
        assert_eq!(e.not_before, Some(t0() + Duration::seconds(10)));
        let later = t0() + Duration::seconds(10);
        let e = apply(&e, send(&e, &s, later));
        assert_eq!(e.command_id.as_deref(), Some("job.3.2"));
        // Times out: queued again with the same id, after a doubled pause.
        let late = later + Duration::seconds(61);
        assert!(on_timeout(&e, &s, later + Duration::seconds(59)).is_none());
        let e = apply(&e, on_timeout(&e, &s, late).unwrap_or_else(|| panic!()));
        assert_eq!((e.state, e.command_id.as_deref()), (ExecState::Queued, Some("job.3.2")));
        assert_eq!(e.not_before, Some(late + Duration::seconds(20)));
        let e = apply(&e, send(&e, &s, late));
        assert_eq!((e.attempt, e.command_id.as_deref()), (3, Some("job.3.2")));
        // Out of retries: the next time-out is final.
        let e = apply(
            &e,
            on_timeout(&e, &s, late + Duration::seconds(61)).unwrap_or_else(|| panic!()),
        );
        assert_eq!(e.state, ExecState::TimedOut);
    }

    #[test]
    fn unsupported_is_a_failure_without_retry() {
        let s = spec(serde_json::json!({"retries": 5}));
        let e = apply(&queued(), send(&queued(), &s, t0()));
        let e = apply(
            &e,
            on_ack(&e, &s, &ack(&e, AckStatus::Unsupported), t0()).unwrap_or_else(|| panic!()),
        );
        assert_eq!(e.state, ExecState::Failed);
        assert_eq!(e.detail.as_deref(), Some("unsupported: d"));
    }

    fn counts(pairs: &[(ExecState, u64)]) -> Counts {
        let mut c = Counts::default();
        for (s, n) in pairs {
            c.add(*s, *n);
        }
        c
    }

    #[test]
    fn the_abort_threshold_needs_enough_finished_executions() {
        let s = spec(serde_json::json!({"abort": {"failure_percent": 10.0, "min_executions": 20}}));
        use ExecState::*;
        // 3 of 10 failed: too few finished to judge.
        assert_eq!(
            next_state(
                &s,
                JobState::Running,
                &counts(&[(Succeeded, 7), (Failed, 3), (Queued, 90)])
            ),
            None
        );
        // 3 of 20: 15% > 10%.
        let (state, why) = next_state(
            &s,
            JobState::Running,
            &counts(&[(Succeeded, 17), (TimedOut, 3), (Queued, 80)]),
        )
        .unwrap_or_else(|| panic!());
        assert_eq!(state, JobState::Aborted);
        assert!(why.contains("3 of 20"), "{why}");
        // 2 of 20: 10% is not more than 10%.
        assert_eq!(
            next_state(
                &s,
                JobState::Running,
                &counts(&[(Succeeded, 18), (Failed, 2), (Queued, 80)])
            ),
            None
        );
        // Nothing left to stop: the job completes.
        assert_eq!(
            next_state(&s, JobState::Running, &counts(&[(Succeeded, 10), (Failed, 10)])).map(|x| x.0),
            Some(JobState::Completed)
        );
        assert_eq!(next_state(&s, JobState::Completed, &counts(&[])), None);
    }

    #[test]
    fn a_sequential_job_stops_at_its_first_failure() {
        let s = spec(serde_json::json!({"mode": "sequential"}));
        use ExecState::*;
        assert_eq!(
            next_state(&s, JobState::Running, &counts(&[(Succeeded, 2), (Queued, 3)])),
            None
        );
        assert_eq!(
            next_state(
                &s,
                JobState::Running,
                &counts(&[(Succeeded, 2), (Failed, 1), (Queued, 2)])
            )
            .map(|x| x.0),
            Some(JobState::Aborted)
        );
        // A paused job whose executions all ended is complete too.
        assert_eq!(
            next_state(&s, JobState::Paused, &counts(&[(Succeeded, 5)])).map(|x| x.0),
            Some(JobState::Completed)
        );
    }

    #[test]
    fn capacity_follows_concurrency_and_rate() {
        use ExecState::*;
        let s = spec(serde_json::json!({"concurrency": 5}));
        assert_eq!(capacity(&s, &counts(&[(Sent, 2), (Received, 1)]), 3, t0(), t0()), 2);
        assert_eq!(capacity(&s, &counts(&[(Sent, 7)]), 7, t0(), t0()), 0);
        let s = spec(serde_json::json!({"concurrency": 100, "rate_per_minute": 60}));
        assert_eq!(capacity(&s, &counts(&[]), 0, t0(), t0()), 1);
        assert_eq!(
            capacity(&s, &counts(&[]), 1, t0(), t0() + Duration::milliseconds(999)),
            0
        );
        assert_eq!(capacity(&s, &counts(&[]), 1, t0(), t0() + Duration::seconds(10)), 10);
    }
}
