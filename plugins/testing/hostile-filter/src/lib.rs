//! A custom plugin for the gateway's tests: it tags responses with `x-filtered: yes`,
//! except that paths ending in `/trap` trap, `/loop` spin forever, `/grow` allocate
//! without bound and `/huge` ask for a 1 MiB header.

use portcullis_sdk::{Action, Edits, Header, Plugin, plugin, request};

struct Hostile;

impl Plugin for Hostile {
    fn configure(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn on_request() -> Action {
        let mut edits = Edits {
            set_request_headers: vec![],
            remove_request_headers: vec![],
            set_response_headers: vec![],
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
