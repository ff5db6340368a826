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

/// A principal's place in the core's [`Accounts`]: jobs carry it, so dispatch counts a shard
/// against its principal without hashing a name.
pub(crate) type PrincipalId = u32;

/// What one principal holds now, against its quotas.
#[derive(Debug)]
pub(crate) struct Account {
    /// Its name, weight and quotas, as its latest submit stated them.
    pub owner: Owner,
    /// Its jobs queued or running.
    pub jobs: u64,
    /// Its shards in flight (assigned to a worker, no outcome accepted yet).
    pub in_flight: u64,
    /// Bytes of inputs and params its jobs not yet ended hold.
    pub input_bytes: u64,
}

/// Every principal that has submitted a job to this core (or owns one restored from the
/// journal), by [`PrincipalId`]. Entries stay: there are as many as principals.
#[derive(Debug, Default)]
pub(crate) struct Accounts {
    list: Vec<Account>,
    ids: std::collections::HashMap<Arc<str>, PrincipalId>,
}

impl Accounts {
    /// The id of `owner`'s account, opened if it has none. `update` takes its weight and
    /// quotas from `owner` (a submit states them; a job restored from the journal does not).
    pub fn id(&mut self, owner: &Owner, update: bool) -> PrincipalId {
        if let Some(&id) = self.ids.get(&owner.name) {
            if update {
                self.list[id as usize].owner = owner.clone();
            }
            return id;
        }
        let id = PrincipalId::try_from(self.list.len()).unwrap_or(PrincipalId::MAX);
        self.list.push(Account { owner: owner.clone(), jobs: 0, in_flight: 0, input_bytes: 0 });
        self.ids.insert(owner.name.clone(), id);
        id
    }

    /// A principal's account.
    pub fn get(&self, id: PrincipalId) -> &Account {
        &self.list[id as usize]
    }

    /// A principal's account, to count in.
    pub fn get_mut(&mut self, id: PrincipalId) -> &mut Account {
        &mut self.list[id as usize]
    }

    /// Counts `n` shards of the principal's no longer in flight.
    pub fn released(&mut self, id: PrincipalId, n: u64) {
        let account = self.get_mut(id);
        account.in_flight = account.in_flight.saturating_sub(n);
    }

    /// Shards the principal may still have handed out before its `shards_in_flight` quota;
    /// `usize::MAX` without one.
    pub fn room(&self, id: PrincipalId) -> usize {
        let account = self.get(id);
        match account.owner.quota.shards_in_flight {
            None => usize::MAX,
            Some(limit) => {
                usize::try_from(limit.saturating_sub(account.in_flight)).unwrap_or(usize::MAX)
            }
        }
    }

    /// Refuses a job of `bytes` that would take `owner` past its quota of jobs queued or
    /// running, or of input bytes held (the quotas `owner` states now).
    pub fn check_submit(&self, owner: &Owner, bytes: usize) -> Result<(), super::CoreError> {
        let held = self.ids.get(&owner.name).map(|&id| self.get(id));
        let (jobs, input_bytes) = held.map_or((0, 0), |a| (a.jobs, a.input_bytes));
        let name = &owner.name;
        if let Some(limit) = owner.quota.jobs.filter(|&limit| jobs >= limit) {
            return Err(super::CoreError::Quota(format!(
                "quota: principal {name} has {jobs} jobs queued or running, its limit is {limit} \
                 (jobs)"
            )));
        }
        let need = bytes as u64;
        if let Some(limit) =
            owner.quota.input_bytes.filter(|&limit| input_bytes.saturating_add(need) > limit)
        {
            return Err(super::CoreError::Quota(format!(
                "quota: principal {name}'s jobs hold {} of inputs and this job needs {} more, \
                 its limit is {} (input_mib)",
                size(input_bytes),
                size(need),
                size(limit)
            )));
        }
        Ok(())
    }
}

/// Bytes for a quota message: MiB with one decimal from 1 MiB on, bytes below.
fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", super::memory::mib(usize::try_from(bytes).unwrap_or(usize::MAX)))
    } else {
        format!("{bytes} bytes")
    }
}
