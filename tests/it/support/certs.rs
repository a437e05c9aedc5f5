//! A private CA and certificates for TLS tests, made by the real `openssl` CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::require_binary;

/// A CA under `dir` (`<name>-ca.pem`, `<name>-ca.key`) that signs leaf certificates.
pub struct Pki {
    pub dir: PathBuf,
    pub ca: PathBuf,
    ca_key: PathBuf,
}

/// One certificate: PEM chain, key, and both in one file (what HAProxy's `crt` wants).
#[derive(Debug, Clone)]
pub struct Leaf {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub combined: PathBuf,
}

fn openssl(args: &[&str], cwd: &Path) {
    let out = Command::new(require_binary("openssl", "openssl"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    pub fn new(dir: &Path, name: &str) -> Pki {
        let ca = dir.join(format!("{name}-ca.pem"));
        let ca_key = dir.join(format!("{name}-ca.key"));
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN={name} test CA"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout",
                ca_key.to_str().unwrap(),
                "-out",
                ca.to_str().unwrap(),
            ],
            dir,
        );
        Pki {
            dir: dir.to_path_buf(),
            ca,
            ca_key,
        }
    }

    /// A certificate for `cn` valid for localhost, fleet-node and 127.0.0.1, usable by a
    /// server and a client.
    pub fn issue(&self, cn: &str) -> Leaf {
        let d = &self.dir;
        let cert = d.join(format!("{cn}.pem"));
        let key = d.join(format!("{cn}.key"));
        let csr = d.join(format!("{cn}.csr"));
        let ext = d.join(format!("{cn}.ext"));
        std::fs::write(
            &ext,
            "subjectAltName=DNS:localhost,DNS:fleet-node,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n",
        )
        .unwrap();
        openssl(
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-subj",
                &format!("/CN={cn}"),
                "-keyout",
                key.to_str().unwrap(),
                "-out",
                csr.to_str().unwrap(),
            ],
            d,
        );
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                csr.to_str().unwrap(),
                "-CA",
                self.ca.to_str().unwrap(),
                "-CAkey",
                self.ca_key.to_str().unwrap(),
                "-set_serial",
                &format!("{}", std::process::id() as u64 * 1000 + rand_serial()),
                "-days",
                "2",
                "-extfile",
                ext.to_str().unwrap(),
                "-out",
                cert.to_str().unwrap(),
            ],
            d,
        );
        let combined = d.join(format!("{cn}-combined.pem"));
        let mut pem = std::fs::read(&cert).unwrap();
        pem.extend(std::fs::read(&key).unwrap());
        std::fs::write(&combined, pem).unwrap();
        Leaf {
            cert,
            key,
            combined,
        }
    }
}

fn rand_serial() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        % 1000
}

/// base64(SHA-256(SubjectPublicKeyInfo)) of a certificate, for Chromium's
/// `--ignore-certificate-errors-spki-list` (trust this one key, nothing else).
pub fn spki_sha256_base64(cert: &Path) -> String {
    let script = format!(
        "openssl x509 -in {} -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64",
        cert.display()
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .output()
        .expect("run openssl pipeline");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
