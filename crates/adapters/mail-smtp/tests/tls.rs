//! The SMTP adapter against the testkit sink, whose certificate a CA generated per test issued:
//! STARTTLS whenever offered, credentials only inside it, no clear-text fallback when TLS is
//! required or the certificate is not trusted.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use mail_smtp::{SmtpSettings, SmtpTls, SmtpTransport};
use notify_core::{MailError, MailTransport as _, OutgoingEmail};
use secrecy::SecretString;
use testkit::{Login, SinkOptions, SinkTls, SmtpSink};

const USER: &str = "mailer";
const PASSWORD: &str = "correct-horse-battery";

async fn sink(tls: SinkTls) -> SmtpSink {
    SmtpSink::start_with(SinkOptions { tls, auth: true }).await
}

/// The sink's CA in a file, as an operator would configure `SMTP_TLS_CA_FILE`.
fn ca_file(sink: &SmtpSink) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, sink.ca_pem().as_bytes()).unwrap();
    file
}

fn transport(
    sink: &SmtpSink,
    tls: SmtpTls,
    ca_file: Option<&tempfile::NamedTempFile>,
) -> SmtpTransport {
    SmtpTransport::new(&SmtpSettings {
        host: "127.0.0.1".to_owned(),
        port: sink.port,
        username: Some(USER.to_owned()),
        password: Some(SecretString::from(PASSWORD)),
        from: "Console <no-reply@console.test>".to_owned(),
        tls,
        ca_file: ca_file.map(|f| f.path().to_owned()),
    })
    .unwrap()
}

fn email() -> OutgoingEmail {
    OutgoingEmail {
        to: "ada@example.com".to_owned(),
        subject: "Reset your password".to_owned(),
        text: "https://console.test/reset-password?token=zz9token".to_owned(),
        html: "<a href=\"https://console.test/reset-password?token=zz9token\">Reset</a>".to_owned(),
    }
}

fn login(over_tls: bool) -> Login {
    Login {
        user: USER.to_owned(),
        password: PASSWORD.to_owned(),
        over_tls,
    }
}

#[tokio::test]
async fn starttls_is_used_when_offered_and_credentials_follow_it() {
    let sink = sink(SinkTls::StartTls).await;
    let ca = ca_file(&sink);
    transport(&sink, SmtpTls::Opportunistic, Some(&ca))
        .send(&email())
        .await
        .unwrap();
    let received = sink.received();
    assert_eq!(received.len(), 1);
    assert!(received[0].tls, "the message crossed the network in clear");
    assert_eq!(received[0].token().as_deref(), Some("zz9token"));
    assert_eq!(sink.logins(), vec![login(true)]);
}

#[tokio::test]
async fn required_tls_refuses_a_server_without_starttls() {
    let sink = sink(SinkTls::None).await;
    let result = transport(&sink, SmtpTls::Required, None)
        .send(&email())
        .await;
    let Err(MailError::Transient(error)) = result else {
        panic!("expected a retryable send error, got {result:?}");
    };
    assert!(error.contains("STARTTLS"), "{error}");
    assert!(sink.received().is_empty());
    assert!(sink.logins().is_empty(), "credentials were sent in clear");
}

#[tokio::test]
async fn opportunistic_tls_still_delivers_to_a_plain_server() {
    let sink = sink(SinkTls::None).await;
    transport(&sink, SmtpTls::Opportunistic, None)
        .send(&email())
        .await
        .unwrap();
    let received = sink.received();
    assert_eq!(received.len(), 1);
    assert!(!received[0].tls);
    // What SMTP_REQUIRE_TLS exists to prevent.
    assert_eq!(sink.logins(), vec![login(false)]);
}

#[tokio::test]
async fn implicit_tls_encrypts_from_the_first_byte() {
    let sink = sink(SinkTls::Implicit).await;
    let ca = ca_file(&sink);
    transport(&sink, SmtpTls::Implicit, Some(&ca))
        .send(&email())
        .await
        .unwrap();
    assert!(sink.received()[0].tls);
    assert_eq!(sink.logins(), vec![login(true)]);
}

#[tokio::test]
async fn an_untrusted_certificate_fails_the_send_instead_of_falling_back_to_clear() {
    let sink = sink(SinkTls::StartTls).await;
    let result = transport(&sink, SmtpTls::Opportunistic, None)
        .send(&email())
        .await;
    assert!(result.is_err(), "{result:?}");
    assert!(sink.received().is_empty());
    assert!(sink.logins().is_empty());
}

#[test]
fn an_unusable_ca_file_is_refused_at_start() {
    let empty = tempfile::NamedTempFile::new().unwrap();
    let missing = empty.path().with_extension("missing");
    for path in [empty.path().to_owned(), missing] {
        let error = SmtpTransport::new(&SmtpSettings {
            host: "127.0.0.1".to_owned(),
            port: 25,
            username: None,
            password: None,
            from: "Console <no-reply@console.test>".to_owned(),
            tls: SmtpTls::Required,
            ca_file: Some(path.clone()),
        })
        .err()
        .unwrap_or_else(|| panic!("{} was accepted", path.display()));
        assert!(error.starts_with("SMTP_TLS_CA_FILE"), "{error}");
    }
}
