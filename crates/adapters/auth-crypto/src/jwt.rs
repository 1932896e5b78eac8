//! HS256 JSON Web Tokens with separate secrets for access and refresh tokens. Only HS256 is
//! accepted (so `alg: none` and algorithm swaps fail), and `type` must match the use.
//!
//! Fixed test vectors keep the tokens one release issued valid in the next.

use auth_core::model::{Role, SessionId, UserId};
use auth_core::ports::{AccessClaims, RefreshClaims, TokenCodec, TokenError};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

const ACCESS: &str = "access";
const REFRESH: &str = "refresh";

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

struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Keys {
    fn new(secret: &SecretString) -> Self {
        let secret = secret.expose_secret().as_bytes();
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }
}

pub struct JwtCodec {
    access: Keys,
    refresh: Keys,
    validation: Validation,
}

impl JwtCodec {
    #[must_use]
    pub fn new(access_secret: &SecretString, refresh_secret: &SecretString) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is the core's rule, checked against its clock.
        validation.validate_exp = false;
        validation.required_spec_claims = ["exp", "sub"].into_iter().map(String::from).collect();
        Self {
            access: Keys::new(access_secret),
            refresh: Keys::new(refresh_secret),
            validation,
        }
    }
}

fn sign<T: Serialize>(claims: &T, keys: &Keys) -> Result<String, TokenError> {
    encode(&Header::new(Algorithm::HS256), claims, &keys.encoding)
        .map_err(|e| TokenError::Signing(e.to_string()))
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
        let wire = decode::<AccessWire>(token, &self.access.decoding, &self.validation)
            .map_err(|_| TokenError::Invalid)?
            .claims;
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
        let wire = decode::<RefreshWire>(token, &self.refresh.decoding, &self.validation)
            .map_err(|_| TokenError::Invalid)?
            .claims;
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

    /// Tokens a client holds must stay valid across releases: these were issued with the
    /// secrets of `codec()`, and a change of the library or of the wire types that altered
    /// them would sign every user out.
    #[test]
    fn tokens_match_fixed_vectors() {
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
            "and the codec writes the same bytes"
        );
    }

    #[test]
    fn any_change_to_a_token_makes_it_invalid() {
        let claims = access();
        let token = codec().encode_access(&claims).unwrap();
        let (header, rest) = token.split_once('.').unwrap_or_default();
        let (payload, signature) = rest.split_once('.').unwrap_or_default();
        // Signed with the right secret, but by another algorithm than HS256:
        // {"typ":"JWT","alg":"HS384"}.
        let swapped = format!("eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzM4NCJ9.{payload}");
        let swapped = format!(
            "{swapped}.{}",
            jsonwebtoken::crypto::sign(
                swapped.as_bytes(),
                &Keys::new(&secret('1')).encoding,
                Algorithm::HS384
            )
            .unwrap()
        );
        let flipped = |text: &str| {
            let mut bytes = text.as_bytes().to_vec();
            bytes[3] = if bytes[3] == b'A' { b'B' } else { b'A' };
            String::from_utf8(bytes).unwrap_or_default()
        };
        for forged in [
            swapped,
            format!("{header}.{}.{signature}", flipped(payload)),
            format!("{header}.{payload}.{}", flipped(signature)),
            format!("{}.{payload}.{signature}", flipped(header)),
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
