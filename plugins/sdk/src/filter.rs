//! Custom filters, the components WasmPlugin resources declare: the `filter-policy`
//! world, exporting `portcullis:policy/filter`.
//!
//! Filters run after route selection and fault injection, in the order of their phase
//! and priority; each reads the request through [`crate::request`] as the filters before
//! it left it, and either proceeds with [`Edits`] or answers with a [`Rejection`].
//!
//! ```no_run
//! use portcullis_sdk::filter::{self, Action, Edits, Filter, Header, PluginConfig};
//!
//! /// Tags every request.
//! struct Tag;
//!
//! impl Filter for Tag {
//!     fn configure(_config: PluginConfig) -> Result<Self, String> {
//!         Ok(Tag)
//!     }
//!     fn on_request(&mut self) -> Action {
//!         Action::Proceed(Edits {
//!             set_request_headers: vec![Header { name: "x-tag".into(), value: "yes".into() }],
//!             ..Edits::default()
//!         })
//!     }
//! }
//!
//! filter::export!(Tag);
//! ```

bindings!("filter-policy", "portcullis_sdk::filter::bindings");

pub use crate::PluginConfig;
pub use crate::types::Header;
#[doc(hidden)]
pub use bindings::exports::portcullis::policy::filter::Guest;
pub use bindings::exports::portcullis::policy::filter::{Action, Edits, Rejection};

/// No edits: `Edits { set_request_headers: …, ..Edits::default() }` names only what changes.
impl Default for Edits {
    fn default() -> Self {
        Self {
            set_request_headers: Vec::new(),
            add_request_headers: Vec::new(),
            remove_request_headers: Vec::new(),
            set_response_headers: Vec::new(),
            add_response_headers: Vec::new(),
            remove_response_headers: Vec::new(),
            destination: None,
        }
    }
}

/// A custom filter.
pub trait Filter: Sized + 'static {
    /// Builds the filter from the WasmPlugin's `pluginConfig`. An error rejects the
    /// configuration with the filter's own message.
    fn configure(config: PluginConfig) -> Result<Self, String>;

    /// Decides on the request in progress: proceed with edits, or answer now.
    fn on_request(&mut self) -> Action;
}

/// Exports a type implementing [`Filter`] as the component's filter policy:
/// `filter::export!(MyType);`, once, at the crate's top level.
#[doc(inline)]
pub use crate::__export_filter as export;

#[doc(hidden)]
#[macro_export]
macro_rules! __export_filter {
    ($ty:ty) => {
        $crate::__export_policy!(
            $ty, filter, Filter, configure(),
            fn on_request() -> $crate::filter::Action = "filter.on-request";
        );
    };
}
