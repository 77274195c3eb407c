//! Gateways: an Istio server per HTTP or HTTPS listener.

use serde_json::{Value, json};

use super::namespaces::{Allowed, Namespaces};
use super::{istio, not_yet};
use crate::config::model::gateway::GatewaySpec as IstioGateway;
use crate::config::model::gateway_api::{GatewaySpec, Listener};
use crate::config::resolve::scope::Scope;

/// The Istio Gateway of `spec`, in `namespace`, and whether each listener is served.
pub fn gateway(
    spec: &GatewaySpec,
    (namespace, namespaces): (&str, &Namespaces),
    at: &Scope<'_>,
) -> (Option<IstioGateway>, Vec<bool>) {
    not_yet(spec.tls.is_some(), &at.field("tls"));
    not_yet(spec.infrastructure.is_some(), &at.field("infrastructure"));
    not_yet(
        spec.allowed_listeners.is_some(),
        &at.field("allowedListeners"),
    );
    not_yet(spec.backend_tls.is_some(), &at.field("backendTLS"));
    let bind = bind_address(spec, at);
    let servers: Vec<Option<Value>> = spec
        .listeners
        .iter()
        .enumerate()
        .map(|(i, l)| {
            server(
                l,
                (namespace, namespaces),
                bind.as_deref(),
                &at.field("listeners").index(i),
            )
        })
        .collect();
    let served = servers.iter().map(Option::is_some).collect();
    let servers: Vec<Value> = servers.into_iter().flatten().collect();
    (istio(json!({ "servers": servers }), at), served)
}

/// The address the listeners bind: the Gateway's one `IPAddress`, else every interface.
fn bind_address(spec: &GatewaySpec, at: &Scope<'_>) -> Option<String> {
    let mut ips = spec.addresses.iter().enumerate().filter_map(|(i, a)| {
        match a.kind.as_deref().unwrap_or("IPAddress") {
            "IPAddress" => a.value.clone(),
            other => {
                at.field("addresses").index(i).warn(format!(
                    "address type {other:?} is not served: the listeners bind every interface"
                ));
                None
            }
        }
    });
    let first = ips.next();
    if ips.next().is_some() {
        at.field("addresses")
            .warn("several addresses: the listeners bind the first only");
    }
    first
}

/// The Istio server of one listener, or none (with a warning) when it is not served.
fn server(
    listener: &Listener,
    (namespace, namespaces): (&str, &Namespaces),
    bind: Option<&str>,
    at: &Scope<'_>,
) -> Option<Value> {
    let protocol = listener.protocol.as_deref().unwrap_or_default();
    if !matches!(protocol, "HTTP" | "HTTPS") {
        at.field("protocol").warn(format!(
            "protocol {protocol:?} is not served yet (HTTP and HTTPS are): the listener is ignored"
        ));
        return None;
    }
    not_yet(
        listener
            .allowed_routes
            .as_ref()
            .is_some_and(|a| a.kinds.is_some()),
        &at.field("allowedRoutes.kinds"),
    );
    let scopes: Vec<String> = match Allowed::of(listener, namespace, namespaces) {
        Allowed::All => vec!["*".to_string()],
        Allowed::Only(list) => list,
    };
    if scopes.is_empty() {
        at.field("allowedRoutes.namespaces.selector").warn(
            "no namespace matches the selector: no route may attach, the listener is ignored",
        );
        return None;
    }
    let host = listener.hostname.as_deref().unwrap_or("*");
    let hosts: Vec<String> = scopes
        .iter()
        .map(|scope| format!("{scope}/{host}"))
        .collect();
    let mut server = json!({
        "port": { "number": listener.port, "name": listener.name, "protocol": protocol },
        "hosts": hosts,
    });
    if let Some(bind) = bind {
        server["bind"] = json!(bind);
    }
    if protocol == "HTTPS" {
        server["tls"] = listener_tls(listener, &at.field("tls"))?;
    }
    Some(server)
}

/// Terminated TLS with the certificate of the listener's first Secret, which is read as
/// `credentialName` is: a folder of that name beside the config.
fn listener_tls(listener: &Listener, at: &Scope<'_>) -> Option<Value> {
    let tls = listener.tls.as_ref();
    if tls
        .and_then(|t| t.mode.as_deref())
        .is_some_and(|m| m != "Terminate")
    {
        at.field("mode")
            .warn("only Terminate is served yet: the listener is ignored");
        return None;
    }
    not_yet(
        tls.is_some_and(|t| t.frontend_validation.is_some()),
        &at.field("frontendValidation"),
    );
    not_yet(
        tls.is_some_and(|t| t.options.is_some()),
        &at.field("options"),
    );
    let Some(secret) = tls
        .and_then(|t| t.certificate_refs.first())
        .and_then(|r| r.name.clone())
    else {
        at.field("certificateRefs")
            .error("an HTTPS listener needs a certificate: a Secret in certificateRefs");
        return None;
    };
    if let Some(cert) = tls.and_then(|t| t.certificate_refs.first())
        && (cert.namespace.is_some() || cert.kind.as_deref().is_some_and(|k| k != "Secret"))
    {
        at.field("certificateRefs").index(0).warn(
            "read as the Secret folder of its name beside the config: its kind and namespace are not checked",
        );
    }
    if tls.is_some_and(|t| t.certificate_refs.len() > 1) {
        at.field("certificateRefs")
            .warn("several certificates: the first is served");
    }
    Some(json!({ "mode": "SIMPLE", "credentialName": secret }))
}
