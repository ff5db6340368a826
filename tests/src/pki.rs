//! Throwaway certificates for the TLS tests: a CA and certificates it signed (and some it did
//! not), written as PEM files.

use rcgen::{date_time_ymd, BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use std::path::PathBuf;

/// Certificates for one test, written as PEM files in a temporary folder (removed on drop):
/// `ca.pem`; `server`, `client`, `expired` (2020) and `selfsigned` certificates for
/// 127.0.0.1 and localhost, each as `NAME.pem` and `NAME.key`; and `other-ca.pem`, a CA that
/// signed none of them.
pub struct Pki {
    dir: PathBuf,
}

impl Pki {
    /// Writes the files into a folder named after `tag`.
    pub fn new(tag: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("{tag}-pki"));
        std::fs::create_dir_all(&dir).expect("pki dir");
        let (ca, ca_key) = Self::ca("farm test CA");
        let (other, _) = Self::ca("another CA");
        let issuer = Issuer::from_params(&ca, &ca_key);
        let write =
            |name: &str, text: String| std::fs::write(dir.join(name), text).expect("write pem");
        write("ca.pem", ca.self_signed(&ca_key).expect("ca").pem());
        write(
            "other-ca.pem",
            other.self_signed(&KeyPair::generate().expect("key")).expect("ca").pem(),
        );
        for (name, expired, self_signed) in [
            ("server", false, false),
            ("client", false, false),
            ("expired", true, false),
            ("selfsigned", false, true),
        ] {
            let mut params =
                CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                    .expect("params");
            params.distinguished_name.push(DnType::CommonName, name);
            if expired {
                params.not_before = date_time_ymd(2020, 1, 1);
                params.not_after = date_time_ymd(2021, 1, 1);
            }
            let key = KeyPair::generate().expect("key");
            let cert = if self_signed {
                params.self_signed(&key)
            } else {
                params.signed_by(&key, &issuer)
            }
            .expect("certificate");
            write(&format!("{name}.pem"), cert.pem());
            write(&format!("{name}.key"), key.serialize_pem());
        }
        Pki { dir }
    }

    fn ca(name: &str) -> (CertificateParams, KeyPair) {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        (params, KeyPair::generate().expect("key"))
    }

    /// The path of one of the files, e.g. `ca.pem`.
    pub fn file(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().to_string()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
