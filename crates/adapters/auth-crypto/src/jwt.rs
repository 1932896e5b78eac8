//! HS256 JSON Web Tokens (JWS compact form) with separate secrets for access and refresh
//! tokens. Every token carries the one header this codec writes, and a token with any other
//! header is refused before its signature is looked at (so `alg: none` and algorithm swaps
//! fail); the signature is checked in constant time (ring) before the claims are read; `type`
//! must match the use.
//!
//! An access token is checked on every authenticated request, so each key's HMAC state is
//! prepared once (a general-purpose JWT library hashes the secret and pads it again for every
//! token, and decodes the header and the claims twice): a check is one HMAC over the token and
//! one JSON parse.

use auth_core::model::{Role, SessionId, UserId};
use auth_core::ports::{AccessClaims, RefreshClaims, TokenCodec, TokenError};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use secrecy::{ExposeSecret as _, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

const ACCESS: &str = "access";
const REFRESH: &str = "refresh";

/// `{"typ":"JWT","alg":"HS256"}`, byte for byte as earlier versions (jsonwebtoken) wrote it, so
/// the tokens they issued stay valid.
const HEADER: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9";

#[derive(Serialize, Deserialize)]
struct AccessWire {
    sub: String,
    sid: String,
    email: String,
    role: String,
    #[serde(rename = "type")]
    kind: String,
    iat: i64,
    exp: i64,
}

#[derive(Serialize, Deserialize)]
struct RefreshWire {
    sub: String,
    sid: String,
    #[serde(rename = "type")]
    kind: String,
    jti: String,
    iat: i64,
    exp: i64,
}

pub struct JwtCodec {
    access: hmac::Key,
    refresh: hmac::Key,
}

impl JwtCodec {
    #[must_use]
    pub fn new(access_secret: &SecretString, refresh_secret: &SecretString) -> Self {
        let key = |secret: &SecretString| {
            hmac::Key::new(hmac::HMAC_SHA256, secret.expose_secret().as_bytes())
        };
        Self {
            access: key(access_secret),
            refresh: key(refresh_secret),
        }
    }
}

fn sign<T: Serialize>(claims: &T, key: &hmac::Key) -> Result<String, TokenError> {
    let payload = serde_json::to_vec(claims).map_err(|e| TokenError::Signing(e.to_string()))?;
    let mut token = format!("{HEADER}.{}", URL_SAFE_NO_PAD.encode(payload));
    let tag = hmac::sign(key, token.as_bytes());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(tag.as_ref()));
    Ok(token)
}

/// The claims of `token` if `key` signed it. Expiry is the core's rule, checked against its
/// clock; `sub` and `exp` are required by the wire types.
fn verified<T: DeserializeOwned>(token: &str, key: &hmac::Key) -> Result<T, TokenError> {
    let (signed, signature) = token.rsplit_once('.').ok_or(TokenError::Invalid)?;
    let payload = signed
        .strip_prefix(HEADER)
        .and_then(|rest| rest.strip_prefix('.'))
        .ok_or(TokenError::Invalid)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenError::Invalid)?;
    hmac::verify(key, signed.as_bytes(), &signature).map_err(|_| TokenError::Invalid)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Invalid)?;
    serde_json::from_slice(&payload).map_err(|_| TokenError::Invalid)
}

fn ids(sub: &str, sid: &str) -> Result<(UserId, SessionId), TokenError> {
    Ok((
        UserId::parse(sub).map_err(|_| TokenError::Invalid)?,
        SessionId::parse(sid).map_err(|_| TokenError::Invalid)?,
    ))
}

impl TokenCodec for JwtCodec {
    fn encode_access(&self, claims: &AccessClaims) -> Result<String, TokenError> {
        let wire = AccessWire {
            sub: claims.sub.to_string(),
            sid: claims.sid.to_string(),
            email: claims.email.clone(),
            role: claims.role.as_str().to_owned(),
            kind: ACCESS.to_owned(),
            iat: claims.iat,
            exp: claims.exp,
        };
        sign(&wire, &self.access)
    }

    fn encode_refresh(&self, claims: &RefreshClaims) -> Result<String, TokenError> {
        let wire = RefreshWire {
            sub: claims.sub.to_string(),
            sid: claims.sid.to_string(),
            kind: REFRESH.to_owned(),
            jti: claims.jti.clone(),
            iat: claims.iat,
            exp: claims.exp,
        };
        sign(&wire, &self.refresh)
    }

    fn decode_access(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let wire: AccessWire = verified(token, &self.access)?;
        if wire.kind != ACCESS {
            return Err(TokenError::Invalid);
        }
        let (sub, sid) = ids(&wire.sub, &wire.sid)?;
        Ok(AccessClaims {
            sub,
            sid,
            email: wire.email,
            role: Role::from_stored(&wire.role),
            iat: wire.iat,
            exp: wire.exp,
        })
    }

    fn decode_refresh(&self, token: &str) -> Result<RefreshClaims, TokenError> {
        let wire: RefreshWire = verified(token, &self.refresh)?;
        if wire.kind != REFRESH {
            return Err(TokenError::Invalid);
        }
        let (sub, sid) = ids(&wire.sub, &wire.sid)?;
        Ok(RefreshClaims {
            sub,
            sid,
            jti: wire.jti,
            iat: wire.iat,
            exp: wire.exp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(fill: char) -> SecretString {
        SecretString::from(fill.to_string().repeat(32))
    }

    fn codec() -> JwtCodec {
        JwtCodec::new(&secret('1'), &secret('2'))
    }

    fn access() -> AccessClaims {
        AccessClaims {
            sub: UserId::generate(),
            sid: SessionId::generate(),
            email: "a@x.io".into(),
            role: Role::Admin,
            iat: 1,
            exp: 2,
        }
    }

    #[test]
    fn access_tokens_round_trip() {
        let claims = access();
        let token = codec().encode_access(&claims).unwrap_or_default();
        assert_eq!(codec().decode_access(&token), Ok(claims));
    }

    #[test]
    fn a_refresh_token_is_not_an_access_token_and_vice_versa() {
        let refresh = RefreshClaims {
            sub: UserId::generate(),
            sid: SessionId::generate(),
            jti: "j".into(),
            iat: 1,
            exp: 2,
        };
        let refresh_token = codec().encode_refresh(&refresh).unwrap_or_default();
        assert_eq!(
            codec().decode_access(&refresh_token),
            Err(TokenError::Invalid)
        );
        let access_token = codec().encode_access(&access()).unwrap_or_default();
        assert_eq!(
            codec().decode_refresh(&access_token),
            Err(TokenError::Invalid)
        );
        // Even signed with the same secret, the `type` claim keeps them apart.
        let same = JwtCodec::new(&secret('1'), &secret('1'));
        let refresh_token = same.encode_refresh(&refresh).unwrap_or_default();
        assert_eq!(same.decode_access(&refresh_token), Err(TokenError::Invalid));
    }

    #[test]
    fn unsigned_and_foreign_tokens_are_refused() {
        let token = codec().encode_access(&access()).unwrap_or_default();
        let mut parts = token.split('.');
        let (_, payload) = (parts.next(), parts.next().unwrap_or_default());
        // {"alg":"none","typ":"JWT"}
        let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert_eq!(codec().decode_access(&unsigned), Err(TokenError::Invalid));
        let foreign = JwtCodec::new(&secret('9'), &secret('2'))
            .encode_access(&access())
            .unwrap_or_default();
        assert_eq!(codec().decode_access(&foreign), Err(TokenError::Invalid));
        assert_eq!(codec().decode_access("garbage"), Err(TokenError::Invalid));
    }

    #[test]
    fn tokens_issued_by_the_previous_codec_stay_valid() {
        // Issued by jsonwebtoken 9 with the secrets of `codec()`.
        let access = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI2NjUwYzBmZmVlMDAwMDAwMDAwMGFiY2QiLCJzaWQiOiI2NjUwYzBmZmVlMDAwMDAwMDAwMGRjYmEiLCJlbWFpbCI6ImFkYUBleGFtcGxlLmNvbSIsInJvbGUiOiJ1c2VyIiwidHlwZSI6ImFjY2VzcyIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAwOTAwfQ.CKSpVUAvGUvGp0H4xlEspVC-YLF5gXMa-ZE1_8Xfu_g";
        let refresh = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI2NjUwYzBmZmVlMDAwMDAwMDAwMGFiY2QiLCJzaWQiOiI2NjUwYzBmZmVlMDAwMDAwMDAwMGRjYmEiLCJ0eXBlIjoicmVmcmVzaCIsImp0aSI6ImoxIiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE3MDA2MDQ4MDB9.-O5D4ZnQeIUchZx7wA04YFDlT-eoGEwr_a7tzkKWafI";
        let claims = AccessClaims {
            sub: UserId::parse("6650c0ffee0000000000abcd").unwrap(),
            sid: SessionId::parse("6650c0ffee0000000000dcba").unwrap(),
            email: "ada@example.com".into(),
            role: Role::User,
            iat: 1_700_000_000,
            exp: 1_700_000_900,
        };
        assert_eq!(codec().decode_access(access), Ok(claims.clone()));
        assert_eq!(
            codec().decode_refresh(refresh).map(|r| r.jti),
            Ok("j1".to_owned())
        );
        assert_eq!(
            codec().encode_access(&claims).as_deref(),
            Ok(access),
            "and this codec writes the same bytes"
        );
    }

    #[test]
    fn any_change_to_a_token_makes_it_invalid() {
        let claims = access();
        let token = codec().encode_access(&claims).unwrap();
        let (header, rest) = token.split_once('.').unwrap_or_default();
        let (payload, signature) = rest.split_once('.').unwrap_or_default();
        // {"alg":"HS256","typ":"JWT"}: a header this codec did not write, even if signed.
        let reordered = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
        let other_header = format!("{reordered}.{payload}");
        let resigned = format!(
            "{other_header}.{}",
            URL_SAFE_NO_PAD.encode(
                hmac::sign(
                    &hmac::Key::new(hmac::HMAC_SHA256, "1".repeat(32).as_bytes()),
                    other_header.as_bytes()
                )
                .as_ref()
            )
        );
        let flipped = |text: &str| {
            let mut bytes = text.as_bytes().to_vec();
            bytes[3] = if bytes[3] == b'A' { b'B' } else { b'A' };
            String::from_utf8(bytes).unwrap_or_default()
        };
        for forged in [
            resigned,
            format!("{header}.{}.{signature}", flipped(payload)),
            format!("{header}.{payload}.{}", flipped(signature)),
            format!("{header}.{payload}.{signature}="),
            format!("{header}.{payload}.{signature}.{signature}"),
            format!("{header}.{payload}"),
            format!("{header}.{payload}."),
            format!("{header}..{signature}"),
            String::new(),
        ] {
            assert_eq!(
                codec().decode_access(&forged),
                Err(TokenError::Invalid),
                "{forged}"
            );
        }
        assert_eq!(codec().decode_access(&token), Ok(claims));
    }
}
