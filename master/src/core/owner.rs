//! Who a job belongs to: its [`Owner`], the principal that submitted it, with the weight its
//! work gets in fair share (`dispatch.rs`) and its [`Quota`]s. The edges (the principals
//! file, the token a call came with) decide who the owner is; the core only keeps it with the
//! job, journals its name, and counts what each principal holds against its quotas.

use std::sync::Arc;

/// The name of the principal a call without a named identity acts as (today's one token).
pub const ANONYMOUS: &str = "default";

/// A principal as the core sees it: its name, its weight in fair share, its quotas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The principal's name, as the principals file spells it.
    pub name: Arc<str>,
    /// Its share of the cluster's threads, relative to other principals with work waiting at
    /// the same priority (at least 1; 0 counts as 1).
    pub weight: u32,
    /// What it may hold at once.
    pub quota: Quota,
}

/// What one principal may hold at once; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quota {
    /// Jobs queued or running.
    pub jobs: Option<u64>,
    /// Shards in flight (handed to workers, no outcome yet): dispatch holds back past it.
    pub shards_in_flight: Option<u64>,
    /// Bytes of inputs (and params) held by its jobs not yet ended, checked at submit.
    pub input_bytes: Option<u64>,
    /// Bytes of wasm modules it has in the module store, checked at upload.
    pub module_bytes: Option<u64>,
}

impl Owner {
    /// The principal of a call without a named identity: `default`, weight 1, no quota.
    pub fn anonymous() -> Owner {
        Owner::named(ANONYMOUS)
    }

    /// A principal with weight 1 and no quota (a journaled job's owner, until the principal
    /// submits again and brings its weight and quotas).
    pub fn named(name: &str) -> Owner {
        Owner { name: Arc::from(name), weight: 1, quota: Quota::default() }
    }

    /// Its weight, at least 1.
    pub fn weight(&self) -> u32 {
        self.weight.max(1)
    }
}

impl Default for Owner {
    fn default() -> Self {
        Owner::anonymous()
    }
}
