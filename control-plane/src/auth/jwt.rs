//! Access tokens: short-lived HS256 JWTs naming a user and their login session.
//!
//! Only the algorithm we issue is accepted (`alg: none`, RS/ES and any other algorithm are
//! refused by the validator), and issuer, audience and expiry are checked. A token says who
//! and which session, never what they may do: role and tenant are read from the user record on
//! every request, so a role change or a revoked session takes effect at once.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

const ISSUER: &str = "luach";
const AUDIENCE: &str = "luach-api";
/// Audience of device tokens: never accepted as a user's access token, and the other way round.
const DEVICE_AUDIENCE: &str = "luach-device";

/// Claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// User id.
    pub sub: String,
    /// Login session (refresh family).
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
}

/// Claims of a device token: lets one screen fetch its own content bundle. Sent to the screen
/// over its mutual-TLS MQTT session, which only that screen can read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceClaims {
    pub iss: String,
    pub aud: String,
    /// Device id.
    pub sub: String,
    /// The device's tenant.
    pub tid: String,
    /// The topic prefix of the enrolment the token was sent to: a token dies with the
    /// certificate it was delivered under (revocation, re-enrolment).
    pub pfx: String,
    pub iat: i64,
    pub exp: i64,
}

/// The signing key.
#[derive(Clone)]
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

impl Keys {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// Signs an access token for `user` in session `sid`, valid until `exp`.
    pub fn issue(&self, user: &str, sid: &str, now: DateTime<Utc>, exp: DateTime<Utc>) -> String {
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: user.into(),
            sid: sid.into(),
            iat: now.timestamp(),
            exp: exp.timestamp(),
        };
        // Serialising these claims with an HMAC key cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).unwrap_or_default()
    }

    /// Verifies signature, algorithm, issuer, audience and expiry (at `now`, no leeway).
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Option<Claims> {
        let claims: Claims = self.decode(token, AUDIENCE)?;
        fresh(claims.iat, claims.exp, now).then_some(claims)
    }

    /// Verifies signature, algorithm, issuer and audience, but not expiry: a live connection
    /// opened with the token stays open while its session lives.
    pub fn verify_ignoring_expiry(&self, token: &str) -> Option<Claims> {
        self.decode(token, AUDIENCE)
    }

    /// Signs a device token for `device` of `tenant`, listening under `prefix`, valid until
    /// `exp`.
    pub fn issue_device(
        &self,
        device: &str,
        tenant: &str,
        prefix: &str,
        now: DateTime<Utc>,
        exp: DateTime<Utc>,
    ) -> String {
        let claims = DeviceClaims {
            iss: ISSUER.into(),
            aud: DEVICE_AUDIENCE.into(),
            sub: device.into(),
            tid: tenant.into(),
            pfx: prefix.into(),
            iat: now.timestamp(),
            exp: exp.timestamp(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).unwrap_or_default()
    }

    /// [`Keys::verify`] for device tokens.
    pub fn verify_device(&self, token: &str, now: DateTime<Utc>) -> Option<DeviceClaims> {
        let claims: DeviceClaims = self.decode(token, DEVICE_AUDIENCE)?;
        fresh(claims.iat, claims.exp, now).then_some(claims)
    }

    fn decode<C: serde::de::DeserializeOwned>(&self, token: &str, audience: &str) -> Option<C> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Expiry is checked by `fresh` against the injectable clock, not the system clock.
        validation.validate_exp = false;
        validation.leeway = 0;
        jsonwebtoken::decode::<C>(token, &self.decoding, &validation)
            .ok()
            .map(|d| d.claims)
    }
}

/// Not expired at `now`, and not issued in the future (beyond a minute of clock skew).
fn fresh(iat: i64, exp: i64, now: DateTime<Utc>) -> bool {
    exp > now.timestamp() && iat <= now.timestamp() + 60
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn round_trip_and_expiry() {
        let keys = Keys::new(b"0123456789abcdef0123456789abcdef");
        let now = Utc::now();
        let token = keys.issue("u1", "s1", now, now + Duration::minutes(15));
        let claims = keys.verify(&token, now).expect("valid");
        assert_eq!((claims.sub.as_str(), claims.sid.as_str()), ("u1", "s1"));
        assert!(keys.verify(&token, now + Duration::minutes(16)).is_none());
        assert!(
            Keys::new(b"another key another key another!")
                .verify(&token, now)
                .is_none()
        );
    }

    #[test]
    fn device_and_user_tokens_are_not_interchangeable() {
        let keys = Keys::new(b"0123456789abcdef0123456789abcdef");
        let now = Utc::now();
        let device = keys.issue_device("lobby1", "t1", "p1", now, now + Duration::hours(1));
        let claims = keys.verify_device(&device, now).expect("valid");
        assert_eq!(
            (claims.sub.as_str(), claims.tid.as_str(), claims.pfx.as_str()),
            ("lobby1", "t1", "p1")
        );
        assert!(keys.verify(&device, now).is_none());
        let user = keys.issue("u1", "s1", now, now + Duration::minutes(15));
        assert!(keys.verify_device(&user, now).is_none());
        assert!(keys.verify_device(&device, now + Duration::hours(2)).is_none());
    }
}
