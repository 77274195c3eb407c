//! CORS: the origins, methods and headers a cross-origin request may use.

use super::{Scope, checks};
use crate::config::model::virtual_service::{CorsPolicy, UnmatchedPreflights};
use crate::config::resolved::{Cors, StringMatcher};

/// A CORS policy.
pub fn cors(spec: &CorsPolicy, at: &Scope<'_>) -> Cors {
    let mut allow_origins: Vec<StringMatcher> = Vec::new();
    if !spec.allow_origin.is_empty() {
        at.field("allowOrigin").warn("deprecated: use allowOrigins");
        allow_origins.extend(
            spec.allow_origin
                .iter()
                .map(|o| StringMatcher::Exact(o.clone())),
        );
    }
    for (i, origin) in spec.allow_origins.iter().enumerate() {
        allow_origins.extend(checks::string_match(
            origin,
            &at.field("allowOrigins").index(i),
        ));
    }
    for (i, method) in spec.allow_methods.iter().enumerate() {
        if method != "*" && !method.bytes().all(|b| b.is_ascii_uppercase()) {
            at.field("allowMethods").index(i).error(format!(
                "{method:?} is not an HTTP method name (use upper case, e.g. GET)"
            ));
        }
    }
    Cors {
        allow_origins,
        allow_methods: spec.allow_methods.clone(),
        allow_headers: header_names(&spec.allow_headers, &at.field("allowHeaders")),
        expose_headers: header_names(&spec.expose_headers, &at.field("exposeHeaders")),
        max_age: checks::duration(spec.max_age, &at.field("maxAge")),
        allow_credentials: spec.allow_credentials.unwrap_or(false),
        forward_unmatched_preflights: spec.unmatched_preflights
            != Some(UnmatchedPreflights::Ignore),
    }
}

/// The valid header names of a list, lowercase; `*` stays.
fn header_names(list: &[String], at: &Scope<'_>) -> Vec<String> {
    list.iter()
        .enumerate()
        .filter_map(|(i, h)| {
            if h == "*" {
                Some(h.clone())
            } else {
                checks::header_name(h, &at.index(i))
            }
        })
        .collect()
}
