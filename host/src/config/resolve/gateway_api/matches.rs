//! Matches: Istio match blocks with the Gateway API's path semantics.

use serde_json::{Value, json};

use super::filters::PathChange;
use crate::config::model::gateway_api::{HttpRouteMatch, ValueMatch};
use crate::config::resolve::scope::Scope;

/// Which part of a match an Istio match block stands for.
#[derive(Clone, Copy)]
pub enum Half {
    /// All of an `Exact` or `RegularExpression` match.
    Whole,
    /// The exact path of a `PathPrefix` match.
    Exact,
    /// The paths below a `PathPrefix` match's prefix (`<prefix>/`, or `/` for the root).
    Below,
}

/// The Istio match blocks of one match (a `PathPrefix` becomes an exact block and a
/// `<prefix>/` block, so that only whole segments match).
pub fn blocks(matched: &HttpRouteMatch, at: &Scope<'_>) -> Vec<(Value, Half)> {
    let mut block = json!({});
    if let Some(method) = &matched.method {
        block["method"] = json!({ "exact": method });
    }
    conditions(&mut block, "headers", &matched.headers, at);
    conditions(&mut block, "queryParams", &matched.query_params, at);
    let path = matched.path.as_ref();
    let value = path
        .and_then(|p| p.value.clone())
        .unwrap_or_else(|| "/".into());
    let with = |mut block: Value, uri: Value, half| {
        block["uri"] = uri;
        (block, half)
    };
    match path.and_then(|p| p.kind.as_deref()).unwrap_or("PathPrefix") {
        "Exact" => vec![with(block, json!({ "exact": value }), Half::Whole)],
        "RegularExpression" => vec![with(block, json!({ "regex": value }), Half::Whole)],
        "PathPrefix" => match value.trim_end_matches('/') {
            "" => vec![with(block, json!({ "prefix": "/" }), Half::Below)],
            prefix => vec![
                with(block.clone(), json!({ "exact": prefix }), Half::Exact),
                with(
                    block,
                    json!({ "prefix": format!("{prefix}/") }),
                    Half::Below,
                ),
            ],
        },
        other => {
            at.field("path.type").error(format!(
                "unknown path type {other:?}: expected Exact, PathPrefix or RegularExpression"
            ));
            Vec::new()
        }
    }
}

/// Adds header or query parameter conditions to `block` (`key`: `headers` or
/// `queryParams`); of conditions on one name the first counts, as the API says.
fn conditions(block: &mut Value, key: &str, list: &[ValueMatch], at: &Scope<'_>) {
    for (i, condition) in list.iter().enumerate() {
        let Some(name) = condition.name.as_deref() else {
            continue;
        };
        let kind = match condition.kind.as_deref().unwrap_or("Exact") {
            "RegularExpression" => "regex",
            "Exact" => "exact",
            other => {
                at.field(key).index(i).field("type").error(format!(
                    "unknown type {other:?}: expected Exact or RegularExpression"
                ));
                continue;
            }
        };
        let name = match key {
            "headers" => name.to_ascii_lowercase(),
            _ => name.to_string(),
        };
        if block[key].get(&name).is_none() {
            block[key][name] = json!({ kind: condition.value.clone().unwrap_or_default() });
        }
    }
}

/// The Istio redirect or rewrite fields that make `change` for a block standing for `half`
/// of its match.
pub fn path_fields(change: &PathChange, half: Half, redirect: bool) -> Vec<(&'static str, Value)> {
    match (change, half) {
        (PathChange::Full(path), _) if redirect => vec![("uri", json!(path))],
        (PathChange::Full(path), _) => {
            vec![(
                "uriRegexRewrite",
                json!({ "match": "^.*$", "rewrite": path }),
            )]
        }
        (PathChange::Prefix(with), Half::Whole | Half::Exact) => {
            let with = with.trim_end_matches('/');
            vec![("uri", json!(if with.is_empty() { "/" } else { with }))]
        }
        (PathChange::Prefix(with), Half::Below) => {
            let with = format!("{}/", with.trim_end_matches('/'));
            vec![(if redirect { "prefixRewrite" } else { "uri" }, json!(with))]
        }
    }
}
