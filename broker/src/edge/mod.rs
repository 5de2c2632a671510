//! The connection edge in front of the embedded broker (being built): admission caps taken
//! before any TLS is read ([`gate`]), TLS with revocation at connect and handshakes under a
//! time-out ([`tls`]), and per-device rate limits on what screens send
//! ([`rate`]).

pub mod gate;
pub mod rate;
pub mod tls;
