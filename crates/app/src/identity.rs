//! The identity service of the configuration: its stores, the Argon2 hasher, the JWT codec,
//! the location source, its emails through the outbox and the policy the operator set.

use std::sync::Arc;

use anyhow::Context as _;
use auth_core::{IdentityPolicy, IdentityPorts, IdentityService};
use auth_crypto::{Argon2Hasher, Argon2Settings, JwtCodec, OsSecrets};
use kernel::Clock;
use kernel::invalidation::Invalidations;
use notify_core::EmailOutbox;
use ua_woothee::WootheeUserAgents;

use crate::background::TrackedTasks;
use crate::config::Settings;
use crate::dev_secrets::JwtSecrets;
use crate::geolocation;
use crate::notifier::QueuedAccountNotifier;
use crate::owned_data::StoredOwnedData;
use crate::process::delta;
use crate::storage::Storage;

/// What the identity service works with beyond the configuration and the stores.
pub struct IdentityParts {
    pub secrets: JwtSecrets,
    pub outbox: EmailOutbox,
    pub owned_data: StoredOwnedData,
    pub tasks: TrackedTasks,
    pub clock: Arc<dyn Clock>,
    pub invalidations: Arc<dyn Invalidations>,
}

/// The identity service over `storage`.
///
/// # Errors
/// A message when the Argon2 parameters or the location source are unusable.
pub fn service(
    settings: &Settings,
    storage: &Storage,
    parts: IdentityParts,
) -> anyhow::Result<IdentityService> {
    let hasher = Argon2Hasher::new(argon2(settings)).context("Argon2 parameters")?;
    let ports = IdentityPorts {
        users: Arc::clone(&storage.users),
        accounts: Arc::clone(&storage.accounts),
        sessions: Arc::clone(&storage.sessions),
        hasher: Arc::new(hasher),
        tokens: Arc::new(JwtCodec::new(&parts.secrets.access, &parts.secrets.refresh)),
        secrets: Arc::new(OsSecrets),
        user_agents: Arc::new(WootheeUserAgents),
        notifier: Arc::new(QueuedAccountNotifier {
            outbox: parts.outbox,
        }),
        owned_data: Arc::new(parts.owned_data),
        geolocation: geolocation::source(settings)?,
        tasks: Arc::new(parts.tasks),
        clock: parts.clock,
        invalidations: parts.invalidations,
    };
    Ok(IdentityService::new(ports, policy(settings)))
}

fn argon2(settings: &Settings) -> Argon2Settings {
    Argon2Settings {
        memory_cost: settings.argon2_memory_cost,
        time_cost: settings.argon2_time_cost,
        parallelism: settings.argon2_parallelism,
        concurrency: settings.argon2_max_concurrent,
    }
}

fn policy(settings: &Settings) -> IdentityPolicy {
    IdentityPolicy {
        access_ttl: delta(settings.access_ttl),
        refresh_ttl: delta(settings.refresh_ttl),
        refresh_reuse_interval: delta(settings.refresh_reuse_interval),
        session_check_ttl: delta(settings.session_check_ttl),
        admin_emails: settings.admin_emails.clone(),
        ..IdentityPolicy::default()
    }
}
