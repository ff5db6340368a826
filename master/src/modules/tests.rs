//! The module store's bounds: idempotent uploads, the size limit, eviction of unused modules;
//! pickles stored opaque, their format kept across a reopen.

use super::*;
use crate::core::CoreConfig;

impl Modules {
    /// `put` of a wasm module.
    fn put_wasm(
        &self,
        wasm: &[u8],
        live: impl FnOnce() -> Result<Vec<JobId>, String>,
    ) -> Result<(String, ModuleInfo), ModuleError> {
        self.put(wasm, ModuleFormat::Wasm, live)
    }
}

/// A valid counting module whose size grows with `pad` (a custom section).
fn module(pad: usize, tag: u8) -> Vec<u8> {
    let wat = r#"(module (func (export "farm_run") (param i64 i64) (result i64) (i64.const 0)))"#;
    let mut bytes = wat::parse_str(wat).expect("wat");
    // A custom section: id 0, size, name "p", then the padding.
    let body = 2 + pad;
    let mut size = Vec::new();
    let mut n = body;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        size.push(if n == 0 { byte } else { byte | 0x80 });
        if n == 0 {
            break;
        }
    }
    bytes.push(0);
    bytes.extend(size);
    bytes.extend([1, b'p']);
    bytes.extend(std::iter::repeat_n(tag, pad));
    bytes
}

/// No unfinished job.
fn none() -> Result<Vec<JobId>, String> {
    Ok(Vec::new())
}

fn store(limits: ModuleLimits) -> (Modules, crate::store::Journal) {
    let (_, journal, _) = crate::store::open(None, CoreConfig::default()).expect("store");
    (Modules::open(journal.store(), limits, Vec::new()).expect("modules"), journal)
}

#[test]
fn uploads_are_content_addressed_and_idempotent() {
    let (modules, _journal) = store(ModuleLimits::default());
    let wasm = module(10, 1);
    let (hash, info) = modules.put_wasm(&wasm, none).expect("stored");
    assert_eq!(hash, sha256_hex(&wasm));
    let format = ModuleFormat::Wasm;
    assert_eq!(info, ModuleInfo { size: wasm.len(), shape: OutputShape::Count, format });
    assert_eq!(modules.put_wasm(&wasm, || panic!("no room needed")).expect("again").0, hash);
    assert_eq!(modules.bytes(&hash), Ok(wasm));
    assert!(matches!(modules.bytes(&"0".repeat(64)), Err(ModuleError::Missing(_))));
    assert!(matches!(modules.put_wasm(b"\0asm junk", none), Err(ModuleError::Invalid(_))));
}

#[test]
fn a_module_over_the_limit_is_refused() {
    let (modules, _journal) = store(ModuleLimits { max_module: 100, max_total: 1000 });
    let err = modules.put_wasm(&module(200, 1), none).unwrap_err();
    assert!(matches!(&err, ModuleError::TooLarge(m) if m.contains("over the limit")), "{err}");
}

#[test]
fn a_full_store_evicts_unused_modules_but_never_a_running_jobs() {
    let (modules, _journal) = store(ModuleLimits { max_module: 1000, max_total: 1500 });
    let (a, _) = modules.put_wasm(&module(900, 1), none).expect("a");
    modules.pin(1, &a);
    // Job 1 still runs a: b does not fit.
    let err = modules.put_wasm(&module(900, 2), || Ok(vec![1])).unwrap_err();
    assert!(matches!(&err, ModuleError::TooLarge(m) if m.contains("store full")), "{err}");
    assert!(modules.info(&a).is_some());
    // Job 1 ended: a goes, b comes.
    let (b, _) = modules.put_wasm(&module(900, 2), none).expect("b");
    assert!(modules.info(&a).is_none());
    assert!(matches!(modules.bytes(&a), Err(ModuleError::Missing(_))));
    assert_eq!(modules.bytes(&b).map(|w| w.len()), Ok(module(900, 2).len()));
}

#[test]
fn modules_survive_a_reopen_of_the_store() {
    let dir = std::env::temp_dir().join(format!("farm-modules-{}", std::process::id()));
    let _ = std::fs::remove_file(&dir);
    let wasm = module(5, 3);
    let pickle = b"\x80\x05 not a wasm module".to_vec();
    let (hash, pickled) = {
        let (_, journal, _) = crate::store::open(Some(&dir), CoreConfig::default()).expect("open");
        let modules = Modules::open(journal.store(), ModuleLimits::default(), vec![]).expect("m");
        let hash = modules.put_wasm(&wasm, none).expect("stored").0;
        let pickled = modules.put(&pickle, ModuleFormat::Pickle, none).expect("stored").0;
        journal.close();
        (hash, pickled)
    };
    let (_, journal, _) = crate::store::open(Some(&dir), CoreConfig::default()).expect("reopen");
    let modules = Modules::open(journal.store(), ModuleLimits::default(), vec![]).expect("m");
    assert_eq!(modules.bytes(&hash), Ok(wasm));
    assert_eq!(modules.info(&hash).map(|i| i.format), Some(ModuleFormat::Wasm));
    // The pickle kept its format: not checked as wasm (it would be dropped as invalid).
    assert_eq!(modules.bytes(&pickled), Ok(pickle));
    assert_eq!(modules.info(&pickled).map(|i| i.format), Some(ModuleFormat::Pickle));
    journal.close();
    let _ = std::fs::remove_file(&dir);
}

#[test]
fn a_module_checked_by_a_waiting_submit_is_never_evicted_and_its_job_keeps_it() {
    let (modules, _journal) = store(ModuleLimits { max_module: 1000, max_total: 1500 });
    let (a, _) = modules.put_wasm(&module(900, 1), none).expect("a");
    // A submit checked `a` and waits for its commit: it has no job id yet.
    let (claim, info) = modules.claim(&a).expect("held");
    assert_eq!(info.size, module(900, 1).len());
    let err = modules.put_wasm(&module(900, 2), none).unwrap_err();
    assert!(matches!(&err, ModuleError::TooLarge(m) if m.contains("store full")), "{err}");
    assert!(modules.info(&a).is_some(), "kept through the commit wait");
    // Committed: job 7 runs it, and still does.
    claim.pin(7);
    assert!(modules.put_wasm(&module(900, 2), || Ok(vec![7])).is_err());
    assert!(modules.info(&a).is_some(), "kept while its job goes on");
    assert!(modules.claim(&"0".repeat(64)).is_none(), "a module the master lacks");
}

#[test]
fn a_failed_submit_lets_its_module_go() {
    let (modules, _journal) = store(ModuleLimits { max_module: 1000, max_total: 1500 });
    let (a, _) = modules.put_wasm(&module(900, 1), none).expect("a");
    let (first, _) = modules.claim(&a).expect("held");
    let (second, _) = modules.claim(&a).expect("held twice");
    drop(first);
    assert!(modules.put_wasm(&module(900, 2), none).is_err(), "still held by the second");
    drop(second);
    let (b, _) = modules.put_wasm(&module(900, 2), none).expect("room made");
    assert!(modules.info(&a).is_none() && modules.info(&b).is_some());
}

#[test]
fn a_failed_job_list_keeps_every_pin() {
    let (modules, _journal) = store(ModuleLimits { max_module: 1000, max_total: 1500 });
    let (a, _) = modules.put_wasm(&module(900, 1), none).expect("a");
    modules.pin(1, &a);
    let err = modules.put_wasm(&module(900, 2), || Err("the core is gone".into())).unwrap_err();
    assert!(matches!(&err, ModuleError::TooLarge(m) if m.contains("store full")), "{err}");
    assert!(modules.info(&a).is_some(), "job 1 may still run it");
    // The list works again and job 1 still runs: its pin was kept.
    assert!(modules.put_wasm(&module(900, 2), || Ok(vec![1])).is_err());
    assert!(modules.info(&a).is_some());
}

#[test]
fn a_pickle_is_stored_opaque_within_the_same_bounds() {
    let (modules, _journal) = store(ModuleLimits { max_module: 100, max_total: 110 });
    let pickle = b"\x80\x05\x95 any bytes at all".to_vec();
    let (hash, info) = modules.put(&pickle, ModuleFormat::Pickle, none).expect("stored");
    assert_eq!(hash, sha256_hex(&pickle));
    let format = ModuleFormat::Pickle;
    assert_eq!(info, ModuleInfo { size: pickle.len(), shape: OutputShape::Lines, format });
    assert_eq!(modules.bytes(&hash), Ok(pickle.clone()));
    // The same bytes again keep their format.
    let again = modules.put(&pickle, ModuleFormat::Wasm, || panic!("no room needed"));
    assert_eq!(again.expect("again").1.format, ModuleFormat::Pickle);
    // The size limit and the store's byte bound hold for pickles as for wasm.
    let err = modules.put(&[7; 101], ModuleFormat::Pickle, none).unwrap_err();
    assert!(matches!(&err, ModuleError::TooLarge(m) if m.contains("over the limit")), "{err}");
    modules.pin(1, &hash);
    let err = modules.put(&[8; 100], ModuleFormat::Pickle, || Ok(vec![1])).unwrap_err();
    assert!(matches!(&err, ModuleError::TooLarge(m) if m.contains("store full")), "{err}");
}
