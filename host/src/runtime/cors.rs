//! Cross-origin requests, as Envoy's CORS filter answers them for a route's `corsPolicy`:
//! preflights from an allowed origin are answered by the gateway, actual requests from
//! one get `access-control-allow-origin` (and credentials, exposed headers) on their
//! response. Requests from other origins are left as they are; their preflights are
//! forwarded (`unmatchedPreflights: FORWARD`, the default) or answered without CORS
//! headers (`IGNORE`).

use http::Method;
use http::header::{self, HeaderMap, HeaderValue};

use crate::config::resolved::{Cors, StringMatcher};

/// A route's CORS policy, ready to answer with.
#[derive(Debug)]
pub struct CorsPolicy {
    origins: Vec<Origin>,
    allow_methods: Option<HeaderValue>,
    allow_headers: Option<HeaderValue>,
    expose_headers: Option<HeaderValue>,
    max_age: Option<HeaderValue>,
    allow_credentials: bool,
    forward_unmatched_preflights: bool,
}

#[derive(Debug)]
enum Origin {
    Exact(String),
    Prefix(String),
    Regex(regex::Regex),
}

/// What the policy makes of a request.
#[derive(Debug)]
pub enum Verdict {
    /// Not a request CORS acts on: pass it on untouched.
    Pass,
    /// A preflight the gateway answers itself: 200 with these headers.
    Answer(HeaderMap),
    /// A request from an allowed origin: its response gets the CORS headers.
    Decorate(HeaderValue),
}

impl CorsPolicy {
    /// Compiles `cors`; a regex that does not compile is an error.
    pub fn new(cors: &Cors) -> Result<Self, regex::Error> {
        let origins = cors
            .allow_origins
            .iter()
            .map(|matcher| {
                Ok(match matcher {
                    StringMatcher::Exact(s) => Origin::Exact(s.clone()),
                    StringMatcher::Prefix(s) => Origin::Prefix(s.clone()),
                    StringMatcher::Regex(r) => {
                        Origin::Regex(regex::Regex::new(&format!("^(?:{r})$"))?)
                    }
                })
            })
            .collect::<Result<_, regex::Error>>()?;
        let list = |items: &[String]| {
            (!items.is_empty())
                .then(|| HeaderValue::from_str(&items.join(",")).ok())
                .flatten()
        };
        Ok(Self {
            origins,
            allow_methods: list(&cors.allow_methods),
            allow_headers: list(&cors.allow_headers),
            expose_headers: list(&cors.expose_headers),
            max_age: cors
                .max_age
                .and_then(|age| HeaderValue::from_str(&age.as_secs().to_string()).ok()),
            allow_credentials: cors.allow_credentials,
            forward_unmatched_preflights: cors.forward_unmatched_preflights,
        })
    }

    /// What to do with a request of `method` with `headers`.
    pub fn check(&self, method: &Method, headers: &HeaderMap) -> Verdict {
        let Some(origin) = headers.get(header::ORIGIN).filter(|o| !o.is_empty()) else {
            return Verdict::Pass;
        };
        let allowed = self.allows(origin.to_str().unwrap_or_default());
        let requested_method = headers
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .filter(|m| !m.is_empty());
        let preflight = method == Method::OPTIONS && requested_method.is_some();
        match (preflight, allowed) {
            (false, true) => Verdict::Decorate(origin.clone()),
            (false, false) => Verdict::Pass,
            (true, false) if self.forward_unmatched_preflights => Verdict::Pass,
            (true, allowed) => Verdict::Answer(self.preflight(headers, allowed.then_some(origin))),
        }
    }

    fn allows(&self, origin: &str) -> bool {
        self.origins.iter().any(|allowed| match allowed {
            Origin::Exact(exact) => exact == "*" || exact == origin,
            Origin::Prefix(prefix) => origin.starts_with(prefix.as_str()),
            Origin::Regex(regex) => regex.is_match("*") || regex.is_match(origin),
        })
    }

    /// The headers of the answer to a preflight: the allowed origin (if it is), and what
    /// the policy allows (the exposed headers only to an allowed origin); a `*` in methods
    /// or headers echoes what was asked for.
    fn preflight(&self, request: &HeaderMap, origin: Option<&HeaderValue>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(origin) = origin {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        }
        if self.allow_credentials {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        let echo = |allowed: &Option<HeaderValue>, asked: header::HeaderName| match allowed {
            Some(value) if value == "*" => request.get(asked).cloned(),
            other => other.clone(),
        };
        let allowed = [
            (
                header::ACCESS_CONTROL_ALLOW_METHODS,
                echo(&self.allow_methods, header::ACCESS_CONTROL_REQUEST_METHOD),
            ),
            (
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                echo(&self.allow_headers, header::ACCESS_CONTROL_REQUEST_HEADERS),
            ),
            (header::ACCESS_CONTROL_MAX_AGE, self.max_age.clone()),
            // Envoy's answer passes its own response path too, which adds it for an
            // allowed origin.
            (
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                origin.and(self.expose_headers.clone()),
            ),
        ];
        for (name, value) in allowed {
            if let Some(value) = value {
                headers.insert(name, value);
            }
        }
        headers
    }

    /// Adds the CORS headers for an allowed `origin` to a response.
    pub fn decorate(&self, origin: HeaderValue, headers: &mut HeaderMap) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if self.allow_credentials {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if let Some(expose) = &self.expose_headers {
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(forward: bool) -> CorsPolicy {
        CorsPolicy::new(&Cors {
            allow_origins: vec![
                StringMatcher::Exact("https://a.test".into()),
                StringMatcher::Prefix("https://app.".into()),
                StringMatcher::Regex(r"https://.*\.b\.test".into()),
            ],
            allow_methods: vec!["GET".into(), "POST".into()],
            allow_headers: vec!["*".into()],
            expose_headers: vec!["x-total".into(), "x-page".into()],
            max_age: Some(std::time::Duration::from_secs(86_400)),
            allow_credentials: true,
            forward_unmatched_preflights: forward,
        })
        .unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| (n.parse().unwrap(), HeaderValue::from_str(v).unwrap()))
            .collect()
    }

    #[test]
    fn answers_preflights_from_allowed_origins() {
        let request = headers(&[
            ("origin", "https://x.b.test"),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "x-a,x-b"),
        ]);
        let Verdict::Answer(h) = policy(true).check(&Method::OPTIONS, &request) else {
            panic!("not answered");
        };
        assert_eq!(h["access-control-allow-origin"], "https://x.b.test");
        assert_eq!(h["access-control-allow-credentials"], "true");
        assert_eq!(h["access-control-allow-methods"], "GET,POST");
        assert_eq!(h["access-control-allow-headers"], "x-a,x-b");
        assert_eq!(h["access-control-max-age"], "86400");
        assert_eq!(h["access-control-expose-headers"], "x-total,x-page");
    }

    #[test]
    fn unmatched_preflights_are_forwarded_or_answered_bare() {
        let request = headers(&[
            ("origin", "https://evil.test"),
            ("access-control-request-method", "GET"),
        ]);
        assert!(matches!(
            policy(true).check(&Method::OPTIONS, &request),
            Verdict::Pass
        ));
        let Verdict::Answer(answer) = policy(false).check(&Method::OPTIONS, &request) else {
            panic!("not answered");
        };
        assert!(!answer.contains_key("access-control-allow-origin"));
    }

    #[test]
    fn decorates_only_requests_from_allowed_origins() {
        let policy = policy(true);
        let get = |origin: &str| policy.check(&Method::GET, &headers(&[("origin", origin)]));
        let Verdict::Decorate(origin) = get("https://app.example") else {
            panic!("prefix origin not allowed");
        };
        let mut response = HeaderMap::new();
        policy.decorate(origin, &mut response);
        assert_eq!(
            response["access-control-allow-origin"],
            "https://app.example"
        );
        assert_eq!(response["access-control-expose-headers"], "x-total,x-page");
        assert!(matches!(get("https://a.test.evil"), Verdict::Pass));
        assert!(matches!(get("http://x.b.test"), Verdict::Pass));
        assert!(matches!(
            policy.check(&Method::GET, &HeaderMap::new()),
            Verdict::Pass
        ));
        // OPTIONS without Access-Control-Request-Method is an actual request.
        let options = policy.check(&Method::OPTIONS, &headers(&[("origin", "https://a.test")]));
        assert!(matches!(options, Verdict::Decorate(_)));
    }
}
