//! Values kept by key across configuration generations (a cluster's load, a policy's
//! stats, an endpoint's health): created on first use and shared by every generation that
//! asks for the same key.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Shared values by key.
#[derive(Debug)]
pub struct Registry<K, V>(Mutex<BTreeMap<K, Arc<V>>>);

impl<K, V> Default for Registry<K, V> {
    fn default() -> Self {
        Self(Mutex::new(BTreeMap::new()))
    }
}

impl<K: Ord + Clone, V: Default> Registry<K, V> {
    /// The value of `key`, created on first use.
    pub fn get<Q>(&self, key: &Q) -> Arc<V>
    where
        K: Borrow<Q>,
        Q: Ord + ToOwned<Owned = K> + ?Sized,
    {
        let mut all = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(value) = all.get(key) {
            return value.clone();
        }
        all.entry(key.to_owned()).or_default().clone()
    }

    /// Every value, by key.
    pub fn all(&self) -> Vec<(K, Arc<V>)> {
        let all = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        all.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}
