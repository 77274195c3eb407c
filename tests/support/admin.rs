//! The admin API of a gateway started with `--admin 127.0.0.1:0`: what tests read of its
//! reloads.

use serde_json::Value;

use super::client::Client;
use super::eventually::eventually;

/// The reload status (`/config_dump`'s `status`): `generation`, `reloads`, `failures`,
/// `last_error`…
pub async fn reload_status(admin: &Client) -> Value {
    admin.get("admin", "/config_dump").await.json()["status"].take()
}

/// Waits until generation `generation` serves or, with `error`, until a reload fails with
/// an error containing it (the generation serving must then be `generation`); returns the
/// reload status.
pub async fn until_reloaded(admin: &Client, generation: u64, error: Option<&str>) -> Value {
    let what = match error {
        Some(expected) => format!("no reload failed with {expected:?}"),
        None => format!("no reload to generation {generation}"),
    };
    let status = eventually(what, || async {
        let status = reload_status(admin).await;
        let failed = status["last_error"].as_str().unwrap_or_default();
        let done = match error {
            Some(expected) => failed.contains(expected),
            None => status["generation"] == generation,
        };
        done.then_some(status)
    })
    .await;
    assert_eq!(status["generation"], generation, "{status}");
    status
}
