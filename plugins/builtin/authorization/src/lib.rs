//! Istio's AuthorizationPolicy as a filter: the host hands it the policies that apply to
//! a gateway's routes (translated from `security.istio.io` resources) and enforces what
//! it decides. Istio's order: a CUSTOM policy that matches has its extension provider
//! check the request ([`custom`]); then a request a DENY policy matches is refused; else,
//! when any ALLOW policy applies, a request none of them matches is refused; else it goes
//! on. AUDIT policies decide nothing. A refusal is Envoy's: 403 `RBAC: access denied`.

mod custom;
mod facts;
mod policy;

use portcullis_sdk::filter::{self, Action, Edits, Filter, Header, PluginConfig, Rejection};
use portcullis_sdk::host::{self, LogLevel};

use custom::Outcome;
use facts::Facts;
use policy::{Decision, Policies};

/// The filter: the policies of its gateway.
struct Authorization {
    policies: Policies,
}

impl Filter for Authorization {
    fn configure(config: PluginConfig) -> Result<Self, String> {
        let policies: Policies = config
            .parse_required()
            .map_err(|e| format!("invalid policies: {e}"))?;
        policies.check()?;
        Ok(Self { policies })
    }

    fn on_request(&mut self) -> Action {
        let facts = Facts::of_request();
        for name in self.policies.audited(&facts) {
            host::log(LogLevel::Info, &format!("AUDIT policy {name} matched"));
        }
        // Istio's order: CUSTOM, then DENY, then ALLOW.
        let mut edits = Edits::default();
        let mut asked: Vec<&str> = Vec::new();
        for (provider, check) in self.policies.custom(&facts) {
            // Several policies naming one provider make one check.
            if asked.contains(&provider) {
                continue;
            }
            asked.push(provider);
            match check.ask(provider) {
                Outcome::Allowed(allowed) => {
                    edits
                        .set_request_headers
                        .extend(allowed.set_request_headers);
                    edits
                        .set_response_headers
                        .extend(allowed.set_response_headers);
                }
                Outcome::Denied(rejection) => return Action::Reject(rejection),
            }
        }
        match self.policies.decide(&facts) {
            Decision::Allow => Action::Proceed(edits),
            Decision::Deny(by) => deny(by),
        }
    }
}

/// Envoy's refusal, with the matched DENY rule (if one matched) as its details.
fn deny(by: Option<String>) -> Action {
    let matched = by.as_deref().unwrap_or("none");
    host::response_details(&format!("rbac_access_denied_matched_policy[{matched}]"));
    Action::Reject(Rejection {
        status: 403,
        headers: vec![Header {
            name: "content-type".into(),
            value: "text/plain".into(),
        }],
        body: "RBAC: access denied".into(),
    })
}

filter::export!(Authorization);
