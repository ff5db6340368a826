//! Files only the master's user may read: the store (job inputs, results, modules), the worker
//! token an allocation reads, the scripts that carry it. Each is created 0600; a file at a
//! predictable name is opened without following a symlink (a link another user planted there
//! is refused, not written through); a scratch file is created inside a fresh 0700 directory
//! so no other user can open it before it is unlinked.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The permission bits of group and others.
const SHARED: u32 = 0o077;

fn euid() -> u32 {
    // SAFETY: geteuid(2) takes no arguments, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// An error naming `path`.
fn refuse(path: &Path, why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, format!("{}: {why}", path.display()))
}

/// Creates `dir` (0700) and any missing parents (0700), then checks that `dir` is a directory
/// (not a symlink) of this user's that group and others cannot enter.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let meta = std::fs::symlink_metadata(dir)?;
    if !meta.is_dir() {
        return Err(refuse(dir, "not a directory (a symlink?), refused"));
    }
    if meta.uid() != euid() {
        return Err(refuse(dir, "owned by another user, refused"));
    }
    if meta.mode() & SHARED != 0 {
        let why =
            format!("open to other users (mode {:o}), refused: chmod 700 it", meta.mode() & 0o777);
        return Err(refuse(dir, &why));
    }
    Ok(())
}

/// Opens `path` for reading and writing, creating it 0600 if missing, never through a symlink.
/// An existing file must be a regular file of this user's; one that group or others could
/// read (an older master's) is narrowed to 0600.
pub fn open_private(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => refuse(path, "a symlink, refused"),
            _ => e,
        })?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(refuse(path, "not a regular file, refused"));
    }
    if meta.uid() != euid() {
        return Err(refuse(path, "owned by another user, refused"));
    }
    if meta.mode() & SHARED != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// Replaces the contents of `path` with `bytes`, as [`open_private`] opens it.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = open_private(path)?;
    file.set_len(0)?;
    io::Write::write_all(&mut file, bytes)
}

/// A fresh 0700 directory `<parent>/<prefix>XXXXXX` (mkdtemp(3)).
fn fresh_dir(parent: &Path, prefix: &str) -> io::Result<PathBuf> {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let template = parent.join(format!("{prefix}XXXXXX"));
    let mut bytes = template.as_os_str().as_bytes().to_vec();
    if bytes.contains(&0) {
        return Err(refuse(parent, "a NUL byte in the path"));
    }
    bytes.push(0);
    // SAFETY: `bytes` is a NUL-terminated buffer we own, alive and writable for the call;
    // mkdtemp only rewrites its trailing XXXXXX in place.
    let made = unsafe { libc::mkdtemp(bytes.as_mut_ptr().cast()) };
    if made.is_null() {
        return Err(io::Error::last_os_error());
    }
    bytes.pop();
    Ok(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
}

/// A file no other user can reach, in `parent`: created 0600 (exclusive, not through a
/// symlink) in a fresh 0700 directory, then unlinked with its directory, so nothing is left
/// behind even after a kill.
pub fn scratch_file(parent: &Path, prefix: &str) -> io::Result<File> {
    let dir = fresh_dir(parent, prefix)?;
    let path = dir.join("store");
    let made = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path);
    let unlinked = made.is_ok().then(|| std::fs::remove_file(&path));
    let removed = std::fs::remove_dir(&dir);
    let file = made?;
    unlinked.transpose()?;
    removed?;
    Ok(file)
}

#[cfg(test)]
mod tests;
