//! YAML pieces every end-to-end test's config needs.

use std::fmt::Display;

/// A Gateway `gw` with one plain-HTTP server, on a free loopback port, for every host.
pub const GATEWAY: &str = "apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: gw
spec:
  servers:
  - port: {number: 0, name: http, protocol: HTTP}
    bind: 127.0.0.1
    hosts: [\"*\"]
";

/// A Gateway `gw` with `servers` (the YAML under `servers:`, each server starting `  - `).
pub fn gateway(servers: &str) -> String {
    named_gateway("gw", servers)
}

/// A Gateway `name` with `servers`, as [`gateway`].
pub fn named_gateway(name: &str, servers: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: {name}
spec:
  servers:
{servers}"
    )
}

/// A STATIC ServiceEntry `host` on port 80 whose endpoints are 127.0.0.1 at `ports`.
pub fn service(host: &str, ports: &[u16]) -> String {
    let endpoints: String = ports
        .iter()
        .map(|port| format!("  - address: 127.0.0.1\n    ports: {{http: {port}}}\n"))
        .collect();
    service_entry(host, &endpoints)
}

/// [`service`] with an endpoint labelled `version: <version>` for each `(version, port)`.
pub fn versioned_service(host: &str, versions: &[(&str, u16)]) -> String {
    let endpoints: String = versions
        .iter()
        .map(|(version, port)| {
            format!(
                "  - address: 127.0.0.1\n    ports: {{http: {port}}}\n    labels: {{version: {version}}}\n"
            )
        })
        .collect();
    service_entry(host, &endpoints)
}

/// A STATIC ServiceEntry `host` on port 80 with `endpoints` (the YAML under `endpoints:`).
fn service_entry(host: &str, endpoints: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: {host}
spec:
  hosts: [{host}]
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints:
{endpoints}"
    )
}

/// A DestinationRule for `host` (and named so), the rest of its spec in `spec` (YAML lines
/// indented by two: `trafficPolicy`, `subsets`…).
pub fn destination_rule(host: &str, spec: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: {host}
spec:
  host: {host}
{spec}"
    )
}

/// A VirtualService `name` for `host` (`*`: every host) on the Gateway `gw`, whose HTTP
/// routes are `http` (the YAML under `http:`, each route starting `  - `).
pub fn virtual_service(name: &str, host: &str, http: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: {name}
spec:
  hosts: [\"{host}\"]
  gateways: [gw]
  http:
{http}"
    )
}

/// One HTTP route, for [`virtual_service`]: everything to `host`.
pub fn route_to(host: &str) -> String {
    format!("  - route: [{{destination: {{host: {host}}}}}]\n")
}

/// A WasmPlugin `name` running the component at the path `file`, attached to the
/// VirtualService routes `targets` (`vs` for all of a VirtualService's routes, `vs/route`
/// for its route named `route`; none: every route), with the rest of its spec in `spec`
/// (YAML lines indented by two: `phase`, `failStrategy`, `pluginConfig`…).
pub fn wasm_plugin(name: &str, file: impl Display, targets: &[&str], spec: &str) -> String {
    let targets = if targets.is_empty() {
        String::new()
    } else {
        let refs: Vec<String> = targets
            .iter()
            .map(|target| match target.split_once('/') {
                Some((vs, route)) => {
                    format!("{{kind: VirtualService, name: {vs}, sectionName: {route}}}")
                }
                None => format!("{{kind: VirtualService, name: {target}}}"),
            })
            .collect();
        format!("  targetRefs: [{}]\n", refs.join(", "))
    };
    format!(
        "apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: {name}
spec:
  url: file://{file}
{targets}{spec}"
    )
}

/// Points the ConfigMap-style `..data` link of `dir` at a new folder holding `text`.
pub fn configmap_swap(dir: &std::path::Path, version: &str, text: &str) {
    let folder = dir.join(version);
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("gateway.yaml"), text).unwrap();
    let link = dir.join("..data_tmp");
    std::os::unix::fs::symlink(version, &link).unwrap();
    std::fs::rename(&link, dir.join("..data")).unwrap();
}
