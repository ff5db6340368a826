//! What the master writes to disk is its user's alone: the `--journal` file is 0600 in a
//! directory it creates 0700, the temporary store is a 0600 file already unlinked (with the
//! 0700 directory it was made in), and a symlink planted at the journal's name is refused, not
//! followed.

use farm_tests::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

/// A directory for one test (0700, as a careful operator's), removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("{tag}-private"));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::symlink_metadata(path).expect("stat").mode() & 0o777
}

#[test]
fn the_journal_is_0600_in_a_0700_directory() {
    let tag = tag();
    let scratch = Scratch::new(&tag);
    let dir = scratch.0.join("state");
    let journal = dir.join("farm.redb");
    let arg = journal.display().to_string();
    let master = Master::start_tagged(&["--workers", "0", "--journal", &arg], &tag, "127.0.0.1:0");
    assert!(master.cli(&["jobs"]).status.success(), "the master serves");
    assert_eq!(mode(&journal), 0o600, "the journal");
    assert_eq!(mode(&dir), 0o700, "the directory the master made for it");
}

#[test]
fn the_temporary_store_is_0600_and_unlinked_with_its_directory() {
    let master = Master::start(&["--workers", "0"]);
    let fds = format!("/proc/{}/fd", master.proc.pid());
    // The store opens beside the gRPC server's start: wait for it.
    let store = wait_for(WAIT, || {
        std::fs::read_dir(&fds).ok()?.filter_map(|e| e.ok()).find_map(|e| {
            let target = std::fs::read_link(e.path()).ok()?;
            target.to_string_lossy().contains("farm-store-").then_some((e.path(), target))
        })
    });
    let (fd, target) = store.expect("the master holds its store open");
    let shown = target.to_string_lossy();
    assert!(shown.ends_with(" (deleted)"), "unlinked at once: {shown}");
    // Through /proc, the open file itself.
    assert_eq!(std::fs::metadata(&fd).expect("stat").mode() & 0o777, 0o600, "{shown}");
    let dir = target.parent().expect("its directory");
    assert!(!dir.exists(), "its directory is gone too: {}", dir.display());
}

#[test]
fn a_symlink_at_the_journals_name_is_refused_not_followed() {
    let tag = tag();
    let scratch = Scratch::new(&tag);
    let victim = scratch.0.join("victim");
    std::fs::write(&victim, b"untouched").expect("write");
    let before = mode(&victim);
    let link = scratch.0.join("farm.redb");
    std::os::unix::fs::symlink(&victim, &link).expect("symlink");
    let arg = link.display().to_string();
    let out =
        run(&["master", "--listen", "127.0.0.1:0", "--workers", "0", "--journal", &arg], &tag);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("a symlink, refused"), "{stderr}");
    assert_eq!(std::fs::read(&victim).expect("read"), b"untouched");
    assert_eq!(mode(&victim), before, "its mode is untouched too");
}
