//! `sslmode` handling: libpq's modes on top of tokio-postgres (which knows only `disable`,
//! `prefer` and `require`) with a rustls connector.

use crate::error::Error;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::path::PathBuf;
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The TLS behaviour a connection string asks for, as libpq defines `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// Never encrypt.
    Disable,
    /// Encrypt when the server offers TLS (libpq's and this crate's default); no certificate check.
    Prefer,
    /// Always encrypt; the certificate is not checked (as libpq without a root certificate).
    Require,
    /// Always encrypt; the certificate must chain to a trusted root.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host.
    VerifyFull,
}

/// A connection string with the TLS options taken out, ready for tokio-postgres.
#[derive(Debug)]
pub(crate) struct TlsOptions {
    /// The connection string tokio-postgres parses (`sslmode` rewritten, `sslrootcert` removed).
    pub(crate) connection: String,
    pub(crate) mode: SslMode,
    pub(crate) root_cert: Option<PathBuf>,
}

/// Takes `sslmode` and `sslrootcert` out of a URL (`postgres://...?sslmode=verify-full`) or a
/// key/value string (`host=db sslmode=require`).
pub(crate) fn split_options(source: &str, connection: &str) -> Result<TlsOptions, Error> {
    let mut mode = SslMode::Prefer;
    let mut root_cert = None;
    let mut apply = |key: &str, value: &str| -> Result<Option<String>, Error> {
        match key {
            "sslmode" => {
                let (parsed, passed) = match value {
                    "disable" => (SslMode::Disable, "disable"),
                    "prefer" => (SslMode::Prefer, "prefer"),
                    "require" => (SslMode::Require, "require"),
                    "verify-ca" => (SslMode::VerifyCa, "require"),
                    "verify-full" => (SslMode::VerifyFull, "require"),
                    other => {
                        return Err(Error::InvalidConnection {
                            source_name: source.to_string(),
                            message: format!(
                                "sslmode={other} is not supported; use disable, prefer, require, verify-ca or verify-full"
                            ),
                        })
                    }
                };
                mode = parsed;
                Ok(Some(format!("sslmode={passed}")))
            }
            "sslrootcert" => {
                root_cert = Some(PathBuf::from(value));
                Ok(None)
            }
            _ => Ok(Some(format!("{key}={value}"))),
        }
    };
    let connection =
        if connection.starts_with("postgres://") || connection.starts_with("postgresql://") {
            match connection.split_once('?') {
                None => connection.to_string(),
                Some((base, query)) => {
                    let mut kept = Vec::new();
                    for pair in query.split('&').filter(|p| !p.is_empty()) {
                        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                        if let Some(pair) = apply(key, value)? {
                            kept.push(pair);
                        }
                    }
                    if kept.is_empty() {
                        base.to_string()
                    } else {
                        format!("{base}?{}", kept.join("&"))
                    }
                }
            }
        } else {
            // key=value form: only unquoted sslmode/sslrootcert tokens are rewritten; every other
            // token (quoted passwords included) is passed through untouched.
            let mut kept = Vec::new();
            for token in connection.split(' ').filter(|t| !t.is_empty()) {
                match token.split_once('=') {
                    Some((key @ ("sslmode" | "sslrootcert"), value)) => {
                        if let Some(token) = apply(key, value)? {
                            kept.push(token);
                        }
                    }
                    _ => kept.push(token.to_string()),
                }
            }
            kept.join(" ")
        };
    if root_cert.is_some() && !matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) {
        // libpq ignores a root certificate unless it verifies; so do we (documented).
        root_cert = None;
    }
    Ok(TlsOptions {
        connection,
        mode,
        root_cert,
    })
}

/// The rustls connector for a mode. `Disable` still gets one: tokio-postgres never uses it.
pub(crate) fn connector(source: &str, options: &TlsOptions) -> Result<MakeRustlsConnect, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls_error = |message: String| Error::Tls {
        source_name: source.to_string(),
        message,
    };
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(e.to_string()))?;
    let config = match options.mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth(),
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let roots = match &options.root_cert {
                None => RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                },
                Some(path) => {
                    let mut roots = RootCertStore::empty();
                    let certificates = CertificateDer::pem_file_iter(path)
                        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                        .map_err(|e| {
                            tls_error(format!("cannot read sslrootcert {}: {e}", path.display()))
                        })?;
                    let (added, _ignored) = roots.add_parsable_certificates(certificates);
                    if added == 0 {
                        return Err(tls_error(format!(
                            "sslrootcert {} holds no usable certificate",
                            path.display()
                        )));
                    }
                    roots
                }
            };
            let verifier =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                    .build()
                    .map_err(|e| tls_error(e.to_string()))?;
            let verifier: Arc<dyn ServerCertVerifier> = if options.mode == SslMode::VerifyCa {
                Arc::new(ChainOnly(verifier))
            } else {
                verifier
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth()
        }
    };
    Ok(MakeRustlsConnect::new(config))
}

/// `sslmode=prefer|require`: encrypts, accepts any certificate (libpq's behaviour), but still
/// checks the handshake signatures.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `sslmode=verify-ca`: the full web-PKI check except the host name.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(connection: &str) -> Result<TlsOptions, Error> {
        split_options("db", connection)
    }

    #[test]
    fn url_modes_are_rewritten_for_tokio_postgres() -> Result<(), Error> {
        let options = split("postgres://u@h/d")?;
        assert_eq!(
            (options.connection.as_str(), options.mode),
            ("postgres://u@h/d", SslMode::Prefer)
        );

        let options = split("postgres://u@h/d?sslmode=verify-full&application_name=x")?;
        assert_eq!(options.mode, SslMode::VerifyFull);
        assert_eq!(
            options.connection,
            "postgres://u@h/d?sslmode=require&application_name=x"
        );

        let options = split("postgresql://h/d?sslrootcert=/ca.pem&sslmode=verify-ca")?;
        assert_eq!(options.mode, SslMode::VerifyCa);
        assert_eq!(options.root_cert, Some(PathBuf::from("/ca.pem")));
        assert_eq!(options.connection, "postgresql://h/d?sslmode=require");

        let options = split("postgres://h/d?sslmode=disable")?;
        assert_eq!(options.mode, SslMode::Disable);
        Ok(())
    }

    #[test]
    fn key_value_strings_keep_other_tokens() -> Result<(), Error> {
        let options = split("host=h password='a b' sslmode=verify-ca sslrootcert=/ca.pem")?;
        assert_eq!(options.connection, "host=h password='a b' sslmode=require");
        assert_eq!(options.mode, SslMode::VerifyCa);
        assert_eq!(options.root_cert, Some(PathBuf::from("/ca.pem")));
        Ok(())
    }

    #[test]
    fn unsupported_modes_are_named() {
        let error = split("postgres://h/d?sslmode=allow").unwrap_err();
        assert!(
            error.to_string().contains("sslmode=allow is not supported"),
            "{error}"
        );
    }

    #[test]
    fn root_cert_only_matters_when_verifying() -> Result<(), Error> {
        let options = split("postgres://h/d?sslmode=require&sslrootcert=/ca.pem")?;
        assert_eq!(options.root_cert, None);
        Ok(())
    }

    #[test]
    fn every_mode_builds_a_connector() -> Result<(), Error> {
        for url in [
            "postgres://h/d?sslmode=disable",
            "postgres://h/d",
            "postgres://h/d?sslmode=require",
            "postgres://h/d?sslmode=verify-ca",
            "postgres://h/d?sslmode=verify-full",
        ] {
            connector("db", &split(url)?)?;
        }
        let missing = split("postgres://h/d?sslmode=verify-full&sslrootcert=/no/such/ca.pem")?;
        let error = connector("db", &missing).err().map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("cannot read sslrootcert /no/such/ca.pem")),
            "{error:?}"
        );
        Ok(())
    }
}
