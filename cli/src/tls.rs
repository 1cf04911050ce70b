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
    /// `--insecure-skip-tls-verify`: accept any server certificate.
    pub skip_verify: bool,
    /// The name server certificates must carry, instead of the endpoint's host (etcdctl's
    /// `--discovery-srv` domain with `--insecure-discovery=false`).
    pub server_name: Option<String>,
}

impl TlsOptions {
    /// The TLS configuration for a connection to `host`.
    pub fn config(&self, host: &str) -> Result<ClientTlsConfig, ClientError> {
        let name = self.server_name.as_deref().unwrap_or(host);
        let mut config = ClientTlsConfig::new().domain_name(name);
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

/// A connection to `authority` (`host:port`) over TLS that accepts any server certificate
/// (etcdctl's `--insecure-skip-tls-verify`), with this client's certificate if given.
#[cfg(not(madsim))]
pub async fn dial_unverified(
    options: &TlsOptions,
    authority: &str,
    host: &str,
    endpoint: tonic::transport::Endpoint,
) -> Result<tonic::transport::Channel, ClientError> {
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)));
    let mut config = match (&options.cert_file, &options.key_file) {
        (Some(cert), Some(key)) => {
            let certs = CertificateDer::pem_slice_iter(&read(cert)?)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| tls_error(format!("{}: {e}", cert.display())))?;
            let key = PrivateKeyDer::from_pem_slice(&read(key)?)
                .map_err(|e| tls_error(format!("{}: {e}", key.display())))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| tls_error(e.to_string()))?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let server_name =
        ServerName::try_from(host.to_string()).map_err(|e| tls_error(format!("{host}: {e}")))?;
    let authority = authority.to_string();
    let dial = tower::service_fn(move |_: tonic::codegen::http::Uri| {
        let (connector, server_name, authority) =
            (connector.clone(), server_name.clone(), authority.clone());
        async move {
            let tcp = tokio::net::TcpStream::connect(authority).await?;
            let tls = connector.connect(server_name, tcp).await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
        }
    });
    endpoint
        .connect_with_connector(dial)
        .await
        .map_err(|e| tls_error(format!("{host}: {e}")))
}

/// The verifier of `--insecure-skip-tls-verify`: every certificate is accepted, signatures
/// are still checked so that the handshake itself is sound.
#[cfg(not(madsim))]
#[derive(Debug)]
struct AcceptAnyCertificate(std::sync::Arc<rustls::crypto::CryptoProvider>);

#[cfg(not(madsim))]
impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|e| tls_error(format!("open {}: {e}", path.display())))
}

fn tls_error(reason: impl Into<String>) -> ClientError {
    ClientError::Tls(reason.into())
}
