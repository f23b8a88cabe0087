//! Which HTTPS servers artfs trusts: the platform's roots (as `reqwest` does by default), plus the
//! certificates in the bundles W&B users already point their tools at (`SSL_CERT_FILE`,
//! `REQUESTS_CA_BUNDLE`), so a server the `wandb` SDK reaches is reached by artfs too.
//!
//! One case needs more than adding roots: a self-signed certificate made the usual way
//! (`openssl req -x509`) is marked as a CA, and WebPKI refuses a CA certificate as a server's own
//! (`CaUsedAsEndEntity`), where OpenSSL (and so the SDK) accepts a trusted self-signed
//! certificate as it is. artfs accepts it when the server presents exactly a certificate from
//! those bundles, for a name it is valid for, within its validity period; anything else is
//! verified by WebPKI as before.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_name;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{DigitallySignedStruct, SignatureScheme};

/// The variables naming PEM bundles of certificates to trust, in the order they are read.
pub const BUNDLE_VARS: [&str; 2] = ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"];

/// The TLS setup for every HTTPS client artfs builds, when a bundle is configured; `None`: the
/// default (the platform's roots) applies.
pub fn client_config() -> Option<rustls::ClientConfig> {
    static CONFIG: OnceLock<Option<rustls::ClientConfig>> = OnceLock::new();
    CONFIG.get_or_init(|| build(&bundle_certs(|v| std::env::var(v).ok()))).clone()
}

/// The certificates of the configured bundles (unreadable files and bad PEM are skipped:
/// the platform's roots still apply, and the server's certificate then names the problem).
fn bundle_certs(var: impl Fn(&str) -> Option<String>) -> Vec<CertificateDer<'static>> {
    let mut certs = Vec::new();
    for path in BUNDLE_VARS.iter().filter_map(|v| var(v)) {
        let Ok(found) = CertificateDer::pem_file_iter(&path) else { continue };
        for cert in found.flatten() {
            if !certs.contains(&cert) {
                certs.push(cert);
            }
        }
    }
    certs
}

fn build(pinned: &[CertificateDer<'static>]) -> Option<rustls::ClientConfig> {
    if pinned.is_empty() {
        return None;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let inner =
        rustls_platform_verifier::Verifier::new_with_extra_roots(pinned.to_vec(), provider.clone())
            .ok()?;
    let verifier = TrustedSelfSigned { inner, pinned: pinned.to_vec(), provider: provider.clone() };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Some(config)
}

#[derive(Debug)]
struct TrustedSelfSigned {
    inner: rustls_platform_verifier::Verifier,
    pinned: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
}

impl TrustedSelfSigned {
    fn accepts_as_pinned(
        &self,
        end_entity: &CertificateDer<'_>,
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> bool {
        self.pinned.iter().any(|p| p.as_ref() == end_entity.as_ref())
            && ParsedCertificate::try_from(end_entity)
                .is_ok_and(|c| verify_server_name(&c, server_name).is_ok())
            && valid_at(end_entity, now)
    }
}

/// Whether `now` lies within the certificate's validity period.
fn valid_at(cert: &CertificateDer<'_>, now: UnixTime) -> bool {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return false;
    };
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let validity = parsed.validity();
    validity.not_before.timestamp() <= now && now <= validity.not_after.timestamp()
}

impl ServerCertVerifier for TrustedSelfSigned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(ok) => Ok(ok),
            Err(_) if self.accepts_as_pinned(end_entity, server_name, now) => {
                Ok(ServerCertVerified::assertion())
            }
            Err(e) => Err(e),
        }
    }

    // The handshake's signatures are checked as always: pinning says whose key it is, not that
    // the server holds it.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
