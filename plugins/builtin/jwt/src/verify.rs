//! Verifying one token for one provider, with Envoy's (jwt_verify_lib's) outcomes.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm};
use jsonwebtoken::{Algorithm, AlgorithmFamily, Header, Validation};
use serde_json::{Map, Value};

use crate::config::{Key, Provider};

/// Envoy's default `clock_skew_seconds`.
pub const CLOCK_SKEW_SECONDS: u64 = 60;

/// Why a token was not accepted; the message is Envoy's, which is the 401's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    BadFormat,
    HeaderBadBase64,
    HeaderBadJson,
    HeaderBadAlg,
    PayloadBad,
    UnknownIssuer,
    JwksFetchFailed,
    NoMatchingKey,
    Expired,
    NotYetValid,
    AudienceNotAllowed,
    VerificationFails,
}

impl Failure {
    pub fn message(self) -> &'static str {
        match self {
            Self::BadFormat => {
                "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"
            }
            Self::HeaderBadBase64 => "Jwt header is an invalid Base64url encoded",
            Self::HeaderBadJson => "Jwt header is an invalid JSON",
            Self::HeaderBadAlg => "Jwt header [alg] field value is invalid",
            Self::PayloadBad => "Jwt payload is an invalid JSON",
            Self::UnknownIssuer => "Jwt issuer is not configured",
            Self::JwksFetchFailed => "Jwks remote fetch is failed",
            Self::NoMatchingKey => "Jwks doesn't have key to match kid or alg from Jwt",
            Self::Expired => "Jwt is expired",
            Self::NotYetValid => "Jwt not yet valid",
            Self::AudienceNotAllowed => "Audiences in Jwt are not allowed",
            Self::VerificationFails => "Jwt verification fails",
        }
    }
}

/// A token's parts, read before any provider looks at it.
pub struct Token<'t> {
    pub text: &'t str,
    pub header: Header,
    /// The base64url payload, as `outputPayloadToHeader` forwards it.
    pub payload: &'t str,
    pub claims: Map<String, Value>,
}

impl<'t> Token<'t> {
    /// Splits and decodes `text` (without checking it).
    pub fn parse(text: &'t str) -> Result<Self, Failure> {
        let mut parts = text.split('.');
        let (Some(header), Some(payload), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Failure::BadFormat);
        };
        let header_json = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| Failure::HeaderBadBase64)?;
        let header_value: Value =
            serde_json::from_slice(&header_json).map_err(|_| Failure::HeaderBadJson)?;
        if !header_value.get("alg").is_some_and(Value::is_string) {
            return Err(Failure::HeaderBadAlg);
        }
        let header: Header =
            serde_json::from_value(header_value).map_err(|_| Failure::HeaderBadAlg)?;
        let claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|json| serde_json::from_slice::<Value>(&json).ok());
        let Some(Value::Object(claims)) = claims else {
            return Err(Failure::PayloadBad);
        };
        Ok(Self {
            text,
            header,
            payload,
            claims,
        })
    }

    /// The `iss` claim.
    pub fn issuer(&self) -> Option<&str> {
        self.claims.get("iss").and_then(Value::as_str)
    }

    /// Istio's request principal: `<iss>/<sub>`.
    pub fn principal(&self) -> String {
        let sub = self.claims.get("sub").and_then(Value::as_str).unwrap_or("");
        format!("{}/{sub}", self.issuer().unwrap_or(""))
    }
}

/// Checks `token` against `provider`: issuer, key, signature, time and audience.
pub fn verify(token: &Token<'_>, provider: &Provider) -> Result<(), Failure> {
    if token.issuer() != Some(provider.issuer.as_str()) {
        return Err(Failure::UnknownIssuer);
    }
    let keys = provider
        .keys
        .as_ref()
        .map_err(|_| Failure::JwksFetchFailed)?;
    let alg = token.header.alg;
    let candidates: Vec<&Key> = keys
        .iter()
        .filter(|key| fits(&key.jwk, &token.header))
        .collect();
    if candidates.is_empty() {
        return Err(Failure::NoMatchingKey);
    }
    let validation = validation(alg, provider);
    let mut failure = Failure::VerificationFails;
    for key in candidates {
        match jsonwebtoken::decode::<Value>(token.text, &key.decoding, &validation) {
            Ok(_) => return Ok(()),
            Err(error) => match error.kind() {
                ErrorKind::ExpiredSignature => return Err(Failure::Expired),
                ErrorKind::ImmatureSignature => return Err(Failure::NotYetValid),
                ErrorKind::InvalidAudience | ErrorKind::MissingRequiredClaim(_) => {
                    return Err(Failure::AudienceNotAllowed);
                }
                ErrorKind::InvalidIssuer => return Err(Failure::UnknownIssuer),
                _ => failure = Failure::VerificationFails,
            },
        }
    }
    Err(failure)
}

/// What is checked beside the signature: Envoy's clock skew, `exp` and `nbf` when
/// present, the audiences when the provider lists any.
fn validation(alg: Algorithm, provider: &Provider) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = CLOCK_SKEW_SECONDS;
    validation.required_spec_claims.clear();
    validation.validate_nbf = true;
    validation.set_issuer(&[&provider.issuer]);
    if provider.audiences.is_empty() {
        validation.validate_aud = false;
    } else {
        validation.set_audience(&provider.audiences);
        validation.required_spec_claims.insert("aud".into());
    }
    validation
}

/// Whether `key` may have signed a token with `header`: its id (when both have one),
/// its algorithm (when it names one) and its type agree.
fn fits(key: &Jwk, header: &Header) -> bool {
    let kid = match (&header.kid, &key.common.key_id) {
        (Some(wanted), Some(id)) => wanted == id,
        _ => true,
    };
    let alg = key
        .common
        .key_algorithm
        .is_none_or(|named| same_algorithm(named, header.alg));
    let family = match &key.algorithm {
        AlgorithmParameters::RSA(_) => AlgorithmFamily::Rsa,
        AlgorithmParameters::EllipticCurve(_) => AlgorithmFamily::Ec,
        AlgorithmParameters::OctetKeyPair(_) => AlgorithmFamily::Ed,
        AlgorithmParameters::OctetKey(_) => AlgorithmFamily::Hmac,
        _ => return false,
    };
    kid && alg && family == header.alg.family()
}

fn same_algorithm(named: KeyAlgorithm, alg: Algorithm) -> bool {
    Algorithm::try_from(named).is_ok_and(|named| named == alg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_tokens_get_envoys_messages() {
        let parse = |t: &str| Token::parse(t).err();
        assert_eq!(parse("deadbeef"), Some(Failure::BadFormat));
        assert_eq!(parse("a.b.c.d"), Some(Failure::BadFormat));
        assert_eq!(parse("%%.e30.x"), Some(Failure::HeaderBadBase64));
        // {"alg":"none"}
        assert_eq!(
            parse("eyJhbGciOiJub25lIn0.e30.x"),
            Some(Failure::HeaderBadAlg)
        );
        // {"typ":"JWT"}: no alg at all
        assert_eq!(
            parse("eyJ0eXAiOiJKV1QifQ.e30.x"),
            Some(Failure::HeaderBadAlg)
        );
        // {"alg":"RS256"} with a payload that is not an object
        assert_eq!(
            parse("eyJhbGciOiJSUzI1NiJ9.WzFd.x"),
            Some(Failure::PayloadBad)
        );
    }

    #[test]
    fn the_principal_is_issuer_slash_subject() {
        // {"alg":"RS256"} . {"iss":"https://a","sub":"u1"}
        let token = Token::parse("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2EiLCJzdWIiOiJ1MSJ9.x")
            .unwrap();
        assert_eq!(token.principal(), "https://a/u1");
        assert_eq!(token.issuer(), Some("https://a"));
    }
}
