//! Hostile input does not crash or wedge the gateway: a hostile config over a live one,
//! clients that send slowly, hold connections or open too many. (Configs nested or sized
//! to exhaust the parser: `tests/memory.rs`.)

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::time::{Duration, Instant};

use crate::assert_eventually;
use crate::support;
use support::client::Client;
use support::config::{GATEWAY, destination_rule, route_to, service, virtual_service};
use support::gateway::Gateway;
use support::upstream::Upstream;

fn config(upstream: &Upstream) -> String {
    [
        GATEWAY,
        &service("backend", &[upstream.addr.port()]),
        &virtual_service("vs", "*", &route_to("backend")),
    ]
    .join("---\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_config_written_over_a_live_one_leaves_it_serving() {
    let upstream = Upstream::start("backend").await;
    let gateway = Gateway::start(&config(&upstream));
    let addr = gateway.addr("default/gw/http");
    let path = gateway.dir.path().join("gateway.yaml");
    for hostile in ["? ".repeat(9_000), "- ".repeat(9_000)] {
        let failed = gateway.stderr_lines("reload failed");
        std::fs::write(&path, hostile + "x\n").unwrap();
        gateway.signal("HUP");
        assert_eventually!(
            gateway.stderr_lines("reload failed") > failed,
            "the hostile config was never refused"
        );
        let reply = Client::http1(addr).get("backend", "/").await;
        assert_eq!(reply.status, 200);
    }
}

/// Reads until the peer closes; returns what was read and how long it took.
fn read_to_close(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut seen = Vec::new();
    let _ = stream.read_to_end(&mut seen);
    (seen, start.elapsed())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_sends_its_head_slowly_is_cut_off() {
    let upstream = Upstream::start("backend").await;
    let gateway = Gateway::start_with(&config(&upstream), |command| {
        command.args(["--header-timeout", "1s"]);
    });
    let addr = gateway.addr("default/gw/http");
    let trickle = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        let start = Instant::now();
        for byte in b"GET / HTTP/1.1\r\nhost: backend\r\nx-slow: aaaaaaaaaaaaaaaaaaaa" {
            if stream.write_all(&[*byte]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        start.elapsed()
    });
    let lasted = tokio::task::spawn_blocking(move || trickle.join().unwrap())
        .await
        .unwrap();
    assert!(
        lasted < Duration::from_secs(3),
        "the trickle lasted {lasted:?}"
    );
    // A prompt client on the same gateway is served.
    assert_eq!(Client::http1(addr).get("backend", "/").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let upstream = Upstream::start("backend").await;
    let gateway = Gateway::start_with(&config(&upstream), |command| {
        command.args(["--idle-timeout", "1s", "--header-timeout", "30s"]);
    });
    let addr = gateway.addr("default/gw/http");
    let (seen, lasted) = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        read_to_close(&mut stream, Duration::from_secs(5))
    })
    .await
    .unwrap();
    assert!(seen.is_empty());
    assert!(
        lasted >= Duration::from_millis(900) && lasted < Duration::from_secs(3),
        "closed after {lasted:?}"
    );
}

/// Connects from `local` (a loopback address) to `addr`.
fn connect_from(local: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((local, 0)).into()).unwrap();
    socket.connect(&addr.into()).unwrap();
    socket.into()
}

/// Whether the gateway answers a request on `stream`.
fn served(stream: &mut TcpStream) -> bool {
    let _ = stream.write_all(b"GET / HTTP/1.1\r\nhost: backend\r\nconnection: close\r\n\r\n");
    let (seen, _) = read_to_close(stream, Duration::from_secs(5));
    seen.starts_with(b"HTTP/1.1 200")
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_are_bounded_per_listener_and_per_client() {
    let upstream = Upstream::start("backend").await;
    let gateway = Gateway::start_with(&config(&upstream), |command| {
        command.args([
            "--max-connections",
            "3",
            "--max-connections-per-client",
            "2",
        ]);
    });
    let addr = gateway.addr("default/gw/http");
    // The sleeps give the gateway time to accept (or see closed) the connections before
    // the next check: nothing on the wire says when it has counted them.
    tokio::task::spawn_blocking(move || {
        let held: Vec<_> = (0..2).map(|_| connect_from([127, 0, 0, 1], addr)).collect();
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !served(&mut connect_from([127, 0, 0, 1], addr)),
            "a third from one client"
        );
        let mut other = connect_from([127, 0, 0, 2], addr);
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !served(&mut connect_from([127, 0, 0, 3], addr)),
            "a fourth on the listener"
        );
        assert!(served(&mut other), "the other client's connection");
        drop(held);
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            served(&mut connect_from([127, 0, 0, 1], addr)),
            "after some closed"
        );
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
#[allow(unsafe_code)] // pre_exec: see the SAFETY note.
async fn running_out_of_file_descriptors_sheds_idle_connections() {
    let upstream = Upstream::start("backend").await;
    let gateway = Gateway::start_with(&config(&upstream), |command| {
        // SAFETY: setrlimit is async-signal-safe, as pre_exec requires.
        unsafe {
            command.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 96,
                    rlim_max: 96,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    });
    let addr = gateway.addr("default/gw/http");
    tokio::task::spawn_blocking(move || {
        let held: Vec<_> = (0..120)
            .filter_map(|_| TcpStream::connect(addr).ok())
            .collect();
        // Held for two seconds of exhaustion (the behaviour under test), then closed;
        // nothing on the wire says when the gateway has seen them close.
        std::thread::sleep(Duration::from_secs(2));
        drop(held);
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            served(&mut TcpStream::connect(addr).unwrap()),
            "after the idle ones closed"
        );
    })
    .await
    .unwrap();
    let warnings = gateway.stderr_lines("accept failed");
    assert!(
        (1..=8).contains(&warnings),
        "{warnings} accept warnings in 2 s"
    );
}

/// Sends `request` on a fresh connection; returns the response head's status line and the
/// whole response text.
fn exchange(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let (seen, _) = read_to_close(&mut stream, Duration::from_secs(5));
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn hosts_are_checked_and_the_targets_authority_wins() {
    let upstream = Upstream::start("backend").await;
    let config = config(&upstream).replace(
        "  hosts: [\"*\"]\n  gateways",
        "  hosts: [backend]\n  gateways",
    );
    let gateway = Gateway::start(&config);
    let addr = gateway.addr("default/gw/http");
    let reply = tokio::task::spawn_blocking(move || {
        let get = |target: &str, headers: &str| {
            exchange(
                addr,
                &format!("GET {target} HTTP/1.1\r\n{headers}connection: close\r\n\r\n"),
            )
        };
        [
            get("/", "host: backend\r\nhost: backend\r\n"),
            get("/", "host: back end\r\n"),
            get("/", "host: backend/../x\r\n"),
            get("/", "host: user@backend\r\n"),
            get("http://backend/who", "host: elsewhere\r\n"),
            get("/who", "host: elsewhere\r\n"),
            exchange(
                addr,
                "CONNECT backend:443 HTTP/1.1\r\nhost: backend:443\r\n\r\n",
            ),
        ]
    })
    .await
    .unwrap();
    for (i, bad) in reply[..4].iter().enumerate() {
        assert!(bad.starts_with("HTTP/1.1 400"), "case {i}: {bad}");
    }
    assert!(reply[4].starts_with("HTTP/1.1 200"), "{}", reply[4]);
    let report: serde_json::Value =
        serde_json::from_str(reply[4].split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(report["headers"]["host"], "backend", "{report}");
    assert!(reply[5].starts_with("HTTP/1.1 404"), "{}", reply[5]);
    assert!(
        reply[6].starts_with("HTTP/1.1 404"),
        "CONNECT: {}",
        reply[6]
    );
    assert_eq!(upstream.hits(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_https_redirect_keeps_the_host_as_sent() {
    let upstream = Upstream::start("backend").await;
    let config = config(&upstream).replace(
        "    bind: 127.0.0.1\n",
        "    bind: 127.0.0.1\n    tls: {httpsRedirect: true}\n",
    );
    let gateway = Gateway::start(&config);
    let addr = gateway.addr("default/gw/http");
    let locations = tokio::task::spawn_blocking(move || {
        ["backend", "backend:8080", "backend:80", "[::1]:8443"].map(|host| {
            let reply = exchange(
                addr,
                &format!("GET /p?q=1 HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n"),
            );
            assert!(reply.starts_with("HTTP/1.1 301"), "{reply}");
            reply
                .lines()
                .find_map(|l| l.strip_prefix("location: "))
                .unwrap_or_default()
                .to_string()
        })
    })
    .await
    .unwrap();
    assert_eq!(
        locations,
        [
            "https://backend/p?q=1",
            "https://backend:8080/p?q=1",
            "https://backend/p?q=1",
            "https://[::1]:8443/p?q=1",
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_breaks_its_body_is_not_blamed_on_the_upstream() {
    let upstream = Upstream::start("backend").await;
    let policy = "  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100}
";
    let config = format!(
        "{}---\n{}",
        config(&upstream),
        destination_rule("backend", policy)
    );
    let gateway = Gateway::start(&config);
    let addr = gateway.addr("default/gw/http");
    let replies = tokio::task::spawn_blocking(move || {
        let malformed = (0..4).map(|_| {
            exchange(
                addr,
                "POST /echo HTTP/1.1\r\nhost: backend\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n",
            )
        });
        let malformed: Vec<String> = malformed.collect();
        for _ in 0..4 {
            // An upload larger than the replay buffer, broken off half-way.
            let mut stream = TcpStream::connect(addr).unwrap();
            let head = "POST /echo HTTP/1.1\r\nhost: backend\r\ncontent-length: 4194304\r\n\r\n";
            stream.write_all(head.as_bytes()).unwrap();
            let _ = stream.write_all(&vec![b'x'; 2 << 20]);
            std::thread::sleep(Duration::from_millis(100));
        }
        malformed
    })
    .await
    .unwrap();
    for reply in &replies {
        assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    }
    let reply = Client::http1(addr).get("backend", "/").await;
    assert_eq!(
        reply.status,
        200,
        "the endpoint was ejected: {}",
        reply.text()
    );
}

fn guarded(upstream: &Upstream) -> String {
    config(upstream).replace(
        "  http:\n  - route:",
        "  http:\n  - match: [{uri: {prefix: /admin}}]\n    directResponse: {status: 403}\n  - route:",
    )
}

/// The status of GET `target`, and the path the upstream saw (when it was reached).
fn routed(addr: SocketAddr, target: &str) -> (u16, String) {
    let reply = exchange(
        addr,
        &format!("GET {target} HTTP/1.1\r\nhost: backend\r\nconnection: close\r\n\r\n"),
    );
    let status = reply.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let path = reply
        .split("\r\n\r\n")
        .nth(1)
        .and_then(|body| serde_json::from_str::<serde_json::Value>(body).ok())
        .and_then(|report| report["path"].as_str().map(str::to_string))
        .unwrap_or_default();
    (status, path)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_route_guard_cannot_be_passed_by_spelling_the_path_otherwise() {
    let upstream = Upstream::start("backend").await;
    let gateway = Gateway::start(&guarded(&upstream));
    let addr = gateway.addr("default/gw/http");
    let decoding = Gateway::start_with(&guarded(&upstream), |command| {
        command.args(["--path-normalization", "DECODE_AND_MERGE_SLASHES"]);
    });
    let merging = decoding.addr("default/gw/http");
    let verbatim = Gateway::start_with(&guarded(&upstream), |command| {
        command.args(["--path-normalization", "NONE"]);
    });
    let none = verbatim.addr("default/gw/http");
    tokio::task::spawn_blocking(move || {
        for bypass in [
            "/admin",
            "/public/../admin",
            "/public/./../admin/x",
            "/%61dmin",
            "/public/%2e%2e/admin",
            "/public/.%2E/admin",
            "/./admin",
        ] {
            assert_eq!(routed(addr, bypass).0, 403, "BASE: {bypass}");
            assert_eq!(
                routed(merging, bypass).0,
                403,
                "DECODE_AND_MERGE_SLASHES: {bypass}"
            );
        }
        let backslash = routed(addr, "/public\\..\\admin").0;
        assert!(
            matches!(backslash, 400 | 403),
            "a backslash path got {backslash}"
        );
        // Forwarded in normal form, the query as sent.
        assert_eq!(
            routed(addr, "/a/./b/../c?q=/../x"),
            (200, "/a/c?q=/../x".into())
        );
        assert_eq!(routed(addr, "/a%7eb%2fc%3b"), (200, "/a~b%2Fc%3B".into()));
        // BASE keeps doubled slashes and encoded ones; the merging mode does not.
        assert_eq!(routed(addr, "//admin"), (200, "//admin".into()));
        assert_eq!(
            routed(addr, "/public%2F..%2Fadmin"),
            (200, "/public%2F..%2Fadmin".into())
        );
        assert_eq!(routed(merging, "//admin").0, 403);
        assert_eq!(routed(merging, "/public%2F..%2Fadmin").0, 403);
        assert_eq!(routed(merging, "/a//b%2Fc"), (200, "/a/b/c".into()));
        // NONE routes and forwards what was sent.
        assert_eq!(
            routed(none, "/public/../admin"),
            (200, "/public/../admin".into())
        );
    })
    .await
    .unwrap();
}

mod request_fuzz {
    //! Random and hostile HTTP/1.1 requests never crash or wedge the gateway: each gets
    //! a well-formed response or a closed connection, and the gateway serves on.

    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestCaseError, TestRunner};

    fn method() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("GET".to_string()),
            Just("POST".to_string()),
            Just("OPTIONS".to_string()),
            Just("CONNECT".to_string()),
            Just("HEAD".to_string()),
            "[A-Z]{1,8}",
            "[ -~]{0,12}",
        ]
    }

    fn target() -> impl Strategy<Value = String> {
        let segment = prop_oneof![
            Just("..".to_string()),
            Just(".".to_string()),
            Just("%2e%2E".to_string()),
            Just("%2F".to_string()),
            Just("%5c".to_string()),
            Just("%".to_string()),
            Just("admin".to_string()),
            Just("".to_string()),
            "[a-z0-9;=~-]{1,6}",
            "[!-~]{1,6}",
        ];
        prop_oneof![
            prop::collection::vec(segment, 0..8).prop_map(|s| format!("/{}", s.join("/"))),
            Just("*".to_string()),
            Just("http://backend/admin".to_string()),
            Just("backend:443".to_string()),
            "[ -~]{0,40}",
        ]
    }

    fn header() -> impl Strategy<Value = (String, String)> {
        let name = prop_oneof![
            Just("host".to_string()),
            Just("content-length".to_string()),
            Just("transfer-encoding".to_string()),
            Just("connection".to_string()),
            Just("upgrade".to_string()),
            Just("expect".to_string()),
            Just("origin".to_string()),
            Just("x-request-id".to_string()),
            "[a-z-]{1,12}",
            "[!-~]{1,12}",
        ];
        let value = prop_oneof![
            Just("backend".to_string()),
            Just("chunked".to_string()),
            Just("upgrade".to_string()),
            Just("websocket".to_string()),
            Just("100-continue".to_string()),
            "[0-9]{1,12}",
            "-?[0-9]{1,3}",
            "[ -~]{0,40}",
            "[\\x00-\\x1f\\x7f]{1,4}",
        ];
        (name, value)
    }

    /// Sends `request` to `gateway` on a fresh connection; the response's status, if one
    /// came within half a second (an incomplete request is left waiting for the rest).
    fn exchange(gateway: SocketAddr, request: &[u8]) -> Option<u16> {
        let mut stream = TcpStream::connect(gateway).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let _ = stream.write_all(request);
        let mut seen = Vec::new();
        let _ = stream.read_to_end(&mut seen);
        if seen.is_empty() {
            return None;
        }
        let text = String::from_utf8_lossy(&seen);
        assert!(text.starts_with("HTTP/1."), "not a response: {text:?}");
        Some(
            text.get(9..12)
                .and_then(|s| s.parse().ok())
                .expect("a status"),
        )
    }

    /// One hostile request, then a good one: each gets a well-formed response or a
    /// close, no guarded path is served, and the gateway still serves.
    fn case(
        gateway: SocketAddr,
        (method, target, headers, body): (String, String, Vec<(String, String)>, Vec<u8>),
    ) -> Result<(), TestCaseError> {
        let mut request = format!("{method} {target} HTTP/1.1\r\n").into_bytes();
        for (name, value) in &headers {
            request.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        request.extend_from_slice(b"connection: close\r\n\r\n");
        request.extend_from_slice(&body);
        if let Some(status) = exchange(gateway, &request) {
            prop_assert!((100..600).contains(&status));
            // A guarded path is never served from the upstream, however it is spelled.
            let guard_passed = status == 200 && super::normalized_admin(&target);
            prop_assert!(!guard_passed, "{target} passed the guard");
        }
        let ok = exchange(
            gateway,
            b"GET /ok HTTP/1.1\r\nhost: backend\r\nconnection: close\r\n\r\n",
        );
        prop_assert_eq!(ok, Some(200));
        Ok(())
    }

    /// One gateway for every case, owned by the test so that it stops with it.
    #[test]
    fn hostile_requests_get_a_response_or_a_close() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let upstream = runtime.block_on(Upstream::start("backend"));
        let gateway = Gateway::start(&super::guarded(&upstream));
        let addr = gateway.addr("default/gw/http");
        let mut runner = TestRunner::new(Config {
            cases: support::fuzz_cases(256),
            failure_persistence: None,
            ..Config::default()
        });
        let requests = (
            method(),
            target(),
            prop::collection::vec(header(), 0..8),
            prop::collection::vec(any::<u8>(), 0..64),
        );
        if let Err(failure) = runner.run(&requests, |request| case(addr, request)) {
            panic!("{failure}");
        }
    }
}

/// Whether `target` names `/admin` (or below) once normalized as BASE does.
fn normalized_admin(target: &str) -> bool {
    let path = target.split('?').next().unwrap_or_default();
    let Ok(mut url) = url::Url::parse("http://n/") else {
        return false;
    };
    if !path.starts_with('/') {
        return false;
    }
    url.set_path(path);
    let path = url.path().replace("%61", "a").replace("%41", "A");
    path == "/admin" || path.starts_with("/admin/")
}

/// The signal handlers are in place when the ready line is printed: a SIGHUP at once
/// reloads (it used to race the handler's installation, and lose to the default action,
/// which ends the process).
#[tokio::test(flavor = "multi_thread")]
async fn a_sighup_right_after_ready_reloads_instead_of_ending_the_gateway() {
    let upstream = Upstream::start("backend").await;
    for _ in 0..3 {
        let gateway = Gateway::start(&config(&upstream));
        gateway.signal("HUP");
        assert_eventually!(
            gateway.stderr_lines("config reloaded") > 0,
            "the SIGHUP never reloaded"
        );
        let reply = Client::http1(gateway.addr("default/gw/http"))
            .get("backend", "/")
            .await;
        assert_eq!(reply.status, 200);
    }
}
