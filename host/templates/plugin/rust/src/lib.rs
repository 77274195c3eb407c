//! {name}: a Portcullis plugin. It tells the upstream it saw the request
//! (`x-{name}: seen`) and answers 403 to requests without a `user-agent`. The gateway
//! calls `configure` once per instance with the WasmPlugin's `pluginConfig` as JSON, then
//! `on_request` for every request on the routes the plugin is attached to; `wit/` lists
//! everything a plugin can read and do.

wit_bindgen::generate!({ world: "filter-policy", path: "wit" });

use exports::portcullis::policy::filter::{Action, Edits, Guest, Rejection};
use portcullis::policy::request;
use portcullis::policy::types::Header;

struct Plugin;

impl Guest for Plugin {
    fn configure(_plugin_config: Option<String>) -> Result<(), String> {
        Ok(())
    }

    fn on_request() -> Action {
        if request::header("user-agent").is_none() {
            return Action::Reject(Rejection {
                status: 403,
                headers: vec![],
                body: "a user-agent is required\n".into(),
            });
        }
        Action::Proceed(Edits {
            set_request_headers: vec![Header {
                name: "x-{name}".into(),
                value: "seen".into(),
            }],
            add_request_headers: vec![],
            remove_request_headers: vec![],
            set_response_headers: vec![],
            add_response_headers: vec![],
            remove_response_headers: vec![],
            destination: None,
        })
    }
}

export!(Plugin);
