//! Gateways: an Istio server per HTTP, HTTPS, TLS (Passthrough) or TCP listener.

use serde_json::{Value, json};

use super::grants::{From, Grants, To};
use super::namespaces::{Allowed, Namespaces};
use super::{istio, not_yet};
use crate::config::model::gateway::GatewaySpec as IstioGateway;
use crate::config::model::gateway_api::{GatewaySpec, Listener, ObjectRef};
use crate::config::resolve::scope::Scope;

/// Why a listener is not served, in the terms of its conditions.
#[derive(Debug, Clone, Copy)]
pub enum Unserved {
    /// Its protocol, TLS mode or namespaces are not served: it is not Accepted.
    Unsupported,
    /// Its certificate reference does not resolve, for this reason (`RefNotPermitted`,
    /// `InvalidCertificateRef`).
    Refs(&'static str),
}

/// Each listener's Istio server, or why it is not served.
pub type ListenerStates = Vec<Result<(), Unserved>>;

/// The Istio Gateway of `spec`, in `namespace`, and whether each listener is served;
/// `grants` say which Secrets of other namespaces it may use.
pub fn gateway(
    spec: &GatewaySpec,
    (namespace, namespaces, grants): (&str, &Namespaces, &Grants<'_>),
    at: &Scope<'_>,
) -> (Option<IstioGateway>, ListenerStates) {
    not_yet(spec.tls.is_some(), &at.field("tls"));
    not_yet(spec.infrastructure.is_some(), &at.field("infrastructure"));
    not_yet(
        spec.allowed_listeners.is_some(),
        &at.field("allowedListeners"),
    );
    not_yet(spec.backend_tls.is_some(), &at.field("backendTLS"));
    let bind = bind_address(spec, at);
    let servers: Vec<Result<Value, Unserved>> = spec
        .listeners
        .iter()
        .enumerate()
        .map(|(i, l)| {
            server(
                l,
                (namespace, namespaces, grants),
                bind.as_deref(),
                &at.field("listeners").index(i),
            )
        })
        .collect();
    let served = servers
        .iter()
        .map(|s| s.as_ref().map(|_| ()).map_err(|u| *u))
        .collect();
    let servers: Vec<Value> = servers.into_iter().flatten().collect();
    if servers.is_empty() {
        // Its conditions say so (ListenersNotValid); there is nothing to serve.
        return (None, served);
    }
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

/// The Istio server of one listener, or why (with a warning) it is not served.
fn server(
    listener: &Listener,
    (namespace, namespaces, grants): (&str, &Namespaces, &Grants<'_>),
    bind: Option<&str>,
    at: &Scope<'_>,
) -> Result<Value, Unserved> {
    let protocol = listener.protocol.as_deref().unwrap_or_default();
    if !matches!(protocol, "HTTP" | "HTTPS" | "TLS" | "TCP") {
        at.field("protocol").warn(format!(
            "protocol {protocol:?} is not served yet (HTTP, HTTPS, TLS and TCP are): the listener is ignored"
        ));
        return Err(Unserved::Unsupported);
    }
    let scopes: Vec<String> = match Allowed::of(listener, namespace, namespaces) {
        Allowed::All => vec!["*".to_string()],
        Allowed::Only(list) => list,
    };
    if scopes.is_empty() {
        at.field("allowedRoutes.namespaces.selector").warn(
            "no namespace matches the selector: no route may attach, the listener is ignored",
        );
        return Err(Unserved::Unsupported);
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
    match protocol {
        "HTTPS" => server["tls"] = listener_tls(listener, (namespace, grants), &at.field("tls"))?,
        "TLS" => server["tls"] = passthrough(listener, &at.field("tls"))?,
        _ => {}
    }
    Ok(server)
}

/// A TLS listener's Istio TLS: PASSTHROUGH (TLSRoutes route it by SNI); terminating TLS
/// for TLSRoutes is not served yet.
fn passthrough(listener: &Listener, at: &Scope<'_>) -> Result<Value, Unserved> {
    let tls = listener.tls.as_ref();
    if tls.and_then(|t| t.mode.as_deref()).unwrap_or("Terminate") != "Passthrough" {
        at.field("mode").warn(
            "a TLS listener that terminates TLS is not served yet (Passthrough is): the listener is ignored",
        );
        return Err(Unserved::Unsupported);
    }
    if tls.is_some_and(|t| !t.certificate_refs.is_empty()) {
        at.field("certificateRefs")
            .warn("a Passthrough listener terminates no TLS: ignored");
    }
    not_yet(
        tls.is_some_and(|t| t.options.is_some()),
        &at.field("options"),
    );
    not_yet(
        tls.is_some_and(|t| t.frontend_validation.is_some()),
        &at.field("frontendValidation"),
    );
    Ok(json!({ "mode": "PASSTHROUGH" }))
}

/// Terminated TLS with the certificate of the listener's first Secret, which is read as
/// `credentialName` is: a folder beside the config named after the Secret (`namespace/name`
/// for a Secret of another namespace than the Gateway's `namespace`, which a ReferenceGrant
/// among `grants` must allow).
fn listener_tls(
    listener: &Listener,
    (namespace, grants): (&str, &Grants<'_>),
    at: &Scope<'_>,
) -> Result<Value, Unserved> {
    let tls = listener.tls.as_ref();
    if tls
        .and_then(|t| t.mode.as_deref())
        .is_some_and(|m| m != "Terminate")
    {
        at.field("mode")
            .warn("only Terminate is served yet: the listener is ignored");
        return Err(Unserved::Unsupported);
    }
    not_yet(
        tls.is_some_and(|t| t.frontend_validation.is_some()),
        &at.field("frontendValidation"),
    );
    not_yet(
        tls.is_some_and(|t| t.options.is_some()),
        &at.field("options"),
    );
    let Some(secret) = tls.and_then(|t| t.certificate_refs.first()) else {
        at.field("certificateRefs")
            .error("an HTTPS listener needs a certificate: a Secret in certificateRefs");
        return Err(Unserved::Refs("InvalidCertificateRef"));
    };
    let folder = secret_folder(
        secret,
        (namespace, grants),
        &at.field("certificateRefs").index(0),
    )?;
    if tls.is_some_and(|t| t.certificate_refs.len() > 1) {
        at.field("certificateRefs")
            .warn("several certificates: the first is served");
    }
    Ok(json!({ "mode": "SIMPLE", "credentialName": folder }))
}

/// The folder of the Secret `secret` names, as a Gateway of `namespace` may use it.
fn secret_folder(
    secret: &ObjectRef,
    (namespace, grants): (&str, &Grants<'_>),
    at: &Scope<'_>,
) -> Result<String, Unserved> {
    let core = secret.group.as_deref().is_none_or(str::is_empty);
    let (Some(name), true, true) = (
        secret.name.as_deref(),
        core,
        secret.kind.as_deref().is_none_or(|k| k == "Secret"),
    ) else {
        at.warn("only a Secret (of the core group, with a name) is served as a certificate: the listener is ignored");
        return Err(Unserved::Refs("InvalidCertificateRef"));
    };
    let ns = secret.namespace.as_deref().unwrap_or(namespace);
    if ns == namespace {
        return Ok(name.to_string());
    }
    let from = From {
        kind: "Gateway",
        namespace,
    };
    let to = To {
        kind: "Secret",
        namespace: ns,
        name,
    };
    if !grants.permit(&from, &to) {
        at.field("namespace").warn(format!(
            "no ReferenceGrant in {ns} lets Gateways of {namespace} use its Secret {name} (RefNotPermitted): the listener is ignored"
        ));
        return Err(Unserved::Refs("RefNotPermitted"));
    }
    Ok(format!("{ns}/{name}"))
}
