//! Tests of access: roles, principals files, tokens and the table of what each call needs.

use super::*;

fn file(text: &str) -> PrincipalsFile {
    PrincipalsFile::parse(text).expect("parses")
}

const ALICE: &str = "tok-alice-0123456789";

fn alice_file() -> String {
    format!(
        "[defaults]\njobs = 100\ninput_mib = 2\n{}weight = 2\njobs = 10\n",
        entry("alice", ALICE, &[Role::Submit])
    )
}

#[test]
fn roles_grant_what_the_issue_says() {
    use Role::*;
    assert!(Submit.grants(Read) && Submit.grants(Submit) && !Submit.grants(Operate));
    assert!(Operate.grants(Submit) && !Operate.grants(Admin) && !Operate.grants(Worker));
    assert!(!Admin.grants(Worker) && Admin.grants(Operate), "workers hold their own token");
    assert!(Worker.grants(Worker) && !Worker.grants(Read));
    assert!(!Read.grants(Submit));
}

#[test]
fn a_file_gives_names_roles_weights_and_quotas_with_defaults() {
    let f = file(&alice_file());
    let a = &f.principals[0];
    assert_eq!((&*a.name, a.weight), ("alice", 2));
    assert_eq!(a.roles, vec![Role::Submit]);
    assert_eq!(a.limits.jobs, Some(10));
    assert_eq!(a.limits.input_bytes, Some(2 << 20));
    assert_eq!(a.limits.shards_in_flight, None);
    assert_eq!(a.token_sha256, Some(hash(ALICE)));
}

#[test]
fn bad_files_are_refused_with_a_reason() {
    let bad = [
        ("[[principal]]\nname = \"a\"\nroles = [\"read\"]\n", "token_sha256"),
        ("[[principal]]\nname = \"a b\"\n", "principal name"),
        ("[[principal]]\nname = \"a\"\ntoken_sha256 = \"zz\"\nroles = [\"read\"]\n", "64 hex"),
        ("[[principal]]\nname = \"a\"\nroles = [\"boss\"]\n", "boss"),
        ("[[principal]]\nnom = \"a\"\n", "nom"),
    ];
    for (text, says) in bad {
        let e = PrincipalsFile::parse(text).expect_err(text);
        assert!(e.contains(says), "{text:?}: {e}");
    }
    let twice = format!("{}{}", entry("x", "t1", &[Role::Read]), entry("x", "t2", &[Role::Read]));
    let e = Access::new(None, None, Some(file(&twice))).expect_err("twice");
    assert!(e.contains("defined twice"), "{e}");
}

#[test]
fn the_minted_local_worker_token_opens_the_worker_service_only_and_never_prints() {
    let minted = LocalWorkerToken::mint();
    assert_eq!(minted.expose().len(), 64);
    assert_ne!(minted.expose(), LocalWorkerToken::mint().expose(), "fresh each time");
    assert!(!format!("{minted:?}").contains(minted.expose()), "Debug hides it");
    assert!(check_name(LOCAL_WORKERS).is_err(), "no file can define the name");
    let access = Access::new(None, None, Some(file(&alice_file())))
        .expect("access")
        .with_local_workers(&minted);
    let bearer = format!("Bearer {}", minted.expose());
    let p = access.worker(Some(&bearer)).expect("a worker").expect("checked");
    assert_eq!((&*p.name, p.roles.as_slice()), (LOCAL_WORKERS, &[Role::Worker][..]));
    let refused = access.client(Some(&bearer)).expect_err("no client call");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
}

#[test]
fn tokens_name_their_principal_and_the_shared_ones_keep_working() {
    let access = Access::new(Some("admin-tok"), Some("worker-tok"), Some(file(&alice_file())))
        .expect("access");
    let who = |t: &str| access.client(Some(&format!("Bearer {t}"))).map(|p| p.name.clone());
    assert_eq!(who(ALICE).as_deref().ok(), Some("alice"));
    assert_eq!(who("admin-tok").as_deref().ok(), Some(DEFAULT));
    assert_eq!(who("nope").map_err(|s| s.code()), Err(tonic::Code::Unauthenticated));
    assert_eq!(access.client(None).map_err(|s| s.code()).err(), Some(tonic::Code::Unauthenticated));
    // The worker service takes only a principal that may connect as a worker.
    let w = access.worker(Some("Bearer worker-tok")).expect("worker").expect("checked");
    assert_eq!(&*w.name, WORKERS);
    assert!(access.worker(Some(&format!("Bearer {ALICE}"))).is_err());
    assert!(access.worker(Some("Bearer admin-tok")).is_err(), "only workers connect");
    let e = access.client(Some("Bearer worker-tok")).expect_err("a worker is no client");
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    assert_eq!(access.refused(), 5);
}

#[test]
fn an_open_master_stays_open() {
    let access = Access::open();
    assert_eq!(&*access.client(None).expect("open").name, DEFAULT);
    assert!(access.worker(None).expect("open").is_none());
    // A worker token alone still leaves clients open, as before.
    let access = Access::new(None, Some("w"), None).expect("access");
    assert!(access.client(None).is_ok() && access.worker(None).is_err());
}

#[test]
fn refusals_name_the_role_needed() {
    let p = file(&alice_file()).principals.remove(0);
    assert!(p.require(Role::Submit, "submit").is_ok());
    let e = p.require(Role::Operate, "drain").expect_err("no operate");
    assert!(e.0.contains("needs role operate") && e.0.contains("alice"), "{}", e.0);
    assert!(p.require_owner(Role::Submit, "alice", "cancel").is_ok());
    let e = p.require_owner(Role::Submit, "bob", "cancel").expect_err("not hers");
    assert!(e.0.contains("needs role operate"), "{}", e.0);
    let mut op = p.clone();
    op.roles = vec![Role::Operate];
    assert!(op.require_owner(Role::Submit, "bob", "cancel").is_ok());
}

#[test]
fn every_method_has_a_role_and_unknown_ones_need_admin() {
    let need = |m: &str| Need::grpc(&format!("/farm.v1.FarmService/{m}")).role;
    assert_eq!(need("Submit"), Role::Submit);
    assert_eq!(need("Cancel"), Role::Submit);
    assert_eq!(need("DrainWorker"), Role::Operate);
    assert_eq!(need("AllocAdd"), Role::Operate);
    assert_eq!(need("Get"), Role::Read);
    assert_eq!(need("Brand New"), Role::Admin);
    assert_eq!(Need::grpc("/farm.v1.WorkerService/Connect").role, Role::Worker);
    assert_eq!(Need::http("POST", "/api/jobs/3/cancel").role, Role::Submit);
    assert_eq!(Need::http("POST", "/api/workers/3/drain").role, Role::Operate);
    assert_eq!(Need::http("GET", "/api/state").role, Role::Read);
    assert_eq!(Need::http("DELETE", "/api/state").role, Role::Admin);
}

#[test]
fn a_principals_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("farm-principals-{}", std::process::id()));
    std::fs::write(&dir, alice_file()).expect("write");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let e = PrincipalsFile::read(&dir).expect_err("0644");
    assert!(e.contains("chmod 600"), "{e}");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    assert!(PrincipalsFile::read(&dir).is_err(), "group may read it");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    assert_eq!(PrincipalsFile::read(&dir).expect("0600").principals.len(), 1);
    let _ = std::fs::remove_file(dir);
}
