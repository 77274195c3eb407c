//! Values interned for the whole process: each distinct value gets a small number that
//! stays the same across configuration generations, so that a hot-path key can hold
//! the number and a reader can look the value up.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// Interned values of one kind, numbered in the order they were first seen.
#[derive(Debug)]
pub struct Interner<T>(Mutex<Table<T>>);

#[derive(Debug)]
struct Table<T> {
    ids: HashMap<Arc<T>, u32>,
    all: Vec<Arc<T>>,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Self(Mutex::new(Table {
            ids: HashMap::new(),
            all: Vec::new(),
        }))
    }
}

impl<T: Eq + Hash> Interner<T> {
    /// The number of `value`, the same for equal values.
    pub fn intern(&self, value: T) -> u32 {
        let mut table = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(&id) = table.ids.get(&value) {
            return id;
        }
        let id = u32::try_from(table.all.len()).expect("fewer than 2^32 interned values");
        let value = Arc::new(value);
        table.all.push(value.clone());
        table.ids.insert(value, id);
        id
    }

    /// The value numbered `id` by [`Interner::intern`].
    pub fn get(&self, id: u32) -> Arc<T> {
        let table = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        table.all[id as usize].clone()
    }

    /// The value numbered `id`, or none for a number never given out.
    pub fn try_get(&self, id: u32) -> Option<Arc<T>> {
        let table = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        table.all.get(id as usize).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_share_a_number() {
        let interner = Interner::default();
        let a = interner.intern("a".to_string());
        let b = interner.intern("b".to_string());
        assert_ne!(a, b);
        assert_eq!(interner.intern("a".to_string()), a);
        assert_eq!(*interner.get(b), "b");
        assert_eq!(interner.try_get(7), None);
    }
}
