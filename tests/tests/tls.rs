//! TLS on the master's port: clients and workers verify the master against a CA, mutual TLS
//! on request; a wrong CA, a plaintext client, a self-signed or an expired certificate are each
//! refused with a one-line error that says what to do, and the master keeps serving.

use farm_tests::*;

fn one_line_error(out: &std::process::Output) -> String {
    assert!(!out.status.success(), "expected a refusal: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    lines[0].to_string()
}

fn tls_master(pki: &Pki, tag: &str, cert: &str, extra: &[&str]) -> Master {
    let (c, k) = (pki.file(&format!("{cert}.pem")), pki.file(&format!("{cert}.key")));
    let mut args = vec!["--tls-cert", &c, "--tls-key", &k];
    args.extend_from_slice(extra);
    let mut master = Master::start_tagged(&args, tag, "127.0.0.1:0");
    master.url = master.url.replacen("http://", "https://", 1);
    master
}

#[test]
fn workers_and_clients_verify_the_master_and_bad_peers_are_refused() {
    let tag = tag();
    let pki = Pki::new(&tag);
    let ca = pki.file("ca.pem");
    let master =
        tls_master(&pki, &tag, "server", &["--tls-ca", &ca, "--workers", "1", "--threads", "1"]);
    let url = master.url.clone();
    let _remote = spawn(
        &["worker", "--master", &url, "--tls-ca", &ca, "--threads", "1"],
        &tag,
        std::process::Stdio::null(),
    );
    let listed = || run(&["--master", &url, "--tls-ca", &ca, "workers", "--json"], &tag);
    assert!(wait_until(WAIT, || json(&listed()).as_array().is_some_and(|w| w.len() == 2)));
    let ok = run(
        &[
            "--master", &url, "--tls-ca", &ca, "submit", "primes", "--range", "0..1000", "--wait",
            "--json",
        ],
        &tag,
    );
    assert_eq!(json(&ok)["result"], 168);

    let other = pki.file("other-ca.pem");
    let wrong_ca = one_line_error(&run(&["--master", &url, "--tls-ca", &other, "jobs"], &tag));
    assert!(
        wrong_ca.contains("cannot reach master")
            && wrong_ca.contains("not signed by the CA given with --tls-ca"),
        "{wrong_ca}"
    );
    // Each TLS mismatch says what to do, not only what the transport saw.
    let plain_url = url.replacen("https://", "http://", 1);
    let plaintext = one_line_error(&run(&["--master", &plain_url, "jobs"], &tag));
    assert!(plaintext.contains("use https:// and --tls-ca"), "{plaintext}");
    let no_ca = one_line_error(&run(&["--master", &url, "jobs"], &tag));
    assert!(no_ca.contains("needs --tls-ca FILE"), "{no_ca}");
    let plain_master = Master::start_tagged(&[], &tag, "127.0.0.1:0");
    let tls_to_plain = plain_master.url.replacen("http://", "https://", 1);
    let tls_to_plain =
        one_line_error(&run(&["--master", &tls_to_plain, "--tls-ca", &ca, "jobs"], &tag));
    assert!(tls_to_plain.contains("does not answer TLS on that port"), "{tls_to_plain}");
    // Still serving.
    let ok = run(&["--master", &url, "--tls-ca", &ca, "jobs", "--json"], &tag);
    assert!(ok.status.success());
}

#[test]
fn self_signed_and_expired_certificates_are_refused() {
    let tag = tag();
    let pki = Pki::new(&tag);
    let ca = pki.file("ca.pem");
    for (cert, reason) in [("selfsigned", "UnknownIssuer"), ("expired", "certificate expired")] {
        let master = tls_master(&pki, &tag, cert, &[]);
        let refused =
            one_line_error(&run(&["--master", &master.url, "--tls-ca", &ca, "jobs"], &tag));
        assert!(refused.contains("certificate") && refused.contains(reason), "{cert}: {refused}");
    }
}

#[test]
fn mutual_tls_requires_a_client_certificate() {
    let tag = tag();
    let pki = Pki::new(&tag);
    let ca = pki.file("ca.pem");
    let master = tls_master(&pki, &tag, "server", &["--tls-client-ca", &ca]);
    let url = master.url.clone();
    let refused = one_line_error(&run(&["--master", &url, "--tls-ca", &ca, "jobs"], &tag));
    assert!(refused.starts_with("error: "), "{refused}");
    let (c, k) = (pki.file("client.pem"), pki.file("client.key"));
    let ok = run(
        &["--master", &url, "--tls-ca", &ca, "--tls-cert", &c, "--tls-key", &k, "jobs", "--json"],
        &tag,
    );
    assert!(ok.status.success(), "{ok:?}");
}

/// A worker waiting to be dialed, serving TLS with the CA-signed server certificate.
fn listening_tls_worker(pki: &Pki, tag: &str) -> (Proc, String) {
    let (cert, key) = (pki.file("server.pem"), pki.file("server.key"));
    listening_worker(tag, "127.0.0.1:0", &["--tls-cert", &cert, "--tls-key", &key])
}

#[test]
fn a_master_dials_a_listening_worker_over_tls() {
    let tag = tag();
    let pki = Pki::new(&tag);
    let ca = pki.file("ca.pem");
    let (_w, addr) = listening_tls_worker(&pki, &tag);
    let master = Master::start_tagged(&["--connect", &addr, "--tls-ca", &ca], &tag, "127.0.0.1:0");
    master.wait_workers(1);
    assert_eq!(master.submit_wait(&["primes", "--range", "0..1000"])["result"], 168);
    // A master that does not trust the worker's CA never attaches it (a second, free worker):
    // once it has dialed and failed (it logs each failed dial at debug), it still has no worker.
    let (_w2, addr2) = listening_tls_worker(&pki, &tag);
    let other = pki.file("other-ca.pem");
    let extra = ["--connect", addr2.as_str(), "--tls-ca", &other];
    let doubting = Master::start_logging(&extra, &tag, "127.0.0.1:0", "farm_master=debug");
    doubting.proc.wait_for_log(WAIT, "of a failed dial of the worker", |line| {
        line.contains(&addr2) && line.contains("not reached")
    });
    assert!(doubting.workers().is_empty());
    // The worker was free all along: a master that trusts its CA attaches it.
    let trusting =
        Master::start_tagged(&["--connect", &addr2, "--tls-ca", &ca], &tag, "127.0.0.1:0");
    trusting.wait_workers(1);
    assert!(doubting.workers().is_empty());
}
