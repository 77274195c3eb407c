//! Header operations: headers set, added and removed on requests and responses.

use std::collections::BTreeMap;

use super::{Scope, checks};
use crate::config::model::virtual_service::{HeaderOperations, Headers};
use crate::config::resolved::{HeaderEdits, HeaderOps};

/// The request and response header edits (none when `spec` is not set).
pub fn header_ops(spec: Option<&Headers>, at: &Scope<'_>) -> HeaderOps {
    let Some(spec) = spec else {
        return HeaderOps::default();
    };
    HeaderOps {
        request: edits(spec.request.as_ref(), &at.field("request")),
        response: edits(spec.response.as_ref(), &at.field("response")),
    }
}

/// The edits of one side, each header name valid and lowercase.
fn edits(ops: Option<&HeaderOperations>, at: &Scope<'_>) -> HeaderEdits {
    let Some(ops) = ops else {
        return HeaderEdits::default();
    };
    HeaderEdits {
        set: pairs(&ops.set, &at.field("set")),
        add: pairs(&ops.add, &at.field("add")),
        remove: ops
            .remove
            .iter()
            .enumerate()
            .filter_map(|(i, name)| checks::header_name(name, &at.field("remove").index(i)))
            .collect(),
    }
}

/// The valid `name: value` pairs of a map.
fn pairs(map: &BTreeMap<String, String>, at: &Scope<'_>) -> Vec<(String, String)> {
    map.iter()
        .filter_map(|(k, v)| checks::header_name(k, &at.field(k)).map(|k| (k, v.clone())))
        .collect()
}
