//! Where a redirect points and how a rewrite changes the path, as Envoy computes them.

use http::uri::PathAndQuery;

use crate::config::resolved::{Redirect, RedirectPort, StringMatcher};
use crate::wire::host::strip_port;

/// The parts of the request a redirect or rewrite starts from.
pub struct Origin<'a> {
    pub scheme: &'a str,
    /// The Host header, possibly with a port.
    pub host: &'a str,
    /// The gateway port the request arrived on.
    pub port: u16,
    pub path_and_query: &'a str,
    /// The URI condition of the match block that selected the route.
    pub matched_uri: Option<&'a StringMatcher>,
}

impl Origin<'_> {
    fn path(&self) -> &str {
        self.path_and_query
            .split_once('?')
            .map_or(self.path_and_query, |(p, _)| p)
    }

    fn query(&self) -> Option<&str> {
        self.path_and_query.split_once('?').map(|(_, q)| q)
    }

    /// The path with `replacement` in place of the matched prefix (prefix matches) or of
    /// the whole path, keeping the query.
    pub fn replace_path(&self, replacement: &str) -> String {
        let path = match self.matched_uri {
            Some(StringMatcher::Prefix(prefix)) if self.path().len() >= prefix.len() => {
                format!("{replacement}{}", &self.path()[prefix.len()..])
            }
            _ => replacement.to_string(),
        };
        match self.query() {
            Some(query) if !path.contains('?') => format!("{path}?{query}"),
            _ => path,
        }
    }
}

/// The `Location` of a redirect.
pub fn location(redirect: &Redirect, origin: &Origin<'_>) -> String {
    let scheme = redirect.scheme.as_deref().unwrap_or(origin.scheme);
    let bare_host = strip_port(origin.host);
    let original_port = origin.host[bare_host.len()..].strip_prefix(':');
    let host = redirect.authority.as_deref().unwrap_or(bare_host);
    let port = match redirect.port {
        Some(RedirectPort::Fixed(port)) => Some(port.to_string()),
        Some(RedirectPort::FromRequestPort) => Some(origin.port.to_string()),
        Some(RedirectPort::FromProtocolDefault) => None,
        // A new scheme drops the old port; otherwise the authority stays as it was.
        None if scheme != origin.scheme || redirect.authority.is_some() => None,
        None => original_port.map(String::from),
    };
    let port = port.filter(|p| !matches!((scheme, p.as_str()), ("http", "80") | ("https", "443")));
    let path = match (&redirect.uri, &redirect.prefix_rewrite) {
        (Some(uri), _) => origin.replace_path_whole(uri),
        (None, Some(prefix)) => origin.replace_path(prefix),
        (None, None) => origin.path_and_query.to_string(),
    };
    match port {
        Some(port) => format!("{scheme}://{host}:{port}{path}"),
        None => format!("{scheme}://{host}{path}"),
    }
}

impl Origin<'_> {
    /// The whole path replaced by `uri` (Envoy's `path_redirect`), keeping the query
    /// unless `uri` has its own.
    fn replace_path_whole(&self, uri: &str) -> String {
        match self.query() {
            Some(query) if !uri.contains('?') => format!("{uri}?{query}"),
            _ => uri.to_string(),
        }
    }
}

/// Parses a rewritten path, falling back to `/` for one that is not a valid path.
pub fn parse_path(path: &str) -> PathAndQuery {
    path.parse()
        .unwrap_or_else(|_| PathAndQuery::from_static("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin<'a>(host: &'a str, path: &'a str, matched: Option<&'a StringMatcher>) -> Origin<'a> {
        Origin {
            scheme: "http",
            host,
            port: 8080,
            path_and_query: path,
            matched_uri: matched,
        }
    }

    fn redirect() -> Redirect {
        Redirect {
            uri: None,
            prefix_rewrite: None,
            authority: None,
            port: None,
            scheme: None,
            code: 301,
        }
    }

    #[test]
    fn prefix_rewrite_swaps_the_matched_prefix_and_keeps_the_query() {
        let prefix = StringMatcher::Prefix("/v1/".into());
        let o = origin("a.com", "/v1/users?x=1", Some(&prefix));
        assert_eq!(o.replace_path("/v2/"), "/v2/users?x=1");
        let exact = StringMatcher::Exact("/v1/users".into());
        assert_eq!(
            origin("a.com", "/v1/users", Some(&exact)).replace_path("/other"),
            "/other"
        );
    }

    #[test]
    fn redirect_locations() {
        let o = origin("a.com:8080", "/old?q=1", None);
        let mut r = redirect();
        r.uri = Some("/new".into());
        assert_eq!(location(&r, &o), "http://a.com:8080/new?q=1");
        r.scheme = Some("https".into());
        assert_eq!(location(&r, &o), "https://a.com/new?q=1");
        r.port = Some(RedirectPort::Fixed(8443));
        assert_eq!(location(&r, &o), "https://a.com:8443/new?q=1");
        let mut r = redirect();
        r.authority = Some("b.com".into());
        r.port = Some(RedirectPort::FromRequestPort);
        assert_eq!(location(&r, &o), "http://b.com:8080/old?q=1");
    }
}
