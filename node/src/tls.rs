//! TLS on the client and peer listeners (rustls with the ring provider), from etcd's flags.
//!
//! A listener given as an `https://` URL accepts only TLS. Its server configuration is
//! rebuilt from the certificate, key and CA files whenever one of them changes (checked at
//! every handshake, as etcd reloads per handshake), so rotating certificates needs no
//! restart. With `--client-cert-auth`/`--peer-client-cert-auth` a connecting party must
//! present a certificate that chains to the trusted CA; `--peer-cert-allowed-cn` further
//! restricts peers to one common name. With `--auto-tls`/`--peer-auto-tls` and no files, a
//! self-signed certificate is made at start-up.
//!
//! Under madsim there is no TLS: the simulated network is plaintext, and these types only
//! carry the settings.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::config::TlsSettings;

/// Why TLS cannot be set up: names the file or setting at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct TlsError {
    /// The file or setting.
    pub what: String,
    /// What is wrong with it.
    pub reason: String,
}

impl TlsError {
    fn new(what: impl std::fmt::Display, reason: impl std::fmt::Display) -> TlsError {
        TlsError {
            what: what.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// The client TLS configuration type tonic's endpoints take.
#[cfg(madsim)]
pub type ClientTls = real_tonic::transport::ClientTlsConfig;
/// The client TLS configuration type tonic's endpoints take.
#[cfg(not(madsim))]
pub type ClientTls = tonic::transport::ClientTlsConfig;

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::new(path.display(), e))
}

/// The TLS a member uses to reach its peers: their CA, and its own certificate when it has
/// files for one (so that peers requiring client certificates accept it).
pub fn peer_client_config(settings: &TlsSettings, url: &str) -> Result<ClientTls, TlsError> {
    #[cfg(madsim)]
    use real_tonic::transport::{Certificate, ClientTlsConfig, Identity};
    #[cfg(not(madsim))]
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let mut config = ClientTlsConfig::new();
    if let Some(ca) = &settings.trusted_ca {
        config = config.ca_certificate(Certificate::from_pem(read(ca)?));
    }
    if let Some((cert, key)) = &settings.cert_key {
        config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_string()))
        .ok_or_else(|| TlsError::new(url, "peer URL has no host"))?;
    Ok(config.domain_name(host))
}

/// An endpoint for the peer at `url`: with TLS (from `tls`, the peer settings) when the URL
/// is `https://`.
pub fn peer_endpoint(
    url: &str,
    tls: Option<&TlsSettings>,
) -> Result<tonic::transport::Endpoint, TlsError> {
    let endpoint = tonic::transport::Endpoint::from_shared(url.to_string())
        .map_err(|e| TlsError::new(url, e))?;
    if !is_https(url) {
        return Ok(endpoint);
    }
    let settings = tls.cloned().unwrap_or_else(TlsSettings::default_client);
    endpoint
        .tls_config(peer_client_config(&settings, url)?)
        .map_err(|e| TlsError::new(url, e))
}

/// Whether `url` is to be dialled with TLS.
pub fn is_https(url: &str) -> bool {
    url.starts_with("https://")
}

#[cfg(not(madsim))]
pub use real::{ClientConnectInfo, ServerTls, serve};

#[cfg(madsim)]
pub use sim::{ServerTls, serve};

#[cfg(madsim)]
mod sim {
    use super::*;

    /// TLS settings of a listener (unused in simulation).
    pub struct ServerTls;

    impl ServerTls {
        /// Accepts any settings: the simulation has no TLS.
        pub fn new(_settings: &TlsSettings, _hosts: &[String]) -> Result<ServerTls, TlsError> {
            Ok(ServerTls)
        }
    }

    /// Serves `router` on `addr` in plaintext until `shutdown` completes.
    pub async fn serve(
        router: tonic::transport::server::Router,
        addr: SocketAddr,
        _tls: Option<Arc<ServerTls>>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(router.serve_with_shutdown(addr, shutdown).await?)
    }
}

#[cfg(not(madsim))]
mod real {
    use std::pin::Pin;
    use std::sync::Mutex;
    use std::task::{Context, Poll};
    use std::time::{Duration, SystemTime};

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use rustls::server::WebPkiClientVerifier;
    use rustls::{RootCertStore, ServerConfig};
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_rustls::TlsAcceptor;
    use tokio_rustls::server::TlsStream;

    use super::*;
    use crate::config::TlsVersion;

    /// How long a TLS handshake may take before the connection is dropped.
    const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

    /// What identifies one version of the files: their modification times and sizes.
    type Stamp = Vec<Option<(SystemTime, u64)>>;

    /// A listener's TLS: its settings and the server configuration built from the files as
    /// they were last seen.
    pub struct ServerTls {
        settings: TlsSettings,
        /// The self-signed certificate and key of `--auto-tls`, when there are no files.
        generated: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
        current: Mutex<Option<(Stamp, Arc<ServerConfig>)>>,
    }

    impl ServerTls {
        /// Checks that the files make a usable configuration (so that a member with a
        /// missing or unreadable file refuses to start, naming it). `hosts` are the names a
        /// generated certificate is valid for.
        pub fn new(settings: &TlsSettings, hosts: &[String]) -> Result<ServerTls, TlsError> {
            let generated = match (&settings.cert_key, settings.auto) {
                (Some(_), _) => None,
                (None, true) => Some(self_signed(hosts)?),
                (None, false) => {
                    return Err(TlsError::new(
                        "--cert-file/--key-file",
                        "TLS key/cert must be provided for an https URL",
                    ));
                }
            };
            let tls = ServerTls {
                settings: settings.clone(),
                generated,
                current: Mutex::new(None),
            };
            tls.config()?;
            Ok(tls)
        }

        fn files(&self) -> Vec<&Path> {
            let mut files = Vec::new();
            if let Some((cert, key)) = &self.settings.cert_key {
                files.extend([cert.as_path(), key.as_path()]);
            }
            if let Some(ca) = &self.settings.trusted_ca {
                files.push(ca.as_path());
            }
            files
        }

        /// The server configuration for the next handshake, rebuilt if a file changed.
        /// While changed files do not make a valid configuration (a rotation half done),
        /// the previous one is kept.
        pub fn config(&self) -> Result<Arc<ServerConfig>, TlsError> {
            let stamp: Stamp = self
                .files()
                .iter()
                .map(|f| {
                    let meta = std::fs::metadata(f).ok()?;
                    Some((meta.modified().ok()?, meta.len()))
                })
                .collect();
            let mut current = self
                .current
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((seen, config)) = current.as_ref()
                && *seen == stamp
            {
                return Ok(config.clone());
            }
            match self.build() {
                Ok(config) => {
                    let config = Arc::new(config);
                    *current = Some((stamp, config.clone()));
                    Ok(config)
                }
                Err(e) => match current.as_ref() {
                    Some((_, previous)) => {
                        tracing::warn!(error = %e, "keeping the previous TLS configuration");
                        Ok(previous.clone())
                    }
                    None => Err(e),
                },
            }
        }

        fn build(&self) -> Result<ServerConfig, TlsError> {
            let settings = &self.settings;
            let (certs, key) = match (&settings.cert_key, &self.generated) {
                (Some((cert, key)), _) => (
                    CertificateDer::pem_slice_iter(&read(cert)?)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| TlsError::new(cert.display(), e))?,
                    PrivateKeyDer::from_pem_slice(&read(key)?)
                        .map_err(|e| TlsError::new(key.display(), e))?,
                ),
                (None, Some((certs, key))) => (certs.clone(), key.clone_key()),
                (None, None) => return Err(TlsError::new("--cert-file", "no certificate")),
            };
            if certs.is_empty() {
                return Err(TlsError::new("--cert-file", "no certificate in the file"));
            }
            let provider = Arc::new(provider(&settings.cipher_suites)?);
            let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
                (TlsVersion::Tls12, &rustls::version::TLS12),
                (TlsVersion::Tls13, &rustls::version::TLS13),
            ]
            .into_iter()
            .filter(|(v, _)| (settings.min_version..=settings.max_version).contains(v))
            .map(|(_, v)| v)
            .collect();
            let builder = ServerConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&versions)
                .map_err(|e| TlsError::new("--tls-min-version/--tls-max-version", e))?;
            let builder = match &settings.trusted_ca {
                Some(ca) if settings.client_cert_auth => {
                    let roots = roots(ca)?;
                    let verifier =
                        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                            .build()
                            .map_err(|e| TlsError::new(ca.display(), e))?;
                    builder.with_client_cert_verifier(verifier)
                }
                None if settings.client_cert_auth => {
                    return Err(TlsError::new(
                        "--client-cert-auth",
                        "requires --trusted-ca-file",
                    ));
                }
                _ => builder.with_no_client_auth(),
            };
            let mut config = builder
                .with_single_cert(certs, key)
                .map_err(|e| TlsError::new("--cert-file/--key-file", e))?;
            // HTTP/1.1 too: the client listeners serve /health and /metrics to plain HTTP clients.
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            Ok(config)
        }
    }

    fn roots(ca: &Path) -> Result<RootCertStore, TlsError> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&read(ca)?) {
            let cert = cert.map_err(|e| TlsError::new(ca.display(), e))?;
            roots
                .add(cert)
                .map_err(|e| TlsError::new(ca.display(), e))?;
        }
        if roots.is_empty() {
            return Err(TlsError::new(ca.display(), "no CA certificate in the file"));
        }
        Ok(roots)
    }

    /// The ring provider, restricted to `--cipher-suites` (TLS 1.2 names, as Go's) when
    /// given; TLS 1.3 suites are always offered, as Go does.
    fn provider(names: &[String]) -> Result<rustls::crypto::CryptoProvider, TlsError> {
        let mut provider = rustls::crypto::ring::default_provider();
        if names.is_empty() {
            return Ok(provider);
        }
        for name in names {
            if !provider
                .cipher_suites
                .iter()
                .any(|s| format!("{:?}", s.suite()) == *name)
            {
                return Err(TlsError::new(
                    "--cipher-suites",
                    format!("unsupported cipher suite {name:?}"),
                ));
            }
        }
        provider.cipher_suites.retain(|s| {
            s.version() == &rustls::version::TLS13
                || names.iter().any(|n| *n == format!("{:?}", s.suite()))
        });
        Ok(provider)
    }

    fn self_signed(
        hosts: &[String],
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
        let mut names: Vec<String> = hosts.to_vec();
        if names.is_empty() {
            names.push("localhost".into());
        }
        let certified = rcgen::generate_simple_self_signed(names)
            .map_err(|e| TlsError::new("--auto-tls", e))?;
        let key = PrivateKeyDer::try_from(certified.signing_key.serialize_der())
            .map_err(|e| TlsError::new("--auto-tls", e))?;
        Ok((vec![certified.cert.der().clone()], key))
    }

    /// An accepted TLS connection, as tonic serves it, with the common name of the client
    /// certificate it verified (only with `--client-cert-auth`, which asks for one).
    pub struct TlsConnection(TlsStream<TcpStream>, Option<String>);

    /// What a request learns of its TLS connection: the TCP addresses, and the verified
    /// client certificate's common name, which etcd takes as the user name of requests
    /// without a token.
    #[derive(Debug, Clone)]
    pub struct ClientConnectInfo {
        /// The TCP connection's addresses.
        pub tcp: tonic::transport::server::TcpConnectInfo,
        /// The client certificate's subject CN, if a certificate was verified.
        pub common_name: Option<String>,
    }

    impl tonic::transport::server::Connected for TlsConnection {
        type ConnectInfo = ClientConnectInfo;

        fn connect_info(&self) -> Self::ConnectInfo {
            ClientConnectInfo {
                tcp: self.0.get_ref().0.connect_info(),
                common_name: self.1.clone(),
            }
        }
    }

    impl AsyncRead for TlsConnection {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for TlsConnection {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Pin::new(&mut self.0).poll_write(cx, buf)
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.0).poll_flush(cx)
        }

        fn poll_shutdown(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.0).poll_shutdown(cx)
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[std::io::IoSlice<'_>],
        ) -> Poll<std::io::Result<usize>> {
            Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
        }

        fn is_write_vectored(&self) -> bool {
            self.0.is_write_vectored()
        }
    }

    /// Serves `router` on `addr` until `shutdown` completes: in plaintext, or with `tls`.
    pub async fn serve(
        router: tonic::transport::server::Router,
        addr: SocketAddr,
        tls: Option<Arc<ServerTls>>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let Some(tls) = tls else {
            return Ok(router.serve_with_shutdown(addr, shutdown).await?);
        };
        let listener = TcpListener::bind(addr).await?;
        let (accepted, incoming) = tokio::sync::mpsc::channel::<TlsConnection>(64);
        tokio::spawn(accept(listener, tls, accepted));
        let incoming = futures::stream::unfold(incoming, |mut incoming| async move {
            incoming
                .recv()
                .await
                .map(|c| (Ok::<_, std::io::Error>(c), incoming))
        });
        Ok(router
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await?)
    }

    /// Accepts connections and hands each to its own handshake, until the server is gone.
    async fn accept(
        listener: TcpListener,
        tls: Arc<ServerTls>,
        accepted: tokio::sync::mpsc::Sender<TlsConnection>,
    ) {
        loop {
            let (tcp, from) = select! {
                conn = listener.accept() => match conn {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = accepted.closed() => return,
            };
            let _ = tcp.set_nodelay(true);
            let (tls, accepted) = (tls.clone(), accepted.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&tls, tcp)).await {
                    Ok(Ok(conn)) => {
                        let _ = accepted.send(conn).await;
                    }
                    Ok(Err(e)) => tracing::info!(%from, error = %e, "rejected connection"),
                    Err(_) => tracing::info!(%from, "TLS handshake timed out"),
                }
            });
        }
    }

    async fn handshake(tls: &ServerTls, tcp: TcpStream) -> Result<TlsConnection, TlsError> {
        let config = tls.config()?;
        let stream = TlsAcceptor::from(config)
            .accept(tcp)
            .await
            .map_err(|e| TlsError::new("TLS handshake", e))?;
        let cn = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|certs| certs.first())
            .and_then(|cert| common_name(cert.as_ref()));
        if let Some(allowed) = &tls.settings.allowed_cn
            && cn.as_deref() != Some(allowed.as_str())
        {
            return Err(TlsError::new(
                "--peer-cert-allowed-cn",
                format!("peer certificate CN {cn:?} is not {allowed:?}"),
            ));
        }
        Ok(TlsConnection(stream, cn))
    }

    /// The subject common name of a DER certificate.
    pub fn common_name(der: &[u8]) -> Option<String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let cn = cert.subject().iter_common_name().next()?;
        cn.as_str().ok().map(str::to_string)
    }
}
