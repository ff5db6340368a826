use super::*;

/// A fresh directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        Scratch(fresh_dir(&std::env::temp_dir(), "farm-private-test-").expect("scratch"))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).expect("stat").mode() & 0o777
}

#[test]
fn a_fresh_directory_is_the_users_alone() {
    let scratch = Scratch::new();
    assert_eq!(mode(&scratch.0), 0o700);
    let made = fresh_dir(&scratch.0, "x-").expect("made");
    assert!(made.file_name().is_some_and(|n| n.len() == 8), "{made:?}");
    assert_eq!(mode(&made), 0o700);
}

#[test]
fn a_scratch_file_is_0600_unlinked_and_leaves_nothing_behind() {
    let scratch = Scratch::new();
    let file = scratch_file(&scratch.0, "farm-store-").expect("scratch file");
    let meta = file.metadata().expect("fstat");
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(meta.nlink(), 0, "unlinked");
    let left: Vec<_> = std::fs::read_dir(&scratch.0).expect("list").collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_private_file_is_created_0600_and_an_older_shared_one_is_narrowed() {
    let scratch = Scratch::new();
    let new = scratch.0.join("journal.redb");
    open_private(&new).expect("created");
    assert_eq!(mode(&new), 0o600);
    let old = scratch.0.join("old.redb");
    std::fs::write(&old, b"kept").expect("write");
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    open_private(&old).expect("opened");
    assert_eq!(mode(&old), 0o600);
    assert_eq!(std::fs::read(&old).expect("read"), b"kept");
}

#[test]
fn a_symlink_at_a_predictable_name_is_refused_not_followed() {
    let scratch = Scratch::new();
    let target = scratch.0.join("victim");
    std::fs::write(&target, b"untouched").expect("write");
    let link = scratch.0.join("token");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let err = write_private(&link, b"secret").expect_err("refused");
    assert!(err.to_string().contains("a symlink, refused"), "{err}");
    assert_eq!(std::fs::read(&target).expect("read"), b"untouched");
    let err = open_private(&link).expect_err("refused");
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
}

#[test]
fn a_private_directory_is_made_0700_and_a_shared_one_is_refused() {
    let scratch = Scratch::new();
    let deep = scratch.0.join("a/b");
    private_dir(&deep).expect("made");
    assert_eq!((mode(&scratch.0.join("a")), mode(&deep)), (0o700, 0o700));
    let shared = scratch.0.join("shared");
    std::fs::create_dir(&shared).expect("mkdir");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let err = private_dir(&shared).expect_err("refused");
    assert!(err.to_string().contains("open to other users (mode 755)"), "{err}");
    let link = scratch.0.join("link");
    std::os::unix::fs::symlink(&deep, &link).expect("symlink");
    assert!(private_dir(&link).is_err(), "a symlinked directory is refused");
}
