//! The built-in route matcher: Istio's `HTTPMatchRequest` semantics.
//!
//! Fields inside one match block are ANDed, blocks are ORed, and the first matching route
//! of the virtual host wins. `exact` and `prefix` compare plain strings (a prefix `/foo`
//! also matches `/foobar`), `regex` is RE2 syntax and must match the whole value, and
//! `ignoreUriCase` makes `exact` and `prefix` URI matches case-insensitive.

use portcullis_sdk::request;
use portcullis_sdk::route_match::{
    self, MatchBlock, PluginConfig, RouteMatch, Selected, StringMatch, VirtualHost,
};
use regex::Regex;

/// A compiled StringMatch.
enum Matcher {
    Exact(String),
    Prefix(String),
    Regex(Regex),
}

impl Matcher {
    fn compile(spec: StringMatch, ignore_case: bool) -> Result<Self, String> {
        let fold = |s: String| {
            if ignore_case {
                s.to_ascii_lowercase()
            } else {
                s
            }
        };
        Ok(match spec {
            StringMatch::Exact(s) => Matcher::Exact(fold(s)),
            StringMatch::Prefix(s) => Matcher::Prefix(fold(s)),
            StringMatch::Regex(r) => Matcher::Regex(
                Regex::new(&format!("^(?:{r})$"))
                    .map_err(|e| format!("invalid regex {r:?}: {e}"))?,
            ),
        })
    }

    fn matches(&self, value: &str, ignore_case: bool) -> bool {
        match self {
            Matcher::Exact(s) if ignore_case => value.eq_ignore_ascii_case(s),
            Matcher::Exact(s) => value == s,
            Matcher::Prefix(p) if ignore_case => value
                .get(..p.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(p)),
            Matcher::Prefix(p) => value.starts_with(p.as_str()),
            Matcher::Regex(r) => r.is_match(value),
        }
    }
}

/// One compiled match block.
struct Block {
    uri: Option<Matcher>,
    scheme: Option<Matcher>,
    method: Option<Matcher>,
    authority: Option<Matcher>,
    headers: Vec<(String, Option<Matcher>, bool)>,
    query_params: Vec<(String, Option<Matcher>)>,
    port: Option<u16>,
    ignore_uri_case: bool,
}

impl Block {
    fn compile(spec: MatchBlock) -> Result<Self, String> {
        let opt = |m: Option<StringMatch>, fold| m.map(|m| Matcher::compile(m, fold)).transpose();
        Ok(Block {
            uri: opt(spec.uri, spec.ignore_uri_case)?,
            scheme: opt(spec.scheme, false)?,
            method: opt(spec.method, false)?,
            authority: opt(spec.authority, false)?,
            headers: spec
                .headers
                .into_iter()
                .map(|h| Ok((h.name, opt(h.value, false)?, h.invert)))
                .collect::<Result<_, String>>()?,
            query_params: spec
                .query_params
                .into_iter()
                .map(|q| Ok((q.name, opt(q.value, false)?)))
                .collect::<Result<_, String>>()?,
            port: spec.port,
            ignore_uri_case: spec.ignore_uri_case,
        })
    }

    /// Whether the request in progress satisfies every condition of the block.
    fn matches(&self, target: &Target) -> bool {
        let string = |m: &Option<Matcher>, value: &dyn Fn() -> String| {
            m.as_ref().is_none_or(|m| m.matches(&value(), false))
        };
        self.port.is_none_or(|p| p == request::port())
            && self
                .uri
                .as_ref()
                .is_none_or(|m| m.matches(target.path(), self.ignore_uri_case))
            && string(&self.method, &request::method)
            && string(&self.scheme, &request::scheme)
            && string(&self.authority, &request::authority)
            && self.headers.iter().all(|(name, m, invert)| {
                let hit = match (request::header(name), m) {
                    (None, _) => false,
                    (Some(_), None) => true,
                    (Some(v), Some(m)) => m.matches(&v, false),
                };
                hit != *invert
            })
            && self
                .query_params
                .iter()
                .all(|(name, m)| match target.query(name) {
                    None => false,
                    Some(v) => m.as_ref().is_none_or(|m| m.matches(v, false)),
                })
    }
}

/// The request's path and query, fetched once per call.
struct Target {
    full: String,
}

impl Target {
    fn path(&self) -> &str {
        self.full.split_once('?').map_or(&self.full, |(p, _)| p)
    }

    fn query(&self, name: &str) -> Option<&str> {
        let (_, query) = self.full.split_once('?')?;
        query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then_some(v)
        })
    }
}

/// The compiled match blocks of every route of every virtual host.
struct Builtin {
    virtual_hosts: Vec<Vec<Vec<Block>>>,
}

impl RouteMatch for Builtin {
    fn configure(virtual_hosts: Vec<VirtualHost>, _config: PluginConfig) -> Result<Self, String> {
        let virtual_hosts = virtual_hosts
            .into_iter()
            .map(|vhost| {
                vhost
                    .routes
                    .into_iter()
                    .map(|r| r.matches.into_iter().map(Block::compile).collect())
                    .collect::<Result<Vec<_>, String>>()
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Builtin { virtual_hosts })
    }

    fn select_route(&mut self, virtual_host: u32) -> Option<Selected> {
        let routes = self.virtual_hosts.get(virtual_host as usize)?;
        let target = Target {
            full: request::path(),
        };
        routes.iter().enumerate().find_map(|(route, blocks)| {
            let block = if blocks.is_empty() {
                0
            } else {
                blocks.iter().position(|b| b.matches(&target))?
            };
            Some(Selected {
                route: route as u32,
                match_block: block as u32,
            })
        })
    }
}

route_match::export!(Builtin);
