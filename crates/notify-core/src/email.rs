//! Email jobs (the versioned wire payload) and their text + HTML templates.

use serde::{Deserialize, Serialize};

/// One email to send, as queued. The payload is versioned so that workers of an older or newer
/// build can tell what they are reading.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "template",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum EmailJob {
    Welcome {
        to: String,
        name: String,
        /// Whose email preferences decide whether it goes out (absent in older payloads).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
    },
    VerifyEmail {
        to: String,
        name: String,
        token: String,
    },
    PasswordReset {
        to: String,
        name: String,
        token: String,
    },
    PasswordChanged {
        to: String,
        name: String,
    },
    AccountDeletionRequested {
        to: String,
        name: String,
        token: String,
    },
    AccountDeleted {
        to: String,
        name: String,
    },
}

#[derive(Serialize, Deserialize)]
struct Versioned<T> {
    version: u32,
    email: T,
}

const PAYLOAD_VERSION: u32 = 1;

impl EmailJob {
    #[must_use]
    pub fn to_payload(&self) -> String {
        serde_json::to_string(&Versioned {
            version: PAYLOAD_VERSION,
            email: self,
        })
        .unwrap_or_default()
    }

    /// # Errors
    /// A message when the payload is not a version-1 email job.
    pub fn from_payload(payload: &str) -> Result<Self, String> {
        let versioned: Versioned<Self> =
            serde_json::from_str(payload).map_err(|e| format!("unreadable email payload: {e}"))?;
        if versioned.version == PAYLOAD_VERSION {
            Ok(versioned.email)
        } else {
            Err(format!(
                "unsupported email payload version {}",
                versioned.version
            ))
        }
    }

    #[must_use]
    pub fn recipient(&self) -> &str {
        match self {
            Self::Welcome { to, .. }
            | Self::VerifyEmail { to, .. }
            | Self::PasswordReset { to, .. }
            | Self::PasswordChanged { to, .. }
            | Self::AccountDeletionRequested { to, .. }
            | Self::AccountDeleted { to, .. } => to,
        }
    }

    /// The recipient and the email preference that may turn this email off. Security emails
    /// (verification, reset, password changed, account deletion) have none: they always go.
    #[must_use]
    pub fn optional_for(&self) -> Option<(&str, &'static str)> {
        match self {
            Self::Welcome {
                user_id: Some(user),
                ..
            } => Some((user, "accountActivity")),
            _ => None,
        }
    }
}

/// Where links in emails point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Links {
    frontend_url: String,
}

impl Links {
    #[must_use]
    pub fn new(frontend_url: &str) -> Self {
        Self {
            frontend_url: frontend_url.trim_end_matches('/').to_owned(),
        }
    }

    fn with_token(&self, path: &str, token: &str) -> String {
        format!("{}/{path}?token={}", self.frontend_url, url_encode(token))
    }
}

fn url_encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn html_escape(raw: &str) -> String {
    raw.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            other => other.to_string(),
        })
        .collect()
}

/// A rendered email, ready for a transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingEmail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

struct Content {
    subject: &'static str,
    intro: String,
    action: Option<(&'static str, String)>,
    outro: &'static str,
}

/// Renders an email job into text and HTML bodies.
#[must_use]
pub fn render(job: &EmailJob, links: &Links) -> OutgoingEmail {
    let content = match job {
        EmailJob::Welcome { name, .. } => Content {
            subject: "Welcome to Console",
            intro: format!("Hi {name}, welcome aboard! Your account is ready."),
            action: None,
            outro: "We are glad to have you.",
        },
        EmailJob::VerifyEmail { name, token, .. } => Content {
            subject: "Verify your email address",
            intro: format!("Hi {name}, please confirm that this is your email address."),
            action: Some(("Verify email", links.with_token("verify-email", token))),
            outro: "This link expires in 24 hours. If you did not create an account, ignore this email.",
        },
        EmailJob::PasswordReset { name, token, .. } => Content {
            subject: "Reset your password",
            intro: format!("Hi {name}, we received a request to reset your password."),
            action: Some(("Reset password", links.with_token("reset-password", token))),
            outro: "This link expires in 1 hour and works once. If you did not ask for it, ignore this email.",
        },
        EmailJob::PasswordChanged { name, .. } => Content {
            subject: "Your password was changed",
            intro: format!(
                "Hi {name}, the password of your account was just changed, and your other sessions were signed out."
            ),
            action: None,
            outro: "If this was not you, reset your password now and contact support.",
        },
        EmailJob::AccountDeletionRequested { name, token, .. } => Content {
            subject: "Confirm the deletion of your account",
            intro: format!(
                "Hi {name}, we received a request to delete your account and everything in it."
            ),
            action: Some((
                "Delete my account",
                links.with_token("account/confirm-deletion", token),
            )),
            outro: "This link expires in 24 hours. If you did not ask for this, ignore this email and your account stays as it is.",
        },
        EmailJob::AccountDeleted { name, .. } => Content {
            subject: "Your account was deleted",
            intro: format!(
                "Hi {name}, your account and all of its data have been deleted as you asked."
            ),
            action: None,
            outro: "Thank you for having been with us.",
        },
    };
    let mut text = format!("{}\n\n", content.intro);
    let mut html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\"><h2>{}</h2><p>{}</p>",
        html_escape(content.subject),
        html_escape(&content.intro)
    );
    if let Some((label, link)) = &content.action {
        text.push_str(&format!("{label}: {link}\n\n"));
        html.push_str(&format!(
            "<p><a href=\"{}\">{}</a></p>",
            html_escape(link),
            html_escape(label)
        ));
    }
    text.push_str(content.outro);
    text.push('\n');
    html.push_str(&format!(
        "<p>{}</p></body></html>",
        html_escape(content.outro)
    ));
    OutgoingEmail {
        to: job.recipient().to_owned(),
        subject: content.subject.to_owned(),
        text,
        html,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_carry_a_version() {
        let job = EmailJob::VerifyEmail {
            to: "a@x.io".into(),
            name: "Ada".into(),
            token: "t0k".into(),
        };
        let payload = job.to_payload();
        assert!(payload.contains("\"version\":1"), "{payload}");
        assert_eq!(EmailJob::from_payload(&payload), Ok(job));
        assert!(EmailJob::from_payload("{\"version\":2,\"email\":{}}").is_err());
    }

    #[test]
    fn verification_links_use_the_frontend_url_exactly() {
        let job = EmailJob::VerifyEmail {
            to: "a@x.io".into(),
            name: "Ada".into(),
            token: "abc-_123".into(),
        };
        let email = render(&job, &Links::new("https://console.example/"));
        assert!(
            email
                .text
                .contains("https://console.example/verify-email?token=abc-_123"),
            "{}",
            email.text
        );
        assert!(
            email
                .html
                .contains("href=\"https://console.example/verify-email?token=abc-_123\"")
        );
    }

    #[test]
    fn reset_links_point_at_reset_password() {
        let job = EmailJob::PasswordReset {
            to: "a@x.io".into(),
            name: "Ada".into(),
            token: "xyz".into(),
        };
        let email = render(&job, &Links::new("http://localhost:5173"));
        assert!(
            email
                .text
                .contains("http://localhost:5173/reset-password?token=xyz")
        );
    }

    #[test]
    fn names_are_escaped_in_html() {
        let job = EmailJob::Welcome {
            to: "a@x.io".into(),
            name: "<script>".into(),
            user_id: None,
        };
        let email = render(&job, &Links::new("http://x"));
        assert!(!email.html.contains("<script>"));
        assert!(email.html.contains("&lt;script&gt;"));
    }
}
