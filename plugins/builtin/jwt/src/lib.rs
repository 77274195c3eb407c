//! Istio's RequestAuthentication: JWT verification, as Envoy's `jwt_authn` filter does it
//! with one provider per `jwtRules` entry, any of them sufficing, and a missing token
//! allowed (authorization decides about those).
//!
//! The host runs it before route selection, hands it the keys (inline, fetched from
//! `jwksUri` or read from a file) in its configuration, and records the identity it
//! verifies (`host.authenticate`): `<iss>/<sub>` and the claims, which routes
//! (`@request.auth.claims.*`), AuthorizationPolicies and later plugins see. A token that
//! fails is answered 401 with Envoy's message and `www-authenticate`.

mod cache;
mod config;
mod locate;
mod verify;

use portcullis_sdk::filter::{self, Action, Edits, Filter, Header, PluginConfig, Rejection};
use portcullis_sdk::host::LogLevel;
use portcullis_sdk::{host, request};
use serde_json::Value;

use cache::{Cache, Verified};
use config::{Config, Location, Provider};
use verify::{Failure, Token};

/// The providers, every place any of them reads a token from, the headers they write
/// upstream, and the tokens verified.
struct Jwt {
    providers: Vec<Provider>,
    locations: Vec<Location>,
    /// `outputPayloadToHeader` and `outputClaimToHeaders` names, lowercase.
    outputs: Vec<String>,
    cache: Cache,
}

impl Filter for Jwt {
    fn configure(config: PluginConfig) -> Result<Self, String> {
        let config: Config = config
            .parse_required()
            .map_err(|e| format!("invalid configuration: {e}"))?;
        let providers = config
            .providers
            .into_iter()
            .map(Provider::new)
            .collect::<Result<Vec<_>, _>>()?;
        let mut locations: Vec<Location> = Vec::new();
        for location in providers.iter().flat_map(|p| &p.locations) {
            if !locations.contains(location) {
                locations.push(location.clone());
            }
        }
        let mut outputs: Vec<String> = Vec::new();
        for provider in &providers {
            let claims = provider
                .output_claim_to_headers
                .iter()
                .map(|(name, _)| name);
            for name in provider.output_payload_to_header.iter().chain(claims) {
                let name = name.to_ascii_lowercase();
                if !outputs.contains(&name) {
                    outputs.push(name);
                }
            }
        }
        Ok(Self {
            providers,
            locations,
            outputs,
            cache: Cache::default(),
        })
    }

    fn on_request(&mut self) -> Action {
        let Self {
            providers,
            locations,
            outputs,
            cache,
        } = self;
        // Every token the request carries must verify (as in Envoy: one good token does
        // not carry a bad one through); the first one that does is the request's (a
        // refusal drops the identity it recorded).
        let mut accepted: Option<Edits> = None;
        for location in locations.iter() {
            let Some(text) = locate::token(location) else {
                continue;
            };
            match verified(cache, providers, text, location) {
                Ok(_) if accepted.is_some() => {}
                Ok(verified) => {
                    accepted = Some(accept(verified, &providers[verified.provider], location));
                }
                Err(failure) => return reject(failure),
            }
        }
        let mut edits = accepted.unwrap_or_default();
        // What only a verified token may say upstream never comes from the client.
        let set: Vec<String> = edits
            .set_request_headers
            .iter()
            .map(|h| h.name.clone())
            .collect();
        let forged = outputs.iter().filter(|name| !set.contains(name));
        edits.remove_request_headers.extend(forged.cloned());
        Action::Proceed(edits)
    }
}

/// The verification of `text`, found at `location`: remembered in `cache`, or done now by
/// the first of `providers` reading that location that accepts it.
fn verified<'c>(
    cache: &'c mut Cache,
    providers: &[Provider],
    text: String,
    location: &Location,
) -> Result<&'c Verified, Failure> {
    let now = now();
    let remembered = cache
        .get(&text, now)
        .is_some_and(|v| providers[v.provider].locations.contains(location));
    if remembered {
        return Ok(cache.get(&text, now).expect("just looked up"));
    }
    let verified = verify(providers, &text, location)?;
    Ok(cache.insert(text, verified))
}

/// Verifies `text` with the first of `providers` reading `location` that accepts it.
fn verify(providers: &[Provider], text: &str, location: &Location) -> Result<Verified, Failure> {
    let token = Token::parse(text)?;
    let mut failure = None;
    for (index, provider) in providers.iter().enumerate() {
        if !provider.locations.contains(location) {
            continue;
        }
        match verify::verify(&token, provider) {
            Ok(()) => {
                return Ok(Verified {
                    provider: index,
                    principal: token.principal(),
                    payload: token.payload.to_string(),
                    claims_json: Value::Object(token.claims.clone()).to_string(),
                    claims: token.claims,
                });
            }
            Err(f) => {
                log(provider, f);
                note(&mut failure, f);
            }
        }
    }
    Err(failure.unwrap_or(Failure::UnknownIssuer))
}

/// Seconds since the Unix epoch.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Says why `provider` refused a token, at debug level (a key set that could not be had
/// at warning level, with why).
fn log(provider: &Provider, failure: Failure) {
    match (&provider.keys, failure) {
        (Err(why), Failure::JwksFetchFailed) => {
            host::log(LogLevel::Warn, &format!("{}: {why}", provider.name));
        }
        _ => host::log(
            LogLevel::Debug,
            &format!("{}: {}", provider.name, failure.message()),
        ),
    }
}

/// Keeps the most telling failure: one of a provider that knows the issuer over
/// "issuer not configured", else the first.
fn note(failure: &mut Option<Failure>, new: Failure) {
    if failure.is_none_or(|old| old == Failure::UnknownIssuer) {
        *failure = Some(new);
    }
}

/// Records `verified`'s principal; the provider's header edits.
fn accept(verified: &Verified, provider: &Provider, location: &Location) -> Edits {
    host::authenticate(&verified.principal, &verified.claims_json);
    let mut edits = Edits::default();
    if let (false, Location::Header(name, _)) = (provider.forward_original_token, location) {
        edits.remove_request_headers.push(name.clone());
    }
    if let Some(name) = &provider.output_payload_to_header {
        edits
            .set_request_headers
            .push(header(name, &verified.payload));
    }
    for (name, path) in &provider.output_claim_to_headers {
        if let Some(value) = claim_text(&verified.claims, path) {
            edits.set_request_headers.push(header(name, &value));
        }
    }
    edits
}

/// A string, number or boolean claim at `path`, as text.
fn claim_text(claims: &serde_json::Map<String, Value>, path: &[String]) -> Option<String> {
    let (first, rest) = path.split_first()?;
    let value = rest
        .iter()
        .try_fold(claims.get(first)?, |v, key| v.get(key))?;
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Envoy's 401 for a token that failed, with its details.
fn reject(failure: Failure) -> Action {
    let message = failure.message();
    host::response_details(&format!("jwt_authn_access_denied{{{message}}}"));
    let path = request::path();
    let path = path.split_once('?').map_or(path.as_str(), |(p, _)| p);
    let realm = format!("{}://{}{path}", request::scheme(), request::authority());
    Action::Reject(Rejection {
        status: 401,
        headers: vec![
            header(
                "www-authenticate",
                &format!("Bearer realm=\"{realm}\", error=\"invalid_token\""),
            ),
            header("content-type", "text/plain"),
        ],
        body: message.into(),
    })
}

fn header(name: &str, value: &str) -> Header {
    Header {
        name: name.into(),
        value: value.into(),
    }
}

filter::export!(Jwt);
