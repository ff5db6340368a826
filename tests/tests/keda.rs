//! The KEDA ScaledObject in deploy/kubernetes: it scales the worker Deployment defined next
//! to it, on the master's queued-shards metric through the Prometheus scaler. (Its full check
//! against KEDA's CRD schema is `scripts/validate-keda.py`, which needs KEDA's CRD file.)

use std::collections::BTreeMap;

/// The manifests' folder.
fn dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes")
}

/// The scalar values of one YAML document in block style (the subset these manifests use),
/// by dotted path: `spec.scaleTargetRef.name`, list items by index (`spec.triggers.0.type`).
/// Comments, blank lines and `---` are skipped; quotes around scalars are dropped.
fn scalars(doc: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    // (indent, path segment) of the open mappings and list items, and each list's next index.
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut next_index: BTreeMap<String, usize> = BTreeMap::new();
    for raw in doc.lines() {
        let line = raw.split(" #").next().unwrap_or("").trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed == "---" {
            continue;
        }
        let mut indent = line.len() - trimmed.len();
        let mut rest = trimmed;
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        if let Some(item) = rest.strip_prefix("- ") {
            let parent: Vec<&str> = stack.iter().map(|(_, s)| s.as_str()).collect();
            let key = parent.join(".");
            let index = next_index.entry(key).or_insert(0);
            stack.push((indent, index.to_string()));
            *index += 1;
            indent += 2;
            rest = item;
        }
        let Some((key, value)) = rest.split_once(':') else { continue };
        let mut path: Vec<&str> = stack.iter().map(|(_, s)| s.as_str()).collect();
        path.push(key.trim());
        let value = value.trim().trim_matches('"');
        if value.is_empty() {
            stack.push((indent, key.trim().to_string()));
        } else {
            out.insert(path.join("."), value.to_string());
        }
    }
    out
}

#[test]
fn the_scaled_object_scales_the_worker_deployment_on_queued_shards() {
    let read = |f: &str| std::fs::read_to_string(dir().join(f)).expect("manifest");
    let keda = scalars(&read("keda-scaledobject.yaml"));
    let worker = scalars(&read("worker.yaml"));
    let get = |m: &BTreeMap<String, String>, k: &str| m.get(k).cloned().unwrap_or_default();
    assert_eq!(get(&keda, "apiVersion"), "keda.sh/v1alpha1");
    assert_eq!(get(&keda, "kind"), "ScaledObject");
    assert_eq!(get(&worker, "kind"), "Deployment");
    assert_eq!(get(&keda, "spec.scaleTargetRef.kind"), "Deployment");
    assert_eq!(get(&keda, "spec.scaleTargetRef.apiVersion"), get(&worker, "apiVersion"));
    assert_eq!(get(&keda, "spec.scaleTargetRef.name"), get(&worker, "metadata.name"));
    assert_eq!(get(&keda, "spec.triggers.0.type"), "prometheus");
    let query = get(&keda, "spec.triggers.0.metadata.query");
    assert!(query.contains("farm_cluster_shards_queued"), "{query}");
    let threshold: f64 = get(&keda, "spec.triggers.0.metadata.threshold").parse().expect("number");
    assert!(threshold > 0.0);
    let (min, max) = (get(&keda, "spec.minReplicaCount"), get(&keda, "spec.maxReplicaCount"));
    assert!(min.parse::<u32>().expect("min") < max.parse::<u32>().expect("max"));
    // Not in the kustomization: without KEDA installed it would break `kubectl apply -k`.
    assert!(!read("kustomization.yaml").contains("keda-scaledobject.yaml"));
}

#[test]
fn the_yaml_reader_follows_nesting_and_lists() {
    let doc =
        "a:\n  b: 1 # note\n  c:\n    - type: x\n      m:\n        q: \"y\"\n    - type: z\nd: e\n";
    let s = scalars(doc);
    assert_eq!(s.get("a.b").map(String::as_str), Some("1"));
    assert_eq!(s.get("a.c.0.type").map(String::as_str), Some("x"));
    assert_eq!(s.get("a.c.0.m.q").map(String::as_str), Some("y"));
    assert_eq!(s.get("a.c.1.type").map(String::as_str), Some("z"));
    assert_eq!(s.get("d").map(String::as_str), Some("e"));
}
