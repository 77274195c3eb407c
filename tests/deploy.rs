//! Deploying: a binary upgrade that hands the listening sockets over without losing a
//! request, several replicas converging on one ConfigMap, the health port, and the
//! Kubernetes manifests and static binary as shipped.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use sha2::{Digest as _, Sha256};
use tokio_tungstenite::tungstenite::Message;

use crate::support;
use support::client::Client;
use support::config::{configmap_swap, gateway, route_to, service, virtual_service};
use support::eventually::eventually;
use support::gateway::Gateway;
use support::load::Load;
use support::upstream::Upstream;

/// A gateway serving `backend` for host `app` and the WebSocket echo server `ws` for host
/// `ws`, on `address`.
fn config(address: SocketAddr, backend: &Upstream, ws: SocketAddr) -> String {
    let server = format!(
        "  - port: {{number: {}, name: http, protocol: HTTP}}\n    bind: {}\n    hosts: [\"*\"]\n",
        address.port(),
        address.ip()
    );
    [
        gateway(&server),
        service("backend", &[backend.addr.port()]),
        service("echo", &[ws.port()]),
        virtual_service("app", "app", &route_to("backend")),
        virtual_service("ws", "ws", &route_to("echo")),
    ]
    .join("---\n")
}

/// The size of [`download`]'s body.
const DOWNLOAD: usize = 8 << 20;

/// Downloads [`DOWNLOAD`] bytes from the gateway at `address`, reading 64 KiB every 10 ms
/// (about 1.3 s in all); returns how many bytes came.
async fn download(address: SocketAddr) -> usize {
    use http_body_util::BodyExt as _;
    let client = Client::http1(address);
    let request = client.request("GET", "app", &format!("/bytes/{DOWNLOAD}"));
    let response = client
        .send_streaming(request.body(support::client::empty()).unwrap())
        .await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let (mut received, mut paced) = (0, 0);
    while let Some(frame) = body.frame().await {
        let frame = frame.expect("the body streams on");
        received += frame.data_ref().map_or(0, bytes::Bytes::len);
        while paced + (64 << 10) <= received {
            paced += 64 << 10;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    received
}

/// The health port's answer at `address`.
async fn health(address: SocketAddr) -> u16 {
    Client::http1(address)
        .get("health", "/healthz/ready")
        .await
        .status
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upgrade_hands_the_sockets_over_and_loses_no_request() {
    let backend = Upstream::start("backend").await;
    let ws = support::websocket::echo_server().await;
    let ip = support::loopback::own_address();
    let (address, held) = support::loopback::free_port(ip);
    let (health_address, held_health) = support::loopback::free_port(ip);
    let (admin_address, held_admin) = support::loopback::free_port(ip);
    drop((held, held_health, held_admin));
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("upgrade.sock");
    let config = config(address, &backend, ws);
    let start = |dir: tempfile::TempDir| {
        std::fs::write(dir.path().join("gateway.yaml"), &config).unwrap();
        Gateway::launch(dir, "gateway.yaml", |command| {
            command
                .arg("--upgrade-socket")
                .arg(&socket)
                .arg("--health")
                .arg(health_address.to_string())
                .arg("--admin")
                .arg(admin_address.to_string());
        })
    };
    let old = start(dir);
    assert_eq!(health(health_address).await, 200);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "only the gateway's user may take its sockets"
    );

    let traffic = Load::mixed(address, "app", 6);
    // A download and a WebSocket that span the upgrade, on the old gateway.
    let download = tokio::spawn(download(address));
    // Routed by its Host, `ws`.
    let request = http::Request::builder()
        .uri(format!("ws://{address}/"))
        .header("host", "ws")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", "13")
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .body(())
        .unwrap();
    let (mut socket_ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The new binary takes the sockets over, then the old one is told to go.
    let new = start(tempfile::tempdir().unwrap());
    assert_eq!(new.ready["listeners"][0]["address"], address.to_string());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let old_pid = old.pid();
    let exited = tokio::task::spawn_blocking(move || old.terminate());
    tokio::time::sleep(Duration::from_millis(500)).await;
    // While the old gateway drains, the new one answers the health port and the admin
    // API it took over.
    for _ in 0..10 {
        assert_eq!(health(health_address).await, 200);
        let admin = Client::http1(admin_address).get("admin", "/ready").await;
        assert_eq!(admin.status, 200);
    }

    // The WebSocket opened on the old gateway still echoes while it drains.
    socket_ws.send(Message::text("still here")).await.unwrap();
    let echoed = socket_ws.next().await.unwrap().unwrap();
    assert_eq!(echoed, Message::text("still here"));
    socket_ws.close(None).await.unwrap();
    assert_eq!(
        download.await.unwrap(),
        DOWNLOAD,
        "the download finishes whole"
    );

    let status = exited.await.unwrap();
    assert!(
        status.success(),
        "the old gateway ({old_pid}) ended with {status}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (sent, failed) = traffic.finish().await;
    eprintln!("{sent} requests across the upgrade");
    assert!(sent > 200, "the traffic ran ({sent} requests)");
    assert_eq!(
        failed, 0,
        "{failed} of {sent} requests failed across the upgrade"
    );
    // The new gateway serves on its own now, the health port included.
    assert_eq!(health(health_address).await, 200);
    let client = Client::http1(address);
    assert_eq!(client.get("app", "/").await.status, 200);
    drop(new);
}

/// A round-robin TCP load balancer on loopback in front of `backends`; returns its
/// address.
async fn balancer(backends: Vec<SocketAddr>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for next in (0..).map(|i| backends[i % backends.len()]) {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                if let Ok(mut upstream) = tokio::net::TcpStream::connect(next).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    });
    address
}

/// The config hash that gateway `admin` serves.
async fn served_hash(admin: SocketAddr) -> String {
    let dump = Client::http1(admin)
        .get("admin", "/config_dump")
        .await
        .json();
    dump["config"]["hash"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_sharing_a_configmap_converge_on_each_swap() {
    let (v1, v2) = (Upstream::start("v1").await, Upstream::start("v2").await);
    let ws = support::websocket::echo_server().await;
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path();
    let replica = |backend: &Upstream| config(SocketAddr::from(([127, 0, 0, 1], 0)), backend, ws);
    let (first, second) = (replica(&v1), replica(&v2));
    configmap_swap(dir, "..v1", &first);
    std::os::unix::fs::symlink("..data/gateway.yaml", dir.join("gateway.yaml")).unwrap();
    let gateways: Vec<Gateway> = (0..3)
        .map(|_| {
            Gateway::launch_shared(dir, "gateway.yaml", |command| {
                command.args(["--admin", "127.0.0.1:0"]);
            })
        })
        .collect();
    let hash = |text: &str| hex::encode(Sha256::digest(text.as_bytes()));
    for gateway in &gateways {
        assert_eq!(gateway.ready["config_hash"], hash(&first));
    }
    let entry = balancer(gateways.iter().map(|g| g.addr("default/gw/http")).collect()).await;
    let traffic = Load::mixed(entry, "app", 6);
    tokio::time::sleep(Duration::from_millis(300)).await;

    configmap_swap(dir, "..v2", &second);
    let swapped = Instant::now();
    let admins: Vec<SocketAddr> = gateways.iter().map(|g| g.admin.unwrap()).collect();
    eventually("the replicas did not all serve the new config", || async {
        for admin in &admins {
            if served_hash(*admin).await != hash(&second) {
                return None;
            }
        }
        Some(())
    })
    .await;
    eprintln!(
        "three replicas converged {:?} after the swap",
        swapped.elapsed()
    );
    let client = Client::http1(entry);
    for _ in 0..9 {
        assert_eq!(client.get("app", "/").await.upstream(), "v2");
    }
    let (sent, failed) = traffic.finish().await;
    eprintln!("{sent} requests across the swap");
    assert!(sent > 100, "the traffic ran ({sent} requests)");
    assert_eq!(
        failed, 0,
        "{failed} of {sent} requests failed across the swap"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_health_port_and_ready_answer_ready_until_the_gateway_drains() {
    let backend = Upstream::start("backend").await;
    let ws = support::websocket::echo_server().await;
    let ip = support::loopback::own_address();
    let (health_address, held) = support::loopback::free_port(ip);
    drop(held);
    let gateway = Gateway::start_with(
        &config(SocketAddr::from(([127, 0, 0, 1], 0)), &backend, ws),
        |command| {
            command
                .arg("--health")
                .arg(health_address.to_string())
                .args(["--admin", "127.0.0.1:0"]);
        },
    );
    let admin = Client::http1(gateway.admin.unwrap());
    assert_eq!(admin.get("admin", "/ready").await.status, 200);
    assert_eq!(gateway.ready["health"], health_address.to_string());
    assert_eq!(health(health_address).await, 200);
    let other = Client::http1(health_address).get("health", "/ready").await;
    assert_eq!(other.status, 404, "the health port serves nothing else");
    // A request in flight keeps the gateway draining; meanwhile the health port says so.
    let address = gateway.addr("default/gw/http");
    let kept_alive = Client::http1(address);
    assert_eq!(kept_alive.get("app", "/").await.status, 200);
    let slow =
        tokio::spawn(async move { Client::http1(address).try_get("app", "/slow/1500").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    gateway.signal("TERM");
    eventually("the health port never said it drains", || async {
        (health(health_address).await == 503).then_some(())
    })
    .await;
    assert_eq!(admin.get("admin", "/ready").await.status, 503);
    // A keep-alive connection is still served while draining, and told to close.
    let last = kept_alive.get("app", "/").await;
    assert_eq!(last.status, 200);
    assert_eq!(last.headers["connection"], "close");
    assert_eq!(slow.await.unwrap().unwrap().status, 200);
}

/// The Kubernetes manifests, as shipped.
fn manifests() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes")
}

#[test]
fn the_kubernetes_manifests_validate_offline() {
    let dir = manifests();
    // Every resource a kustomization lists is there.
    for kustomization in ["kustomization.yaml", "aws-nlb/kustomization.yaml"] {
        let path = dir.join(kustomization);
        let text = std::fs::read_to_string(&path).unwrap();
        let value: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let base = path.parent().unwrap();
        let listed = value["resources"].as_sequence().into_iter().flatten();
        let patches = value["patches"].as_sequence().into_iter().flatten();
        for file in listed.chain(patches.map(|p| &p["path"])) {
            let file = file.as_str().unwrap();
            assert!(base.join(file).exists(), "{kustomization} lists {file}");
        }
    }
    // Each manifest against Kubernetes's schemas (kubernetes-validate, pinned, offline).
    let files: Vec<_> = [
        "namespace",
        "configmap",
        "deployment",
        "service",
        "hpa",
        "pdb",
    ]
    .iter()
    .map(|name| dir.join(format!("{name}.yaml")))
    .chain([dir.join("aws-nlb/configmap.yaml")])
    .collect();
    let output = std::process::Command::new(support::tools::kubernetes_validate())
        .args(["--strict", "--kubernetes-version", "1.30"])
        .args(&files)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_configmaps_config_validates_with_its_secret_folder() {
    for configmap in ["configmap.yaml", "aws-nlb/configmap.yaml"] {
        let text = std::fs::read_to_string(manifests().join(configmap)).unwrap();
        let value: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let config = value["data"]["gateway.yaml"].as_str().unwrap();
        // Laid out as the Deployment's projected volume lays it out.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gateway.yaml"), config).unwrap();
        std::fs::create_dir(dir.path().join("site-cert")).unwrap();
        let ca = support::certs::TestCa::new(dir.path());
        ca.issue("site-cert/tls", &["example.com"]);
        std::fs::rename(
            dir.path().join("site-cert/tls.pem"),
            dir.path().join("site-cert/tls.crt"),
        )
        .unwrap();
        let output = support::validate(dir.path(), "gateway.yaml");
        assert!(
            output.status.success(),
            "{configmap}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The static (musl) binary that the image ships, where it was built (CI builds it:
/// `cargo build --release --locked --target x86_64-unknown-linux-musl -p portcullis`).
fn static_binary() -> Option<std::path::PathBuf> {
    let built = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/x86_64-unknown-linux-musl/release/portcullis");
    let required = std::env::var_os("PORTCULLIS_REQUIRE_STATIC").is_some();
    match built.exists() {
        true => Some(built),
        false if required => panic!("no static binary at {}", built.display()),
        false => {
            eprintln!("skipped: no static binary at {}", built.display());
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_static_binary_serves_as_the_image_runs_it() {
    let Some(binary) = static_binary() else {
        return;
    };
    let ldd = std::process::Command::new("ldd")
        .arg(&binary)
        .output()
        .unwrap();
    let linked = String::from_utf8_lossy(&ldd.stdout) + String::from_utf8_lossy(&ldd.stderr);
    assert!(
        linked.contains("not a dynamic executable") || linked.contains("statically linked"),
        "{linked}"
    );
    // As the image runs it: the compiled-component cache in a writable folder of its own.
    let backend = Upstream::start("backend").await;
    let ws = support::websocket::echo_server().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gateway.yaml"),
        config(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), &backend, ws),
    )
    .unwrap();
    let mut child = std::process::Command::new(&binary)
        .current_dir(dir.path())
        .args(["run", "--config=gateway.yaml", "--health=127.0.0.1:0"])
        .env("PORTCULLIS_CACHE_DIR", cache.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let stdout = child.stdout.take().unwrap();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
    let ready: serde_json::Value = serde_json::from_str(&line).unwrap();
    let address: SocketAddr = ready["listeners"][0]["address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let reply = Client::http1(address).get("app", "/").await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.upstream(), "backend");
}
