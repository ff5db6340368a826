//! The kernels the cluster offers, as workers describe them, and the check of a submission
//! against them. The master never links worker code: it knows a kind from the descriptors that
//! connected workers sent at registration, from the last descriptor seen of each kind whose
//! workers have all left, and from the descriptors it was started with (`farm master` passes
//! those of the built-in kernels, so jobs can queue before the first worker connects).

use crate::core::how_to_offer;
use farm_proto::kernel::clip;
use farm_proto::{JobSpec, KernelDescriptor, KindInfo, OutputShape};
use std::collections::{BTreeMap, HashMap};

/// Longest list of kinds named in an error message.
const NAMED_KINDS: usize = 20;

/// Why a submission's kind or params were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KindError {
    /// No worker has ever offered the kind (maps to FailedPrecondition: a worker that offers
    /// it may still connect).
    #[error("{0}")]
    Unknown(String),
    /// The params do not fit the kernel (maps to InvalidArgument).
    #[error("{0}")]
    BadParams(String),
}

/// Kernel descriptors by kind: those of connected workers, and the last one seen of each kind.
#[derive(Debug, Default)]
pub struct Catalog {
    /// The newest descriptor seen of each kind (from a worker or from the start).
    last_seen: BTreeMap<String, KernelDescriptor>,
    /// What each connected worker offers.
    connected: HashMap<u64, Vec<KernelDescriptor>>,
}

impl Catalog {
    /// A catalog that knows `known` before any worker connects.
    pub fn new(known: Vec<KernelDescriptor>) -> Self {
        let last_seen = known.into_iter().map(|d| (d.kind.clone(), d)).collect();
        Catalog { last_seen, connected: HashMap::new() }
    }

    /// A worker registered with these kernels.
    pub fn joined(&mut self, worker: u64, kernels: Vec<KernelDescriptor>) {
        for d in &kernels {
            self.last_seen.insert(d.kind.clone(), d.clone());
        }
        self.connected.insert(worker, kernels);
    }

    /// A worker left; what it offered stays known as last seen.
    pub fn left(&mut self, worker: u64) {
        self.connected.remove(&worker);
    }

    /// Checks a submission: its kind must be known, and its params must fit at least one
    /// descriptor of the kind (a connected worker's, or the last seen). Returns how the job's
    /// outputs are to be reduced.
    pub fn check(&self, spec: &JobSpec) -> Result<OutputShape, KindError> {
        let Some(last) = self.last_seen.get(&spec.kind) else {
            let guess = self.closest(&spec.kind).map(|k| format!(" (did you mean {k}?)"));
            return Err(KindError::Unknown(format!(
                "no worker offers kind {}{}{}; the cluster offers: {}",
                clip(&spec.kind),
                guess.unwrap_or_default(),
                how_to_offer(&spec.kind),
                self.kinds_named()
            )));
        };
        let connected = self.connected.values().flatten().filter(|d| d.kind == spec.kind);
        let mut first_error = None;
        for d in std::iter::once(last).chain(connected) {
            match d.check(&spec.params).and_then(|p| d.check_indices(&p, &spec.source)) {
                Ok(_) => return Ok(d.output),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let e = first_error.map(|e| e.0).unwrap_or_default();
        Err(KindError::BadParams(format!("{}: {e}", clip(&spec.kind))))
    }

    /// Every known kind with its newest descriptor and how many connected workers offer it.
    pub fn list(&self) -> Vec<KindInfo> {
        let mut workers: HashMap<&str, u32> = HashMap::new();
        for kernels in self.connected.values() {
            for d in kernels {
                *workers.entry(d.kind.as_str()).or_default() += 1;
            }
        }
        self.last_seen
            .values()
            .map(|d| KindInfo {
                kernel: d.clone(),
                workers: workers.get(d.kind.as_str()).copied().unwrap_or(0),
            })
            .collect()
    }

    /// The known kinds for an error message, at most [`NAMED_KINDS`] of them.
    /// The known kind closest to a mistyped `kind`, if one is close enough to be what was meant.
    fn closest(&self, kind: &str) -> Option<String> {
        let close = |k: &&String| strsim::jaro_winkler(kind, k) > 0.8;
        let best =
            self.last_seen.keys().filter(close).max_by(|a, b| {
                strsim::jaro_winkler(kind, a).total_cmp(&strsim::jaro_winkler(kind, b))
            });
        best.map(|k| clip(k))
    }

    fn kinds_named(&self) -> String {
        if self.last_seen.is_empty() {
            return "nothing yet (no worker has connected)".into();
        }
        let mut names: Vec<String> =
            self.last_seen.keys().take(NAMED_KINDS).map(|k| clip(k)).collect();
        if self.last_seen.len() > NAMED_KINDS {
            names.push(format!("and {} more", self.last_seen.len() - NAMED_KINDS));
        }
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use farm_proto::{JobSource, ParamSpec, Params};

    fn spec(kind: &str, params: &[(&str, &str)]) -> JobSpec {
        let params = Params(params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        let source = JobSource::Range { start: 0, end: 10, shard_size: 1 };
        JobSpec::new(kind, source, params, 0).expect("valid spec")
    }

    fn rounds(max: u64) -> KernelDescriptor {
        KernelDescriptor::new("chain", OutputShape::Lines, "a chain")
            .param(ParamSpec::uint("rounds", 1, 1, max, "rounds"))
    }

    #[test]
    fn an_unknown_kind_names_what_the_cluster_offers() {
        let catalog = Catalog::new(vec![rounds(10)]);
        let err = catalog.check(&spec("nope", &[])).unwrap_err();
        assert_eq!(
            err,
            KindError::Unknown("no worker offers kind nope; the cluster offers: chain".into())
        );
        assert_eq!(
            catalog.check(&spec("exec", &[])),
            Err(KindError::Unknown(
                "no worker offers kind exec (workers offer it only when started with \
                 --allow-exec); the cluster offers: chain"
                    .into()
            ))
        );
        let err = catalog.check(&spec("chian", &[])).unwrap_err().to_string();
        assert!(err.contains("chian (did you mean chain?)"), "{err}");
        let empty = Catalog::default().check(&spec("nope", &[])).unwrap_err();
        assert!(empty.to_string().contains("no worker has connected"), "{empty}");
    }

    #[test]
    fn params_are_checked_against_the_descriptors_the_cluster_has() {
        let mut catalog = Catalog::new(vec![rounds(10)]);
        assert_eq!(catalog.check(&spec("chain", &[("rounds", "5")])), Ok(OutputShape::Lines));
        let err = catalog.check(&spec("chain", &[("rounds", "50")])).unwrap_err();
        assert_eq!(
            err,
            KindError::BadParams("chain: bad param rounds: must be at most 10, got 50".into())
        );
        // A newer worker accepts more: its jobs are no longer refused while it is connected...
        catalog.joined(1, vec![rounds(100)]);
        catalog.joined(2, vec![rounds(10)]);
        assert!(catalog.check(&spec("chain", &[("rounds", "50")])).is_ok());
        // ...and its descriptor stays the last seen after it leaves, until an older one joins.
        catalog.left(1);
        catalog.left(2);
        assert!(catalog.check(&spec("chain", &[("rounds", "50")])).is_err());
        catalog.joined(3, vec![rounds(100)]);
        catalog.left(3);
        assert!(catalog.check(&spec("chain", &[("rounds", "50")])).is_ok());
    }

    #[test]
    fn a_job_whose_indices_go_past_the_param_that_bounds_them_is_refused() {
        let image = KernelDescriptor::new("image", OutputShape::Rows, "rows")
            .param(ParamSpec::uint("height", 600, 1, u64::MAX, "rows").bounding_indices());
        let catalog = Catalog::new(vec![image]);
        let rows = |end, height: &str| {
            let params = Params([("height".to_string(), height.to_string())].into());
            let source = JobSource::Range { start: 0, end, shard_size: 1 };
            catalog.check(&JobSpec::new("image", source, params, 0).expect("valid spec"))
        };
        assert_eq!(rows(10, "10"), Ok(OutputShape::Rows));
        let err = rows(20, "10").unwrap_err();
        let why = "image: range 0..20 goes past height=10: indices must be below height";
        assert_eq!(err, KindError::BadParams(why.into()));
        // The default bounds the range too; an input row past it is named by its line.
        let default = JobSpec::new(
            "image",
            JobSource::Range { start: 0, end: 601, shard_size: 1 },
            Params::default(),
            0,
        );
        assert!(catalog.check(&default.expect("valid spec")).is_err());
        let lines = vec!["5".to_string(), "x".to_string(), "600".to_string()];
        let inputs = JobSpec::new("image", JobSource::Inputs(lines), Params::default(), 0);
        let err = catalog.check(&inputs.expect("valid spec")).unwrap_err();
        assert!(err.to_string().contains("input line 3 (600) goes past height=600"), "{err}");
    }

    #[test]
    fn a_user_kernel_may_replace_a_built_in_name() {
        let mut catalog = Catalog::new(vec![rounds(10)]);
        catalog.joined(1, vec![KernelDescriptor::open("chain")]);
        assert_eq!(catalog.check(&spec("chain", &[("anything", "x")])), Ok(OutputShape::Any));
    }

    #[test]
    fn the_list_counts_connected_workers_per_kind() {
        let mut catalog = Catalog::new(vec![rounds(10)]);
        catalog.joined(1, vec![rounds(10), KernelDescriptor::open("user")]);
        catalog.joined(2, vec![KernelDescriptor::open("user")]);
        let counts: Vec<(String, u32)> =
            catalog.list().into_iter().map(|e| (e.kernel.kind, e.workers)).collect();
        assert_eq!(counts, [("chain".to_string(), 1), ("user".to_string(), 2)]);
    }
}
