//! Pause points between the tiers, for deterministic race tests (feature `test-hooks`).
//!
//! Without the feature there is no hook state and [`fire!`] expands to nothing.

/// A point in a two-tier path where a test hook runs.
#[cfg(feature = "test-hooks")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HookPoint {
    /// In `put`, after the L2 write, before the L1 insert.
    AfterL2Write,
    /// In `get`, after an L2 read found a value, before it is promoted into L1.
    AfterL2Read,
    /// Where a promotion (inline, or on a pool worker) is about to check its guards and
    /// install into L1.
    BeforePromotionInstall,
    /// In `get_or_load`, when a caller has joined another caller's load and is about to wait.
    JoinedLoad,
}

/// A test hook: called with the point, the namespace and the key.
#[cfg(feature = "test-hooks")]
pub type Hook = std::sync::Arc<dyn Fn(HookPoint, &str, &[u8]) + Send + Sync>;

#[cfg(feature = "test-hooks")]
#[derive(Default)]
pub(crate) struct Hooks {
    hook: parking_lot::RwLock<Option<Hook>>,
}

#[cfg(feature = "test-hooks")]
impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks").finish_non_exhaustive()
    }
}

#[cfg(feature = "test-hooks")]
impl Hooks {
    pub(crate) fn set(&self, hook: Option<Hook>) {
        *self.hook.write() = hook;
    }

    #[inline]
    pub(crate) fn fire(&self, point: HookPoint, namespace: &str, key: &[u8]) {
        let hook = self.hook.read().clone();
        if let Some(hook) = hook {
            hook(point, namespace, key);
        }
    }
}

/// Fires a hook point when the `test-hooks` feature is on; nothing otherwise.
macro_rules! fire {
    ($hooks:expr, $point:ident, $ns:expr, $key:expr) => {
        #[cfg(feature = "test-hooks")]
        $hooks.fire($crate::hooks::HookPoint::$point, $ns, $key);
    };
}
pub(crate) use fire;
