//! TLS for client connections: etcdctl's `--cacert`, `--cert` and `--key`.
//!
//! An endpoint is dialled with TLS when it is written `https://host:port`, or written
//! `host:port` while TLS files are given (as clientv3 does when it has a TLS config). The
//! server certificate is checked against `--cacert`, or against the system's CA bundle when
//! there is none.

use std::path::{Path, PathBuf};

#[cfg(madsim)]
use real_tonic::transport::{Certificate, ClientTlsConfig, Identity};
#[cfg(not(madsim))]
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::ClientError;

/// Where the system keeps its CA bundle (Debian's `ca-certificates`).
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The TLS files of a client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// `--cacert`: the CA bundle (PEM) that server certificates must chain to.
    pub ca_file: Option<PathBuf>,
    /// `--cert`: this client's certificate (PEM), for servers requiring one.
    pub cert_file: Option<PathBuf>,
    /// `--key`: the key of `cert_file` (PEM).
    pub key_file: Option<PathBuf>,
}

impl TlsOptions {
    /// The TLS configuration for a connection to `host`.
    pub fn config(&self, host: &str) -> Result<ClientTlsConfig, ClientError> {
        let mut config = ClientTlsConfig::new().domain_name(host);
        match &self.ca_file {
            Some(ca) => config = config.ca_certificate(Certificate::from_pem(read(ca)?)),
            None => {
                if let Ok(bundle) = std::fs::read(SYSTEM_CA_BUNDLE) {
                    config = config.ca_certificate(Certificate::from_pem(bundle));
                }
            }
        }
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
            }
            (None, None) => {}
            (Some(_), None) => return Err(tls_error("--cert given without --key")),
            (None, Some(_)) => return Err(tls_error("--key given without --cert")),
        }
        Ok(config)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|e| tls_error(format!("open {}: {e}", path.display())))
}

fn tls_error(reason: impl Into<String>) -> ClientError {
    ClientError::Tls(reason.into())
}
