//! Docs that stay true: each crate's file map lives in its root file's module docs (`lib.rs`,
//! or `main.rs` for a binary), one `//! - `path`: …` entry per source file under `src/`, and
//! these tests fail when a file is missing from it or an entry names a file that is gone. The
//! relative links of the Markdown docs (README.md, ARCHITECTURE.md, docs/ …) must point at
//! files that exist.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The workspace's root folder.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The workspace members, as the root Cargo.toml lists them.
fn members() -> Vec<String> {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).expect("root Cargo.toml");
    let start = manifest.find("members = [").expect("a members list") + "members = [".len();
    let end = start + manifest[start..].find(']').expect("the members list ends");
    manifest[start..end]
        .split(',')
        .map(|m| m.trim().trim_matches('"').to_string())
        .filter(|m| !m.is_empty())
        .collect()
}

/// Every `.rs` file under `dir`, as a path relative to `base` with `/` separators.
fn rust_files(base: &Path, dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).expect("a readable src folder") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(base, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(base).expect("under src");
            out.insert(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// The files a crate root's module docs name: the paths of its `//! - `path`: …` entries.
fn named_files(root_file: &str) -> BTreeSet<String> {
    root_file
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .filter_map(|l| l.strip_prefix("//! - `"))
        .filter_map(|l| l.split_once('`').map(|(path, _)| path.to_string()))
        .filter(|path| path.ends_with(".rs"))
        .collect()
}

#[test]
fn every_source_file_is_named_in_its_crates_module_docs() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for member in members() {
        let src = root().join(&member).join("src");
        let root_name = if src.join("lib.rs").exists() { "lib.rs" } else { "main.rs" };
        let root_file = std::fs::read_to_string(src.join(root_name))
            .unwrap_or_else(|e| panic!("{member}/src/{root_name}: {e}"));
        let mut files = BTreeSet::new();
        rust_files(&src, &src, &mut files);
        files.remove(root_name);
        let named = named_files(&root_file);
        for missing in files.difference(&named) {
            problems
                .push(format!("{member}/src/{missing} is not named in {member}/src/{root_name}"));
        }
        for gone in named.difference(&files) {
            problems.push(format!("{member}/src/{root_name} names {gone}, which does not exist"));
        }
        checked += files.len();
    }
    assert!(checked > 100, "only {checked} files found: is the workspace layout read right?");
    assert!(problems.is_empty(), "module docs out of date:\n{}", problems.join("\n"));
}

/// The Markdown files whose links are checked: the top-level docs, deploy/README.md and docs/.
fn markdown_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        ["README.md", "ARCHITECTURE.md", "BENCHMARKS.md", "RELIABILITY.md", "deploy/README.md"]
            .iter()
            .map(|name| root().join(name))
            .collect();
    for entry in std::fs::read_dir(root().join("docs")).expect("a docs folder") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files
}

/// The targets of the inline links `[text](target)` in a Markdown text, outside code blocks.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            targets.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    targets
}

#[test]
fn relative_links_in_the_docs_point_at_files_that_exist() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).expect("a readable Markdown file");
        let dir = file.parent().expect("a folder");
        for target in link_targets(&text) {
            let path = target.split('#').next().unwrap_or("");
            if path.is_empty() || path.contains("://") || path.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            if !dir.join(path).exists() {
                broken.push(format!("{}: {target}", file.display()));
            }
        }
    }
    assert!(checked > 10, "only {checked} relative links found: is the link reader right?");
    assert!(broken.is_empty(), "links to files that do not exist:\n{}", broken.join("\n"));
}
