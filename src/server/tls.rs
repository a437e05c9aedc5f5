//! TLS on the node (`server.tls`): loading the certificate chain, key and optional client CA,
//! building the rustls config (TLS 1.2 and 1.3 only, HTTP/1.1 by ALPN), and swapping it for a
//! freshly loaded one on SIGHUP.
//!
//! Reload without dropping anything: each accepted connection takes the config current at its
//! handshake, and a rustls session keeps the config it started with. Replacing the config
//! therefore changes what *new* handshakes get and leaves every open connection — including an
//! idle keep-alive one — untouched. A reload that fails (a half-written file, a key that does
//! not match the certificate) keeps the old config and says why in the log; the node never
//! ends up serving nothing.
//!
//! `client_ca` turns on mutual TLS: a client must present a certificate signed by that CA
//! before any HTTP is read. It is meant for the hop between the load balancer and the nodes
//! (`lb gen-haproxy|gen-nginx --node-client-cert`), not for browsers or agents.
//!
//! This module owns no sockets; `listener.rs` accepts connections and asks [`ServerTls`] for
//! the acceptor of the moment.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;

/// Where the node's certificate material lives (`server.tls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM: the certificate, then any intermediates.
    pub cert: PathBuf,
    /// PEM: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM: CA certificates a client certificate must chain to (mutual TLS); `None` asks no
    /// client certificate.
    pub client_ca: Option<PathBuf>,
}

impl TlsSettings {
    /// `None` when the config has no `server.tls` (or, already refused by `config validate`,
    /// only one of cert and key).
    pub fn from_config(tls: Option<&TlsConfig>) -> Option<TlsSettings> {
        let tls = tls?;
        Some(TlsSettings {
            cert: tls.cert.clone()?,
            key: tls.key.clone()?,
            client_ca: tls.client_ca.clone(),
        })
    }
}

/// Why certificate material could not be used. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {message}")]
    Read {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("{path} holds no PEM {what}; expected a `-----BEGIN {label}-----` block")]
    Empty {
        what: &'static str,
        label: &'static str,
        path: PathBuf,
    },
    #[error("the certificate {cert} and the key {key} cannot be used together: {message}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        message: String,
    },
    #[error("the client CA file {path} cannot be used: {message}")]
    ClientCa { path: PathBuf, message: String },
}

/// The node's TLS config of the moment, replaceable while connections are open.
pub struct ServerTls {
    settings: TlsSettings,
    current: RwLock<Arc<ServerConfig>>,
}

impl ServerTls {
    /// Load everything `settings` names; any problem is an error naming the file.
    pub fn load(settings: TlsSettings) -> Result<Arc<ServerTls>, TlsError> {
        let config = build(&settings)?;
        Ok(Arc::new(ServerTls {
            settings,
            current: RwLock::new(config),
        }))
    }

    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// Whether clients must present a certificate.
    pub fn mutual(&self) -> bool {
        self.settings.client_ca.is_some()
    }

    /// Read the files again and use them for every handshake from now on. On error the
    /// config in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = build(&self.settings)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }

    /// The acceptor for one new connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        let config = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        TlsAcceptor::from(config)
    }

    /// Reload on every SIGHUP until the process ends, logging the outcome of each.
    #[cfg(unix)]
    pub fn reload_on_sighup(self: Arc<Self>) -> std::io::Result<tokio::task::JoinHandle<()>> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup())?;
        Ok(tokio::spawn(async move {
            while hup.recv().await.is_some() {
                match self.reload() {
                    Ok(()) => tracing::info!(
                        cert = %self.settings.cert.display(),
                        "SIGHUP: TLS certificate reloaded; new connections get it, open ones keep theirs"
                    ),
                    Err(e) => tracing::error!(
                        error = %e,
                        "SIGHUP: TLS reload failed; still serving the previous certificate"
                    ),
                }
            }
        }))
    }
}

fn build(s: &TlsSettings) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = read_certs(&s.cert, "certificate")?;
    let key = read_key(&s.key)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Mismatch {
            cert: s.cert.clone(),
            key: s.key.clone(),
            message: e.to_string(),
        })?;
    let builder = match &s.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for ca in read_certs(path, "client CA certificate")? {
                roots.add(ca).map_err(|e| TlsError::ClientCa {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::ClientCa {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Mismatch {
            cert: s.cert.clone(),
            key: s.key.clone(),
            message: e.to_string(),
        })?;
    // HTTP/1.1 only: the LBs speak it to their backends, browsers and agents fall back to it,
    // and one protocol is one set of limits to get right (see listener.rs).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read_err = |message: String| TlsError::Read {
        what,
        path: path.to_path_buf(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| read_err(pem_error(e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_err(pem_error(e)))?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            label: "CERTIFICATE",
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    match PrivateKeyDer::from_pem_file(path) {
        Ok(k) => Ok(k),
        Err(rustls::pki_types::pem::Error::NoItemsFound) => Err(TlsError::Empty {
            what: "private key",
            label: "PRIVATE KEY",
            path: path.to_path_buf(),
        }),
        Err(e) => Err(TlsError::Read {
            what: "private key",
            path: path.to_path_buf(),
            message: pem_error(e),
        }),
    }
}

fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        other => format!("not valid PEM ({other:?})"),
    }
}
