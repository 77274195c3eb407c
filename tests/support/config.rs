//! YAML pieces every end-to-end test's config needs.

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

/// A STATIC ServiceEntry `host` on port 80 whose endpoints are 127.0.0.1 at `ports`.
pub fn service(host: &str, ports: &[u16]) -> String {
    let endpoints: String = ports
        .iter()
        .map(|port| format!("  - address: 127.0.0.1\n    ports: {{http: {port}}}\n"))
        .collect();
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
