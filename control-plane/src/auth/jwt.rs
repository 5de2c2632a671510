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
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Expiry is checked below against the injectable clock, not the system clock.
        validation.validate_exp = false;
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .ok()?
            .claims;
        (claims.exp > now.timestamp() && claims.iat <= now.timestamp() + 60).then_some(claims)
    }
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
}
