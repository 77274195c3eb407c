//! What a component is: the policy interface it exports says which phase it can serve.

use serde::Serialize;
use wasmtime::Engine;
use wasmtime::component::Component;

/// A phase a component serves, named as its WIT interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyKind {
    /// `route-match`: which route of a virtual host a request takes.
    RouteMatch,
    /// `destination`: which weighted destination of a route.
    Destination,
    /// `endpoint`: which endpoint of a cluster (the load balancer).
    Endpoint,
    /// `fault`: what fault to inject.
    Fault,
    /// `retry`: whether to try again.
    Retry,
    /// `breaker`: circuit-breaker admission.
    Breaker,
    /// `outlier`: endpoint ejection.
    Outlier,
    /// `filter`: a custom plugin, one of a route's chain.
    Filter,
}

/// What a kind of component is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// A virtual host's routes (the matcher).
    VirtualHost,
    /// One route.
    Route,
    /// One cluster: a service host (and subset).
    Cluster,
}

impl PolicyKind {
    /// Every kind, in request order.
    pub const ALL: [Self; 8] = [
        Self::RouteMatch,
        Self::Fault,
        Self::Filter,
        Self::Destination,
        Self::Endpoint,
        Self::Breaker,
        Self::Retry,
        Self::Outlier,
    ];

    /// The WIT interface the kind exports.
    pub fn interface(self) -> &'static str {
        match self {
            Self::RouteMatch => "route-match",
            Self::Destination => "destination",
            Self::Endpoint => "endpoint",
            Self::Fault => "fault",
            Self::Retry => "retry",
            Self::Breaker => "breaker",
            Self::Outlier => "outlier",
            Self::Filter => "filter",
        }
    }

    /// What the kind is attached to.
    pub fn reach(self) -> Reach {
        match self {
            Self::RouteMatch => Reach::VirtualHost,
            Self::Destination | Self::Fault | Self::Retry | Self::Filter => Reach::Route,
            Self::Endpoint | Self::Breaker | Self::Outlier => Reach::Cluster,
        }
    }

    /// The kind `component` serves, by the one `portcullis:policy` phase interface it
    /// exports, and whether it was built against 0.1.0 (only 0.1.0 filters still load).
    pub fn of(component: &Component, engine: &Engine) -> Result<(Self, Contract), String> {
        let exported: Vec<(Self, Contract)> = component
            .component_type()
            .exports(engine)
            .filter_map(|(name, _)| Self::exported_as(name))
            .collect();
        match exported.as_slice() {
            [(Self::Filter, contract)] => Ok((Self::Filter, *contract)),
            [(kind, Contract::V0_1)] => Err(format!(
                "the component exports `{}` of portcullis:policy@0.1.0, whose settings were JSON: \
                 only 0.1.0 filters still load; rebuild it against 0.2.0 (wit/ and the SDK)",
                kind.interface()
            )),
            [(kind, contract)] => Ok((*kind, *contract)),
            [] => Err(format!(
                "the component exports no portcullis:policy interface (one of {})",
                Self::ALL.map(Self::interface).join(", ")
            )),
            several => Err(format!(
                "the component exports several policy interfaces ({}): one component serves one phase",
                several
                    .iter()
                    .map(|(k, _)| k.interface())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// The kind an export named `portcullis:policy/<interface>@<version>` serves.
    fn exported_as(name: &str) -> Option<(Self, Contract)> {
        let interface = name.strip_prefix("portcullis:policy/")?;
        let (interface, version) = interface.split_once('@').unwrap_or((interface, ""));
        let contract = match version {
            "0.1.0" => Contract::V0_1,
            _ => Contract::V0_2,
        };
        let kind = Self::ALL.into_iter().find(|k| k.interface() == interface)?;
        Some((kind, contract))
    }
}

/// The version of `portcullis:policy` a component was built against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    /// 0.1.0, frozen in `wit/v0.1.0`: filters only.
    V0_1,
    /// 0.2.0, `wit/`.
    V0_2,
}

#[cfg(test)]
mod tests {
    use super::{Contract, PolicyKind};

    #[test]
    fn reads_the_kind_from_the_export_name() {
        assert_eq!(
            PolicyKind::exported_as("portcullis:policy/filter@0.1.0"),
            Some((PolicyKind::Filter, Contract::V0_1))
        );
        assert_eq!(
            PolicyKind::exported_as("portcullis:policy/route-match@0.2.0"),
            Some((PolicyKind::RouteMatch, Contract::V0_2))
        );
        assert_eq!(PolicyKind::exported_as("wasi:http/handler@0.2.0"), None);
        assert_eq!(
            PolicyKind::exported_as("portcullis:policy/host@0.2.0"),
            None
        );
    }

    /// A component exporting an (empty) instance under each of `names`.
    fn exporting(engine: &wasmtime::Engine, names: &[&str]) -> wasmtime::component::Component {
        let exports: String = names
            .iter()
            .map(|name| format!(r#"(export "{name}" (instance $i))"#))
            .collect();
        let text = format!("(component (instance $i) {exports})");
        wasmtime::component::Component::new(engine, wat::parse_str(text).unwrap()).unwrap()
    }

    #[test]
    fn only_filters_of_0_1_load_and_a_component_serves_one_phase() {
        let engine = wasmtime::Engine::default();
        let kind = |names: &[&str]| PolicyKind::of(&exporting(&engine, names), &engine);
        assert_eq!(
            kind(&["portcullis:policy/filter@0.1.0"]),
            Ok((PolicyKind::Filter, Contract::V0_1))
        );
        assert_eq!(
            kind(&["portcullis:policy/endpoint@0.2.0"]),
            Ok((PolicyKind::Endpoint, Contract::V0_2))
        );
        let old = kind(&["portcullis:policy/retry@0.1.0"]).unwrap_err();
        assert!(old.contains("rebuild it against 0.2.0"), "{old}");
        let none = kind(&["wasi:http/handler@0.2.0"]).unwrap_err();
        assert!(
            none.contains("exports no portcullis:policy interface"),
            "{none}"
        );
        let two = kind(&[
            "portcullis:policy/retry@0.2.0",
            "portcullis:policy/fault@0.2.0",
        ])
        .unwrap_err();
        assert!(two.contains("one component serves one phase"), "{two}");
    }
}
