//! The connection edge in front of the embedded broker (being built): the front door that
//! accepts, admits and reads each device's CONNECT off the accept path ([`front`]), admission caps taken
//! before any TLS is read ([`gate`]), TLS with revocation at connect and handshakes under a
//! time-out ([`tls`]), and per-device rate limits on what screens send
//! ([`rate`]).

pub mod front;
pub mod gate;
pub mod rate;
pub mod tls;

#[cfg(test)]
pub(crate) mod testing;
