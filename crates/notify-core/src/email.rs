//! Email jobs (the versioned wire payload) and their text + HTML templates.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The session a security email is about, as the recipient should recognise it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionDetails {
    pub device: String,
    pub browser: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    /// A readable place, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// When it happened: the sign-in, or the detection of a reused token.
    pub at: DateTime<Utc>,
}

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
    NewSignIn {
        to: String,
        name: String,
        session: SessionDetails,
    },
    RefreshTokenReused {
        to: String,
        name: String,
        session: SessionDetails,
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
            | Self::AccountDeleted { to, .. }
            | Self::NewSignIn { to, .. }
            | Self::RefreshTokenReused { to, .. } => to,
        }
    }

    /// The recipient and the email preference that may turn this email off. Security emails
    /// (verification, reset, password changed, account deletion, new sign-in, token reuse)
    /// have none: they always go. Listed one by one so that a new kind has to choose.
    #[must_use]
    pub fn optional_for(&self) -> Option<(&str, &'static str)> {
        match self {
            Self::Welcome {
                user_id: Some(user),
                ..
            } => Some((user, "accountActivity")),
            Self::Welcome { user_id: None, .. }
            | Self::VerifyEmail { .. }
            | Self::PasswordReset { .. }
            | Self::PasswordChanged { .. }
            | Self::AccountDeletionRequested { .. }
            | Self::AccountDeleted { .. }
            | Self::NewSignIn { .. }
            | Self::RefreshTokenReused { .. } => None,
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
    let mut escaped = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
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
    /// Labelled facts listed under the intro.
    details: Vec<(&'static str, String)>,
    action: Option<(&'static str, String)>,
    outro: &'static str,
}

impl SessionDetails {
    fn lines(&self) -> Vec<(&'static str, String)> {
        let known = |value: &str| {
            if value.is_empty() {
                "unknown".to_owned()
            } else {
                value.to_owned()
            }
        };
        let mut lines = vec![
            ("Device", known(&self.device)),
            ("Browser", known(&self.browser)),
            ("Operating system", known(&self.os)),
            (
                "IP address",
                known(self.ip_address.as_deref().unwrap_or_default()),
            ),
        ];
        if let Some(location) = &self.location {
            lines.push(("Location", location.clone()));
        }
        lines.push(("Time", self.at.format("%Y-%m-%d %H:%M UTC").to_string()));
        lines
    }
}

/// Renders an email job into text and HTML bodies.
#[must_use]
pub fn render(job: &EmailJob, links: &Links) -> OutgoingEmail {
    let content = match job {
        EmailJob::Welcome { name, .. } => Content {
            subject: "Welcome to Console",
            intro: format!("Hi {name}, welcome aboard! Your account is ready."),
            details: Vec::new(),
            action: None,
            outro: "We are glad to have you.",
        },
        EmailJob::VerifyEmail { name, token, .. } => Content {
            subject: "Verify your email address",
            intro: format!("Hi {name}, please confirm that this is your email address."),
            details: Vec::new(),
            action: Some(("Verify email", links.with_token("verify-email", token))),
            outro: "This link expires in 24 hours. If you did not create an account, ignore this email.",
        },
        EmailJob::PasswordReset { name, token, .. } => Content {
            subject: "Reset your password",
            intro: format!("Hi {name}, we received a request to reset your password."),
            details: Vec::new(),
            action: Some(("Reset password", links.with_token("reset-password", token))),
            outro: "This link expires in 1 hour and works once. If you did not ask for it, ignore this email.",
        },
        EmailJob::PasswordChanged { name, .. } => Content {
            subject: "Your password was changed",
            intro: format!(
                "Hi {name}, the password of your account was just changed, and your other sessions were signed out."
            ),
            details: Vec::new(),
            action: None,
            outro: "If this was not you, reset your password now and contact support.",
        },
        EmailJob::AccountDeletionRequested { name, token, .. } => Content {
            subject: "Confirm the deletion of your account",
            intro: format!(
                "Hi {name}, we received a request to delete your account and everything in it."
            ),
            details: Vec::new(),
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
            details: Vec::new(),
            action: None,
            outro: "Thank you for having been with us.",
        },
        EmailJob::NewSignIn { name, session, .. } => Content {
            subject: "New sign-in to your account",
            intro: format!(
                "Hi {name}, your account was just signed in to from a device or country it has not been used from recently."
            ),
            details: session.lines(),
            action: None,
            outro: "If this was you, there is nothing to do. If not, change your password now and sign out the sessions you do not recognise.",
        },
        EmailJob::RefreshTokenReused { name, session, .. } => Content {
            subject: "A session of your account was signed out",
            intro: format!(
                "Hi {name}, a sign-in token of one of your sessions was used again after it had been replaced, which happens when someone else copied it. We signed that session out."
            ),
            details: session.lines(),
            action: None,
            outro: "Change your password now, and sign out the sessions you do not recognise.",
        },
    };
    let mut text = format!("{}\n\n", content.intro);
    let mut html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\"><h2>{}</h2><p>{}</p>",
        html_escape(content.subject),
        html_escape(&content.intro)
    );
    if !content.details.is_empty() {
        html.push_str("<ul>");
        for (label, value) in &content.details {
            text.push_str(&format!("{label}: {value}\n"));
            html.push_str(&format!(
                "<li><strong>{}:</strong> {}</li>",
                html_escape(label),
                html_escape(value)
            ));
        }
        text.push('\n');
        html.push_str("</ul>");
    }
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

    fn session() -> SessionDetails {
        SessionDetails {
            device: "iPhone".into(),
            browser: "Safari 17.4".into(),
            os: "iOS 17.4".into(),
            ip_address: Some("81.2.69.142".into()),
            location: Some("London, England, <United Kingdom>".into()),
            at: chrono::DateTime::from_timestamp(1_714_564_800, 0).unwrap_or_default(),
        }
    }

    #[test]
    fn new_sign_in_emails_name_the_device_place_and_time_in_text_and_html() {
        let job = EmailJob::NewSignIn {
            to: "a@x.io".into(),
            name: "Ada".into(),
            session: session(),
        };
        assert_eq!(EmailJob::from_payload(&job.to_payload()), Ok(job.clone()));
        let email = render(&job, &Links::new("http://x"));
        assert_eq!(email.subject, "New sign-in to your account");
        for line in [
            "Device: iPhone",
            "Browser: Safari 17.4",
            "Operating system: iOS 17.4",
            "IP address: 81.2.69.142",
            "Location: London, England, <United Kingdom>",
            "Time: 2024-05-01 12:00 UTC",
        ] {
            assert!(email.text.contains(line), "{line} in {}", email.text);
        }
        assert!(
            email.html.contains(
                "<li><strong>Location:</strong> London, England, &lt;United Kingdom&gt;</li>"
            ),
            "{}",
            email.html
        );
    }

    #[test]
    fn token_reuse_emails_say_the_session_was_signed_out_and_what_to_do() {
        let job = EmailJob::RefreshTokenReused {
            to: "a@x.io".into(),
            name: "Ada".into(),
            session: SessionDetails {
                location: None,
                ip_address: None,
                ..session()
            },
        };
        assert_eq!(EmailJob::from_payload(&job.to_payload()), Ok(job.clone()));
        let email = render(&job, &Links::new("http://x"));
        assert!(email.text.contains("signed that session out"));
        assert!(email.text.contains("Change your password"));
        assert!(email.text.contains("IP address: unknown"));
        assert!(
            !email.text.contains("Location:"),
            "an unknown place is left out"
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
