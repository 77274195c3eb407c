//! A filter for the gateway's tests. A `pluginConfig` that mentions
//! `sleep-in-configure` makes `configure` wait 30 s inside a WASI call. The plugin tags responses with `x-filtered: yes`,
//! except that paths ending in `/trap` trap, `/loop` spin forever, `/grow` allocate
//! without bound, `/huge` ask for a 1 MiB header, `/sleep` waits 30 s inside a WASI call,
//! `/counters` creates counters without bound, `/log-flood` logs 1 000 lines of 8 KiB,
//! `/status-101` rejects with 101, `/framing` sets `transfer-encoding` and
//! `/big-body` rejects with a 100 MiB body. Its `GREETING` environment variable, when
//! set, comes back as `x-greeting`. It also adds `x-filters: hostile` to
//! responses, sends the request to the destination named by `x-choose-destination`, and
//! removes the response header named by `x-remove-response-header`.

use portcullis_sdk::filter::{self, Action, Edits, Filter, Header, PluginConfig, Rejection};
use portcullis_sdk::{host, request};

struct Hostile;

impl Filter for Hostile {
    fn configure(config: PluginConfig) -> Result<Self, String> {
        if config
            .raw()
            .is_some_and(|json| json.contains("sleep-in-configure"))
        {
            std::thread::sleep(std::time::Duration::from_secs(30));
        }
        Ok(Hostile)
    }

    fn on_request(&mut self) -> Action {
        let mut edits = Edits {
            destination: request::header("x-choose-destination"),
            remove_response_headers: request::header("x-remove-response-header")
                .into_iter()
                .collect(),
            add_response_headers: vec![Header {
                name: "x-filters".into(),
                value: "hostile".into(),
            }],
            ..Edits::default()
        };
        if let Ok(greeting) = std::env::var("GREETING") {
            edits.add_response_headers.push(Header {
                name: "x-greeting".into(),
                value: greeting,
            });
        }
        let path = request::path();
        match path.rsplit('/').next().unwrap_or_default() {
            "trap" => panic!("trapping as asked"),
            "loop" => loop {
                std::hint::black_box(());
            },
            "grow" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "huge" => edits.set_response_headers.push(Header {
                name: "x-huge".into(),
                value: "h".repeat(1 << 20),
            }),
            "sleep" => std::thread::sleep(std::time::Duration::from_secs(30)),
            "counters" => {
                for i in 0.. {
                    host::counter_add(&format!("{i:0>200}"), 1);
                }
            }
            "log-flood" => {
                let line = "l".repeat(8 << 10);
                for _ in 0..1_000 {
                    host::log(host::LogLevel::Warn, &line);
                }
            }
            "status-101" => return reject(101, Vec::new(), String::new()),
            "framing" => edits.set_response_headers.push(Header {
                name: "transfer-encoding".into(),
                value: "chunked".into(),
            }),
            "big-body" => return reject(403, Vec::new(), "b".repeat(100 << 20)),
            _ => edits.set_response_headers.push(Header {
                name: "x-filtered".into(),
                value: "yes".into(),
            }),
        }
        Action::Proceed(edits)
    }
}

fn reject(status: u16, headers: Vec<Header>, body: String) -> Action {
    Action::Reject(Rejection {
        status,
        headers,
        body,
    })
}

filter::export!(Hostile);
