//! CUSTOM policies: the request is checked with an HTTP extension provider, as Envoy's
//! `ext_authz` filter does it. The check carries the request's method, its path after the
//! provider's `pathPrefix`, and the headers Envoy always sends (Host, Authorization)
//! with those the provider lists (the host drops hop-by-hop ones); a 200 lets the request go on (with the
//! answer's headers the provider names copied upstream and to the response), any other
//! answer is sent to the client, and a check that fails answers `statusOnError` unless
//! the provider fails open.

use std::collections::BTreeMap;

use portcullis_sdk::filter::{Edits, Header, Rejection};
use portcullis_sdk::host::{self, ProviderResponse};
use portcullis_sdk::request;
use serde::Deserialize;

/// A header Envoy sends with every check (beside the Host, and a Content-Length of 0:
/// checks carry no body).
const ALWAYS_SENT: [&str; 1] = ["authorization"];

/// How to ask a provider and read its answer (Istio's `envoyExtAuthzHttp`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Check {
    path_prefix: String,
    fail_open: bool,
    status_on_error: u16,
    include_request_headers_in_check: Vec<String>,
    include_additional_headers_in_check: BTreeMap<String, String>,
    headers_to_upstream_on_allow: Vec<String>,
    headers_to_downstream_on_allow: Vec<String>,
    headers_to_downstream_on_deny: Vec<String>,
}

/// What a check came to.
pub enum Outcome {
    /// Go on, with these edits.
    Allowed(Edits),
    /// Answer the client with this.
    Denied(Rejection),
}

impl Check {
    /// Asks `provider` about the request in progress.
    pub fn ask(&self, provider: &str) -> Outcome {
        let path = format!("{}{}", self.path_prefix, request::path());
        let answer =
            host::check_with_provider(provider, &request::method(), &path, &self.headers());
        match answer {
            Ok(answer) if answer.status == 200 => Outcome::Allowed(self.allowed(&answer)),
            Ok(answer) => {
                host::response_details("ext_authz_denied");
                Outcome::Denied(self.denied(answer))
            }
            Err(why) if self.fail_open => {
                host::log(
                    host::LogLevel::Warn,
                    &format!("{provider}: {why}; failing open"),
                );
                Outcome::Allowed(Edits::default())
            }
            Err(why) => {
                host::log(host::LogLevel::Warn, &format!("{provider}: {why}"));
                host::response_details("ext_authz_error");
                Outcome::Denied(Rejection {
                    status: self.status_on_error,
                    headers: Vec::new(),
                    body: String::new(),
                })
            }
        }
    }

    /// The headers sent with the check.
    fn headers(&self) -> Vec<Header> {
        let mut headers = vec![header("host", &request::authority())];
        let named = ALWAYS_SENT.iter().copied().chain(
            self.include_request_headers_in_check
                .iter()
                .map(String::as_str),
        );
        for name in named {
            if let Some(value) = request::header(name)
                && !headers.iter().any(|h| h.name == name)
            {
                headers.push(header(name, &value));
            }
        }
        for (name, value) in &self.include_additional_headers_in_check {
            headers.push(header(name, value));
        }
        headers
    }

    /// The edits an allowing `answer` asks for.
    fn allowed(&self, answer: &ProviderResponse) -> Edits {
        let pick = |names: &[String]| -> Vec<Header> {
            answer
                .headers
                .iter()
                .filter(|h| names.iter().any(|n| h.name.eq_ignore_ascii_case(n)))
                .map(|h| header(&h.name, &h.value))
                .collect()
        };
        Edits {
            set_request_headers: pick(&self.headers_to_upstream_on_allow),
            set_response_headers: pick(&self.headers_to_downstream_on_allow),
            ..Edits::default()
        }
    }

    /// The client's answer to a denying `answer`: its status and body, with the headers
    /// the provider lists (all but Envoy's own when it lists none).
    fn denied(&self, answer: ProviderResponse) -> Rejection {
        let listed = &self.headers_to_downstream_on_deny;
        let headers = answer
            .headers
            .into_iter()
            .filter(|h| listed.is_empty() || listed.iter().any(|n| h.name.eq_ignore_ascii_case(n)))
            .collect();
        Rejection {
            status: answer.status,
            headers,
            body: answer.body,
        }
    }
}

fn header(name: &str, value: &str) -> Header {
    Header {
        name: name.into(),
        value: value.into(),
    }
}
