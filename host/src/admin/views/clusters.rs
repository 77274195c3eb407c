//! `/clusters`: each upstream cluster with its load and its endpoints, ejected or not.

use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use crate::runtime::Generation;
use crate::runtime::clusters::now_ms;

pub fn view(generation: &Generation) -> Value {
    let now = now_ms();
    let all = generation.clusters.iter().map(|state| {
        let cluster = &state.cluster;
        let endpoints: Vec<Value> = state
            .endpoints()
            .iter()
            .map(|endpoint| {
                json!({
                    "address": endpoint.address,
                    "weight": endpoint.weight,
                    "ejected": endpoint.ejected(now),
                    "in_flight": endpoint.in_flight.load(Ordering::Relaxed),
                })
            })
            .collect();
        json!({
            "name": cluster.name,
            "host": cluster.host,
            "port": cluster.port,
            "subset": cluster.subset,
            "active_requests": state.load.active_requests.load(Ordering::Relaxed),
            "connections": state.load.active_connections.load(Ordering::Relaxed),
            "ejections": state.load.ejections.load(Ordering::Relaxed),
            "endpoints": endpoints,
        })
    });
    Value::Array(all.collect())
}
