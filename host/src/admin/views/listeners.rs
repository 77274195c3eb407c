//! `/listeners`: each listener with the address it accepts on, its open connections,
//! and its servers with the certificates they present.

use serde_json::{Value, json};

use crate::config::resolved::ClientAuth;
use crate::reload::unix_now;
use crate::runtime::Generation;
use crate::server::listeners::Listeners;
use crate::tls::served::ServedCertificate;

pub fn view(generation: &Generation, listeners: &Listeners) -> Value {
    let now = unix_now() as i64;
    let all = generation
        .config
        .listeners
        .iter()
        .enumerate()
        .map(|(i, listener)| {
            let bound = listeners.bound(&listener.id());
            let certificates: &[ServedCertificate] = generation.tls[i]
                .as_ref()
                .map_or(&[], |tls| &tls.certificates);
            let servers: Vec<Value> = listener
                .servers
                .iter()
                .map(|server| {
                    let served = certificates.iter().filter(|c| c.server == server.name);
                    json!({
                        "name": server.name,
                        "hosts": server.hosts,
                        "tls_mode": server.tls.as_ref().map(|tls| mode(tls.client_auth)),
                        "certificates": served.map(|c| certificate(c, now)).collect::<Vec<_>>(),
                    })
                })
                .collect();
            json!({
                "name": listener.servers[0].name,
                "address": bound.map_or(listener.address, |(address, _)| address),
                "protocol": if generation.tls[i].is_some() { "HTTPS" } else { "HTTP" },
                "connections": bound.map(|(_, open)| open),
                "servers": servers,
            })
        });
    Value::Array(all.collect())
}

fn certificate(served: &ServedCertificate, now: i64) -> Value {
    json!({
        "path": served.path,
        "subject": served.subject,
        "not_after": served.not_after,
        "days_left": served.days_left(now),
    })
}

/// The Istio `tls.mode` a server's client authentication stands for.
fn mode(client_auth: ClientAuth) -> &'static str {
    match client_auth {
        ClientAuth::None => "SIMPLE",
        ClientAuth::Required => "MUTUAL",
        ClientAuth::Optional => "OPTIONAL_MUTUAL",
    }
}
