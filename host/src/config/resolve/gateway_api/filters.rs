//! Filters: header edits, redirects and rewrites, on an Istio route.

use serde_json::{Value, json};

use super::extensions::names_a_plugin;
use crate::config::model::gateway_api::{
    Cors, HeaderModifier, HttpHeader, HttpRouteFilter, PathModifier,
};
use crate::config::resolve::scope::Scope;

/// A path change: a whole new path, or what replaces a `PathPrefix` match's prefix.
#[derive(Clone)]
pub enum PathChange {
    Full(String),
    Prefix(String),
}
/// What a filter asked beyond header edits.
pub enum Edit {
    Redirect(Option<PathChange>),
    Rewrite(Option<PathChange>),
}

/// Applies `filter` to the Istio route `route`.
pub fn filter_edit(filter: &HttpRouteFilter, route: &mut Value, at: &Scope<'_>) -> Option<Edit> {
    let kind = filter.kind.as_deref().unwrap_or_default();
    match kind {
        "RequestHeaderModifier" => {
            headers(filter.request_header_modifier.as_ref(), "request", route);
            None
        }
        "ResponseHeaderModifier" => {
            headers(filter.response_header_modifier.as_ref(), "response", route);
            None
        }
        "RequestRedirect" => {
            let redirect = filter.request_redirect.clone().unwrap_or_default();
            let mut istio = json!({ "redirectCode": redirect.status_code.unwrap_or(302) });
            if let Some(scheme) = &redirect.scheme {
                istio["scheme"] = json!(scheme);
            }
            if let Some(host) = &redirect.hostname {
                istio["authority"] = json!(host);
            }
            match (redirect.port, &redirect.scheme) {
                (Some(port), _) => istio["port"] = json!(port),
                (None, Some(_)) => istio["derivePort"] = json!("FROM_PROTOCOL_DEFAULT"),
                (None, None) => istio["derivePort"] = json!("FROM_REQUEST_PORT"),
            }
            route["redirect"] = istio;
            Some(Edit::Redirect(path_change(
                redirect.path.as_ref(),
                &at.field("requestRedirect.path"),
            )))
        }
        "URLRewrite" => {
            let rewrite = filter.url_rewrite.clone().unwrap_or_default();
            if let Some(host) = &rewrite.hostname {
                route["rewrite"]["authority"] = json!(host);
            }
            Some(Edit::Rewrite(path_change(
                rewrite.path.as_ref(),
                &at.field("urlRewrite.path"),
            )))
        }
        "CORS" => {
            route["corsPolicy"] = cors(&filter.cors.clone().unwrap_or_default());
            None
        }
        // A WasmPlugin: it runs on the rule as a plugin (see `extensions`).
        "ExtensionRef" if names_a_plugin(filter) => None,
        "ExtensionRef" => {
            at.field("extensionRef").warn(
                "only a WasmPlugin (group extensions.istio.io) is served as an extension: ignored",
            );
            None
        }
        other => {
            at.field("type")
                .warn(format!("filter {other:?} is not served yet: ignored"));
            None
        }
    }
}

fn path_change(path: Option<&PathModifier>, at: &Scope<'_>) -> Option<PathChange> {
    let path = path?;
    match path.kind.as_deref() {
        Some("ReplaceFullPath") => Some(PathChange::Full(
            path.replace_full_path.clone().unwrap_or_default(),
        )),
        Some("ReplacePrefixMatch") => Some(PathChange::Prefix(
            path.replace_prefix_match.clone().unwrap_or_default(),
        )),
        other => {
            at.field("type").error(format!(
                "unknown path modifier {other:?}: expected ReplaceFullPath or ReplacePrefixMatch"
            ));
            None
        }
    }
}

/// The Istio header operations of `modifier`, on the route's `side` (`request` or `response`).
pub fn headers(modifier: Option<&HeaderModifier>, side: &str, route: &mut Value) {
    let Some(modifier) = modifier else {
        return;
    };
    let pairs = |list: &[HttpHeader]| -> serde_json::Map<String, Value> {
        list.iter()
            .filter_map(|h| Some((h.name.clone()?, json!(h.value.clone().unwrap_or_default()))))
            .collect()
    };
    route["headers"][side] = json!({
        "set": pairs(&modifier.set),
        "add": pairs(&modifier.add),
        "remove": modifier.remove,
    });
}

/// The Istio CORS policy of a `CORS` filter: an origin with `*` is a regex in which `*`
/// stands for any characters; the preflight's answer is cached 5 s unless `maxAge` says.
fn cors(cors: &Cors) -> Value {
    let origins: Vec<Value> = cors
        .allow_origins
        .iter()
        .map(|origin| match origin.contains('*') {
            true => {
                let parts: Vec<String> = origin.split('*').map(regex::escape).collect();
                json!({ "regex": parts.join(".*") })
            }
            false => json!({ "exact": origin }),
        })
        .collect();
    json!({
        "allowOrigins": origins,
        "allowMethods": cors.allow_methods,
        "allowHeaders": cors.allow_headers,
        "exposeHeaders": cors.expose_headers,
        "allowCredentials": cors.allow_credentials.unwrap_or(false),
        "maxAge": format!("{}s", cors.max_age.unwrap_or(5)),
        "unmatchedPreflights": "IGNORE",
    })
}
