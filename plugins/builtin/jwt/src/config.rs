//! The filter's configuration: one provider per `jwtRules` entry, as the host resolved
//! it (defaults filled in, the JWKS fetched).

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    pub providers: Vec<ProviderConfig>,
}

/// One `jwtRules` entry.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderConfig {
    /// The RequestAuthentication's `namespace/name` and rule index, for logs.
    pub name: String,
    pub issuer: String,
    #[serde(default)]
    pub audiences: Vec<String>,
    /// The key set, as JSON text.
    pub jwks: Option<String>,
    /// Why the host has no key set (a failed fetch): every token is rejected.
    pub jwks_error: Option<String>,
    /// The URI the key set came from, for logs.
    pub jwks_uri: Option<String>,
    pub from_headers: Vec<FromHeader>,
    pub from_params: Vec<String>,
    pub from_cookies: Vec<String>,
    pub output_payload_to_header: Option<String>,
    #[serde(default)]
    pub output_claim_to_headers: Vec<ClaimToHeader>,
    #[serde(default)]
    pub forward_original_token: bool,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FromHeader {
    /// Lowercase.
    pub name: String,
    #[serde(default)]
    pub prefix: String,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaimToHeader {
    pub header: String,
    /// A claim name; `a.b` is the claim `b` inside `a`.
    pub claim: String,
}

/// Where a token was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A header (lowercase name) and the prefix before the token.
    Header(String, String),
    /// A query parameter.
    Param(String),
    /// A cookie.
    Cookie(String),
}

/// A provider, ready to verify.
pub struct Provider {
    pub name: String,
    pub issuer: String,
    pub audiences: Vec<String>,
    /// The keys, or why there are none (for the log).
    pub keys: Result<Vec<Key>, String>,
    pub locations: Vec<Location>,
    pub output_payload_to_header: Option<String>,
    pub output_claim_to_headers: Vec<(String, Vec<String>)>,
    pub forward_original_token: bool,
}

impl Provider {
    pub fn new(config: ProviderConfig) -> Result<Self, String> {
        let keys = match (config.jwks, config.jwks_error) {
            (Some(text), _) => Ok(keys(&text).map_err(|e| format!("{}: {e}", config.name))?),
            (None, Some(error)) => {
                let uri = config
                    .jwks_uri
                    .as_deref()
                    .unwrap_or("its OpenID configuration");
                Err(format!("no JWKS from {uri}: {error}"))
            }
            (None, None) => return Err(format!("{}: no JWKS", config.name)),
        };
        let locations = config
            .from_headers
            .into_iter()
            .map(|h| Location::Header(h.name.to_ascii_lowercase(), h.prefix))
            .chain(config.from_params.into_iter().map(Location::Param))
            .chain(config.from_cookies.into_iter().map(Location::Cookie))
            .collect();
        let output_claim_to_headers = config
            .output_claim_to_headers
            .into_iter()
            .map(|c| (c.header, c.claim.split('.').map(str::to_string).collect()))
            .collect();
        Ok(Self {
            name: config.name,
            issuer: config.issuer,
            audiences: config.audiences,
            keys,
            locations,
            output_payload_to_header: config.output_payload_to_header,
            output_claim_to_headers,
            forward_original_token: config.forward_original_token,
        })
    }
}

/// A key of the set, ready to verify with.
pub struct Key {
    pub jwk: Jwk,
    pub decoding: DecodingKey,
}

/// The keys of the JWKS `text` this filter can verify with (others are left out, as
/// Envoy leaves them).
fn keys(text: &str) -> Result<Vec<Key>, String> {
    let set: JwkSet =
        serde_json::from_str(text).map_err(|e| format!("the JWKS is not a key set: {e}"))?;
    Ok(set
        .keys
        .into_iter()
        .filter_map(|jwk| {
            let decoding = DecodingKey::from_jwk(&jwk).ok()?;
            Some(Key { jwk, decoding })
        })
        .collect())
}
