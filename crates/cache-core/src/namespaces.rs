//! The namespace registry: each namespace's current generation, and the cap on how many.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

use crate::error::Error;

/// One namespace. L1 entries hold an `Arc` to it, so checking an entry's generation on a hit
/// is one atomic load, with no map lookup.
#[derive(Debug, Default)]
pub(crate) struct NsState {
    generation: AtomicU64,
}

impl NsState {
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Moves the generation forward to `g` (never back).
    pub(crate) fn advance_to(&self, g: u64) {
        self.generation.fetch_max(g, Ordering::AcqRel);
    }
}

/// Known namespaces: those with entries in L2 at open, and those put since.
#[derive(Debug)]
pub(crate) struct Namespaces {
    map: RwLock<HashMap<Box<str>, Arc<NsState>>>,
    max: usize,
}

impl Namespaces {
    pub(crate) fn new(max: usize, known: impl IntoIterator<Item = (String, u64)>) -> Self {
        let map = known
            .into_iter()
            .map(|(ns, g)| {
                (
                    ns.into_boxed_str(),
                    Arc::new(NsState {
                        generation: AtomicU64::new(g),
                    }),
                )
            })
            .collect();
        Self {
            map: RwLock::new(map),
            max,
        }
    }

    pub(crate) fn get(&self, ns: &str) -> Option<Arc<NsState>> {
        self.map.read().get(ns).cloned()
    }

    /// The namespace's state, registering it if new.
    ///
    /// # Errors
    ///
    /// [`Error::TooManyNamespaces`] if it is new and the registry is full.
    pub(crate) fn get_or_register(&self, ns: &str) -> Result<Arc<NsState>, Error> {
        if let Some(s) = self.get(ns) {
            return Ok(s);
        }
        let mut map = self.map.write();
        if let Some(s) = map.get(ns) {
            return Ok(Arc::clone(s));
        }
        if map.len() >= self.max {
            return Err(Error::TooManyNamespaces { limit: self.max });
        }
        let s = Arc::new(NsState::default());
        map.insert(ns.into(), Arc::clone(&s));
        Ok(s)
    }

    pub(crate) fn len(&self) -> usize {
        self.map.read().len()
    }
}
