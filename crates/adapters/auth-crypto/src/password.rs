//! Argon2id hashing. Every hash runs on tokio's blocking pool behind a semaphore, so logins can
//! saturate at most the permitted number of threads and never stall the event loop.
//!
//! A hash made with other parameters asks to be rehashed; login then upgrades it.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use async_trait::async_trait;
use auth_core::ports::{HashError, PasswordCheck, PasswordHasher};
use tokio::sync::{OnceCell, Semaphore};
use tracing::Instrument as _;

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Settings {
    /// Memory in KiB.
    pub memory_cost: u32,
    pub time_cost: u32,
    pub parallelism: u32,
    /// How many hashes may run at once.
    pub concurrency: usize,
}

pub struct Argon2Hasher {
    params: Params,
    permits: Arc<Semaphore>,
    dummy_hash: OnceCell<String>,
}

impl Argon2Hasher {
    /// # Errors
    /// [`HashError`] when the parameters are outside what Argon2 accepts.
    pub fn new(settings: Argon2Settings) -> Result<Self, HashError> {
        let params = Params::new(
            settings.memory_cost,
            settings.time_cost,
            settings.parallelism,
            None,
        )
        .map_err(|e| HashError(format!("invalid argon2 parameters: {e}")))?;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            dummy_hash: OnceCell::new(),
        })
    }

    async fn run_blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(Argon2<'static>) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashError(e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone());
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(|| work(argon)))
            .in_current_span()
            .await
            .map_err(|e| HashError(format!("hashing task failed: {e}")))
    }

    /// Whether `password` matches the PHC string `hash`, on the blocking pool.
    async fn verify_parsed(&self, password: &str, hash: &str) -> Result<bool, HashError> {
        let (password, hash) = (password.to_owned(), hash.to_owned());
        self.run_blocking(move |argon| {
            PasswordHash::new(&hash)
                .is_ok_and(|parsed| argon.verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await
    }

    fn is_current(&self, hash: &PasswordHash<'_>) -> bool {
        hash.algorithm == argon2::ARGON2ID_IDENT
            && hash.version == Some(Version::V0x13.into())
            && Params::try_from(hash).is_ok_and(|p| {
                p.m_cost() == self.params.m_cost()
                    && p.t_cost() == self.params.t_cost()
                    && p.p_cost() == self.params.p_cost()
            })
    }
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash_password(&self, password: &str) -> Result<String, HashError> {
        let password = password.to_owned();
        self.run_blocking(move |argon| {
            let salt = SaltString::generate(&mut OsRng);
            argon
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| HashError(e.to_string()))
        })
        .await?
    }

    async fn verify_password(
        &self,
        password: &str,
        hash: &str,
    ) -> Result<PasswordCheck, HashError> {
        let Ok(parsed) = PasswordHash::new(hash) else {
            // No usable hash (an account without a password, say): spend the time of a check
            // with this deployment's parameters, so the answer does not tell such accounts
            // apart from a wrong password.
            self.verify_against_dummy(password).await?;
            return Ok(PasswordCheck::Mismatch);
        };
        let current = self.is_current(&parsed);
        let matches = self.verify_parsed(password, hash).await?;
        Ok(match (matches, current) {
            (false, _) => PasswordCheck::Mismatch,
            (true, true) => PasswordCheck::Match,
            (true, false) => PasswordCheck::MatchNeedsRehash,
        })
    }

    async fn verify_against_dummy(&self, password: &str) -> Result<(), HashError> {
        let dummy = self
            .dummy_hash
            .get_or_try_init(|| async {
                let random: [u8; 16] = rand::random();
                self.hash_password(&hex::encode(random)).await
            })
            .await?
            .clone();
        self.verify_parsed(password, &dummy).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher(memory_cost: u32) -> Argon2Hasher {
        Argon2Hasher::new(Argon2Settings {
            memory_cost,
            time_cost: 1,
            parallelism: 1,
            concurrency: 2,
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() -> Result<(), HashError> {
        let hasher = hasher(1024);
        let hash = hasher.hash_password("Secret123").await?;
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
        assert_eq!(
            hasher.verify_password("Secret123", &hash).await?,
            PasswordCheck::Match
        );
        assert_eq!(
            hasher.verify_password("Secret124", &hash).await?,
            PasswordCheck::Mismatch
        );
        assert_eq!(
            hasher
                .verify_password("Secret123", "not a phc string")
                .await?,
            PasswordCheck::Mismatch
        );
        Ok(())
    }

    #[tokio::test]
    async fn hashes_with_other_parameters_ask_to_be_rehashed() -> Result<(), HashError> {
        let old = hasher(1024).hash_password("Secret123").await?;
        assert_eq!(
            hasher(2048).verify_password("Secret123", &old).await?,
            PasswordCheck::MatchNeedsRehash
        );
        Ok(())
    }

    #[tokio::test]
    async fn the_dummy_never_matches() -> Result<(), HashError> {
        let hasher = hasher(1024);
        hasher.verify_against_dummy("anything").await?;
        hasher.verify_against_dummy("").await
    }
}
