//! `ExtensionRef` filters naming WasmPlugins: each such plugin also runs on the rules that
//! name it, as if its `targetRefs` named them.

use std::collections::BTreeMap;

use crate::config::model::GATEWAY_API;
use crate::config::model::gateway_api::{HttpRouteFilter, HttpRouteRule};
use crate::config::model::wasm_plugin::TargetRef;

/// The API group of WasmPlugins.
const EXTENSIONS: &str = "extensions.istio.io";

/// Each WasmPlugin (`namespace/name`) the routes' `ExtensionRef` filters name, with the
/// rules naming it as targets.
pub type PluginRefs = BTreeMap<String, Vec<TargetRef>>;

/// Whether `filter` is an `ExtensionRef` to a WasmPlugin, which runs as a plugin rather
/// than as a filter of the route.
pub fn names_a_plugin(filter: &HttpRouteFilter) -> bool {
    filter.extension_ref.as_ref().is_some_and(|r| {
        r.group.as_deref() == Some(EXTENSIONS) && r.kind.as_deref() == Some("WasmPlugin")
    })
}

/// The WasmPlugins named by the `ExtensionRef` filters of `rule`, rule `index` of route
/// `kind` `namespace/name`, into `refs`.
pub fn collect(
    rule: (&HttpRouteRule, usize),
    (kind, namespace, name): (&str, &str, &str),
    refs: &mut PluginRefs,
) {
    let (rule, index) = rule;
    let rule_name = rule.name.clone().unwrap_or_else(|| index.to_string());
    for filter in rule.filters.iter().filter(|f| names_a_plugin(f)) {
        let Some(plugin) = filter
            .extension_ref
            .as_ref()
            .and_then(|r| r.name.as_deref())
        else {
            continue;
        };
        refs.entry(format!("{namespace}/{plugin}"))
            .or_default()
            .push(TargetRef {
                group: Some(GATEWAY_API.to_string()),
                kind: Some(kind.to_string()),
                name: Some(name.to_string()),
                namespace: Some(namespace.to_string()),
                section_name: Some(rule_name.clone()),
            });
    }
}
