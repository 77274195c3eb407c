//! The suite's HTTPRoute filter tests: header modifiers, redirects, rewrites, mirrors,
//! timeouts, retries and CORS.

use futures_util::StreamExt as _;

use super::{Ask, Suite, get, infra};

/// A request, the headers that must be there with their values, and those that must not.
type HeaderCase<'a> = (Ask, &'a [(&'a str, &'a str)], &'a [&'a str]);

/// The request header cases of `request-header-modifier` (rule or backend filters): the
/// request, then the headers the backend must see and must not see.
async fn assert_request_headers_modified(suite: &Suite) {
    suite
        .assert_accepted("request-header-modifier", "same-namespace")
        .await;
    let client = suite.client("same-namespace");
    let other = |path| get(path).header("Some-Other-Header", "val");
    let set = [
        ("Some-Other-Header", "val"),
        ("X-Header-Set", "set-overwrites-values"),
    ];
    let cases: [HeaderCase<'_>; 7] = [
        (other("/set"), &set, &[]),
        (
            other("/set").header("X-Header-Set", "some-other-value"),
            &set,
            &[],
        ),
        (
            other("/add"),
            &[
                ("Some-Other-Header", "val"),
                ("X-Header-Add", "add-appends-values"),
            ],
            &[],
        ),
        (
            other("/add").header("X-Header-Add", "some-other-value"),
            &[("X-Header-Add", "some-other-value,add-appends-values")],
            &[],
        ),
        (
            get("/remove").header("X-Header-Remove", "val"),
            &[],
            &["X-Header-Remove"],
        ),
        (
            get("/multiple")
                .header("X-Header-Set-2", "set-val-2")
                .header("X-Header-Add-2", "add-val-2")
                .header("X-Header-Remove-2", "remove-val-2")
                .header("Another-Header", "another-header-val"),
            &[
                ("X-Header-Set-1", "header-set-1"),
                ("X-Header-Set-2", "header-set-2"),
                ("X-Header-Add-1", "header-add-1"),
                ("X-Header-Add-2", "add-val-2,header-add-2"),
                ("X-Header-Add-3", "header-add-3"),
                ("Another-Header", "another-header-val"),
            ],
            &["X-Header-Remove-1", "X-Header-Remove-2"],
        ),
        (
            get("/case-insensitivity")
                .header("x-header-set", "original-val-set")
                .header("x-header-add", "original-val-add")
                .header("x-header-remove", "original-val-remove")
                .header("Another-Header", "another-header-val"),
            &[
                ("X-Header-Set", "header-set"),
                ("X-Header-Add", "original-val-add,header-add"),
                ("Another-Header", "another-header-val"),
            ],
            &["X-Header-Remove"],
        ),
    ];
    for (ask, present, absent) in cases {
        let answer = ask.send(&client).await;
        assert_eq!(
            answer.backend(),
            infra("infra-backend-v1").unwrap(),
            "{ask:?}"
        );
        answer.assert_received(present, absent);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_request_header_modifier() {
    let suite = suite!("httproute-request-header-modifier");
    assert_request_headers_modified(&suite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_backend_request_header_modifier() {
    let suite = suite!("httproute-request-header-modifier-backend");
    assert_request_headers_modified(&suite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_request_header_modifier_backend_weights() {
    let suite = suite!("httproute-request-header-modifier-backend-weights");
    suite
        .assert_accepted("request-header-modifier-backend-weights", "same-namespace")
        .await;
    let client = suite.client("same-namespace");
    for _ in 0..100 {
        let answer = get("/").send(&client).await;
        let backend = answer.backend();
        let told = answer.received("Backend").expect("a Backend header");
        assert!(!told.contains(','), "several Backend headers: {told}");
        assert!(
            backend.ends_with(&format!("/{told}")),
            "{told} reached {backend}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_response_header_modifier() {
    let suite = suite!("httproute-response-header-modifier");
    suite
        .assert_accepted("response-header-modifier", "same-namespace")
        .await;
    let client = suite.client("same-namespace");
    let echo = |path, set: &str| get(path).header("X-Echo-Set-Header", set);
    let set = [
        ("Some-Other-Header", "val"),
        ("X-Header-Set", "set-overwrites-values"),
    ];
    let cases: [HeaderCase<'_>; 7] = [
        (echo("/set", "Some-Other-Header:val"), &set, &[]),
        (
            echo(
                "/set",
                "Some-Other-Header:val,X-Header-Set:some-other-value",
            ),
            &set,
            &[],
        ),
        (
            echo("/add", "Some-Other-Header:val"),
            &[
                ("Some-Other-Header", "val"),
                ("X-Header-Add", "add-appends-values"),
            ],
            &[],
        ),
        (
            echo(
                "/add",
                "Some-Other-Header:val,X-Header-Add:some-other-value",
            ),
            &[("X-Header-Add", "some-other-value,add-appends-values")],
            &[],
        ),
        (
            echo("/remove", "X-Header-Remove:val"),
            &[],
            &["X-Header-Remove"],
        ),
        (
            echo(
                "/multiple",
                "X-Header-Set-2:set-val-2,X-Header-Add-2:add-val-2,X-Header-Remove-2:remove-val-2,Another-Header:another-header-val,X-Header-Remove-1:val",
            ),
            &[
                ("X-Header-Set-1", "header-set-1"),
                ("X-Header-Set-2", "header-set-2"),
                ("X-Header-Add-1", "header-add-1"),
                ("X-Header-Add-2", "add-val-2,header-add-2"),
                ("X-Header-Add-3", "header-add-3"),
                ("Another-Header", "another-header-val"),
            ],
            &["X-Header-Remove-1", "X-Header-Remove-2"],
        ),
        (
            echo(
                "/case-insensitivity",
                "x-header-set:original-val-set,x-header-add:original-val-add,x-header-remove:original-val-remove,Another-Header:another-header-val",
            ),
            &[
                ("X-Header-Set", "header-set"),
                ("X-Header-Add", "original-val-add,header-add"),
                ("X-Lowercase-Add", "lowercase-add"),
                ("X-Mixedcase-Add-1", "mixedcase-add-1"),
                ("X-Mixedcase-Add-2", "mixedcase-add-2"),
                ("X-Uppercase-Add", "uppercase-add"),
                ("Another-Header", "another-header-val"),
            ],
            &["X-Header-Remove"],
        ),
    ];
    for (ask, present, absent) in cases {
        let answer = ask.send(&client).await;
        assert_eq!(answer.status(), 200, "{ask:?}");
        answer.assert_headers(present, absent);
    }
    let both = echo(
        "/response-and-request-header-modifiers",
        "X-Header-Set-2:set-val-2,X-Header-Add-2:add-val-2,X-Header-Remove-2:remove-val-2,Another-Header:another-header-val,X-Header-Remove-1:remove-val-1,X-Header-Echo:echo",
    )
    .header("X-Header-Remove", "remove-val")
    .header("X-Header-Add-Append", "append-val-1")
    .header("X-Header-Echo", "echo");
    let answer = both.send(&client).await;
    answer.assert_headers(
        &[
            ("X-Header-Set-1", "header-set-1"),
            ("X-Header-Set-2", "header-set-2"),
            ("X-Header-Add-1", "header-add-1"),
            ("X-Header-Add-2", "add-val-2,header-add-2"),
            ("Another-Header", "another-header-val"),
            ("X-Header-Echo", "echo"),
        ],
        &["X-Header-Remove-1", "X-Header-Remove-2"],
    );
    answer.assert_received(
        &[
            ("X-Header-Add", "header-val-1"),
            ("X-Header-Set", "set-overwrites-values"),
            ("X-Header-Add-Append", "append-val-1,header-val-2"),
            ("X-Header-Echo", "echo"),
        ],
        &["X-Header-Remove"],
    );
}

/// Asserts the status and `Location` of each redirect of the `same-namespace` Gateway.
async fn assert_redirects(suite: &Suite, cases: &[(Ask, u16, &str)]) {
    let client = suite.client("same-namespace");
    for (ask, status, location) in cases {
        let answer = ask.send(&client).await;
        assert_eq!(answer.status(), *status, "{ask:?}");
        assert_eq!(
            suite.location(&answer, "same-namespace", 80),
            *location,
            "{ask:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_303_307_308_redirects() {
    let suite = suite!(
        "httproute-303-redirect",
        "httproute-307-redirect",
        "httproute-308-redirect"
    );
    for route in ["303-redirect", "307-redirect", "308-redirect"] {
        suite.assert_accepted(route, "same-namespace").await;
    }
    let cases = [
        (
            get("/see-other").method("POST"),
            303,
            "http://example.com/see-other",
        ),
        (get("/temporary"), 307, "http://example.com/temporary"),
        (get("/permanent"), 308, "http://example.com/permanent"),
    ];
    assert_redirects(&suite, &cases).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_redirect_host_and_status() {
    let suite = suite!("httproute-redirect-host-and-status");
    suite
        .assert_accepted("redirect-host-and-status", "same-namespace")
        .await;
    let cases = [
        (
            get("/hostname-redirect"),
            302,
            "http://example.org/hostname-redirect",
        ),
        (
            get("/host-and-status"),
            301,
            "http://example.org/host-and-status",
        ),
    ];
    assert_redirects(&suite, &cases).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_redirect_path() {
    let suite = suite!("httproute-redirect-path");
    suite
        .assert_accepted("redirect-path", "same-namespace")
        .await;
    let cases = [
        (
            get("/original-prefix/lemon"),
            302,
            "http://example.com/replacement-prefix/lemon",
        ),
        (
            get("/full/path/original"),
            302,
            "http://example.com/full-path-replacement",
        ),
        (
            get("/path-and-host"),
            302,
            "http://example.org/replacement-prefix",
        ),
        (
            get("/path-and-status"),
            301,
            "http://example.com/replacement-prefix",
        ),
        (
            get("/full-path-and-host"),
            302,
            "http://example.org/replacement-full",
        ),
        (
            get("/full-path-and-status"),
            301,
            "http://example.com/replacement-full",
        ),
    ];
    assert_redirects(&suite, &cases).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_redirect_port() {
    let suite = suite!("httproute-redirect-port");
    suite
        .assert_accepted("redirect-port", "same-namespace")
        .await;
    let cases = [
        (get("/port"), 302, "http://example.com:8083/port"),
        (
            get("/port-and-host"),
            302,
            "http://example.org:8083/port-and-host",
        ),
        (
            get("/port-and-status"),
            301,
            "http://example.com:8083/port-and-status",
        ),
        (
            get("/port-and-host-and-status"),
            302,
            "http://example.org:8083/port-and-host-and-status",
        ),
    ];
    assert_redirects(&suite, &cases).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_redirect_scheme() {
    let suite = suite!("httproute-redirect-scheme");
    suite
        .assert_accepted("redirect-scheme", "same-namespace")
        .await;
    let cases = [
        (get("/scheme"), 302, "https://example.com/scheme"),
        (
            get("/scheme-and-host"),
            302,
            "https://example.org/scheme-and-host",
        ),
        (
            get("/scheme-and-status"),
            301,
            "https://example.com/scheme-and-status",
        ),
        (
            get("/scheme-and-host-and-status"),
            302,
            "https://example.org/scheme-and-host-and-status",
        ),
    ];
    assert_redirects(&suite, &cases).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_redirect_port_and_scheme() {
    let suite = suite!("httproute-redirect-port-and-scheme");
    let on_80 = [
        ("/scheme-nil-and-port-nil", "http://example.org"),
        ("/scheme-nil-and-port-80", "http://example.org"),
        ("/scheme-nil-and-port-8080", "http://example.org:8080"),
        ("/scheme-https-and-port-nil", "https://example.org"),
        ("/scheme-https-and-port-443", "https://example.org"),
        ("/scheme-https-and-port-8443", "https://example.org:8443"),
    ];
    let on_8080 = [
        ("/scheme-nil-and-port-nil", "http://example.org:8080"),
        ("/scheme-nil-and-port-80", "http://example.org"),
        ("/scheme-https-and-port-nil", "https://example.org"),
    ];
    let on_443 = [
        ("/scheme-nil-and-port-nil", "https://example.org"),
        ("/scheme-nil-and-port-443", "https://example.org"),
        ("/scheme-nil-and-port-8443", "https://example.org:8443"),
        ("/scheme-http-and-port-nil", "http://example.org"),
        ("/scheme-http-and-port-80", "http://example.org"),
        ("/scheme-http-and-port-8080", "http://example.org:8080"),
    ];
    for (gateway, port, cases) in [
        ("same-namespace", 80, &on_80[..]),
        ("same-namespace-with-http-listener-on-8080", 8080, &on_8080),
        ("same-namespace-with-https-listener", 443, &on_443),
    ] {
        let client = crate::support::client::Client::http1(suite.addr(gateway, port));
        for (path, origin) in cases {
            let ask = get(path).host("example.org");
            let answer = match port {
                443 => suite.send_tls(gateway, port, &ask).await,
                _ => ask.send(&client).await,
            };
            assert_eq!(answer.status(), 302, "{gateway} {path}");
            let location = suite.location(&answer, gateway, port);
            assert_eq!(location, format!("{origin}{path}"), "{gateway}:{port}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_backend_request_redirect() {
    let suite = suite!("httproute-backend-request-redirect");
    suite
        .assert_accepted("backend-request-redirect", "same-namespace")
        .await;
    let cases = [
        (
            get("/full/original"),
            302,
            "http://example.com/redirected-full",
        ),
        (
            get("/prefix/original"),
            302,
            "http://example.com/redirected-prefix/original",
        ),
    ];
    assert_redirects(&suite, &cases).await;
}

/// The header edits the rewrite and mirror routes make beside their own.
const EDITED: [(&str, &str); 3] = [
    ("X-Header-Add", "header-val-1"),
    ("X-Header-Add-Append", "append-val-1,header-val-2"),
    ("X-Header-Set", "set-overwrites-values"),
];

/// `path`, with the headers the routes that edit headers edit.
fn to_edit(path: &str) -> Ask {
    get(path)
        .header("X-Header-Remove", "remove-val")
        .header("X-Header-Add-Append", "append-val-1")
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_rewrite_host() {
    let suite = suite!("httproute-rewrite-host");
    suite
        .assert_accepted("rewrite-host", "same-namespace")
        .await;
    let client = suite.client("same-namespace");
    let host = |path| get(path).host("rewrite.example");
    for (ask, backend, host) in [
        (host("/one"), "infra-backend-v1", "one.example.org"),
        (host("/two"), "infra-backend-v2", "example.org"),
        (
            to_edit("/rewrite-host-and-modify-headers").host("rewrite.example"),
            "infra-backend-v2",
            "test.example.org",
        ),
    ] {
        let answer = ask.send(&client).await;
        assert_eq!(answer.backend(), infra(backend).unwrap(), "{ask:?}");
        assert_eq!(answer.received("host").as_deref(), Some(host), "{ask:?}");
        assert_eq!(answer.received_path(), ask.path);
    }
    let answer = to_edit("/rewrite-host-and-modify-headers")
        .host("rewrite.example")
        .send(&client)
        .await;
    answer.assert_received(&EDITED, &["X-Header-Remove"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_rewrite_path() {
    let suite = suite!("httproute-rewrite-path");
    suite
        .assert_accepted("rewrite-path", "same-namespace")
        .await;
    let client = suite.client("same-namespace");
    for (ask, path) in [
        (get("/prefix/one/two"), "/one/two"),
        (get("/strip-prefix/three"), "/three"),
        (get("/strip-prefix"), "/"),
        (get("/full/one/two"), "/one"),
        (
            to_edit("/full/rewrite-path-and-modify-headers/test").header("X-Header-Set", "set-val"),
            "/test",
        ),
        (
            to_edit("/prefix/rewrite-path-and-modify-headers/one")
                .header("X-Header-Set", "set-val"),
            "/prefix/one",
        ),
    ] {
        let answer = ask.send(&client).await;
        assert_eq!(
            answer.backend(),
            infra("infra-backend-v1").unwrap(),
            "{ask:?}"
        );
        assert_eq!(answer.received_path(), path, "{ask:?}");
        if ask.path.contains("modify-headers") {
            answer.assert_received(&EDITED, &["X-Header-Remove"]);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_backend_url_rewrite() {
    let suite = suite!("httproute-backend-url-rewrite");
    suite
        .assert_accepted("backend-url-rewrite", "same-namespace")
        .await;
    let client = suite.client("same-namespace");
    for (path, rewritten) in [
        ("/full/original", "/rewritten-full"),
        ("/prefix/original", "/rewritten-prefix/original"),
    ] {
        let answer = get(path).send(&client).await;
        assert_eq!(answer.backend(), infra("infra-backend-v1").unwrap());
        assert_eq!(answer.received_path(), rewritten, "{path}");
    }
}

/// Asserts that each request reaches infra-backend-v1 (with the edits, for the paths that
/// make them) and that a copy reaches each of `mirrors`.
async fn assert_mirrored(suite: &Suite, paths: &[&str], mirrors: &[&str]) {
    let client = suite.client("same-namespace");
    for path in paths {
        let copies = |path: &str| {
            mirrors
                .iter()
                .map(|m| {
                    let reports = suite.backends[&infra(m).unwrap()].reports();
                    reports.iter().filter(|r| r["path"] == path).count()
                })
                .collect::<Vec<_>>()
        };
        let before = copies(path);
        let answer = to_edit(path).send(&client).await;
        assert_eq!(
            answer.backend(),
            infra("infra-backend-v1").unwrap(),
            "{path}"
        );
        if path.contains("modify") {
            answer.assert_received(&EDITED, &["X-Header-Remove"]);
        }
        crate::assert_eventually!(
            copies(path)
                .iter()
                .zip(&before)
                .all(|(now, then)| now > then),
            "{path} was not mirrored to each of {mirrors:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_request_mirror() {
    let suite = suite!("httproute-request-mirror");
    let paths = ["/mirror", "/mirror-and-modify-headers"];
    assert_mirrored(&suite, &paths, &["infra-backend-v2"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_request_multiple_mirrors() {
    let suite = suite!("httproute-request-multiple-mirrors");
    let paths = ["/multi-mirror", "/multi-mirror-and-modify-request-headers"];
    let mirrors = ["infra-backend-v2", "infra-backend-v3"];
    assert_mirrored(&suite, &paths, &mirrors).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_request_percentage_mirror() {
    let suite = suite!("httproute-request-percentage-mirror");
    suite
        .assert_accepted("request-percentage-mirror", "same-namespace")
        .await;
    let client = suite.client("same-namespace");
    let mirror = &suite.backends[&infra("infra-backend-v2").unwrap()];
    for (path, share) in [
        ("/percent-mirror", 0.2_f64),
        ("/percent-mirror-fraction", 0.5),
        ("/percent-mirror-and-modify-headers", 0.35),
    ] {
        // As the suite: within three standard deviations, in one of up to 5 rounds of 500.
        let expected = 500.0 * share;
        let spread = 3.0 * (500.0 * share * (1.0 - share)).sqrt();
        let mut counts = Vec::new();
        for round in 0..5 {
            let tagged = format!("{path}?round={round}");
            let ask = to_edit(&tagged);
            let answers = futures_util::stream::iter(0..500)
                .map(|_| ask.send(&client))
                .buffer_unordered(10)
                .collect::<Vec<_>>()
                .await;
            assert!(answers.iter().all(|a| a.status() == 200), "{tagged}");
            // Copies may still be on their way: the count settles before it is read.
            let count = || {
                mirror
                    .reports()
                    .iter()
                    .filter(|r| r["path"] == tagged)
                    .count()
            };
            let mut settled = count();
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                let now = count();
                if now == settled {
                    break;
                }
                settled = now;
            }
            counts.push(settled);
            if (settled as f64 - expected).abs() <= spread {
                break;
            }
        }
        let last = *counts.last().unwrap() as f64;
        assert!(
            (last - expected).abs() <= spread,
            "{path}: {counts:?} of 500 at {share}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_request_and_backend_timeouts() {
    let suite = suite!(
        "httproute-timeout-request",
        "httproute-timeout-backend-request"
    );
    for route in ["request-timeout", "backend-request-timeout"] {
        suite.assert_accepted(route, "same-namespace").await;
    }
    let client = suite.client("same-namespace");
    for (path, status) in [
        ("/request-timeout", 200),
        ("/request-timeout?delay=1s", 504),
        ("/disable-request-timeout?delay=1s", 200),
        ("/backend-timeout", 200),
        ("/backend-timeout?delay=1s", 504),
        ("/disable-backend-timeout?delay=1s", 200),
    ] {
        let answer = get(path).send(&client).await;
        assert_eq!(answer.status(), status, "{path}");
        if status == 200 {
            assert_eq!(answer.received_path(), path);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_retry() {
    let suite = suite!("httproute-retry");
    suite.assert_accepted("retries", "same-namespace").await;
    let client = suite.client("same-namespace");
    let mut cases = vec![
        ("/retry/code-500-attempts-3", 500, 2, 200),
        ("/retry/code-500-attempts-3", 500, 4, 500),
        ("/retry/code-500-attempts-3", 503, 2, 503),
    ];
    for code in [500, 502, 503, 504] {
        cases.push(("/retry/code-all-attempts-2", code, 1, 200));
        cases.push(("/retry/code-all-attempts-2", code, 3, code));
    }
    for (i, (path, code, failures, status)) in cases.into_iter().enumerate() {
        let ask = format!("{path}?responseCode={code}&succeedAfter={failures}&uuid=case-{i}");
        let answer = get(&ask).send(&client).await;
        assert_eq!(answer.status(), status, "{ask}");
        if status == 200 {
            assert_eq!(answer.backend(), infra("infra-backend-v3").unwrap());
        }
    }
}

/// A CORS request to `path` from `origin`: a preflight when `method` is `OPTIONS`.
fn cors(method: &'static str, path: &str, origin: &str) -> Ask {
    get(path).method(method).header("Origin", origin)
}

/// Asserts that the header `name` of `answer` is one of `values`, whitespace after commas
/// aside.
fn assert_one_of(answer: &super::Answer, name: &str, values: &[&str]) {
    let got = answer.header(name).map(|v| v.replace(", ", ","));
    let accepted: Vec<String> = values.iter().map(|v| v.replace(", ", ",")).collect();
    assert!(
        got.as_ref().is_some_and(|g| accepted.contains(g)),
        "{name}: {got:?} is not one of {values:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn httproute_cors() {
    let suite = suite!("httproute-cors");
    let client = suite.client("same-namespace");
    let request_headers = "x-header-1, x-header-2";
    let preflight = |origin| {
        cors("OPTIONS", "/cors-1", origin)
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", request_headers)
    };
    for origin in [
        "https://www.foo.com",
        "https://www.bar.com",
        "https://xpto.www.bar.com",
    ] {
        let answer = preflight(origin).send(&client).await;
        assert!([200, 204].contains(&answer.status()), "{origin}");
        answer.assert_headers(
            &[
                ("Access-Control-Allow-Origin", origin),
                ("Access-Control-Max-Age", "3600"),
                ("Access-Control-Allow-Credentials", "true"),
            ],
            &[],
        );
        assert_one_of(
            &answer,
            "Access-Control-Allow-Methods",
            &["GET, OPTIONS", "OPTIONS, GET"],
        );
        let headers = ["x-header-1, x-header-2", "x-header-2, x-header-1"];
        assert_one_of(&answer, "Access-Control-Allow-Headers", &headers);
        let exposed = ["x-header-3, x-header-4", "x-header-4, x-header-3"];
        assert_one_of(&answer, "Access-Control-Expose-Headers", &exposed);
    }
    let stranger = cors("OPTIONS", "/cors-1", "https://foobar.com")
        .header("Access-Control-Request-Method", "GET")
        .send(&client)
        .await;
    assert_eq!(stranger.header("Access-Control-Allow-Origin"), None);
    for origin in ["https://www.foo.com", "https://www.bar.com"] {
        let simple = cors("GET", "/cors-1", origin).send(&client).await;
        assert_eq!(simple.backend(), infra("infra-backend-v1").unwrap());
        simple.assert_headers(&[("Access-Control-Allow-Origin", origin)], &[]);
    }
    let simple = cors("GET", "/cors-1", "https://foobar.com")
        .send(&client)
        .await;
    assert_eq!(simple.header("Access-Control-Allow-Origin"), None);

    let wildcard_methods = cors("OPTIONS", "/cors-2", "https://www.foo.com")
        .header("Access-Control-Request-Method", "POST")
        .send(&client)
        .await;
    assert_one_of(
        &wildcard_methods,
        "Access-Control-Allow-Methods",
        &["POST", "*"],
    );
    wildcard_methods.assert_headers(
        &[("Access-Control-Allow-Origin", "https://www.foo.com")],
        &["Access-Control-Allow-Credentials"],
    );

    for origin in ["https://foobar.com", "https://foobar.com:12345"] {
        let answer = cors("OPTIONS", "/cors-wildcard-origin", origin)
            .header("Access-Control-Request-Method", "PUT")
            .send(&client)
            .await;
        assert_one_of(&answer, "Access-Control-Allow-Origin", &[origin, "*"]);
        assert_one_of(&answer, "Access-Control-Allow-Methods", &["PUT"]);
        answer.assert_headers(&[], &["Access-Control-Allow-Credentials"]);
        let simple = cors("PUT", "/cors-wildcard-origin", origin)
            .send(&client)
            .await;
        assert_eq!(simple.backend(), infra("infra-backend-v1").unwrap());
        assert_one_of(&simple, "Access-Control-Allow-Origin", &[origin, "*"]);
    }

    let other = "https://other.foo.com";
    let both = ["x-header-1, x-header-2", "x-header-2, x-header-1"];
    for (path, credentials) in [
        ("/cors-wildcard-methods-headers", true),
        ("/cors-wildcard-methods-headers-unauth", false),
    ] {
        let answer = cors("OPTIONS", path, other)
            .header("Access-Control-Request-Method", "PUT")
            .header("Access-Control-Request-Headers", request_headers)
            .send(&client)
            .await;
        let headers: Vec<&str> = both.iter().copied().chain(["*"]).collect();
        if credentials {
            // With credentials, nothing is `*`: the request's own values come back.
            answer.assert_headers(
                &[
                    ("Access-Control-Allow-Origin", other),
                    ("Access-Control-Allow-Methods", "PUT"),
                    ("Access-Control-Allow-Credentials", "true"),
                ],
                &[],
            );
            assert_one_of(&answer, "Access-Control-Allow-Headers", &both);
        } else {
            assert_one_of(&answer, "Access-Control-Allow-Origin", &[other, "*"]);
            assert_one_of(&answer, "Access-Control-Allow-Methods", &["PUT", "*"]);
            assert_one_of(&answer, "Access-Control-Allow-Headers", &headers);
            answer.assert_headers(&[], &["Access-Control-Allow-Credentials"]);
        }
        let simple = cors("GET", path, other)
            .header("Authorization", "Bearer test")
            .send(&client)
            .await;
        assert_eq!(simple.backend(), infra("infra-backend-v1").unwrap());
        let allowed = [("Access-Control-Allow-Origin", other)];
        match credentials {
            true => simple.assert_headers(
                &[allowed[0], ("Access-Control-Allow-Credentials", "true")],
                &[],
            ),
            false => simple.assert_headers(&allowed, &["Access-Control-Allow-Credentials"]),
        }
    }
}
