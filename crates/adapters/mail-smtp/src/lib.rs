//! `MailTransport` adapters: SMTP through lettre, and a log transport for when no SMTP server
//! is configured (development; production only when explicitly allowed, and without bodies).
//!
//! TLS is implicit (`SMTP_SECURE`), or STARTTLS, used whenever offered or required
//! (`SMTP_REQUIRE_TLS`); `SMTP_TLS_CA_FILE` adds trusted roots (`docs/adr/0005`).

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use notify_core::{MailError, MailTransport, OutgoingEmail};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use secrecy::{ExposeSecret as _, SecretString};

/// How the connection to the SMTP server is encrypted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// TLS from the first byte (SMTPS, usually port 465).
    Implicit,
    /// STARTTLS whenever the server offers it; with a server that does not, plain SMTP,
    /// credentials included.
    Opportunistic,
    /// STARTTLS or nothing: a server that does not offer it gets neither credentials nor mail.
    Required,
}

/// Where and how to reach the SMTP server.
#[derive(Clone, Debug)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub from: String,
    pub tls: SmtpTls,
    /// A PEM file whose certificates are trusted as roots besides the public ones, for a relay
    /// whose certificate a private CA issued.
    pub ca_file: Option<PathBuf>,
}

pub struct SmtpTransport {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

fn private_roots(path: &Path) -> Result<Vec<Certificate>, String> {
    let problem = |e: &dyn std::fmt::Display| format!("SMTP_TLS_CA_FILE {}: {e}", path.display());
    let pem = std::fs::read(path).map_err(|e| problem(&e))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| problem(&e))?;
    // An empty root list would only surface as "unknown issuer" at the first send.
    if certificates.is_empty() {
        return Err(problem(&"holds no PEM certificate"));
    }
    certificates
        .into_iter()
        .map(|der| Certificate::from_der(der.to_vec()).map_err(|e| problem(&e)))
        .collect()
}

impl SmtpTransport {
    /// # Errors
    /// A message when `from` is not a mailbox, the CA file cannot be used, or TLS cannot be set
    /// up for `host`.
    pub fn new(settings: &SmtpSettings) -> Result<Self, String> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| format!("SMTP_FROM is not a valid mailbox: {e}"))?;
        let mut parameters = TlsParameters::builder(settings.host.clone());
        if let Some(path) = &settings.ca_file {
            for root in private_roots(path)? {
                parameters = parameters.add_root_certificate(root);
            }
        }
        let parameters = parameters
            .build_rustls()
            .map_err(|e| format!("SMTP TLS setup failed: {e}"))?;
        let tls = match settings.tls {
            SmtpTls::Implicit => Tls::Wrapper(parameters),
            SmtpTls::Opportunistic => Tls::Opportunistic(parameters),
            SmtpTls::Required => Tls::Required(parameters),
        };
        // `builder_dangerous` is lettre's only builder without a preset port and TLS mode; the
        // mode is set right after, so nothing here is sent in clear unless `tls` allows it.
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port)
            .tls(tls)
            .timeout(Some(std::time::Duration::from_secs(20)));
        if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_owned(),
            ));
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }
}

#[async_trait]
impl MailTransport for SmtpTransport {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        let to: Mailbox = email
            .to
            .parse()
            .map_err(|e| MailError::Permanent(format!("bad recipient: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&email.subject)
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .map_err(|e| MailError::Permanent(format!("cannot build message: {e}")))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(error) if error.is_permanent() => Err(MailError::Permanent(error.to_string())),
            Err(error) => Err(MailError::Transient(error.to_string())),
        }
    }
}

/// What the log transport writes of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogBody {
    /// The text body, links and their tokens included: in development the log is the inbox.
    Included,
    /// Recipient and subject only: bodies carry reset, verification and deletion links whose
    /// tokens act for the account, and a production log has more readers than the recipient.
    Withheld,
}

/// Writes emails to the log instead of sending them.
#[derive(Clone, Copy, Debug)]
pub struct LogTransport {
    pub body: LogBody,
}

#[async_trait]
impl MailTransport for LogTransport {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        match self.body {
            LogBody::Included => tracing::info!(
                to = %email.to,
                subject = %email.subject,
                body = %email.text,
                "email (SMTP_HOST not set, logged instead of sent)"
            ),
            LogBody::Withheld => tracing::info!(
                to = %email.to,
                subject = %email.subject,
                "email not sent (SMTP_HOST not set); its body is withheld from the log"
            ),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use notify_core::{EmailJob, Links, render};

    use super::*;

    const TOKEN: &str = "k3yToAnAccount0123456789abcdef";

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|e| panic!("{e}"))
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Everything `transport` logs for a password-reset email.
    async fn logged(transport: LogTransport) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let email = render(
            &EmailJob::PasswordReset {
                to: "ada@example.com".to_owned(),
                name: "Ada".to_owned(),
                token: TOKEN.to_owned(),
            },
            &Links::new("https://console.example.com"),
        );
        // The test runtime polls on this thread, so the thread's default subscriber sees it.
        let _scope = tracing::subscriber::set_default(subscriber);
        transport
            .send(&email)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let bytes = captured.0.lock().unwrap_or_else(|e| panic!("{e}")).clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[tokio::test]
    async fn withheld_bodies_log_recipient_and_subject_but_no_link_or_token() {
        let output = logged(LogTransport {
            body: LogBody::Withheld,
        })
        .await;
        assert!(
            output.contains("ada@example.com") && output.contains("subject="),
            "{output}"
        );
        assert!(output.contains("withheld"), "{output}");
        for secret in [TOKEN, "https://", "console.example.com/"] {
            assert!(!output.contains(secret), "{secret} in {output}");
        }
    }

    #[tokio::test]
    async fn included_bodies_log_the_link_for_development() {
        let output = logged(LogTransport {
            body: LogBody::Included,
        })
        .await;
        assert!(output.contains(TOKEN), "{output}");
    }

    #[test]
    fn debug_output_of_the_settings_hides_the_password() {
        let settings = SmtpSettings {
            host: "smtp.example.com".to_owned(),
            port: 587,
            username: Some("mailer".to_owned()),
            password: Some(SecretString::from("hunter2-but-longer")),
            from: "Console <no-reply@example.com>".to_owned(),
            tls: SmtpTls::Required,
            ca_file: None,
        };
        let debug = format!("{settings:?}");
        assert!(debug.contains("mailer"), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }
}
