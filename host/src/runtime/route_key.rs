//! A route as the metrics and the dashboard know it across generations: its
//! VirtualService and its name, interned so that a request's metrics key holds a number.

use std::sync::{Arc, LazyLock};

use crate::interner::Interner;

/// The VirtualService (`namespace/name`) and name of a route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteKey {
    /// `namespace/name` of the VirtualService.
    pub virtual_service: String,
    /// The route's name (or its index).
    pub name: String,
}

/// An interned [`RouteKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteKeyId(u32);

static ROUTES: LazyLock<Interner<RouteKey>> = LazyLock::new(Interner::default);

impl RouteKey {
    /// The route's number, the same in every generation that has the route.
    pub fn intern(self) -> RouteKeyId {
        RouteKeyId(ROUTES.intern(self))
    }
}

impl RouteKeyId {
    /// The route this number stands for.
    pub fn get(self) -> Arc<RouteKey> {
        ROUTES.get(self.0)
    }
}
