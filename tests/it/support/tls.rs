//! A private certificate authority per test, made with the `openssl` CLI.
//!
//! Why the CLI and not the `rcgen` crate: `openssl` is already on every machine that runs these
//! tests (Debian's redis-server links libssl; scripts/test installs the `openssl` package
//! alongside it), it adds nothing to compile on the two shared build cores, and the files it
//! writes are exactly what `redis-server --tls-*-file` reads. A missing `openssl` fails the test,
//! like a missing redis-server.
//!
//! The server certificate is valid for `IP:127.0.0.1` and `DNS:localhost` (rustls checks the
//! name against the address the client dialled) and has both `serverAuth` and `clientAuth`, so the
//! same pair serves redis-server, its replication links and its sentinels.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::require_binary;

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
    /// A fresh CA (EC P-256, valid for two days) and a server and a client certificate it signed.
    pub fn generate() -> TestCa {
        let dir = tempfile::tempdir().expect("tempdir for the test CA");
        let d = dir.path();
        let ca_cert = d.join("ca.crt");
        let ca_key = d.join("ca.key");
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=fleetctl test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
            ],
        );
        let (server_cert, server_key) = issue(d, "server", "localhost", &ca_cert, &ca_key);
        let (client_cert, client_key) = issue(d, "client", "fleetctl", &ca_cert, &ca_key);
        TestCa {
            dir,
            ca_cert,
            server_cert,
            server_key,
            client_cert,
            client_key,
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

/// Key and certificate `<name>.key`/`<name>.crt` for `cn`, signed by the CA.
fn issue(d: &Path, name: &str, cn: &str, ca_cert: &Path, ca_key: &Path) -> (PathBuf, PathBuf) {
    let key = format!("{name}.key");
    let csr = format!("{name}.csr");
    let crt = format!("{name}.crt");
    let ext = format!("{name}.ext");
    openssl(
        d,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            &key,
            "-out",
            &csr,
        ],
    );
    std::fs::write(
        d.join(&ext),
        "basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth,clientAuth\n\
         subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("write certificate extensions");
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            ca_cert.to_str().unwrap(),
            "-CAkey",
            ca_key.to_str().unwrap(),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &crt,
        ],
    );
    (d.join(crt), d.join(key))
}

fn openssl(dir: &Path, args: &[&str]) {
    let bin = require_binary("openssl", "openssl");
    let out = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}
