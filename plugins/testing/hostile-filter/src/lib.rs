//! A custom plugin for the gateway's tests: it tags responses with `x-filtered: yes`,
//! except that paths ending in `/trap` trap, `/loop` spin forever, `/grow` allocate
//! without bound and `/huge` ask for a 1 MiB header. It also adds `x-filters: hostile` to
//! responses, sends the request to the destination named by `x-choose-destination`, and
//! removes the response header named by `x-remove-response-header`.

use portcullis_sdk::{Action, Edits, Header, Plugin, plugin, request};

struct Hostile;

impl Plugin for Hostile {
    fn configure(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn on_request() -> Action {
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
            _ => edits.set_response_headers.push(Header {
                name: "x-filtered".into(),
                value: "yes".into(),
            }),
        }
        Action::Proceed(edits)
    }
}

plugin::export!(Hostile);
