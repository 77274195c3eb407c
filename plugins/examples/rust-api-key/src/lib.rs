//! An API-key check: requests must carry a known key in a header, or come over mutual TLS
//! with a client certificate the gateway verified and whose SAN is listed. The caller is
//! passed upstream in `x-api-key-owner`; anything else is answered 401 by the gateway.
//!
//! ```yaml
//! pluginConfig:
//!   header: x-api-key          # optional, this is the default
//!   keys:
//!     s3cr3t: alice            # key: owner
//!   clients:
//!     spiffe://example.org/bob: bob   # client-certificate SAN: owner
//!   exempt: ["/healthz"]       # optional path prefixes that need no key
//! ```

use std::collections::BTreeMap;

use portcullis_sdk::filter::{self, Action, Edits, Filter, Header, PluginConfig, Rejection};
use portcullis_sdk::request;
use serde::Deserialize;

/// The WasmPlugin's `pluginConfig`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_header")]
    header: String,
    #[serde(default)]
    keys: BTreeMap<String, String>,
    #[serde(default)]
    clients: BTreeMap<String, String>,
    #[serde(default)]
    exempt: Vec<String>,
}

fn default_header() -> String {
    "x-api-key".into()
}

/// No `pluginConfig`: no keys and no clients, which `configure` refuses.
impl Default for Config {
    fn default() -> Self {
        Config {
            header: default_header(),
            keys: BTreeMap::new(),
            clients: BTreeMap::new(),
            exempt: Vec::new(),
        }
    }
}

/// The filter: its configuration.
struct ApiKey {
    config: Config,
}

impl Filter for ApiKey {
    fn configure(config: PluginConfig) -> Result<Self, String> {
        let config: Config = config
            .parse()
            .map_err(|e| format!("invalid pluginConfig: {e}"))?;
        if config.keys.is_empty() && config.clients.is_empty() {
            return Err("pluginConfig must list at least one of keys and clients".into());
        }
        Ok(ApiKey { config })
    }

    fn on_request(&mut self) -> Action {
        let config = &self.config;
        let path = request::path();
        if config
            .exempt
            .iter()
            .any(|prefix| path.starts_with(prefix.as_str()))
        {
            return Action::Proceed(Edits::default());
        }
        let by_key = request::header(&config.header).and_then(|key| config.keys.get(&key).cloned());
        let by_certificate = || {
            let peer = request::tls()?.peer?;
            peer.subject_alt_names
                .iter()
                .find_map(|san| config.clients.get(san).cloned())
        };
        match by_key.or_else(by_certificate) {
            Some(owner) => Action::Proceed(Edits {
                set_request_headers: vec![Header {
                    name: "x-api-key-owner".into(),
                    value: owner,
                }],
                remove_request_headers: vec![config.header.clone()],
                ..Edits::default()
            }),
            None => Action::Reject(Rejection {
                status: 401,
                headers: vec![
                    Header {
                        name: "content-type".into(),
                        value: "application/json".into(),
                    },
                    Header {
                        name: "www-authenticate".into(),
                        value: format!("ApiKey header=\"{}\"", config.header),
                    },
                ],
                body: format!("{{\"error\":\"missing or unknown {}\"}}\n", config.header),
            }),
        }
    }
}

filter::export!(ApiKey);
