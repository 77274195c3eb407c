//! Mirrors: destinations that get a copy of a share of the route's requests.

use super::actions::cluster;
use super::{Scope, Targets, checks};
use crate::config::model::virtual_service::HttpRoute;
use crate::config::resolved::Mirror;

/// The route's mirrors: `mirror` (with `mirrorPercentage`) or `mirrors`, not both.
pub fn mirrors(http: &HttpRoute, targets: &Targets<'_>, at: &Scope<'_>) -> Vec<Mirror> {
    let mut mirrors = Vec::new();
    if http.mirror.is_some() && !http.mirrors.is_empty() {
        at.field("mirrors")
            .error("set only one of mirror or mirrors");
        return mirrors;
    }
    if let Some(percent) = http.mirror_percent {
        let percent_at = at.field("mirrorPercent");
        percent_at.warn("deprecated: use mirrorPercentage");
        if percent > 100 {
            percent_at.error(format!("mirrorPercent {percent} must be between 0 and 100"));
        }
    }
    if let Some(mirror) = &http.mirror {
        let percentage = match (http.mirror_percentage, http.mirror_percent) {
            (Some(p), _) => checks::percentage(Some(p), &at.field("mirrorPercentage")),
            (None, Some(p)) => p.min(100) as f64,
            (None, None) => 100.0,
        };
        if let Some(cluster) = cluster(mirror, targets, &at.field("mirror")) {
            mirrors.push(Mirror {
                cluster,
                percentage,
            });
        }
    } else if http.mirror_percentage.is_some() {
        at.field("mirrorPercentage")
            .warn("mirrorPercentage without mirror has no effect");
    }
    for (i, policy) in http.mirrors.iter().enumerate() {
        let policy_at = at.field("mirrors").index(i);
        let Some(destination) = &policy.destination else {
            policy_at
                .field("destination")
                .error("destination is required");
            continue;
        };
        let percentage = match policy.percentage {
            Some(pct) => checks::percentage(Some(pct), &policy_at.field("percentage")),
            None => 100.0,
        };
        if let Some(cluster) = cluster(destination, targets, &policy_at.field("destination")) {
            mirrors.push(Mirror {
                cluster,
                percentage,
            });
        }
    }
    mirrors
}
