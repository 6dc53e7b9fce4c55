//! `ssl-mode` against a loopback fake server that speaks the start of the MySQL handshake and
//! then TLS with a certificate from a CA made for the test (the machine's MariaDB has no TLS):
//! which modes accept which certificates.

use dwmon_core::RowGetter;
use dwmon_core::{FetchRequest, SourceError};
use dwmon_mysql_source::MysqlSource;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

/// What the fake server says once the TLS handshake succeeded (as an "access denied" error,
/// since it knows no more of the protocol).
const AFTER_TLS: &str = "fake server: TLS handshake done";

/// What the fake server says to a client that did not ask for TLS.
const NO_TLS: &str = "fake server: plain connection";

/// A test CA (its PEM in a file) and an acceptor whose certificate it signed, for `localhost`
/// only (so connecting to 127.0.0.1 does not match the name).
struct Pki {
    acceptor: TlsAcceptor,
    ca_file: tempfile::NamedTempFile,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "dwmon test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let leaf_key = KeyPair::generate().expect("server key");
    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_string()]).expect("server params");
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let leaf = leaf_params
        .signed_by(&leaf_key, &ca, &ca_key)
        .expect("server certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivatePkcs8KeyDer::from(leaf_key.serialize_der()).into(),
        )
        .expect("server config");
    let mut ca_file = tempfile::NamedTempFile::new().expect("temp file");
    std::io::Write::write_all(&mut ca_file, ca.pem().as_bytes()).expect("write CA");
    Pki {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        ca_file,
    }
}

/// A MySQL protocol-10 handshake offering TLS (`CLIENT_SSL`).
fn handshake() -> Vec<u8> {
    let capabilities: u32 = 0x0000_0001 // LONG_PASSWORD
        | 0x0000_0008 // CONNECT_WITH_DB
        | 0x0000_0200 // PROTOCOL_41
        | 0x0000_0800 // SSL
        | 0x0000_2000 // TRANSACTIONS
        | 0x0000_8000 // SECURE_CONNECTION
        | 0x0001_0000 // MULTI_STATEMENTS
        | 0x0002_0000 // MULTI_RESULTS
        | 0x0004_0000 // PS_MULTI_RESULTS
        | 0x0008_0000 // PLUGIN_AUTH
        | 0x0100_0000; // DEPRECATE_EOF
    let caps = capabilities.to_le_bytes();
    let mut payload = vec![0x0a];
    payload.extend_from_slice(b"8.0.36-fake\0");
    payload.extend_from_slice(&7_u32.to_le_bytes());
    payload.extend_from_slice(b"abcdefgh\0");
    payload.extend_from_slice(&caps[..2]);
    payload.push(0x21);
    payload.extend_from_slice(&2_u16.to_le_bytes());
    payload.extend_from_slice(&caps[2..]);
    payload.push(21);
    payload.extend_from_slice(&[0; 10]);
    payload.extend_from_slice(b"ijklmnopqrst\0");
    payload.extend_from_slice(b"mysql_native_password\0");
    packet(0, &payload)
}

fn packet(sequence: u8, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len())
        .expect("small packet")
        .to_le_bytes();
    let mut packet = vec![length[0], length[1], length[2], sequence];
    packet.extend_from_slice(payload);
    packet
}

async fn read_packet(stream: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Vec<u8>> {
    let mut header = [0; 4];
    stream.read_exact(&mut header).await?;
    let length =
        usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
    let mut payload = vec![0; length];
    stream.read_exact(&mut payload).await?;
    Ok(payload)
}

/// Ends the conversation with an "access denied" error packet saying `message`.
async fn deny(
    stream: &mut (impl AsyncWrite + Unpin),
    sequence: u8,
    message: &str,
) -> std::io::Result<()> {
    let mut error = vec![0xff];
    error.extend_from_slice(&1045_u16.to_le_bytes());
    error.extend_from_slice(b"#28000");
    error.extend_from_slice(message.as_bytes());
    stream.write_all(&packet(sequence, &error)).await?;
    stream.shutdown().await
}

async fn after_tls(stream: &mut (impl AsyncRead + AsyncWrite + Unpin)) -> std::io::Result<()> {
    // The client's handshake response, then the end.
    read_packet(stream).await?;
    deny(stream, 3, AFTER_TLS).await
}

/// Serves the fake handshake on a loopback port until the test ends; returns the port.
async fn fake_server(acceptor: TlsAcceptor) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if stream.write_all(&handshake()).await.is_err() {
                    return;
                }
                // The client's SSL request (32 bytes), then TLS; else its plain response.
                match read_packet(&mut stream).await {
                    Ok(request) if request.len() == 32 => {}
                    Ok(_) => {
                        let _ = deny(&mut stream, 2, NO_TLS).await;
                        return;
                    }
                    Err(_) => return,
                }
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    let _ = after_tls(&mut tls).await;
                }
            });
        }
    });
    port
}

/// The connection error a fetch through `url` gets.
async fn connection_error(url: &str) -> String {
    let source = MysqlSource::builder()
        .source("default", url)
        .and_then(|b| b.build())
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let extra = serde_json::json!({});
    let request = FetchRequest {
        checker: "c",
        query: "SELECT 1",
        source: "default",
        extra: &extra,
    };
    match source.get_rows(&request).await {
        Err(SourceError::Connection { message, .. }) => message,
        other => panic!("{url}: {other:?}"),
    }
}

#[tokio::test]
async fn each_ssl_mode_checks_what_it_says() {
    let pki = pki();
    let port = fake_server(pki.acceptor.clone()).await;
    let ca = pki.ca_file.path().display().to_string();
    let accepted = |message: &str| message.contains(AFTER_TLS);
    // (host, ssl-mode and ssl-ca, whether the certificate is accepted)
    let cases = [
        // Encrypted, certificate not checked.
        ("localhost", "ssl-mode=REQUIRED".to_string(), true),
        ("127.0.0.1", "ssl-mode=PREFERRED".to_string(), true),
        // The chain must lead to the given CA...
        ("localhost", format!("ssl-mode=VERIFY_CA&ssl-ca={ca}"), true),
        // ...and, a driver limitation, the name too: mysql_async 0.37's "any host name"
        // check no longer recognises rustls 0.23's name error, so VERIFY_CA is as strict as
        // VERIFY_IDENTITY (never weaker).
        (
            "127.0.0.1",
            format!("ssl-mode=VERIFY_CA&ssl-ca={ca}"),
            false,
        ),
        // Mozilla's roots do not know the test CA.
        ("localhost", "ssl-mode=VERIFY_CA".to_string(), false),
        // And the certificate must name the host.
        (
            "localhost",
            format!("ssl-mode=verify_identity&ssl-ca={ca}"),
            true,
        ),
        (
            "127.0.0.1",
            format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}"),
            false,
        ),
    ];
    for (host, options, ok) in cases {
        let url = format!("mysql://u:hunter2@{host}:{port}/db?{options}");
        let message = connection_error(&url).await;
        assert_eq!(accepted(&message), ok, "{url}: {message}");
        if !ok {
            assert!(
                message.to_lowercase().contains("certificate"),
                "{url}: {message}"
            );
        }
        assert!(!message.contains("hunter2"), "{message}");
    }
    // DISABLED never asks for TLS, even from a server offering it.
    let message =
        connection_error(&format!("mysql://u@127.0.0.1:{port}/db?ssl-mode=DISABLED")).await;
    assert!(message.contains(NO_TLS), "{message}");
}
