//! The modules of a crate depend on each other one way: no `crate::a` in `b` while `a` names
//! `crate::b`, directly or round a longer loop. A cycle means two modules can only be read,
//! changed and tested together; this test names it.
//!
//! A module is a top-level file or folder of `src/` (`args.rs` and `args/serve.rs` are both
//! `args`); an edge is any `crate::x` in its text, `use` lines, paths and doc links alike.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("source folder").flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// The names `crate::` is followed by in `text`, including each name inside `crate::{a, b}`.
fn named(text: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
    };
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            names.extend(group.split(',').map(|n| ident(n.trim())));
        } else {
            names.insert(ident(rest));
        }
    }
    names.retain(|n| !n.is_empty());
    names
}

/// Module → the other modules of the same crate it names.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    sources(src, &mut files);
    let module = |file: &Path| -> String {
        let first = file.strip_prefix(src).expect("under src").components().next().expect("a name");
        let first = first.as_os_str().to_string_lossy();
        first.strip_suffix(".rs").unwrap_or(&first).to_string()
    };
    let modules: BTreeSet<String> = files.iter().map(|f| module(f)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let from = module(file);
        let text = std::fs::read_to_string(file).expect("readable source");
        let to: Vec<String> =
            named(&text).into_iter().filter(|m| modules.contains(m) && *m != from).collect();
        edges.entry(from).or_default().extend(to);
    }
    edges
}

/// The cycles of `edges`, each as the modules round it (one per strongly connected group).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let reach = |from: &String| -> BTreeSet<String> {
        let (mut seen, mut todo) = (BTreeSet::new(), vec![from.clone()]);
        while let Some(m) = todo.pop() {
            for next in edges.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        edges.keys().map(|m| (m, reach(m))).collect();
    let mut found: BTreeSet<Vec<String>> = BTreeSet::new();
    for (m, from_m) in &reaches {
        let group: Vec<String> = from_m
            .iter()
            .filter(|o| reaches.get(o).is_some_and(|r| r.contains(*m)))
            .cloned()
            .collect();
        if !group.is_empty() {
            found.insert(group);
        }
    }
    found.into_iter().collect()
}

fn assert_no_cycles(krate: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(krate).join("src");
    let edges = graph(&src);
    assert!(edges.len() > 3, "{krate}: too few modules found in {}", src.display());
    let cycles = cycles(&edges);
    // Each cycle's own edges, to say which `crate::` to move.
    let within: Vec<String> = cycles
        .iter()
        .flat_map(|group| {
            let edges = &edges;
            group.iter().flat_map(move |m| {
                let to = edges.get(m).into_iter().flatten().filter(|t| group.contains(t));
                to.map(move |t| format!("{m} -> {t}"))
            })
        })
        .collect();
    assert!(cycles.is_empty(), "{krate}: modules that use each other: {cycles:?}: {within:?}");
}

#[test]
fn cli_modules_depend_one_way() {
    assert_no_cycles("cli");
}

#[test]
fn proto_modules_depend_one_way() {
    assert_no_cycles("proto");
}

#[test]
fn a_cycle_is_found() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a", named("use crate::{b, out};")),
        ("b", named("let x = crate::c::f();")),
        ("c", named("/// See [`crate::a::g`].")),
        ("d", named("use crate::a;")),
    ]
    .into_iter()
    .map(|(m, to)| (m.to_string(), to))
    .collect();
    assert_eq!(cycles(&edges), vec![vec!["a".to_string(), "b".into(), "c".into()]]);
}
