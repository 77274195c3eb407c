//! The Kubernetes Gateway API conformance suite, offline: the suite's base manifests and
//! each test's manifests, read where they lie (`../shared/gateway-api-conformance`), served
//! by the real gateway, with the requests and assertions of the suite's Go tests (written
//! anew here). Only what Kubernetes would provide is stood in for:
//!
//! - each Gateway binds a loopback address of the suite's own (its `addresses`), and each
//!   of its listener ports a free port there (parentRef ports follow);
//! - each Service is a ServiceEntry for `name.namespace.svc.cluster.local` whose endpoint is
//!   an echo server on loopback that reports `namespace/name`, the path, the method and the
//!   headers it got (the suite's echo server reports the same);
//! - each Secret a listener names is a folder beside the config (`name`, or
//!   `namespace/name` for one of another namespace than the Gateway's), holding a
//!   certificate for the listener's hostnames from a test CA.
//!
//! A test runs only where `../shared/gateway-api-conformance` exists.

/// Starts the suite on `tests`, or returns from the test where it is not at hand.
macro_rules! suite {
    ($($test:literal),+) => {
        match $crate::conformance::Suite::start(&[$($test),+]).await {
            Some(suite) => suite,
            None => return,
        }
    };
}

mod filters;
mod grpcroute;
mod httproute;
mod listeners;
mod streams;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use serde::Deserialize as _;
use serde_yaml::{Mapping, Value};

use crate::support;
use support::client::{Client, Reply, empty};
use support::gateway::Gateway;
use support::upstream::Upstream;

/// The namespace of the suite's base Gateways and backends.
const INFRA: &str = "gateway-conformance-infra";

/// A Service port whose `appProtocol` is WebSocket: served by a WebSocket echo server.
const WEBSOCKET: &str = "kubernetes.io/ws";

/// A Service port the suite serves with its echo server over TLS: the ports of its
/// `tls-backend*` Services and its `*-tls` ports.
const TLS: &str = "TLS";

/// A Service port the suite serves with its TCP echo server: the other ports of its
/// `tcp-*` Services (their Deployments say `TCP_ECHO_SERVER`).
const TCP: &str = "TCP";

/// Where the suite's manifests lie, when they do.
fn suite_dir() -> Option<PathBuf> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/gateway-api-conformance");
    dir.exists().then_some(dir)
}

/// The base manifests and the tests' manifests, served.
pub struct Suite {
    pub gateway: Gateway,
    /// The loopback address the Gateways bind.
    address: Ipv4Addr,
    /// The loopback port each Gateway's listener port is bound to: `("ns/name", port)`.
    ports: HashMap<(String, u16), u16>,
    /// The echo server of each Service, by `namespace/name`.
    pub backends: HashMap<String, Upstream>,
    /// The ServiceEntries standing in for the Services.
    entries: String,
    /// The other documents, as served.
    documents: std::sync::Mutex<Vec<Value>>,
}

/// The config of `entries` and `documents`.
fn config_of(entries: &str, documents: &[Value]) -> String {
    let mut config = entries.to_string();
    for document in documents {
        config.push_str("---\n");
        config.push_str(&serde_yaml::to_string(document).unwrap());
    }
    config
}

impl Suite {
    /// Serves the base manifests and those of the suite's tests `tests` (file names
    /// without `.yaml`); `None` where the suite is not at hand.
    pub async fn start(tests: &[&str]) -> Option<Self> {
        let suite = suite_dir()?;
        let mut text = std::fs::read_to_string(suite.join("base/manifests.yaml")).unwrap();
        for test in tests {
            text.push_str("\n---\n");
            text.push_str(
                &std::fs::read_to_string(suite.join(format!("tests/{test}.yaml"))).unwrap(),
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let mut manifests = Manifests {
            address: support::loopback::own_address(),
            held: Vec::new(),
            documents: Vec::new(),
            services: Vec::new(),
            ports: HashMap::new(),
            secrets: HashMap::new(),
        };
        for document in serde_yaml::Deserializer::from_str(&text) {
            manifests.take(Value::deserialize(document).unwrap());
        }
        let ca = support::certs::TestCa::new(dir.path());
        let mut backends = HashMap::new();
        let mut entries = String::new();
        for service in &manifests.services {
            let serves = |protocol| service.ports.iter().any(|p| p.2 == protocol);
            let mut servers = HashMap::new();
            if serves(TCP) {
                servers.insert(TCP, tcp_echo(service.key()).await);
            }
            if serves(WEBSOCKET) {
                let port = support::websocket::echo_server().await.port();
                servers.insert(WEBSOCKET, port);
            }
            if serves(TLS) {
                let upstream = tls_echo(&service.key(), &ca, dir.path()).await;
                servers.insert(TLS, upstream.addr.port());
                backends.insert(format!("{} (TLS)", service.key()), upstream);
            }
            let upstream = Upstream::start(&service.key()).await;
            servers.insert("HTTP", upstream.addr.port());
            entries.push_str(&service.entry(&servers));
            backends.insert(service.key(), upstream);
        }
        manifests.write_secrets(&ca, dir.path());
        let documents = manifests.documents;
        drop(manifests.held);
        std::fs::write(
            dir.path().join("gateway.yaml"),
            config_of(&entries, &documents),
        )
        .unwrap();
        let gateway = Gateway::launch(dir, "gateway.yaml", |command| {
            command.args(["--admin", "127.0.0.1:0"]);
        });
        Some(Self {
            gateway,
            address: manifests.address,
            ports: manifests.ports,
            backends,
            entries,
            documents: std::sync::Mutex::new(documents),
        })
    }

    /// Takes resource `kind` `namespace/name` out of the config; the gateway reloads.
    pub fn remove(&self, kind: &str, key: &str) {
        let mut documents = self.documents.lock().unwrap();
        let before = documents.len();
        documents.retain(|d| d["kind"].as_str() != Some(kind) || key_of(d, "default") != key);
        assert_eq!(documents.len() + 1, before, "no {kind} {key}");
        let config = config_of(&self.entries, &documents);
        std::fs::write(self.gateway.dir.path().join("gateway.yaml"), config).unwrap();
    }

    /// The address of listener port `port` of Gateway `gateway` (`name` in the infra
    /// namespace, or `namespace/name`).
    pub fn addr(&self, gateway: &str, port: u16) -> SocketAddr {
        let key = qualified(gateway);
        let bound = self.ports.get(&(key.clone(), port));
        let bound = bound.unwrap_or_else(|| panic!("Gateway {key} has no listener on {port}"));
        SocketAddr::from((self.address, *bound))
    }

    /// An HTTP/1.1 client of the port-80 listeners of Gateway `gateway`.
    pub fn client(&self, gateway: &str) -> Client {
        Client::http1(self.addr(gateway, 80))
    }

    /// The loopback port the listener port `port` of Gateway `gateway` is bound to.
    pub fn port(&self, gateway: &str, port: u16) -> u16 {
        self.addr(gateway, port).port()
    }

    /// A TLS handshake with SNI `name` (trusting the suite's CA) on listener port `port`
    /// of Gateway `gateway`: an error when the connection is refused or reset.
    pub async fn try_tls(&self, gateway: &str, port: u16, name: &str) -> std::io::Result<()> {
        let connector = support::tls_client::client(
            self.gateway.dir.path(),
            rustls::ALL_VERSIONS,
            &[b"http/1.1"],
            None,
        );
        let tcp = tokio::net::TcpStream::connect(self.addr(gateway, port)).await?;
        let name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
        connector.connect(name, tcp).await.map(drop)
    }

    /// Sends `ask` over TLS (SNI: its host, trusting the suite's CA) to listener port
    /// `port` of Gateway `gateway`.
    pub async fn send_tls(&self, gateway: &str, port: u16, ask: &Ask) -> Answer {
        let connector = support::tls_client::client(
            self.gateway.dir.path(),
            rustls::ALL_VERSIONS,
            &[b"http/1.1"],
            None,
        );
        let tcp = tokio::net::TcpStream::connect(self.addr(gateway, port))
            .await
            .unwrap();
        let name = rustls::pki_types::ServerName::try_from(ask.host.clone()).unwrap();
        let tls = connector.connect(name, tcp).await.unwrap();
        let io = hyper_util::rt::TokioIo::new(tls);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(connection);
        let mut request = hyper::Request::builder()
            .method(ask.method)
            .uri(&ask.path)
            .header("host", &ask.host);
        for (name, value) in &ask.headers {
            request = request.header(name, value);
        }
        let response = sender
            .send_request(request.body(empty()).unwrap())
            .await
            .unwrap();
        Answer(support::client::read(response).await)
    }

    /// What the TCP echo server a connection to listener port `port` of Gateway `gateway`
    /// reached reports, as the suite asks it: its greeting, then `TEST`.
    pub async fn tcp_report(&self, gateway: &str, port: u16) -> serde_json::Value {
        use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
        let stream = tokio::net::TcpStream::connect(self.addr(gateway, port))
            .await
            .unwrap();
        let (read, mut write) = stream.into_split();
        let mut lines = tokio::io::BufReader::new(read).lines();
        let welcome = lines.next_line().await.unwrap();
        assert_eq!(welcome.as_deref(), Some(TCP_WELCOME));
        write.write_all(b"TEST\n").await.unwrap();
        let report = lines.next_line().await.unwrap().expect("a report");
        serde_json::from_str(&report).unwrap()
    }

    /// The pod of the TCP echo server a connection to listener port `port` of Gateway
    /// `gateway` reached.
    pub async fn tcp_pod(&self, gateway: &str, port: u16) -> String {
        let report = self.tcp_report(gateway, port).await;
        report["pod"].as_str().unwrap().to_string()
    }

    /// The `Location` of `answer`, a redirect from listener port `port` of Gateway
    /// `gateway`: that listener's loopback port read as the port it stands for, and a
    /// scheme's default port left out (as the suite compares them).
    pub fn location(&self, answer: &Answer, gateway: &str, port: u16) -> String {
        let location = answer.header("location").expect("a Location");
        let location = location.as_str();
        let bound = format!(":{}/", self.port(gateway, port));
        let location = location.replacen(&bound, &format!(":{port}/"), 1);
        let default = match location.starts_with("https://") {
            true => ":443/",
            false => ":80/",
        };
        location.replacen(default, "/", 1)
    }

    /// The Gateway API conditions the gateway reports (`/config_dump`'s
    /// `config.gateway_api`).
    async fn status(&self) -> serde_json::Value {
        let admin = Client::http1(self.gateway.admin.unwrap());
        admin.get("admin", "/config_dump").await.json()["config"]["gateway_api"].take()
    }

    /// The conditions of route `route` (`name` in the infra namespace, or
    /// `namespace/name`) on its parent `gateway`, as `Type=Status (Reason)`.
    pub async fn route_conditions(&self, route: &str, gateway: &str) -> Vec<String> {
        let (route, gateway) = (qualified(route), qualified(gateway));
        let status = self.status().await;
        let parents = status["routes"].as_array().unwrap().iter().filter(|r| {
            r["route"] == route.as_str()
                && r["parent"]
                    .as_str()
                    .is_some_and(|p| p.starts_with(&gateway))
        });
        parents.flat_map(|p| conditions(&p["conditions"])).collect()
    }

    /// The conditions of listener `listener` of Gateway `gateway` and its attached routes.
    pub async fn listener(&self, gateway: &str, listener: &str) -> (Vec<String>, u64) {
        let gateway = qualified(gateway);
        let status = self.status().await;
        let found = status["gateways"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["gateway"] == gateway.as_str())
            .and_then(|g| {
                let listeners = g["listeners"].as_array()?;
                listeners.iter().find(|l| l["name"] == listener).cloned()
            })
            .unwrap_or_else(|| panic!("no listener {listener} of {gateway}: {status}"));
        let attached = found["attached_routes"].as_u64().unwrap();
        (conditions(&found["conditions"]), attached)
    }

    /// The route kinds listener `listener` of Gateway `gateway` takes.
    pub async fn supported_kinds(&self, gateway: &str, listener: &str) -> Vec<String> {
        let gateway = qualified(gateway);
        let status = self.status().await;
        let listeners = status["gateways"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["gateway"] == gateway.as_str())
            .map(|g| g["listeners"].clone())
            .unwrap_or_default();
        let found = listeners.as_array().into_iter().flatten();
        let found = found.clone().find(|l| l["name"] == listener);
        let kinds = found
            .map(|l| l["supported_kinds"].clone())
            .unwrap_or_default();
        serde_json::from_value(kinds).unwrap_or_default()
    }

    /// Asserts that route `route` is Accepted on `gateway`, its references resolved.
    pub async fn assert_accepted(&self, route: &str, gateway: &str) {
        let conditions = self.route_conditions(route, gateway).await;
        for expected in [
            "Accepted=True (Accepted)",
            "ResolvedRefs=True (ResolvedRefs)",
        ] {
            assert!(
                conditions.iter().any(|c| c == expected),
                "{route} on {gateway}: {conditions:?}"
            );
        }
    }
}

/// Conditions as `Type=Status (Reason)`.
fn conditions(list: &serde_json::Value) -> Vec<String> {
    let list = list.as_array().cloned().unwrap_or_default();
    list.iter()
        .map(|c| {
            let status = if c["status"] == true { "True" } else { "False" };
            format!(
                "{}={status} ({})",
                c["type"].as_str().unwrap(),
                c["reason"].as_str().unwrap()
            )
        })
        .collect()
}

/// `name` in the infra namespace, or `namespace/name` as given.
fn qualified(name: &str) -> String {
    if name.contains('/') {
        name.to_string()
    } else {
        format!("{INFRA}/{name}")
    }
}

/// The manifests, with Kubernetes's part taken out.
struct Manifests {
    /// The address the Gateways bind.
    address: Ipv4Addr,
    /// The ports picked for them, held until the gateway binds them.
    held: Vec<TcpListener>,
    documents: Vec<Value>,
    services: Vec<Service>,
    ports: HashMap<(String, u16), u16>,
    /// The hostnames each Secret must name, by its folder: its name, or `namespace/name`
    /// for a Secret of another namespace than its Gateway's.
    secrets: HashMap<String, Vec<String>>,
}

impl Manifests {
    fn take(&mut self, mut document: Value) {
        let kind = document["kind"].as_str().unwrap_or_default().to_string();
        match kind.as_str() {
            "Service" => self.services.push(Service::of(&document)),
            "Deployment" | "ConfigMap" | "" => {}
            "Gateway" => {
                self.bind(&mut document);
                self.documents.push(document);
            }
            _ => {
                self.follow_parent_ports(&mut document);
                self.documents.push(document);
            }
        }
    }

    /// Binds Gateway `document` to 127.0.0.1 and each of its listener ports to a free
    /// port, noting the Secrets its listeners name.
    fn bind(&mut self, document: &mut Value) {
        let key = key_of(document, "default");
        let namespace = namespace_of(document, "default");
        let address = format!("[{{type: IPAddress, value: {}}}]", self.address);
        document["spec"]["addresses"] = serde_yaml::from_str(&address).unwrap();
        let Some(listeners) = document["spec"]["listeners"].as_sequence_mut() else {
            return;
        };
        for listener in listeners {
            let port = listener["port"].as_u64().unwrap() as u16;
            let bound = match self.ports.get(&(key.clone(), port)) {
                Some(bound) => *bound,
                None => {
                    let (bound, held) = support::loopback::free_port(self.address);
                    let bound = bound.port();
                    self.held.push(held);
                    self.ports.insert((key.clone(), port), bound);
                    bound
                }
            };
            listener["port"] = Value::from(bound);
            let hostname = listener["hostname"].as_str().unwrap_or("example.com");
            let refs = listener["tls"]["certificateRefs"].as_sequence();
            for secret in refs.into_iter().flatten() {
                let name = secret["name"].as_str().unwrap_or_default();
                let folder = match secret["namespace"].as_str() {
                    Some(ns) if ns != namespace => format!("{ns}/{name}"),
                    _ => name.to_string(),
                };
                self.secrets
                    .entry(folder)
                    .or_default()
                    .push(hostname.to_string());
            }
        }
    }

    /// Points the parentRef ports of route `document` at the ports their Gateway's
    /// listeners are bound to.
    fn follow_parent_ports(&self, document: &mut Value) {
        let namespace = namespace_of(document, "default");
        let parents = document
            .get_mut("spec")
            .and_then(|s| s.get_mut("parentRefs"));
        let Some(parents) = parents.and_then(Value::as_sequence_mut) else {
            return;
        };
        for parent in parents {
            let Some(port) = parent["port"].as_u64() else {
                continue;
            };
            let ns = parent["namespace"].as_str().unwrap_or(&namespace);
            let key = format!("{ns}/{}", parent["name"].as_str().unwrap_or_default());
            if let Some(bound) = self.ports.get(&(key, port as u16)) {
                parent["port"] = Value::from(*bound);
            }
        }
    }

    /// Writes each Secret's folder (`tls.crt`, `tls.key`) beside the config: a
    /// certificate for its listeners' hostnames from the test CA `ca` (`ca.pem`).
    fn write_secrets(&self, ca: &support::certs::TestCa, dir: &Path) {
        for (name, hostnames) in &self.secrets {
            let folder = dir.join(name);
            std::fs::create_dir_all(&folder).unwrap();
            // The suite's certificates name `*` and `*.org`: here, the names its tests ask for.
            let tested = [
                "example.com",
                "example.org",
                "unknown-example.org",
                "*.example.com",
            ];
            let names: Vec<&str> = hostnames.iter().map(String::as_str).chain(tested).collect();
            ca.issue(&format!("{name}/tls"), &names);
            std::fs::rename(folder.join("tls.pem"), folder.join("tls.crt")).unwrap();
        }
    }
}

/// A Service of the manifests: where its echo server is reached from.
struct Service {
    namespace: String,
    name: String,
    /// Its ports: number, name and the protocol its `appProtocol` says.
    ports: Vec<(u64, String, &'static str)>,
}

/// An echo server over TLS named `name`, with a certificate from `ca` for the names the
/// suite's TLS tests ask for.
async fn tls_echo(name: &str, ca: &support::certs::TestCa, dir: &Path) -> Upstream {
    let file = name.replace('/', "-");
    ca.issue(
        &file,
        &["abc.example.com", "*.example.com", "other.example.com"],
    );
    let (certificate, key) = (
        dir.join(format!("{file}.pem")),
        dir.join(format!("{file}.key")),
    );
    let tls = support::upstream::UpstreamTls {
        certificate: &certificate,
        key: &key,
        client_ca: None,
        client_required: false,
    };
    Upstream::start_tls(name, tls).await
}

/// The first line the suite's TCP echo server sends on a connection.
const TCP_WELCOME: &str = "Gateway API Test TCP Server";

/// A TCP echo server standing in for the suite's (`TCP_ECHO_SERVER`): it greets each
/// connection with [`TCP_WELCOME`], then answers `PING` with `PONG`, `IS_TLS` with
/// `false` and `TEST` with a JSON line naming its namespace, Service and pod
/// (`<service>-<replica set hash>-<pod hash>`); returns its port.
async fn tcp_echo(key: String) -> u16 {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (namespace, name) = key.split_once('/').unwrap();
    let report = serde_json::json!({
        "namespace": namespace,
        "service": name,
        "pod": format!("{name}-5d8f9-x2x7q"),
        "isTLS": false,
    });
    let report = format!("{report}\n");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let report = report.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let _ = write.write_all(format!("{TCP_WELCOME}\n").as_bytes()).await;
                let mut lines = tokio::io::BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let answer = match line.as_str() {
                        "PING" => "PONG\n",
                        "IS_TLS" => "false\n",
                        "TEST" => report.as_str(),
                        _ => continue,
                    };
                    if write.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

impl Service {
    fn of(document: &Value) -> Self {
        let service = document["metadata"]["name"].as_str().unwrap().to_string();
        let ports = document["spec"]["ports"]
            .as_sequence()
            .cloned()
            .unwrap_or_default();
        let ports = ports
            .iter()
            .map(|port| {
                let number = port["port"].as_u64().unwrap();
                let name = port["name"]
                    .as_str()
                    .map_or_else(|| format!("port-{number}"), ToString::to_string);
                let protocol = match port["appProtocol"].as_str() {
                    Some("kubernetes.io/h2c") => "HTTP2",
                    Some("kubernetes.io/ws") => WEBSOCKET,
                    _ if service.starts_with("tls-backend") || name.ends_with("-tls") => TLS,
                    _ if service.starts_with("tcp-") => TCP,
                    _ => "HTTP",
                };
                (number, name, protocol)
            })
            .collect();
        Self {
            namespace: namespace_of(document, "default"),
            name: service,
            ports,
        }
    }

    fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// A STATIC ServiceEntry for the Service's cluster name, each port on the port of the
    /// server (`servers`, by kind: `HTTP`, [`WEBSOCKET`], [`TLS`], [`TCP`]) that serves it.
    fn entry(&self, servers: &HashMap<&str, u16>) -> String {
        let mut ports = Vec::new();
        let mut endpoint = Mapping::new();
        for (number, name, protocol) in &self.ports {
            let server = |kind: &str| servers[kind];
            let (protocol, port) = match *protocol {
                WEBSOCKET => ("HTTP", server(WEBSOCKET)),
                TLS | TCP => (*protocol, server(protocol)),
                other => (other, server("HTTP")),
            };
            ports.push(
                serde_yaml::from_str::<Value>(&format!(
                    "{{number: {number}, name: {name}, protocol: {protocol}}}"
                ))
                .unwrap(),
            );
            endpoint.insert(Value::from(name.as_str()), Value::from(port));
        }
        let entry: Value = serde_yaml::from_str(&format!(
            "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  hosts: [{name}.{namespace}.svc.cluster.local]
  resolution: STATIC
  endpoints: [{{address: 127.0.0.1}}]
",
            name = self.name,
            namespace = self.namespace,
        ))
        .unwrap();
        let mut entry = entry;
        entry["spec"]["ports"] = Value::Sequence(ports);
        entry["spec"]["endpoints"][0]["ports"] = Value::Mapping(endpoint);
        format!("---\n{}", serde_yaml::to_string(&entry).unwrap())
    }
}

fn namespace_of(document: &Value, default: &str) -> String {
    document["metadata"]["namespace"]
        .as_str()
        .unwrap_or(default)
        .to_string()
}

fn key_of(document: &Value, default: &str) -> String {
    let name = document["metadata"]["name"].as_str().unwrap_or_default();
    format!("{}/{name}", namespace_of(document, default))
}

/// A request of a conformance test.
#[derive(Clone, Debug)]
pub struct Ask {
    method: &'static str,
    host: String,
    path: String,
    headers: Vec<(String, String)>,
}

/// A `GET` of `path` for `example.com`.
pub fn get(path: &str) -> Ask {
    Ask {
        method: "GET",
        host: "example.com".to_string(),
        path: path.to_string(),
        headers: Vec::new(),
    }
}

impl Ask {
    pub fn host(mut self, host: &str) -> Self {
        self.host = host.to_string();
        self
    }

    pub fn method(mut self, method: &'static str) -> Self {
        self.method = method;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sends the request with `client`.
    pub async fn send(&self, client: &Client) -> Answer {
        let mut request = client.request(self.method, &self.host, &self.path);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        Answer(client.send(request.body(empty()).unwrap()).await)
    }

    /// Which backend (`namespace/name`) served the request; `None` for a 404.
    pub async fn served(&self, client: &Client) -> Option<String> {
        let answer = self.send(client).await;
        match answer.status() {
            404 => None,
            200 => Some(answer.backend()),
            other => panic!("{} {}{}: status {other}", self.method, self.host, self.path),
        }
    }
}

/// Asserts which backend serves each request (`None`: 404).
pub async fn assert_served(client: &Client, cases: &[(Ask, Option<&str>)]) {
    for (ask, expected) in cases {
        let expected = expected.map(|b| match b.contains('/') {
            true => b.to_string(),
            false => format!("{INFRA}/{b}"),
        });
        assert_eq!(ask.served(client).await, expected, "{ask:?}");
    }
}

/// The gateway's answer.
pub struct Answer(pub Reply);

impl Answer {
    pub fn status(&self) -> u16 {
        self.0.status.as_u16()
    }

    /// The response header `name` (its values joined with `,`, as the suite compares them).
    pub fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .0
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        (!values.is_empty()).then(|| values.join(","))
    }

    /// Asserts that the response has each header of `present` with its value, and none of
    /// `absent`.
    pub fn assert_headers(&self, present: &[(&str, &str)], absent: &[&str]) {
        for (name, value) in present {
            assert_eq!(
                self.header(name).as_deref(),
                Some(*value),
                "{name}: {:?}",
                self.0
            );
        }
        for name in absent {
            assert_eq!(self.header(name), None, "{name}: {:?}", self.0);
        }
    }

    /// The backend that answered (`namespace/name`).
    pub fn backend(&self) -> String {
        self.0.json()["name"].as_str().unwrap().to_string()
    }

    /// The request header `name` as the backend received it.
    pub fn received(&self, name: &str) -> Option<String> {
        let report = self.0.json();
        let value = report["headers"][name.to_ascii_lowercase()].as_str();
        value.map(|v| v.replace(", ", ","))
    }

    /// The path (and query) the backend received.
    pub fn received_path(&self) -> String {
        self.0.json()["path"].as_str().unwrap().to_string()
    }

    /// Asserts that the backend received each header of `present` with its value (values
    /// of one name joined with `,`), and none of `absent`.
    pub fn assert_received(&self, present: &[(&str, &str)], absent: &[&str]) {
        let report = self.0.json();
        for (name, value) in present {
            let got = report["headers"][name.to_ascii_lowercase()].as_str();
            let got = got.map(|v| v.replace(", ", ","));
            assert_eq!(got.as_deref(), Some(*value), "{name} in {report}");
        }
        for name in absent {
            let got = &report["headers"][name.to_ascii_lowercase()];
            assert!(got.is_null(), "{name} in {report}");
        }
    }
}

/// `namespace/name` of the infra backend `name`.
pub fn infra(name: &str) -> Option<String> {
    Some(format!("{INFRA}/{name}"))
}
