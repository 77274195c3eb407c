//! Key sets for RequestAuthentication: read from `file://`, fetched from `jwksUri` or
//! through the issuer's OpenID configuration, and handed to the JWT filters in their
//! configuration. Fetched sets are kept across reloads, refreshed in the background
//! (a change reloads the config) and, when a refresh fails, the last good one serves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use futures_util::future::join_all;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Map, Value};

use crate::config::resolved::{Plugin, ResolvedConfig, Source};
use crate::upstream::tls::system_roots;

/// The largest key set or OpenID configuration read.
const MAX_DOCUMENT: usize = 1 << 20;

/// Where a key set comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Origin {
    /// A `jwksUri`, or the issuer's OpenID configuration URL when `discover`.
    uri: String,
    discover: bool,
}

/// The key sets fetched so far, by origin.
pub struct Jwks {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    fetched: Mutex<HashMap<Origin, Fetched>>,
}

/// A fetched key set: the last good one, and the timeout to fetch it again with.
#[derive(Clone)]
struct Fetched {
    document: Result<String, String>,
    timeout: Duration,
}

impl Default for Jwks {
    fn default() -> Self {
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(system_roots())
        .with_no_client_auth();
        let https = HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .build();
        Self {
            client: Client::builder(TokioExecutor::new()).build(https),
            fetched: Mutex::default(),
        }
    }
}

impl Jwks {
    /// Sets `jwks` (or, when there is none to be had, `jwksError`) in every provider of
    /// `plugins`' JWT filters. Files are read each time; URLs are fetched the first time
    /// they are seen, then served from what the background refresh keeps. Distinct key
    /// sets are had concurrently.
    pub async fn fill(&self, plugins: &mut [Plugin]) {
        let mut wanted: Vec<(&mut Map<String, Value>, Origin, Duration)> = providers(plugins)
            .filter_map(|provider| {
                let (origin, timeout) = origin(provider)?;
                Some((provider, origin, timeout))
            })
            .collect();
        let mut used: Vec<(Origin, Duration)> = Vec::new();
        for (_, origin, timeout) in &wanted {
            if !used.iter().any(|(o, _)| o == origin) {
                used.push((origin.clone(), *timeout));
            }
        }
        let documents = join_all(
            used.iter()
                .map(|(origin, timeout)| self.document(origin, *timeout)),
        )
        .await;
        for (provider, origin, _) in &mut wanted {
            let at = used
                .iter()
                .position(|(o, _)| o == origin)
                .expect("collected above");
            match &documents[at] {
                Ok(jwks) => provider.insert("jwks".into(), Value::String(jwks.clone())),
                Err(error) => provider.insert("jwksError".into(), Value::String(error.clone())),
            };
        }
        self.lock()
            .retain(|origin, _| used.iter().any(|(o, _)| o == origin));
    }

    /// The key set at `origin`: read from its file, or fetched (or remembered).
    async fn document(&self, origin: &Origin, timeout: Duration) -> Result<String, String> {
        match origin.uri.strip_prefix("file://") {
            Some(path) => read(path).await,
            None => self.cached_or_fetched(origin, timeout).await,
        }
    }

    /// Fetches every key set again, concurrently; returns whether any changed (a failed
    /// fetch keeps the last good set).
    pub async fn refresh(&self) -> bool {
        let known: Vec<(Origin, Fetched)> = self
            .lock()
            .iter()
            .map(|(o, f)| (o.clone(), f.clone()))
            .collect();
        let fetched = join_all(
            known
                .iter()
                .map(|(origin, old)| self.fetch(origin, old.timeout)),
        )
        .await;
        let mut changed = false;
        for ((origin, old), new) in known.into_iter().zip(fetched) {
            let new = match new {
                Ok(document) => Ok(document),
                Err(error) => {
                    tracing::warn!(uri = %origin.uri, "refreshing a JWKS failed, the last good one serves: {error:#}");
                    continue;
                }
            };
            if new != old.document {
                changed = true;
                self.lock().insert(
                    origin,
                    Fetched {
                        document: new,
                        ..old
                    },
                );
            }
        }
        changed
    }

    /// Whether a key set could not be had so far (refreshes come sooner then).
    pub fn failing(&self) -> bool {
        self.lock().values().any(|f| f.document.is_err())
    }

    /// The key set at `origin`: fetched before, or now when it never was or that failed.
    async fn cached_or_fetched(
        &self,
        origin: &Origin,
        timeout: Duration,
    ) -> Result<String, String> {
        if let Some(Fetched {
            document: Ok(document),
            ..
        }) = self.lock().get(origin)
        {
            return Ok(document.clone());
        }
        let document = self.fetch(origin, timeout).await.map_err(|error| {
            tracing::warn!(uri = %origin.uri, "fetching a JWKS failed; tokens of its issuer are rejected until a refresh succeeds: {error:#}");
            format!("{error:#}")
        });
        let fetched = Fetched {
            document: document.clone(),
            timeout,
        };
        self.lock().insert(origin.clone(), fetched);
        document
    }

    /// The key set at `origin`, within `timeout`.
    async fn fetch(&self, origin: &Origin, timeout: Duration) -> anyhow::Result<String> {
        tokio::time::timeout(timeout, async {
            let uri = match origin.discover {
                true => jwks_uri(&self.get(&origin.uri).await?)?,
                false => origin.uri.clone(),
            };
            let document = self.get(&uri).await?;
            check(&document)?;
            Ok(document)
        })
        .await
        .with_context(|| format!("{} did not answer within {timeout:?}", origin.uri))?
    }

    /// The body of a 200 answer to a GET of `uri`.
    async fn get(&self, uri: &str) -> anyhow::Result<String> {
        let request = http::Request::get(uri)
            .header(http::header::ACCEPT, "application/json")
            .body(Empty::new())
            .with_context(|| format!("{uri} is not a URL"))?;
        let response = self
            .client
            .request(request)
            .await
            .with_context(|| format!("GET {uri}"))?;
        if response.status() != http::StatusCode::OK {
            bail!("GET {uri}: {}", response.status());
        }
        let body = Limited::new(response.into_body(), MAX_DOCUMENT)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("GET {uri}: {e}"))?
            .to_bytes();
        String::from_utf8(body.to_vec()).with_context(|| format!("GET {uri}: not UTF-8"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Origin, Fetched>> {
        self.fetched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The files key sets are read from, for the config watcher.
pub fn files(config: &ResolvedConfig) -> Vec<std::path::PathBuf> {
    config
        .plugins
        .iter()
        .filter(|p| p.source == Source::Builtin("jwt".into()))
        .filter_map(|p| p.config.get("providers")?.as_array())
        .flatten()
        .filter_map(|p| p.get("jwksUri")?.as_str()?.strip_prefix("file://"))
        .map(Into::into)
        .collect()
}

/// The providers of the JWT filters among `plugins`.
fn providers(plugins: &mut [Plugin]) -> impl Iterator<Item = &mut Map<String, Value>> {
    plugins
        .iter_mut()
        .filter(|p| p.source == Source::Builtin("jwt".into()))
        .filter_map(|p| p.config.get_mut("providers")?.as_array_mut())
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// Where `provider`'s key set comes from, unless it carries its own; takes the fields
/// only the host reads out of it.
fn origin(provider: &mut Map<String, Value>) -> Option<(Origin, Duration)> {
    let timeout = provider
        .remove("jwksTimeoutMs")
        .and_then(|t| t.as_u64())
        .map_or(Duration::from_secs(5), Duration::from_millis);
    let discovery = provider.remove("openidConfiguration");
    if provider.get("jwks").is_some_and(Value::is_string) {
        return None;
    }
    let (uri, discover) = match (provider.get("jwksUri"), discovery) {
        (Some(Value::String(uri)), _) => (uri.clone(), false),
        (_, Some(Value::String(uri))) => (uri, true),
        _ => return None,
    };
    Some((Origin { uri, discover }, timeout))
}

async fn read(path: &str) -> Result<String, String> {
    let document = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| format!("reading {path}: {e}"))?;
    check(&document).map_err(|e| format!("{path}: {e:#}"))?;
    Ok(document)
}

/// The `jwks_uri` of an OpenID configuration.
fn jwks_uri(configuration: &str) -> anyhow::Result<String> {
    let value: Value = serde_json::from_str(configuration).context("OpenID configuration")?;
    value
        .get("jwks_uri")
        .and_then(Value::as_str)
        .map(str::to_string)
        .context("the OpenID configuration has no jwks_uri")
}

/// Whether `document` is a key set: a JSON object with a `keys` list.
fn check(document: &str) -> anyhow::Result<()> {
    let value: Value = serde_json::from_str(document).context("the JWKS is not JSON")?;
    if !value.get("keys").is_some_and(Value::is_array) {
        bail!("the JWKS has no keys list");
    }
    Ok(())
}
