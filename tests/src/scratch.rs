//! A scratch directory for one test (wasm modules, inputs, caches), removed when dropped.

use std::path::PathBuf;

/// A scratch directory for one test, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A fresh one named after the test's tag.
    pub fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("farm-wasm-{tag}"));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    /// Writes `bytes` to `name` in it; returns the path as a string.
    pub fn file(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).expect("write");
        path.display().to_string()
    }

    /// A module from WAT text, written to `name`.
    pub fn wat(&self, name: &str, text: &str) -> String {
        self.file(name, &wat::parse_str(text).expect("valid wat"))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
