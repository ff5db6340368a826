//! The disk cache of compiled wasm modules: a directory of `HASH-COMPAT.cwasm` files that a
//! restarted worker loads instead of compiling again. Loading one runs its native code, so the
//! directory must be this user's alone: it is created 0700, and one owned by another user,
//! writable by group or others, or a symlink is refused (the worker warns and keeps compiled
//! code in memory only). Files are written 0600 under a fresh name, then renamed into place.
//! The files together stay under a bound in bytes, the least recently used removed first (a
//! load counts as a use: it touches the file's mtime).

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use tracing::{info, warn};

/// The extension of compiled module files (only these are counted and evicted).
const EXTENSION: &str = "cwasm";

/// A checked cache directory and its bound.
#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
    /// Most bytes of compiled code the directory may hold.
    bound: u64,
}

impl DiskCache {
    /// The cache in `dir` (created 0700 if missing) or, if it is unusable or unsafe, `None`
    /// after a warning that says why.
    pub fn open(dir: &Path, bound: u64) -> Option<DiskCache> {
        match check_dir(dir) {
            Ok(()) => Some(DiskCache { dir: dir.to_path_buf(), bound }),
            Err(why) => {
                warn!(dir = %dir.display(), %why, "wasm disk cache refused: compiled code kept in memory only");
                None
            }
        }
    }

    /// The file of module `hash` compiled with engine settings `compat`.
    pub fn file(&self, hash: &str, compat: &str) -> PathBuf {
        self.dir.join(format!("{hash}-{compat}.{EXTENSION}"))
    }

    /// Marks `path` used now (least recently used files go first).
    pub fn touch(&self, path: &Path) {
        if let Ok(file) = OpenOptions::new().write(true).open(path) {
            let _ = file.set_modified(SystemTime::now());
        }
    }

    /// Writes `code` to `path` (0600, under a fresh name, then renamed), then removes the
    /// least recently used other files while the directory holds over its bound.
    pub fn write(&self, path: &Path, code: &[u8]) -> std::io::Result<()> {
        if code.len() as u64 > self.bound {
            return Err(std::io::Error::other(format!(
                "{} bytes of code, over the cache's bound of {} bytes",
                code.len(),
                self.bound
            )));
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .and_then(|mut file| file.write_all(code))
            .and_then(|()| std::fs::rename(&tmp, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written?;
        self.evict(path);
        Ok(())
    }

    /// Removes the least recently used files but `keep` while the directory holds over its
    /// bound.
    pub fn evict(&self, keep: &Path) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        let mut files: Vec<(SystemTime, u64, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == EXTENSION))
            .filter_map(|e| {
                let meta = e.metadata().ok().filter(|m| m.is_file())?;
                Some((meta.modified().ok()?, meta.len(), e.path()))
            })
            .collect();
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        files.sort();
        for (_, size, path) in files {
            if total <= self.bound {
                break;
            }
            if path == keep {
                continue;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= size;
                info!(path = %path.display(), bytes = size, "wasm cache file evicted");
            }
        }
    }
}

/// Creates `dir` (0700, with its missing parents) and checks that it is a directory (not a
/// symlink) of this user that no one else may write to.
pub(crate) fn check_dir(dir: &Path) -> Result<(), String> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create it: {e}"))?;
    let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_dir() {
        return Err("not a directory (a symlink is refused too)".into());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(format!("owned by uid {}, not by this worker's uid {me}", meta.uid()));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(format!("writable by others (mode {mode:03o}); chmod 700 it"));
    }
    Ok(())
}
