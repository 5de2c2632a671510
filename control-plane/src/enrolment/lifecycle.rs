//! The lifecycle of an enrolment request, as an explicit state machine.
//!
//! ```text
//!            claim (a tenant user types the code)        fetch (the device polls)
//!  pending ─────────────────────────────────▶ issued ─────────────────────▶ delivered
//!     │                                          │                              │ fetch (again:
//!     └──────────── expiry (request deleted) ────┴──────────────────────────────┘  same answer)
//! ```
//!
//! The store applies a transition only by compare-and-set on the state it was decided from
//! (`transition_request`), so two claimers of one code, or a claim racing a replaced request,
//! cannot both win. A device asking again while its request is pending replaces it only with
//! the same key (someone else's key needs its own device id).

use luach_schemas::TenantId;

use crate::store::RequestState;

/// Something that happens to a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A user of `tenant_id` claimed the code; the CA issued `certificate_pem`.
    Claim {
        tenant_id: TenantId,
        certificate_pem: String,
    },
    /// The device polled with its secret.
    Fetch,
}

/// Why a transition is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the code was already claimed")]
    AlreadyClaimed,
    #[error("nothing was issued yet")]
    NotIssued,
}

/// The state after `event`, or why it cannot happen in `state`.
pub fn next(state: &RequestState, event: Event) -> Result<RequestState, Refused> {
    match (state, event) {
        (
            RequestState::Pending,
            Event::Claim {
                tenant_id,
                certificate_pem,
            },
        ) => Ok(RequestState::Issued {
            tenant_id,
            certificate_pem,
        }),
        (RequestState::Issued { .. } | RequestState::Delivered { .. }, Event::Claim { .. }) => {
            Err(Refused::AlreadyClaimed)
        }
        (RequestState::Pending, Event::Fetch) => Err(Refused::NotIssued),
        (
            RequestState::Issued {
                tenant_id,
                certificate_pem,
            }
            | RequestState::Delivered {
                tenant_id,
                certificate_pem,
            },
            Event::Fetch,
        ) => Ok(RequestState::Delivered {
            tenant_id: tenant_id.clone(),
            certificate_pem: certificate_pem.clone(),
        }),
    }
}

/// Whether a device's new request (with a key of `same_key`) may replace its stored one.
pub fn may_replace(stored: &RequestState, same_key: bool) -> bool {
    same_key || !matches!(stored, RequestState::Pending)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> TenantId {
        TenantId::builtin()
    }

    fn claim() -> Event {
        Event::Claim {
            tenant_id: tenant(),
            certificate_pem: "PEM".into(),
        }
    }

    fn issued() -> RequestState {
        RequestState::Issued {
            tenant_id: tenant(),
            certificate_pem: "PEM".into(),
        }
    }

    fn delivered() -> RequestState {
        RequestState::Delivered {
            tenant_id: tenant(),
            certificate_pem: "PEM".into(),
        }
    }

    #[test]
    fn every_state_and_event() {
        let table = [
            (RequestState::Pending, claim(), Ok(issued())),
            (RequestState::Pending, Event::Fetch, Err(Refused::NotIssued)),
            (issued(), claim(), Err(Refused::AlreadyClaimed)),
            (issued(), Event::Fetch, Ok(delivered())),
            (delivered(), claim(), Err(Refused::AlreadyClaimed)),
            (delivered(), Event::Fetch, Ok(delivered())),
        ];
        for (state, event, expected) in table {
            assert_eq!(next(&state, event.clone()), expected, "{state:?} + {event:?}");
        }
    }

    #[test]
    fn a_pending_request_is_replaced_only_with_its_own_key() {
        assert!(may_replace(&RequestState::Pending, true));
        assert!(!may_replace(&RequestState::Pending, false));
        assert!(may_replace(&issued(), false));
        assert!(may_replace(&delivered(), false));
    }

    #[test]
    fn any_sequence_of_events_stays_in_the_machine() {
        // Model check: from pending, every sequence of up to six events either follows an
        // allowed edge or is refused without changing the state; a claim happens at most once.
        let events = [claim(), Event::Fetch];
        let mut frontier = vec![(RequestState::Pending, 0u32)];
        for _ in 0..6 {
            let mut next_frontier = Vec::new();
            for (state, claims) in &frontier {
                for e in &events {
                    match next(state, e.clone()) {
                        Ok(s) => {
                            let claims = claims + u32::from(matches!(e, Event::Claim { .. }));
                            assert!(claims <= 1, "claimed twice");
                            next_frontier.push((s, claims));
                        }
                        Err(_) => next_frontier.push((state.clone(), *claims)),
                    }
                }
            }
            frontier = next_frontier;
        }
        assert!(
            frontier
                .iter()
                .any(|(s, _)| matches!(s, RequestState::Delivered { .. }))
        );
    }
}
