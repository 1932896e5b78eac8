//! The identity service over in-memory adapters and a hand-driven clock.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use auth_crypto::{Argon2Hasher, Argon2Settings, JwtCodec, OsSecrets};
use chrono::{DateTime, TimeDelta, Utc};
use kernel::invalidation::{AloneInvalidations, Forget, Invalidations};
use kernel::{Clock, StoreError};
use secrecy::SecretString;
use store_memory::MemoryIdentityStore;
use ua_woothee::WootheeUserAgents;

use auth_core::model::{ClientInfo, GeoLocation, ProfileChanges};
use auth_core::ports::{
    AccountEmail, AccountNotifier, AccountRepository as _, BackgroundTasks, GeoError,
    IpGeolocation, NotifyError, OwnedData, PasswordCheck, PasswordHasher as _,
    SessionRepository as _, Task, UserRepository as _,
};
use auth_core::{
    AuthError, DisplayName, Email, IdentityPolicy, IdentityPorts, IdentityService, Password,
    Registration,
};

struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    fn advance(&self, by: TimeDelta) {
        let mut now = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(Default)]
struct Outbox(Mutex<Vec<AccountEmail>>);

impl Outbox {
    fn last_token(&self) -> Option<String> {
        self.0.lock().ok()?.iter().rev().find_map(|e| match e {
            AccountEmail::VerifyEmail { token, .. }
            | AccountEmail::PasswordReset { token, .. }
            | AccountEmail::AccountDeletionRequested { token, .. } => Some(token.clone()),
            _ => None,
        })
    }
}

#[async_trait]
impl AccountNotifier for Outbox {
    async fn notify(&self, email: AccountEmail) -> Result<(), NotifyError> {
        self.0
            .lock()
            .map_err(|e| NotifyError(e.to_string()))?
            .push(email);
        Ok(())
    }

    async fn forget_recipient(&self, address: &str) -> Result<(), NotifyError> {
        self.0
            .lock()
            .map_err(|e| NotifyError(e.to_string()))?
            .retain(|email| recipient(email) != address);
        Ok(())
    }
}

fn recipient(email: &AccountEmail) -> &str {
    match email {
        AccountEmail::Welcome { to, .. }
        | AccountEmail::VerifyEmail { to, .. }
        | AccountEmail::PasswordReset { to, .. }
        | AccountEmail::PasswordChanged { to, .. }
        | AccountEmail::AccountDeletionRequested { to, .. }
        | AccountEmail::AccountDeleted { to, .. }
        | AccountEmail::NewSignIn { to, .. }
        | AccountEmail::RefreshTokenReused { to, .. } => to,
    }
}

/// Records whose owned data was erased.
#[derive(Default)]
struct ErasedOwners(Mutex<Vec<kernel::UserId>>);

#[async_trait]
impl OwnedData for ErasedOwners {
    async fn erase_owned_data(&self, owner: &kernel::UserId) -> Result<(), kernel::StoreError> {
        self.0.lock().unwrap().push(owner.clone());
        Ok(())
    }
}

/// Holds background tasks until the test runs them, so it sees the state in between.
#[derive(Default)]
struct Deferred(Mutex<Vec<Task>>);

impl BackgroundTasks for Deferred {
    fn spawn(&self, task: Task) {
        self.0.lock().unwrap().push(task);
    }

    fn spawn_after(&self, _: std::time::Duration, task: Task) {
        self.spawn(task);
    }
}

impl Deferred {
    async fn run(&self) {
        let tasks = std::mem::take(&mut *self.0.lock().unwrap());
        for task in tasks {
            task.await;
        }
    }
}

/// Places by address; any other address fails like an unreachable service.
struct Places(HashMap<IpAddr, GeoLocation>);

#[async_trait]
impl IpGeolocation for Places {
    async fn locate(&self, ip: IpAddr) -> Result<Option<GeoLocation>, GeoError> {
        self.0
            .get(&ip)
            .cloned()
            .map(Some)
            .ok_or_else(|| GeoError("unreachable".into()))
    }
}

const LONDON_IP: &str = "81.2.69.142";
const STOCKHOLM_IP: &str = "89.160.20.112";
const UNREACHABLE_IP: &str = "8.8.8.8";

fn places() -> Arc<dyn IpGeolocation> {
    let place = |city: &str, country: &str, code: &str| GeoLocation {
        city: Some(city.into()),
        country: Some(country.into()),
        country_code: Some(code.into()),
        ..GeoLocation::default()
    };
    Arc::new(Places(HashMap::from([
        (
            LONDON_IP.parse().unwrap(),
            place("London", "United Kingdom", "GB"),
        ),
        (
            STOCKHOLM_IP.parse().unwrap(),
            place("Stockholm", "Sweden", "SE"),
        ),
    ])))
}

const FIREFOX_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const FIREFOX_LINUX_UPDATED: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:129.0) Gecko/20100101 Firefox/129.0";
const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";

fn client(user_agent: &str, ip: &str) -> ClientInfo {
    ClientInfo {
        user_agent: Some(user_agent.into()),
        ip_address: Some(ip.into()),
    }
}

struct Fixture {
    service: Arc<IdentityService>,
    store: Arc<MemoryIdentityStore>,
    clock: Arc<ManualClock>,
    outbox: Arc<Outbox>,
    erased: Arc<ErasedOwners>,
    tasks: Arc<Deferred>,
}

impl Fixture {
    fn sign_in_emails(&self) -> Vec<AccountEmail> {
        self.outbox
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    AccountEmail::NewSignIn { .. } | AccountEmail::RefreshTokenReused { .. }
                )
            })
            .cloned()
            .collect()
    }
}

fn fixture_with(policy: IdentityPolicy, memory_cost: u32) -> Fixture {
    fixture_on(
        Arc::new(MemoryIdentityStore::new()),
        policy,
        memory_cost,
        None,
    )
}

fn located_fixture() -> Fixture {
    fixture_on(
        Arc::new(MemoryIdentityStore::new()),
        IdentityPolicy::default(),
        1024,
        Some(places()),
    )
}

fn hasher(memory_cost: u32) -> Argon2Hasher {
    Argon2Hasher::new(Argon2Settings {
        memory_cost,
        time_cost: 1,
        parallelism: 1,
        concurrency: 2,
    })
    .unwrap()
}

fn fixture_on(
    store: Arc<MemoryIdentityStore>,
    policy: IdentityPolicy,
    memory_cost: u32,
    geolocation: Option<Arc<dyn IpGeolocation>>,
) -> Fixture {
    fixture_adjusted(store, policy, memory_cost, |ports| {
        ports.geolocation = geolocation;
    })
}

/// A fixture whose ports `adjust` may replace (e.g. with a store that pauses on cue).
fn fixture_adjusted(
    store: Arc<MemoryIdentityStore>,
    policy: IdentityPolicy,
    memory_cost: u32,
    adjust: impl FnOnce(&mut IdentityPorts),
) -> Fixture {
    let clock = Arc::new(ManualClock(Mutex::new(Utc::now())));
    let outbox = Arc::new(Outbox::default());
    let erased = Arc::new(ErasedOwners::default());
    let tasks = Arc::new(Deferred::default());
    let mut ports = IdentityPorts {
        users: store.clone(),
        accounts: store.clone(),
        sessions: store.clone(),
        hasher: Arc::new(hasher(memory_cost)),
        tokens: Arc::new(codec()),
        secrets: Arc::new(OsSecrets),
        user_agents: Arc::new(WootheeUserAgents),
        notifier: outbox.clone(),
        owned_data: erased.clone(),
        geolocation: None,
        tasks: tasks.clone(),
        clock: clock.clone(),
        invalidations: Arc::new(AloneInvalidations),
    };
    adjust(&mut ports);
    Fixture {
        service: Arc::new(IdentityService::new(ports, policy)),
        store,
        clock,
        outbox,
        erased,
        tasks,
    }
}

/// The token codec of every fixture.
fn codec() -> JwtCodec {
    JwtCodec::new(
        &SecretString::from("7".repeat(32)),
        &SecretString::from("8".repeat(32)),
    )
}

fn fixture() -> Fixture {
    fixture_with(IdentityPolicy::default(), 1024)
}

fn registration(email: &str) -> Registration {
    Registration {
        name: DisplayName::parse("name", "Ada Lovelace").unwrap_or_else(|e| panic!("{e}")),
        email: Email::parse(email).unwrap_or_else(|e| panic!("{e}")),
        password: Password::parse_new("password", "Analytical1").unwrap_or_else(|e| panic!("{e}")),
        username: None,
    }
}

fn email(raw: &str) -> Email {
    Email::parse(raw).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn access_tokens_expire_by_the_service_clock() -> Result<(), AuthError> {
    let f = fixture();
    let outcome = f
        .service
        .register(registration("ada@x.io"), &ClientInfo::default())
        .await?;
    f.service.authenticate(&outcome.tokens.access_token).await?;
    f.clock.advance(TimeDelta::minutes(15));
    assert!(matches!(
        f.service.authenticate(&outcome.tokens.access_token).await,
        Err(AuthError::Unauthenticated)
    ));
    Ok(())
}

#[tokio::test]
async fn refresh_tokens_die_with_their_session_lifetime() -> Result<(), AuthError> {
    let f = fixture();
    let outcome = f
        .service
        .register(registration("ada@x.io"), &ClientInfo::default())
        .await?;
    f.clock.advance(TimeDelta::days(7));
    assert!(matches!(
        f.service.refresh(&outcome.tokens.refresh_token).await,
        Err(AuthError::InvalidRefreshToken)
    ));
    Ok(())
}

#[tokio::test]
async fn the_reuse_window_closes_after_its_interval() -> Result<(), AuthError> {
    let f = fixture_with(
        IdentityPolicy {
            refresh_reuse_interval: TimeDelta::seconds(10),
            ..IdentityPolicy::default()
        },
        1024,
    );
    let first = f
        .service
        .register(registration("ada@x.io"), &ClientInfo::default())
        .await?;
    let second = f.service.refresh(&first.tokens.refresh_token).await?;
    f.clock.advance(TimeDelta::seconds(5));
    f.service.refresh(&first.tokens.refresh_token).await?;
    f.clock.advance(TimeDelta::seconds(6));
    assert!(matches!(
        f.service.refresh(&first.tokens.refresh_token).await,
        Err(AuthError::InvalidRefreshToken)
    ));
    assert!(
        matches!(
            f.service.authenticate(&second.tokens.access_token).await,
            Err(AuthError::Unauthenticated)
        ),
        "late reuse is theft: the session is revoked"
    );
    Ok(())
}

#[tokio::test]
async fn reset_tokens_expire_after_an_hour() -> Result<(), AuthError> {
    let f = fixture();
    f.service
        .register(registration("ada@x.io"), &ClientInfo::default())
        .await?;
    f.service.forgot_password(email("ada@x.io"));
    f.tasks.run().await;
    let token = f.outbox.last_token().unwrap_or_default();
    f.clock.advance(TimeDelta::minutes(61));
    let new = Password::parse_new("password", "Brand9New")?;
    assert!(matches!(
        f.service.reset_password(&token, &new).await,
        Err(AuthError::InvalidOneTimeToken)
    ));
    Ok(())
}

/// A queue that refuses the next `refusing` emails; one that `keeps` them stored them anyway,
/// as a queue does whose reply was lost.
struct UnreliableQueue {
    outbox: Arc<Outbox>,
    refusing: std::sync::atomic::AtomicUsize,
    keeps: bool,
}

impl UnreliableQueue {
    fn new(outbox: &Arc<Outbox>, keeps: bool) -> Arc<Self> {
        Arc::new(Self {
            outbox: Arc::clone(outbox),
            refusing: 0.into(),
            keeps,
        })
    }
}

#[async_trait]
impl AccountNotifier for UnreliableQueue {
    async fn notify(&self, email: AccountEmail) -> Result<(), NotifyError> {
        let refuse = self
            .refusing
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if !refuse || self.keeps {
            self.outbox.notify(email).await?;
        }
        if refuse {
            return Err(NotifyError("connection reset".into()));
        }
        Ok(())
    }

    async fn forget_recipient(&self, address: &str) -> Result<(), NotifyError> {
        self.outbox.forget_recipient(address).await
    }
}

/// A fixture whose emails go through an [`UnreliableQueue`] (keeping what it refuses when
/// `keeps`) to the outbox answered, with ada@x.io registered.
async fn behind_an_unreliable_queue(
    keeps: bool,
) -> Result<(Fixture, Arc<UnreliableQueue>, Arc<Outbox>), AuthError> {
    let outbox = Arc::new(Outbox::default());
    let notifier = UnreliableQueue::new(&outbox, keeps);
    let f = fixture_adjusted(
        Arc::new(MemoryIdentityStore::new()),
        IdentityPolicy::default(),
        1024,
        |ports| ports.notifier = notifier.clone(),
    );
    f.service
        .register(registration("ada@x.io"), &ClientInfo::default())
        .await?;
    Ok((f, notifier, outbox))
}

#[tokio::test]
async fn a_reset_email_tried_again_carries_the_same_working_link() -> Result<(), AuthError> {
    let (f, notifier, outbox) = behind_an_unreliable_queue(true).await?;
    notifier.refusing.store(2, Ordering::SeqCst);
    f.service.forgot_password(email("ada@x.io"));
    for _ in 0..3 {
        f.tasks.run().await;
    }
    let links: Vec<String> = outbox
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            AccountEmail::PasswordReset { token, .. } => Some(token.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(links.len(), 3, "tried until the queue answered: {links:?}");
    assert!(links.iter().all(|link| *link == links[0]), "{links:?}");
    let new = Password::parse_new("password", "Brand9New")?;
    f.service.reset_password(&links[0], &new).await?;
    f.service
        .login(&email("ada@x.io"), "Brand9New", &ClientInfo::default())
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_password_reset_is_answered_once_stored_and_its_notice_follows_a_refusing_queue()
-> Result<(), AuthError> {
    let (f, notifier, outbox) = behind_an_unreliable_queue(false).await?;
    f.service.forgot_password(email("ada@x.io"));
    f.tasks.run().await;
    let token = outbox.last_token().unwrap_or_default();
    let notices = || {
        outbox
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, AccountEmail::PasswordChanged { .. }))
            .count()
    };
    notifier.refusing.store(1, Ordering::SeqCst);
    let new = Password::parse_new("password", "Brand9New")?;
    f.service.reset_password(&token, &new).await?;
    f.service
        .login(&email("ada@x.io"), "Brand9New", &ClientInfo::default())
        .await?;
    f.tasks.run().await;
    assert_eq!(notices(), 0, "refused once");
    f.tasks.run().await;
    assert_eq!(notices(), 1, "then queued");
    Ok(())
}

#[tokio::test]
async fn verification_tokens_expire_after_a_day() -> Result<(), AuthError> {
    let f = fixture();
    f.service
        .register(registration("ada@x.io"), &ClientInfo::default())
        .await?;
    let token = f.outbox.last_token().unwrap_or_default();
    f.clock.advance(TimeDelta::hours(24));
    assert!(matches!(
        f.service.verify_email(&token).await,
        Err(AuthError::InvalidOneTimeToken)
    ));
    Ok(())
}

#[tokio::test]
async fn one_time_tokens_are_stored_only_as_digests() -> Result<(), AuthError> {
    let f = fixture();
    let outcome = f
        .service
        .register(registration("ada@x.io"), &ClientInfo::default())
        .await?;
    f.service.forgot_password(email("ada@x.io"));
    f.tasks.run().await;
    let account = f
        .store
        .find_account_by_email("ada@x.io")
        .await?
        .unwrap_or_else(|| panic!("account"));
    let reset = f.outbox.last_token().unwrap_or_default();
    let stored = account.password_reset.clone().unwrap();
    assert_ne!(stored.hash, reset);
    assert!(!format!("{account:?}").contains(&reset));
    let session = f
        .store
        .list_live_sessions(&outcome.user.user.id, f.clock.now())
        .await?;
    assert!(
        !session[0].refresh_hash.is_empty()
            && !outcome
                .tokens
                .refresh_token
                .contains(&session[0].refresh_hash)
    );
    Ok(())
}

#[tokio::test]
async fn login_upgrades_hashes_made_with_old_parameters() -> Result<(), AuthError> {
    let old = fixture_with(IdentityPolicy::default(), 1024);
    old.service
        .register(registration("ada@x.io"), &ClientInfo::default())
        .await?;
    let hash_of = |f: &Fixture| {
        let store = f.store.clone();
        async move {
            store
                .find_account_by_email("ada@x.io")
                .await
                .unwrap()
                .unwrap()
                .password_hash
        }
    };
    assert!(hash_of(&old).await.contains("m=1024"));
    // The same accounts, served by a service configured with stronger parameters.
    let stronger = fixture_on(old.store.clone(), IdentityPolicy::default(), 2048, None);
    stronger
        .service
        .login(&email("ada@x.io"), "Analytical1", &ClientInfo::default())
        .await?;
    let upgraded = hash_of(&stronger).await;
    assert!(upgraded.contains("m=2048"), "{upgraded}");
    stronger
        .service
        .login(&email("ada@x.io"), "Analytical1", &ClientInfo::default())
        .await?;
    assert_eq!(
        hash_of(&stronger).await,
        upgraded,
        "an up-to-date hash is left alone"
    );
    Ok(())
}

#[tokio::test]
async fn hashes_in_the_nestjs_argon2_format_verify() -> Result<(), AuthError> {
    // The `argon2` npm package's defaults as the old service configured them: argon2id,
    // m=65536, t=3, p=4, PHC string.
    let legacy = Argon2Hasher::new(Argon2Settings {
        memory_cost: 65536,
        time_cost: 3,
        parallelism: 4,
        concurrency: 1,
    })
    .unwrap();
    let hash = legacy.hash_password("Analytical1").await?;
    assert!(hash.starts_with("$argon2id$v=19$m=65536,t=3,p=4$"));
    assert_eq!(
        hasher(1024).verify_password("Analytical1", &hash).await?,
        PasswordCheck::MatchNeedsRehash
    );
    assert_eq!(
        legacy.verify_password("Analytical1", &hash).await?,
        PasswordCheck::Match
    );
    Ok(())
}

#[tokio::test]
async fn account_deletion_needs_the_callers_own_unexpired_token() -> Result<(), AuthError> {
    let f = fixture();
    let ada = f
        .service
        .register(registration("ada@x.io"), &ClientInfo::default())
        .await?;
    let bob = f
        .service
        .register(registration("bob@x.io"), &ClientInfo::default())
        .await?;
    let ada_principal = f.service.authenticate(&ada.tokens.access_token).await?;
    let bob_principal = f.service.authenticate(&bob.tokens.access_token).await?;
    f.service.request_account_deletion(&ada_principal).await?;
    let token = f.outbox.last_token().unwrap_or_default();
    assert!(
        matches!(
            f.service.delete_account(&bob_principal, &token).await,
            Err(AuthError::InvalidOneTimeToken)
        ),
        "another user's token does nothing"
    );
    f.clock.advance(TimeDelta::hours(25));
    assert!(
        matches!(
            f.service.delete_account(&ada_principal, &token).await,
            Err(AuthError::InvalidOneTimeToken)
        ),
        "the token expires after a day"
    );
    assert!(f.erased.0.lock().unwrap().is_empty(), "nothing was erased");

    f.service.request_account_deletion(&ada_principal).await?;
    let token = f.outbox.last_token().unwrap_or_default();
    let ada_principal = f.service.authenticate(&ada.tokens.access_token).await;
    // The access token of the registration may have expired with the clock; log in again.
    let ada_principal = match ada_principal {
        Ok(p) => p,
        Err(_) => {
            let login = f
                .service
                .login(&email("ada@x.io"), "Analytical1", &ClientInfo::default())
                .await?;
            f.service.authenticate(&login.tokens.access_token).await?
        }
    };
    f.service.delete_account(&ada_principal, &token).await?;
    let erased = f.erased.0.lock().unwrap().clone();
    assert!(
        !erased.is_empty() && erased.iter().all(|owner| *owner == ada_principal.user_id),
        "{erased:?}"
    );
    assert!(f.store.find_user(&ada_principal.user_id).await?.is_none());
    assert!(f.store.find_account_by_email("ada@x.io").await?.is_none());
    assert!(matches!(
        f.service.authenticate(&ada.tokens.access_token).await,
        Err(AuthError::Unauthenticated)
    ));
    assert!(matches!(
        f.outbox.0.lock().unwrap().last(),
        Some(AccountEmail::AccountDeleted { to, .. }) if to == "ada@x.io"
    ));
    assert!(
        f.store.find_account_by_email("bob@x.io").await?.is_some(),
        "bob is untouched"
    );
    Ok(())
}

/// Sessions from the memory store, except that a `find_session` can be paused between reading
/// and answering, to replay a liveness check racing a revoke.
struct PausingSessions {
    store: Arc<MemoryIdentityStore>,
    armed: std::sync::atomic::AtomicBool,
    read_done: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

#[async_trait]
impl auth_core::ports::SessionRepository for PausingSessions {
    async fn insert_session(&self, s: &auth_core::model::Session) -> Result<(), StoreError> {
        self.store.insert_session(s).await
    }
    async fn find_session(
        &self,
        id: &auth_core::model::SessionId,
    ) -> Result<Option<auth_core::model::Session>, StoreError> {
        let found = self.store.find_session(id).await;
        if self.armed.swap(false, Ordering::SeqCst) {
            self.read_done.notify_one();
            self.release.notified().await;
        }
        found
    }
    async fn rotate_refresh(
        &self,
        id: &auth_core::model::SessionId,
        rotation: &auth_core::ports::Rotation,
    ) -> Result<bool, StoreError> {
        self.store.rotate_refresh(id, rotation).await
    }
    async fn touch_session(
        &self,
        id: &auth_core::model::SessionId,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.store.touch_session(id, at).await
    }
    async fn revoke_session(
        &self,
        owner: &kernel::UserId,
        id: &auth_core::model::SessionId,
    ) -> Result<bool, StoreError> {
        self.store.revoke_session(owner, id).await
    }
    async fn revoke_sessions_except(
        &self,
        owner: &kernel::UserId,
        keep: Option<&auth_core::model::SessionId>,
    ) -> Result<Vec<auth_core::model::SessionId>, StoreError> {
        self.store.revoke_sessions_except(owner, keep).await
    }
    async fn list_live_sessions(
        &self,
        owner: &kernel::UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<auth_core::model::Session>, StoreError> {
        self.store.list_live_sessions(owner, now).await
    }
    async fn purge_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.store.purge_sessions(now).await
    }
    async fn delete_sessions_of(&self, user: &kernel::UserId) -> Result<(), StoreError> {
        self.store.delete_sessions_of(user).await
    }
    async fn set_session_location(
        &self,
        id: &auth_core::model::SessionId,
        location: &GeoLocation,
    ) -> Result<(), StoreError> {
        self.store.set_session_location(id, location).await
    }
    async fn session_history(
        &self,
        owner: &kernel::UserId,
        limit: usize,
    ) -> Result<Vec<auth_core::model::Session>, StoreError> {
        self.store.session_history(owner, limit).await
    }
}

/// What an instance announced, for the test to hand to the others.
#[derive(Default)]
struct Announced(Mutex<Vec<Forget>>);

impl Invalidations for Announced {
    fn announce(&self, forget: Forget) {
        self.0.lock().unwrap().push(forget);
    }
}

impl Announced {
    /// Hands everything announced so far to `instance`.
    fn deliver_to(&self, instance: &IdentityService) {
        for forget in self.0.lock().unwrap().drain(..) {
            instance.forget_announced(&forget);
        }
    }
}

#[tokio::test]
async fn what_one_instance_revokes_or_changes_another_forgets_when_told() -> Result<(), AuthError> {
    let store = Arc::new(MemoryIdentityStore::new());
    let announced = Arc::new(Announced::default());
    let policy = IdentityPolicy {
        session_check_ttl: TimeDelta::minutes(10),
        ..IdentityPolicy::default()
    };
    let one = fixture_adjusted(store.clone(), policy.clone(), 1024, |ports| {
        ports.invalidations = announced.clone();
    });
    let two = fixture_adjusted(store, policy, 1024, |_| {});
    let outcome = one
        .service
        .register(registration("ada@x.io"), &ClientInfo::default())
        .await?;
    let token = outcome.tokens.access_token;
    let principal = two.service.authenticate(&token).await?;
    let before = two.service.me(&principal).await?;
    one.service
        .update_profile(
            &principal,
            &ProfileChanges {
                bio: Some(Some("Countess".to_owned())),
                ..ProfileChanges::default()
            },
        )
        .await?;
    one.service.logout(&principal).await?;
    assert!(
        two.service.authenticate(&token).await.is_ok(),
        "not told yet: the other instance still trusts its cache"
    );
    assert_eq!(two.service.me(&principal).await?.user.bio, before.user.bio);
    announced.deliver_to(&two.service);
    assert!(matches!(
        two.service.authenticate(&token).await,
        Err(AuthError::Unauthenticated)
    ));
    assert_eq!(
        two.service.me(&principal).await?.user.bio.as_deref(),
        Some("Countess")
    );
    Ok(())
}

#[tokio::test]
async fn a_liveness_check_that_read_before_a_logout_does_not_revive_the_session()
-> Result<(), AuthError> {
    let store = Arc::new(MemoryIdentityStore::new());
    let sessions = Arc::new(PausingSessions {
        store: store.clone(),
        armed: false.into(),
        read_done: tokio::sync::Notify::new(),
        release: tokio::sync::Notify::new(),
    });
    let f = fixture_adjusted(store, IdentityPolicy::default(), 1024, |ports| {
        ports.sessions = sessions.clone();
    });
    let service = f.service;
    let outcome = service
        .register(registration("ada@x.io"), &ClientInfo::default())
        .await?;
    let token = outcome.tokens.access_token.clone();
    let principal = service.authenticate(&token).await?;
    // Start from a cold cache on a fresh instance sharing the store: the racing check has to
    // read the store.
    let f2 = fixture_adjusted(
        sessions.store.clone(),
        IdentityPolicy::default(),
        1024,
        |ports| ports.sessions = sessions.clone(),
    );
    let instance = f2.service;
    sessions.armed.store(true, Ordering::SeqCst);
    let racing = tokio::spawn({
        let instance = Arc::clone(&instance);
        let token = token.clone();
        async move { instance.authenticate(&token).await }
    });
    sessions.read_done.notified().await;
    instance.logout(&principal).await?;
    sessions.release.notify_one();
    racing.await.expect("check finished")?;
    assert!(
        matches!(
            instance.authenticate(&token).await,
            Err(AuthError::Unauthenticated)
        ),
        "the revoke on this instance wins over the check that raced it"
    );
    Ok(())
}

/// Counts the hashes computed, to show which paths spend argon2 time.
struct CountingHasher {
    inner: Argon2Hasher,
    hashes: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl auth_core::ports::PasswordHasher for CountingHasher {
    async fn hash_password(&self, password: &str) -> Result<String, auth_core::ports::HashError> {
        self.hashes.fetch_add(1, Ordering::SeqCst);
        self.inner.hash_password(password).await
    }
    async fn verify_password(
        &self,
        password: &str,
        hash: &str,
    ) -> Result<PasswordCheck, auth_core::ports::HashError> {
        self.inner.verify_password(password, hash).await
    }
    async fn verify_against_dummy(
        &self,
        password: &str,
    ) -> Result<(), auth_core::ports::HashError> {
        self.inner.verify_against_dummy(password).await
    }
}

fn new_password(raw: &str) -> Password {
    Password::parse_new("password", raw).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn a_reset_with_a_bogus_token_costs_no_hashing() -> Result<(), AuthError> {
    let counting = Arc::new(CountingHasher {
        inner: hasher(1024),
        hashes: 0.into(),
    });
    let f = fixture_adjusted(
        Arc::new(MemoryIdentityStore::new()),
        IdentityPolicy::default(),
        1024,
        |ports| ports.hasher = counting.clone(),
    );
    assert!(matches!(
        f.service
            .reset_password("not-a-token", &new_password("Different1"))
            .await,
        Err(AuthError::InvalidOneTimeToken)
    ));
    assert_eq!(
        counting.hashes.load(Ordering::SeqCst),
        0,
        "argon2 is spent only for a valid token"
    );
    Ok(())
}

#[tokio::test]
async fn changing_the_password_voids_an_outstanding_reset_link() -> Result<(), AuthError> {
    let f = fixture();
    let ada = f
        .service
        .register(registration("ada@x.io"), &ClientInfo::default())
        .await?;
    f.service.forgot_password(email("ada@x.io"));
    f.tasks.run().await;
    let reset = f.outbox.last_token().unwrap_or_default();
    let principal = f.service.authenticate(&ada.tokens.access_token).await?;
    f.service
        .change_password(&principal, "Analytical1", &new_password("Changed123"))
        .await?;
    assert!(matches!(
        f.service
            .reset_password(&reset, &new_password("Attacker1"))
            .await,
        Err(AuthError::InvalidOneTimeToken)
    ));
    f.service
        .login(&email("ada@x.io"), "Changed123", &ClientInfo::default())
        .await?;
    Ok(())
}

#[tokio::test]
async fn forgot_password_answers_before_touching_the_account() -> Result<(), AuthError> {
    let f = fixture();
    f.service
        .register(registration("ada@x.io"), &ClientInfo::default())
        .await?;
    let account = f.store.find_account_by_email("ada@x.io").await?.unwrap();
    for address in ["ada@x.io", "nobody@x.io"] {
        f.service.forgot_password(email(address));
    }
    let untouched = f.store.find_account_by_email("ada@x.io").await?.unwrap();
    assert!(
        untouched.password_reset.is_none() && untouched.updated_at == account.updated_at,
        "no account work happens on the request path, known address or not"
    );
    assert!(
        !f.outbox
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, AccountEmail::PasswordReset { .. }))
    );
    f.tasks.run().await;
    let resets: Vec<String> = f
        .outbox
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            AccountEmail::PasswordReset { to, .. } => Some(to.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(resets, ["ada@x.io"]);
    Ok(())
}

#[tokio::test]
async fn a_retry_in_the_grace_window_gets_the_current_pair_and_rotates_nothing()
-> Result<(), AuthError> {
    let f = fixture_with(
        IdentityPolicy {
            refresh_reuse_interval: TimeDelta::seconds(10),
            ..IdentityPolicy::default()
        },
        1024,
    );
    let first = f
        .service
        .register(registration("ada@x.io"), &ClientInfo::default())
        .await?;
    let answered = f.service.refresh(&first.tokens.refresh_token).await?;
    f.clock.advance(TimeDelta::seconds(2));
    // The client lost `answered` and retries, twice.
    f.service.refresh(&first.tokens.refresh_token).await?;
    f.service.refresh(&first.tokens.refresh_token).await?;
    // The pair handed out first is still the current one.
    f.service
        .authenticate(&answered.tokens.access_token)
        .await?;
    let next = f.service.refresh(&answered.tokens.refresh_token).await?;
    f.service.authenticate(&next.tokens.access_token).await?;
    f.clock.advance(TimeDelta::seconds(1));
    assert!(
        matches!(
            f.service.refresh(&first.tokens.refresh_token).await,
            Err(AuthError::InvalidRefreshToken)
        ),
        "two rotations back is theft, window or not"
    );
    assert!(matches!(
        f.service.authenticate(&next.tokens.access_token).await,
        Err(AuthError::Unauthenticated)
    ));
    Ok(())
}

#[tokio::test]
async fn admin_needs_a_verified_listed_email_and_ends_when_unlisted() -> Result<(), AuthError> {
    let store = Arc::new(MemoryIdentityStore::new());
    let listed = IdentityPolicy {
        admin_emails: ["ada@x.io".to_owned()].into_iter().collect(),
        ..IdentityPolicy::default()
    };
    let f = fixture_on(store.clone(), listed, 1024, None);
    let registered = f
        .service
        .register(registration("ada@x.io"), &ClientInfo::default())
        .await?;
    assert_eq!(registered.user.user.role, auth_core::model::Role::User);
    let principal = f
        .service
        .authenticate(&registered.tokens.access_token)
        .await?;
    assert!(
        matches!(
            f.service.require_admin(&principal).await,
            Err(AuthError::UnverifiedAdmin)
        ),
        "a listed address is told to verify itself first"
    );

    f.service
        .verify_email(&f.outbox.last_token().unwrap_or_default())
        .await?;
    let promoted = f.service.refresh(&registered.tokens.refresh_token).await?;
    assert_eq!(promoted.user.user.role, auth_core::model::Role::Admin);
    let admin = f
        .service
        .authenticate(&promoted.tokens.access_token)
        .await?;
    assert_eq!(admin.role, auth_core::model::Role::Admin);
    f.service.require_admin(&admin).await?;

    // The operator removes the address; the same store, a restarted process.
    let unlisted = fixture_on(store, IdentityPolicy::default(), 1024, None);
    assert!(
        matches!(
            unlisted.service.require_admin(&admin).await,
            Err(AuthError::Forbidden)
        ),
        "the stored account decides, not the token's claim"
    );
    let demoted = unlisted
        .service
        .refresh(&promoted.tokens.refresh_token)
        .await?;
    assert_eq!(demoted.user.user.role, auth_core::model::Role::User);
    let claims = unlisted
        .service
        .authenticate(&demoted.tokens.access_token)
        .await?;
    assert_eq!(claims.role, auth_core::model::Role::User);
    Ok(())
}

/// Notes, when asked to erase a user's data, whether that user could still act.
struct EraseProbe {
    store: Arc<MemoryIdentityStore>,
    clock: Arc<ManualClock>,
    could_act: Mutex<Vec<bool>>,
}

#[async_trait]
impl OwnedData for EraseProbe {
    async fn erase_owned_data(&self, owner: &kernel::UserId) -> Result<(), kernel::StoreError> {
        let live = self
            .store
            .list_live_sessions(owner, self.clock.now())
            .await?;
        let account = self.store.find_account_by_user(owner).await?;
        self.could_act
            .lock()
            .unwrap()
            .push(!live.is_empty() || account.is_some());
        Ok(())
    }
}

#[tokio::test]
async fn deletion_locks_the_user_out_before_erasing_and_leaves_no_queued_mail()
-> Result<(), AuthError> {
    let store = Arc::new(MemoryIdentityStore::new());
    let probe = Arc::new(EraseProbe {
        store: store.clone(),
        clock: Arc::new(ManualClock(Mutex::new(Utc::now()))),
        could_act: Mutex::new(Vec::new()),
    });
    let f = fixture_adjusted(store, IdentityPolicy::default(), 1024, |ports| {
        ports.owned_data = probe.clone();
    });
    *probe.clock.0.lock().unwrap() = f.clock.now();
    let ada = f
        .service
        .register(registration("ada@x.io"), &ClientInfo::default())
        .await?;
    f.service
        .login(&email("ada@x.io"), "Analytical1", &ClientInfo::default())
        .await?;
    let principal = f.service.authenticate(&ada.tokens.access_token).await?;
    f.service.request_account_deletion(&principal).await?;
    let token = f.outbox.last_token().unwrap_or_default();
    f.service.delete_account(&principal, &token).await?;
    let could_act = probe.could_act.lock().unwrap().clone();
    assert!(
        !could_act.is_empty() && could_act.iter().all(|acting| !acting),
        "data was erased while the user could still log in or use a session: {could_act:?}"
    );
    let left: Vec<String> = f
        .outbox
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|e| format!("{e:?}"))
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with("AccountDeleted"), "{left:?}");
    Ok(())
}

#[tokio::test]
async fn the_location_is_looked_up_after_the_login_answers_and_stored_on_the_session()
-> Result<(), AuthError> {
    let f = located_fixture();
    let outcome = f
        .service
        .register(registration("ada@x.io"), &client(FIREFOX_LINUX, LONDON_IP))
        .await?;
    let owner = &outcome.user.user.id;
    let sessions = f.store.list_live_sessions(owner, f.clock.now()).await?;
    assert_eq!(
        sessions[0].location, None,
        "the request does not wait for it"
    );
    f.tasks.run().await;
    let sessions = f.store.list_live_sessions(owner, f.clock.now()).await?;
    let location = sessions[0].location.clone().unwrap_or_default();
    assert_eq!(location.label().as_deref(), Some("London, United Kingdom"));
    assert!(
        f.sign_in_emails().is_empty(),
        "a registration's session is not news"
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_lookup_never_fails_the_login_and_leaves_the_location_unknown()
-> Result<(), AuthError> {
    let f = located_fixture();
    f.service
        .register(
            registration("ada@x.io"),
            &client(FIREFOX_LINUX, UNREACHABLE_IP),
        )
        .await?;
    let outcome = f
        .service
        .login(
            &email("ada@x.io"),
            "Analytical1",
            &client(FIREFOX_LINUX, UNREACHABLE_IP),
        )
        .await?;
    f.tasks.run().await;
    let sessions = f
        .store
        .list_live_sessions(&outcome.user.user.id, f.clock.now())
        .await?;
    assert_eq!(sessions.len(), 2);
    assert!(sessions.iter().all(|s| s.location.is_none()));
    Ok(())
}

#[tokio::test]
async fn a_sign_in_from_a_new_device_queues_a_security_email_naming_it() -> Result<(), AuthError> {
    let f = located_fixture();
    f.service
        .register(registration("ada@x.io"), &client(FIREFOX_LINUX, LONDON_IP))
        .await?;
    f.tasks.run().await;
    f.clock.advance(TimeDelta::hours(1));
    let at = f.clock.now();
    f.service
        .login(
            &email("ada@x.io"),
            "Analytical1",
            &client(SAFARI_IPHONE, LONDON_IP),
        )
        .await?;
    assert!(
        f.sign_in_emails().is_empty(),
        "queued by the follow-up, not the request"
    );
    f.tasks.run().await;
    let emails = f.sign_in_emails();
    let [AccountEmail::NewSignIn { to, name, session }] = emails.as_slice() else {
        panic!("one new sign-in email: {emails:?}");
    };
    assert_eq!((to.as_str(), name.as_str()), ("ada@x.io", "Ada Lovelace"));
    assert_eq!(
        (
            session.device.device_name.as_str(),
            session.device.browser.as_str(),
            session.device.os.as_str()
        ),
        ("iPhone", "Safari 17.4", "iOS 17.4")
    );
    assert_eq!(session.ip_address.as_deref(), Some(LONDON_IP));
    assert_eq!(session.location.as_deref(), Some("London, United Kingdom"));
    assert_eq!(session.at, at);
    Ok(())
}

#[tokio::test]
async fn sign_ins_from_a_known_device_even_after_an_update_or_a_logout_queue_nothing()
-> Result<(), AuthError> {
    let f = located_fixture();
    let first = f
        .service
        .register(registration("ada@x.io"), &client(FIREFOX_LINUX, LONDON_IP))
        .await?;
    let principal = f.service.authenticate(&first.tokens.access_token).await?;
    f.service.logout(&principal).await?;
    for user_agent in [FIREFOX_LINUX, FIREFOX_LINUX_UPDATED] {
        f.service
            .login(
                &email("ada@x.io"),
                "Analytical1",
                &client(user_agent, LONDON_IP),
            )
            .await?;
        f.tasks.run().await;
    }
    assert!(f.sign_in_emails().is_empty(), "{:?}", f.sign_in_emails());
    Ok(())
}

#[tokio::test]
async fn a_known_device_in_a_new_country_is_reported_once_the_place_is_known()
-> Result<(), AuthError> {
    let f = located_fixture();
    f.service
        .register(registration("ada@x.io"), &client(FIREFOX_LINUX, LONDON_IP))
        .await?;
    f.tasks.run().await;
    f.service
        .login(
            &email("ada@x.io"),
            "Analytical1",
            &client(FIREFOX_LINUX, STOCKHOLM_IP),
        )
        .await?;
    f.tasks.run().await;
    let emails = f.sign_in_emails();
    let [AccountEmail::NewSignIn { session, .. }] = emails.as_slice() else {
        panic!("one new sign-in email: {emails:?}");
    };
    assert_eq!(session.location.as_deref(), Some("Stockholm, Sweden"));
    Ok(())
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_session_and_warns_once()
-> Result<(), AuthError> {
    let f = located_fixture();
    let first = f
        .service
        .register(registration("ada@x.io"), &client(FIREFOX_LINUX, LONDON_IP))
        .await?;
    f.tasks.run().await;
    let second = f.service.refresh(&first.tokens.refresh_token).await?;
    f.clock.advance(TimeDelta::minutes(5));
    for _ in 0..2 {
        assert!(matches!(
            f.service.refresh(&first.tokens.refresh_token).await,
            Err(AuthError::InvalidRefreshToken)
        ));
    }
    assert!(matches!(
        f.service.authenticate(&second.tokens.access_token).await,
        Err(AuthError::Unauthenticated)
    ));
    let emails = f.sign_in_emails();
    let [AccountEmail::RefreshTokenReused { to, session, .. }] = emails.as_slice() else {
        panic!("one reuse warning: {emails:?}");
    };
    assert_eq!(to, "ada@x.io");
    assert_eq!(session.device.browser, "Firefox 128");
    assert_eq!(session.location.as_deref(), Some("London, United Kingdom"));
    assert_eq!(session.at, f.clock.now());
    Ok(())
}

#[tokio::test]
async fn me_shows_every_change_made_on_this_instance_at_once() -> Result<(), AuthError> {
    let f = fixture();
    let ada = f
        .service
        .register(registration("ada@x.io"), &ClientInfo::default())
        .await?;
    let principal = f.service.authenticate(&ada.tokens.access_token).await?;
    assert!(!f.service.me(&principal).await?.email_verified);
    f.service
        .verify_email(&f.outbox.last_token().unwrap_or_default())
        .await?;
    assert!(f.service.me(&principal).await?.email_verified);
    let changes = auth_core::model::ProfileChanges {
        bio: Some(Some("Analyst".into())),
        ..auth_core::model::ProfileChanges::default()
    };
    f.service.update_profile(&principal, &changes).await?;
    assert_eq!(
        f.service.me(&principal).await?.user.bio.as_deref(),
        Some("Analyst")
    );
    Ok(())
}

/// A user and account as the NestJS version stored them: no username, and a password.
async fn nestjs_user(f: &Fixture, address: &str, password: &str) -> auth_core::model::User {
    use auth_core::model::{Account, AccountId, Role, User, UserId};
    let now = Utc::now();
    let user = User {
        id: UserId::generate(),
        username: String::new(),
        email: address.to_owned(),
        first_name: Some("Ada".into()),
        last_name: None,
        display_name: Some("Ada".into()),
        avatar: None,
        role: Role::User,
        bio: None,
        location: None,
        website: None,
        is_active: true,
        last_login_at: None,
        created_at: now,
        updated_at: now,
    };
    f.store.insert_user(&user).await.unwrap();
    let account = Account {
        id: AccountId::generate(),
        user_id: user.id.clone(),
        email: address.to_owned(),
        password_hash: hasher(1024).hash_password(password).await.unwrap(),
        email_verified: true,
        email_verification: None,
        password_reset: None,
        account_deletion: None,
        is_active: true,
        created_at: now,
        updated_at: now,
    };
    f.store.insert_account(&account).await.unwrap();
    user
}

#[tokio::test]
async fn a_user_stored_without_a_username_gets_a_free_one_at_login() -> Result<(), AuthError> {
    let f = fixture();
    f.service
        .register(
            Registration {
                username: Some(auth_core::Username::parse("adalovelace").unwrap()),
                ..registration("someone@x.io")
            },
            &ClientInfo::default(),
        )
        .await?;
    let ada = nestjs_user(&f, "ada.lovelace@x.io", "Analytical1").await;
    let outcome = f
        .service
        .login(
            &email("ada.lovelace@x.io"),
            "Analytical1",
            &ClientInfo::default(),
        )
        .await?;
    assert_eq!(
        outcome.user.user.username, "adalovelace-2",
        "the base was taken"
    );
    let stored = f.store.find_user(&ada.id).await.unwrap().unwrap();
    assert_eq!(stored.username, "adalovelace-2");
    f.service
        .login(
            &email("ada.lovelace@x.io"),
            "Analytical1",
            &ClientInfo::default(),
        )
        .await?;
    assert_eq!(
        f.store.find_user(&ada.id).await.unwrap().unwrap().username,
        "adalovelace-2",
        "given once"
    );
    Ok(())
}

#[tokio::test]
async fn a_session_another_version_opened_cannot_be_refreshed_and_stays_open()
-> Result<(), AuthError> {
    use auth_core::ports::{RefreshClaims, TokenCodec as _};
    let f = fixture();
    let outcome = f
        .service
        .register(registration("ada@x.io"), &ClientInfo::default())
        .await?;
    let ada = outcome.user.user.id.clone();
    let mut old = f.store.list_live_sessions(&ada, Utc::now()).await.unwrap()[0].clone();
    old.id = auth_core::model::SessionId::generate();
    old.refresh_hash = String::new();
    f.store.insert_session(&old).await.unwrap();
    let now = Utc::now().timestamp();
    for jti in ["", "guess"] {
        let token = codec()
            .encode_refresh(&RefreshClaims {
                sub: ada.clone(),
                sid: old.id.clone(),
                jti: jti.to_owned(),
                iat: now,
                exp: now + 3600,
            })
            .unwrap();
        assert!(matches!(
            f.service.refresh(&token).await,
            Err(AuthError::InvalidRefreshToken)
        ));
    }
    let live = f.store.list_live_sessions(&ada, Utc::now()).await.unwrap();
    assert_eq!(live.len(), 2, "nothing was revoked as stolen");
    assert!(
        f.sign_in_emails()
            .iter()
            .all(|e| !matches!(e, AccountEmail::RefreshTokenReused { .. }))
    );
    Ok(())
}
