//! What the data path, telemetry and the upstream pools share about HTTP messages: the
//! body type and its wrappers, gRPC framing, and the header names more than one layer
//! reads. A leaf: it depends on no other module of the crate.

pub mod body;
pub mod counting;
pub mod grpc;
pub mod grpc_messages;
pub mod host;
pub mod names;
pub mod tunnel;
