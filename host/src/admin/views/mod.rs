//! The admin API's JSON views of the serving generation, one per endpoint; the dashboard
//! reads nothing else.

pub mod chains;
pub mod clusters;
pub mod listeners;
pub mod plugins;
pub mod routes;
