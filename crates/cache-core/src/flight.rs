//! Single-flight loading: concurrent misses for one key share one loader run.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::cache::Hit;
use crate::key::CacheKey;

/// What the leader hands its waiters: the loaded hit, or why the load failed.
pub(crate) type Outcome = Result<Hit, Arc<dyn std::error::Error + Send + Sync>>;

/// One load in flight.
#[derive(Default)]
pub(crate) struct Flight {
    outcome: Mutex<Option<Outcome>>,
    done: Condvar,
}

impl Flight {
    /// Waits for the leader's outcome.
    pub(crate) fn wait(&self) -> Outcome {
        let mut o = self.outcome.lock();
        loop {
            if let Some(outcome) = &*o {
                return outcome.clone();
            }
            self.done.wait(&mut o);
        }
    }

    fn finish(&self, outcome: Outcome) {
        *self.outcome.lock() = Some(outcome);
        self.done.notify_all();
    }
}

/// The loads in flight, by key.
#[derive(Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<CacheKey, Arc<Flight>>>,
}

/// Whether the caller leads a load or joins one.
pub(crate) enum Role<'a> {
    Leader(LeaderGuard<'a>),
    Waiter(Arc<Flight>),
}

impl Flights {
    pub(crate) fn join(&self, key: CacheKey) -> Role<'_> {
        let mut map = self.map.lock();
        if let Some(f) = map.get(&key) {
            return Role::Waiter(Arc::clone(f));
        }
        let flight = Arc::new(Flight::default());
        map.insert(key.clone(), Arc::clone(&flight));
        Role::Leader(LeaderGuard {
            flights: self,
            key,
            flight,
            finished: false,
        })
    }
}

/// Held by the leader. Finishing it (or dropping it, if the loader panicked) answers every
/// waiter and retires the flight, so the next miss starts a new load.
pub(crate) struct LeaderGuard<'a> {
    flights: &'a Flights,
    key: CacheKey,
    flight: Arc<Flight>,
    finished: bool,
}

impl LeaderGuard<'_> {
    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.retire(outcome);
    }

    fn retire(&mut self, outcome: Outcome) {
        self.finished = true;
        self.flights.map.lock().remove(&self.key);
        self.flight.finish(outcome);
    }
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.retire(Err(Arc::from(
                Box::<dyn std::error::Error + Send + Sync>::from("the loader panicked"),
            )));
        }
    }
}
