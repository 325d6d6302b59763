//! The API client: JSON over HTTPS/1.1 over *any* byte stream.
//!
//! ```text
//!   ApiClient --dial--> TCP to a proxy             (tsh/tctl/nodes/leaf handshake)
//!             --dial--> SSH channel "proxy:@leaf"  (tsh reaching a leaf's API through the root)
//!        then  TLS (rustls, our trust choice, our client certificate)  then  HTTP/1.1 (hyper)
//! ```
//! One transport serves every caller, which is why we do not use reqwest: it cannot run over an
//! SSH channel, and after login we pin the cluster's own host CA with the SNI name
//! `teleport.cluster.local` instead of trusting the web certificate.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Mutex;

use crate::error::{Error, ErrorBody, Kind, Result};

/// A bidirectional byte stream.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A boxed stream.
pub type BoxStream = Box<dyn Stream>;

/// A boxed future.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Opens a new stream to the server.
pub type Dialer = Arc<dyn Fn() -> BoxFuture<'static, Result<BoxStream>> + Send + Sync>;

/// How the client decides to trust the server's TLS certificate.
#[derive(Clone)]
pub enum ServerTrust {
    /// The platform trust store plus `SSL_CERT_FILE`.
    System,
    /// Only these CA certificates (PEM).
    Pinned(Vec<String>),
    /// Accept anything (`--insecure`).
    Insecure,
    /// These CA certificates (PEM), whatever name the certificate was issued for.
    ChainOnly(Vec<String>),
}

/// A client certificate and key (PEM).
#[derive(Clone)]
pub struct ClientIdentity {
    /// Certificate PEM.
    pub cert_pem: String,
    /// PKCS#8 key PEM.
    pub key_pem: String,
}

/// Ensures the process-wide rustls provider is aws-lc-rs (cheap; idempotent).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Certificates from the platform store and `SSL_CERT_FILE`/`SSL_CERT_DIR`.
pub fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let loaded = rustls_native_certs::load_native_certs();
    for c in loaded.certs {
        let _ = roots.add(c);
    }
    // rustls-native-certs reads SSL_CERT_FILE *instead of* the platform store; add the usual
    // platform bundle too so that SSL_CERT_FILE extends rather than replaces it.
    if std::env::var_os("SSL_CERT_FILE").is_some() || std::env::var_os("SSL_CERT_DIR").is_some() {
        for path in ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"] {
            if let Ok(text) = std::fs::read_to_string(path) {
                for der in crate::certs::pem_blocks(&text).into_iter().filter(|(l, _)| l == "CERTIFICATE") {
                    let _ = roots.add(CertificateDer::from(der.1));
                }
            }
        }
    }
    roots
}

/// Builds a rustls client config.
pub fn tls_client_config(trust: &ServerTrust, identity: Option<&ClientIdentity>) -> Result<ClientConfig> {
    install_crypto_provider();
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS setup: {e}")))?;
    let builder = match trust {
        ServerTrust::System => builder.with_root_certificates(system_roots()),
        ServerTrust::Pinned(pems) => {
            let mut roots = RootCertStore::empty();
            for pem in pems {
                for (label, der) in crate::certs::pem_blocks(pem) {
                    if label == "CERTIFICATE" {
                        roots.add(CertificateDer::from(der)).map_err(|e| Error::bad_parameter(format!("invalid CA certificate: {e}")))?;
                    }
                }
            }
            builder.with_root_certificates(roots)
        }
        ServerTrust::Insecure => builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert(provider()))),
        ServerTrust::ChainOnly(pems) => {
            let mut roots = RootCertStore::empty();
            for pem in pems {
                for (label, der) in crate::certs::pem_blocks(pem) {
                    if label == "CERTIFICATE" {
                        roots.add(CertificateDer::from(der)).map_err(|e| Error::bad_parameter(format!("invalid CA certificate: {e}")))?;
                    }
                }
            }
            let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| Error::bad_parameter(format!("TLS verifier: {e}")))?;
            builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyNameServerCert(inner)))
        }
    };
    let mut cfg = match identity {
        Some(id) => {
            let chain: Vec<CertificateDer<'static>> = crate::certs::pem_blocks(&id.cert_pem)
                .into_iter()
                .filter(|(l, _)| l == "CERTIFICATE")
                .map(|(_, d)| CertificateDer::from(d))
                .collect();
            let key_der = crate::certs::first_pem_der(&id.key_pem, "PRIVATE KEY")?;
            let key = PrivateKeyDer::try_from(key_der).map_err(|e| Error::bad_parameter(format!("invalid TLS key: {e}")))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| Error::bad_parameter(format!("invalid client certificate: {e}")))?
        }
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Checks the server's chain against pinned roots but not the name it was issued for
/// (PostgreSQL's `sslmode=verify-ca`).
#[derive(Debug)]
struct AnyNameServerCert(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for AnyNameServerCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::CertificateError;
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. })) => {
                Ok(rustls::client::danger::ServerCertVerified::assertion())
            }
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Accepts any server certificate (`--insecure`), still checking handshake signatures.
#[derive(Debug)]
struct AcceptAnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A dialer for `host:port` over TCP (with `TCP_NODELAY`), with a connect timeout.
pub fn tcp_dialer(addr: &str) -> Dialer {
    tcp_dialer_from(addr, None)
}

/// Like [`tcp_dialer`], with the connection's source address set to `local` (a node whose
/// address must match where its connections come from).
pub fn tcp_dialer_from(addr: &str, local: Option<std::net::IpAddr>) -> Dialer {
    let addr = addr.to_string();
    Arc::new(move || {
        let addr = addr.clone();
        Box::pin(async move {
            let stream = tokio::time::timeout(Duration::from_secs(15), connect_from(&addr, local))
                .await
                .map_err(|_| Error::connection_problem(format!("timed out connecting to {addr}; is the address reachable?")))?
                .map_err(|e| connect_error(&addr, &e))?;
            crate::tuning::set_nodelay(&stream);
            Ok(Box::new(stream) as BoxStream)
        })
    })
}

/// Connects to `addr`, from `local` when given and of the same family.
pub async fn connect_from(addr: &str, local: Option<std::net::IpAddr>) -> std::io::Result<tokio::net::TcpStream> {
    let Some(local) = local else { return tokio::net::TcpStream::connect(addr).await };
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
    for target in tokio::net::lookup_host(addr).await? {
        let socket = if target.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        if target.is_ipv4() == local.is_ipv4() {
            socket.bind(std::net::SocketAddr::new(local, 0))?;
        }
        match socket.connect(target).await {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A one-line explanation of a failed TCP connect.
pub fn connect_error(addr: &str, e: &std::io::Error) -> Error {
    let hint = match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused; is teleport running there, and is the port right?",
        std::io::ErrorKind::NotFound => "no such host; check the address",
        _ => "",
    };
    if hint.is_empty() {
        Error::connection_problem(format!("cannot connect to {addr}: {e}"))
    } else {
        Error::connection_problem(format!("cannot connect to {addr}: {hint}"))
    }
}

/// The host part of `host:port` (brackets removed).
pub fn host_of(addr: &str) -> String {
    let a = addr.trim();
    if let Some(rest) = a.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default().to_string();
    }
    match a.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() && !h.contains(':') => h.to_string(),
        _ => a.to_string(),
    }
}

/// The JSON API client.
pub struct ApiClient {
    dialer: Dialer,
    tls: Arc<ClientConfig>,
    server_name: ServerName<'static>,
    /// What we call the server in messages.
    target: String,
    conn: Mutex<Option<Conn>>,
    timeout: Duration,
}

impl ApiClient {
    /// A client that dials with `dialer`, verifies the server as `server_name` under `trust`, and
    /// presents `identity` if given.
    pub fn new(
        dialer: Dialer,
        server_name: &str,
        trust: &ServerTrust,
        identity: Option<&ClientIdentity>,
        target: &str,
    ) -> Result<ApiClient> {
        let tls = Arc::new(tls_client_config(trust, identity)?);
        let server_name = ServerName::try_from(server_name.to_string())
            .map_err(|_| Error::bad_parameter(format!("invalid server name {server_name:?}")))?;
        Ok(ApiClient { dialer, tls, server_name, target: target.to_string(), conn: Mutex::new(None), timeout: Duration::from_secs(60) })
    }

    /// A client for `https://addr`, verifying the certificate for the address's host.
    pub fn direct(addr: &str, trust: &ServerTrust, identity: Option<&ClientIdentity>) -> Result<ApiClient> {
        Self::new(tcp_dialer(addr), &host_of(addr), trust, identity, addr)
    }

    /// Sets the per-request timeout (long-polls need longer).
    pub fn with_timeout(mut self, timeout: Duration) -> ApiClient {
        self.timeout = timeout;
        self
    }

    async fn connect(&self) -> Result<Conn> {
        let stream = (self.dialer)().await?;
        let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
        let tls = tokio::time::timeout(Duration::from_secs(15), connector.connect(self.server_name.clone(), stream))
            .await
            .map_err(|_| Error::connection_problem(format!("TLS handshake with {} timed out", self.target)))?
            .map_err(|e| tls_error(&self.target, &e))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| Error::connection_problem(format!("HTTP handshake with {}: {e}", self.target)))?;
        let (ended_tx, ended) = tokio::sync::oneshot::channel();
        let target = self.target.clone();
        tokio::spawn(async move {
            let why = conn.await.err().map(|e| request_error(&target, &e));
            let _ = ended_tx.send(why);
        });
        Ok(Conn { sender, ended })
    }

    /// Sends a request and decodes the JSON answer (or the error body).
    pub async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(&self, method: Method, path: &str, body: Option<&B>) -> Result<T> {
        let bytes = self.call_raw(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| Error::internal(format!("unexpected answer from {} for {path}: {e}", self.target)))
    }

    /// Sends a request; returns the body bytes on 2xx, the decoded error otherwise.
    pub async fn call_raw<B: Serialize + ?Sized>(&self, method: Method, path: &str, body: Option<&B>) -> Result<Vec<u8>> {
        let payload = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| Error::internal(format!("encoding request: {e}")))?,
            None => Vec::new(),
        };
        let mut guard = self.conn.lock().await;
        for attempt in 0..2 {
            let reused = guard.is_some();
            let Conn { mut sender, mut ended } = match guard.take() {
                Some(c) => c,
                None => self.connect().await?,
            };
            if sender.ready().await.is_err() {
                if reused && attempt == 0 {
                    continue;
                }
                // Why the connection ended (the server refused our certificate, say).
                if let Ok(Ok(Some(why))) = tokio::time::timeout(Duration::from_secs(1), &mut ended).await {
                    return Err(why);
                }
                return Err(Error::connection_problem(format!("connection to {} closed", self.target)));
            }
            let req = Request::builder()
                .method(method.clone())
                .uri(path)
                .header(hyper::header::HOST, self.server_name.to_str().as_ref())
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(payload.clone())))
                .map_err(|e| Error::internal(format!("building request: {e}")))?;
            let resp = match tokio::time::timeout(self.timeout, sender.send_request(req)).await {
                Err(_) => {
                    return Err(Error::connection_problem(format!("{} did not answer {path} in time", self.target)));
                }
                Ok(Err(e)) if reused && attempt == 0 && e.is_closed() => continue,
                Ok(Err(e)) => {
                    // The request may be canceled because the connection ended underneath it (the
                    // server's TLS alert arrives there); that reason is the one worth reporting.
                    if let Ok(Ok(Some(why))) = tokio::time::timeout(Duration::from_secs(1), &mut ended).await {
                        return Err(why);
                    }
                    return Err(request_error(&self.target, &e));
                }
                Ok(Ok(r)) => r,
            };
            let status = resp.status().as_u16();
            let body = tokio::time::timeout(self.timeout, resp.into_body().collect())
                .await
                .map_err(|_| Error::connection_problem(format!("{} stalled sending {path}", self.target)))?
                .map_err(|e| Error::connection_problem(format!("reading answer from {}: {e}", self.target)))?
                .to_bytes()
                .to_vec();
            *guard = Some(Conn { sender, ended });
            if (200..300).contains(&status) {
                return Ok(body);
            }
            let kind = Kind::from_http_status(status);
            return Err(match serde_json::from_slice::<ErrorBody>(&body) {
                Ok(b) => Error { kind, message: b.error.message, code: b.error.code },
                Err(_) => Error::new(kind, format!("{} answered {path} with HTTP {status}", self.target)),
            });
        }
        Err(Error::connection_problem(format!("connection to {} closed", self.target)))
    }

    /// GET `path`, the body undecoded (for callers that print it without building values).
    pub async fn get_raw(&self, path: &str) -> Result<Vec<u8>> {
        self.call_raw::<()>(Method::GET, path, None).await
    }

    /// GET and decode.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call::<(), T>(Method::GET, path, None).await
    }

    /// POST a JSON body and decode.
    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// PUT a JSON body and decode.
    pub async fn put<B: Serialize + ?Sized, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.call(Method::PUT, path, Some(body)).await
    }

    /// PATCH a JSON body and decode.
    pub async fn patch<B: Serialize + ?Sized, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.call(Method::PATCH, path, Some(body)).await
    }

    /// DELETE.
    pub async fn delete(&self, path: &str) -> Result<()> {
        self.call_raw::<()>(Method::DELETE, path, None).await.map(|_| ())
    }

    /// DELETE, decoding the answer.
    pub async fn delete_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call::<(), T>(Method::DELETE, path, None).await
    }
}

/// An open HTTP connection, and how it ended once it has.
struct Conn {
    sender: SendRequest<Full<Bytes>>,
    ended: tokio::sync::oneshot::Receiver<Option<Error>>,
}

/// A one-line explanation of a failed request. With TLS 1.3 the server checks our client
/// certificate after our side of the handshake is done, so its refusal (a TLS alert) surfaces
/// here, deep in the error's sources.
fn request_error(target: &str, e: &(dyn std::error::Error + 'static)) -> Error {
    let mut chain = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    if let Some(i) = chain.find("received fatal alert: ") {
        let alert = chain[i + "received fatal alert: ".len()..].split([':', ' ']).next().unwrap_or_default().to_string();
        return Error::access_denied(format!(
            "{target} refused our client certificate (TLS alert {alert}): it is expired, not yet valid, damaged or from \
             another cluster; sign in again with 'tsh login', or issue a new identity with 'tctl auth sign'"
        ));
    }
    Error::connection_problem(format!("request to {target} failed: {chain}"))
}

/// A one-line explanation of a failed TLS handshake.
pub fn tls_error(target: &str, e: &std::io::Error) -> Error {
    let text = e.to_string();
    // rustls hands its error back inside the io::Error: a certificate it refused is a kind of
    // its own, told apart by type, never by the text.
    let refused_cert = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|r| matches!(r, rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented));
    if refused_cert {
        Error::connection_problem(format!(
            "the TLS certificate of {target} is not trusted ({text}); install the CA with SSL_CERT_FILE, or use --insecure for testing"
        ))
        .with_code(crate::error::Code::UntrustedServerCert)
    } else {
        Error::connection_problem(format!("TLS handshake with {target} failed: {text}"))
    }
}

/// Percent-encodes a path segment.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_variants() {
        assert_eq!(host_of("root.example.com:3080"), "root.example.com");
        assert_eq!(host_of("127.0.0.2:3080"), "127.0.0.2");
        assert_eq!(host_of("[::1]:3080"), "::1");
        assert_eq!(host_of("root.example.com"), "root.example.com");
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode_segment("host/root"), "host%2Froot");
        assert_eq!(encode_segment("a b"), "a%20b");
    }
}
