//! Connects the identity core's `AccountNotifier` port to notify-core's outbox.

use async_trait::async_trait;
use auth_core::ports::{AccountEmail, AccountNotifier, NotifyError, SessionFacts};
use notify_core::{EmailJob, EmailOutbox, SessionDetails};

pub struct QueuedAccountNotifier {
    pub outbox: EmailOutbox,
}

#[async_trait]
impl AccountNotifier for QueuedAccountNotifier {
    async fn notify(&self, email: AccountEmail) -> Result<(), NotifyError> {
        let job = match email {
            AccountEmail::Welcome { to, name, user_id } => EmailJob::Welcome {
                to,
                name,
                user_id: Some(user_id.to_string()),
            },
            AccountEmail::VerifyEmail { to, name, token } => {
                EmailJob::VerifyEmail { to, name, token }
            }
            AccountEmail::PasswordReset { to, name, token } => {
                EmailJob::PasswordReset { to, name, token }
            }
            AccountEmail::PasswordChanged { to, name } => EmailJob::PasswordChanged { to, name },
            AccountEmail::AccountDeletionRequested { to, name, token } => {
                EmailJob::AccountDeletionRequested { to, name, token }
            }
            AccountEmail::AccountDeleted { to, name } => EmailJob::AccountDeleted { to, name },
            AccountEmail::NewSignIn { to, name, session } => EmailJob::NewSignIn {
                to,
                name,
                session: details(session),
            },
            AccountEmail::RefreshTokenReused { to, name, session } => {
                EmailJob::RefreshTokenReused {
                    to,
                    name,
                    session: details(session),
                }
            }
        };
        self.outbox
            .enqueue(&job)
            .await
            .map(drop)
            .map_err(|e| NotifyError(e.to_string()))
    }

    async fn forget_recipient(&self, address: &str) -> Result<(), NotifyError> {
        let forgotten = self
            .outbox
            .forget_recipient(address)
            .await
            .map_err(|e| NotifyError(e.to_string()))?;
        tracing::debug!(forgotten, "queued emails of a deleted account dropped");
        Ok(())
    }
}

fn details(facts: SessionFacts) -> SessionDetails {
    SessionDetails {
        device: facts.device.device_name,
        browser: facts.device.browser,
        os: facts.device.os,
        ip_address: facts.ip_address,
        location: facts.location,
        at: facts.at,
    }
}
