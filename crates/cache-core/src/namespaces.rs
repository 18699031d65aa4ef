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

/// Known namespaces: those with entries in L2 at open, and those whose puts succeeded since.
/// A put to a namespace not known yet holds a [`Reservation`] while it writes, so a failed put
/// takes no slot and concurrent puts cannot overshoot the cap.
#[derive(Debug)]
pub(crate) struct Namespaces {
    map: RwLock<Registry>,
    max: usize,
}

#[derive(Debug, Default)]
struct Registry {
    known: HashMap<Box<str>, Arc<NsState>>,
    /// Namespaces with puts in flight that are not known yet, and how many puts each.
    reserved: HashMap<Box<str>, usize>,
}

/// What [`Namespaces::admit`] gives a put.
#[derive(Debug)]
pub(crate) enum Admitted<'a> {
    /// The namespace is known.
    Known(Arc<NsState>),
    /// It is new: its slot is held until the put succeeds ([`Reservation::register`]) or fails
    /// (dropped).
    Reserved(Reservation<'a>),
}

/// A slot held for a new namespace while a put to it writes.
#[derive(Debug)]
pub(crate) struct Reservation<'a> {
    namespaces: &'a Namespaces,
    name: Box<str>,
    registered: bool,
}

impl Reservation<'_> {
    /// The put succeeded: the namespace is known from now on. Returns its state.
    pub(crate) fn register(mut self) -> Arc<NsState> {
        self.registered = true;
        let mut r = self.namespaces.map.write();
        r.release(&self.name);
        Arc::clone(r.known.entry(self.name.clone()).or_default())
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.registered {
            self.namespaces.map.write().release(&self.name);
        }
    }
}

impl Registry {
    fn release(&mut self, name: &str) {
        if let Some(n) = self.reserved.get_mut(name) {
            *n -= 1;
            if *n == 0 {
                self.reserved.remove(name);
            }
        }
    }
}

impl Namespaces {
    pub(crate) fn new(max: usize, known: impl IntoIterator<Item = (String, u64)>) -> Self {
        let known = known
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
            map: RwLock::new(Registry {
                known,
                reserved: HashMap::new(),
            }),
            max,
        }
    }

    pub(crate) fn get(&self, ns: &str) -> Option<Arc<NsState>> {
        self.map.read().known.get(ns).cloned()
    }

    /// The namespace's state if it is known, or a slot held for it while a put writes.
    ///
    /// # Errors
    ///
    /// [`Error::TooManyNamespaces`] if it is new and the known and reserved namespaces fill
    /// the cap.
    pub(crate) fn admit(&self, ns: &str) -> Result<Admitted<'_>, Error> {
        if let Some(s) = self.get(ns) {
            return Ok(Admitted::Known(s));
        }
        let mut r = self.map.write();
        if let Some(s) = r.known.get(ns) {
            return Ok(Admitted::Known(Arc::clone(s)));
        }
        if let Some(n) = r.reserved.get_mut(ns) {
            *n += 1;
        } else {
            if r.known.len() + r.reserved.len() >= self.max {
                return Err(Error::TooManyNamespaces { limit: self.max });
            }
            r.reserved.insert(ns.into(), 1);
        }
        Ok(Admitted::Reserved(Reservation {
            namespaces: self,
            name: ns.into(),
            registered: false,
        }))
    }

    pub(crate) fn len(&self) -> usize {
        self.map.read().known.len()
    }
}
