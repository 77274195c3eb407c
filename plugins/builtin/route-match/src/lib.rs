//! The built-in route matcher: Istio's `HTTPMatchRequest` semantics.
//!
//! Fields inside one match block are ANDed, blocks are ORed, and the first matching route
//! of the virtual host wins. `exact` and `prefix` compare plain strings (a prefix `/foo`
//! also matches `/foobar`), `regex` is RE2 syntax and must match the whole value, and
//! `ignoreUriCase` makes `exact` and `prefix` URI matches case-insensitive.
//!
//! Routes pinned to paths are looked up rather than scanned ([`index`]).

mod index;

use index::{PathKey, RouteIndex};
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

/// The prefix of Istio's JWT-claim pseudo-headers (`@request.auth.claims.a.b`).
const CLAIM: &str = "@request.auth.claims.";

/// What a header condition reads: a header, or a verified claim by path.
enum Source {
    Header(String),
    Claim(Vec<String>),
}

impl Source {
    fn of(name: String) -> Self {
        match name.strip_prefix(CLAIM) {
            Some(path) => Self::Claim(path.split('.').map(str::to_string).collect()),
            None => Self::Header(name),
        }
    }

    /// The values the request has: a header's first, or each of a claim's.
    fn values(&self) -> Option<Vec<String>> {
        match self {
            Self::Header(name) => request::header(name).map(|v| vec![v]),
            Self::Claim(path) => request::claim(path),
        }
    }
}

/// One compiled match block.
struct Block {
    uri: Option<Matcher>,
    scheme: Option<Matcher>,
    method: Option<Matcher>,
    authority: Option<Matcher>,
    headers: Vec<(Source, Option<Matcher>, bool)>,
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
                .map(|h| Ok((Source::of(h.name), opt(h.value, false)?, h.invert)))
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

    /// What the block says about the path, when a lookup can use it.
    fn path_key(&self) -> Option<PathKey<'_>> {
        match (&self.uri, self.ignore_uri_case) {
            (Some(Matcher::Exact(path)), false) => Some(PathKey::Exact(path)),
            (Some(Matcher::Prefix(path)), false) => Some(PathKey::Prefix(path)),
            _ => None,
        }
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
            && self.headers.iter().all(|(source, m, invert)| {
                let hit = match (source.values(), m) {
                    (None, _) => false,
                    (Some(_), None) => true,
                    (Some(values), Some(m)) => values.iter().any(|v| m.matches(v, false)),
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

/// A virtual host's routes (each its compiled match blocks) and their index.
struct Routes {
    routes: Vec<Vec<Block>>,
    index: RouteIndex,
}

impl Routes {
    fn new(routes: Vec<Vec<Block>>) -> Self {
        let keys = routes
            .iter()
            .map(|blocks| blocks.iter().map(Block::path_key).collect());
        let index = RouteIndex::new(keys);
        Self { routes, index }
    }
}

/// Every virtual host's routes, and a buffer for the candidates of a call.
struct Builtin {
    virtual_hosts: Vec<Routes>,
    candidates: Vec<u32>,
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
                    .map(Routes::new)
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Builtin {
            virtual_hosts,
            candidates: Vec::new(),
        })
    }

    fn select_route(&mut self, virtual_host: u32) -> Option<Selected> {
        let Routes { routes, index } = self.virtual_hosts.get(virtual_host as usize)?;
        let target = Target {
            full: request::path(),
        };
        index.candidates(target.path(), &mut self.candidates);
        self.candidates.iter().find_map(|&route| {
            let blocks = &routes[route as usize];
            let block = if blocks.is_empty() {
                0
            } else {
                blocks.iter().position(|b| b.matches(&target))?
            };
            Some(Selected {
                route,
                match_block: block as u32,
            })
        })
    }
}

route_match::export!(Builtin);
