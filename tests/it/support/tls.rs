//! A private certificate authority per test, made with the `openssl` CLI.
//!
//! Why the CLI and not the `rcgen` crate: `openssl` is already on every machine that runs these
//! tests (Debian's redis-server links libssl; scripts/test installs the `openssl` package
//! alongside it), it adds nothing to compile on the two shared build cores, and the files it
//! writes are exactly what `redis-server --tls-*-file` reads. A missing `openssl` fails the test,
//! like a missing redis-server.
//!
//! The certificates come from [`Pki`] (support/certs.rs): valid for `IP:127.0.0.1` and
//! `DNS:localhost` (rustls checks the name against the address the client dialled), with both
//! `serverAuth` and `clientAuth`, so the same pair serves redis-server, its replication links and
//! its sentinels.

use std::path::{Path, PathBuf};

use super::certs::Pki;

pub struct TestCa {
    /// Holds the files until the CA is dropped.
    dir: tempfile::TempDir,
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// A client certificate for `--tls-auth-clients yes` (mutual TLS).
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TestCa {
    /// A fresh CA (EC P-256, valid for two days) and a server and a client certificate it
    /// signed, made by the one certificate helper of the test support ([`Pki`]).
    pub fn generate() -> TestCa {
        let dir = tempfile::tempdir().expect("tempdir for the test CA");
        let pki = Pki::new(dir.path(), "fleetctl");
        let server = pki.issue("server");
        let client = pki.issue("client");
        TestCa {
            ca_cert: pki.ca.clone(),
            server_cert: server.cert,
            server_key: server.key,
            client_cert: client.cert,
            client_key: client.key,
            dir,
        }
    }

    /// The CA certificate in PEM, for `redis::TlsCertificates::root_cert`.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(&self.ca_cert).expect("read CA certificate")
    }

    pub fn client_cert_pem(&self) -> Vec<u8> {
        std::fs::read(&self.client_cert).expect("read client certificate")
    }

    pub fn client_key_pem(&self) -> Vec<u8> {
        std::fs::read(&self.client_key).expect("read client key")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `redis-server`/sentinel arguments naming these files.
    pub fn server_args(&self) -> Vec<String> {
        vec![
            "--tls-cert-file".into(),
            path_str(&self.server_cert),
            "--tls-key-file".into(),
            path_str(&self.server_key),
            "--tls-ca-cert-file".into(),
            path_str(&self.ca_cert),
        ]
    }
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("UTF-8 temp path").to_string()
}
