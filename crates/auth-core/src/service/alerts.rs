//! What follows a new session, and what its owner hears about: where the session's address
//! is, whether the sign-in came from a device or country the account has not been used from
//! recently, and the warning when a rotated refresh token comes back. None of it may fail or
//! delay the request that caused it, so failures are logged, never returned.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use tracing::{debug, warn};

use super::IdentityPorts;
use crate::error::AuthError;
use crate::model::{DeviceInfo, GeoLocation, Session};
use crate::ports::{AccountEmail, IpGeolocation, SessionFacts};

/// How many earlier sessions a sign-in is compared with.
const HISTORY_LIMIT: usize = 50;

/// A session just opened, with whom to tell about it.
pub(crate) struct OpenedSession {
    pub session: Session,
    pub to: String,
    pub name: String,
}

/// Runs in the background after a login or registration: looks the address up, stores the
/// location on the session, then queues the new-sign-in email when the sign-in is unfamiliar.
/// The comparison waits for the lookup so that a new country counts, and the email names the
/// place.
pub(crate) async fn follow_up(ports: IdentityPorts, opened: OpenedSession) {
    let OpenedSession { session, to, name } = opened;
    let location = match &ports.geolocation {
        Some(geolocation) => locate(geolocation.as_ref(), &session).await,
        None => None,
    };
    if let Some(location) = &location
        && let Err(error) = ports
            .sessions
            .set_session_location(&session.id, location)
            .await
    {
        warn!(session_id = %session.id, %error, "could not store the session's location");
    }
    let history = match ports
        .sessions
        .session_history(&session.user_id, HISTORY_LIMIT)
        .await
    {
        Ok(history) => history,
        Err(error) => {
            warn!(session_id = %session.id, %error, "could not read the session history");
            return;
        }
    };
    let earlier: Vec<&Session> = history.iter().filter(|s| s.id != session.id).collect();
    if !is_unfamiliar(&earlier, &session.device, location.as_ref()) {
        return;
    }
    let email = AccountEmail::NewSignIn {
        to,
        name,
        session: facts(&session, location.as_ref(), session.created_at),
    };
    if let Err(error) = ports.notifier.notify(email).await {
        warn!(session_id = %session.id, %error, "could not queue the new sign-in email");
    }
}

async fn locate(geolocation: &dyn IpGeolocation, session: &Session) -> Option<GeoLocation> {
    let ip: IpAddr = session.ip_address.as_deref()?.parse().ok()?;
    match geolocation.locate(ip).await {
        Ok(location) => location,
        Err(error) => {
            warn!(session_id = %session.id, %error, "session location lookup failed");
            None
        }
    }
}

/// Whether a sign-in deserves an email: the account was used before (the registration's own
/// session is not news), and never from this device, or, where both are known, never from
/// this country. Earlier sessions with no known country say nothing about countries, so
/// turning geolocation on does not alarm everyone.
fn is_unfamiliar(
    earlier: &[&Session],
    device: &DeviceInfo,
    location: Option<&GeoLocation>,
) -> bool {
    if earlier.is_empty() {
        return false;
    }
    let new_device = !earlier.iter().any(|s| same_device(&s.device, device));
    let known_countries: Vec<String> = earlier
        .iter()
        .filter_map(|s| s.location.as_ref()?.country_key())
        .collect();
    let new_country = location
        .and_then(GeoLocation::country_key)
        .is_some_and(|country| !known_countries.is_empty() && !known_countries.contains(&country));
    new_device || new_country
}

/// Same device type, browser and OS, whatever their versions: an update is not a new device.
fn same_device(a: &DeviceInfo, b: &DeviceInfo) -> bool {
    a.device_type == b.device_type
        && family(&a.browser) == family(&b.browser)
        && family(&a.os) == family(&b.os)
}

/// A browser or OS name without its trailing version (`Chrome 124` → `Chrome`).
fn family(name: &str) -> &str {
    match name.rsplit_once(' ') {
        Some((family, version)) if version.starts_with(|c: char| c.is_ascii_digit()) => family,
        _ => name,
    }
}

fn facts(session: &Session, location: Option<&GeoLocation>, at: DateTime<Utc>) -> SessionFacts {
    SessionFacts {
        device: session.device.clone(),
        ip_address: session.ip_address.clone(),
        location: location.and_then(GeoLocation::label),
        at,
    }
}

/// Queues the warning that `session` was revoked because its rotated refresh token came back.
/// The refresh answers 401 whatever happens here, so a failure is only logged.
pub(crate) async fn warn_of_reuse(ports: &IdentityPorts, session: &Session, now: DateTime<Utc>) {
    let queued = async {
        let Some(account) = ports
            .accounts
            .find_account_by_user(&session.user_id)
            .await?
        else {
            debug!(session_id = %session.id, "reused token of a deleted account");
            return Ok(());
        };
        let name = ports
            .users
            .find_user(&session.user_id)
            .await?
            .map(|user| user.greeting())
            .unwrap_or_default();
        ports
            .notifier
            .notify(AccountEmail::RefreshTokenReused {
                to: account.email,
                name,
                session: facts(session, session.location.as_ref(), now),
            })
            .await?;
        Ok::<(), AuthError>(())
    };
    if let Err(error) = queued.await {
        warn!(session_id = %session.id, %error, "could not queue the token reuse email");
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::model::{AccountId, SessionId, UserId};

    fn device(device_type: &str, browser: &str, os: &str) -> DeviceInfo {
        DeviceInfo {
            device_type: device_type.into(),
            device_name: String::new(),
            browser: browser.into(),
            os: os.into(),
        }
    }

    fn in_country(code: &str) -> GeoLocation {
        GeoLocation {
            country_code: Some(code.into()),
            ..GeoLocation::default()
        }
    }

    fn session(device: DeviceInfo, location: Option<GeoLocation>) -> Session {
        let now = Utc::now();
        Session {
            id: SessionId::generate(),
            user_id: UserId::generate(),
            account_id: AccountId::generate(),
            user_agent: None,
            ip_address: None,
            device,
            location,
            is_active: true,
            refresh_hash: String::new(),
            previous_refresh_hash: None,
            rotated_at: None,
            last_activity_at: now,
            created_at: now,
            expires_at: now,
        }
    }

    #[test]
    fn the_first_session_of_an_account_is_not_news() {
        assert!(!is_unfamiliar(
            &[],
            &device("desktop", "Chrome 124", "Windows 10"),
            Some(&in_country("GB"))
        ));
    }

    #[test]
    fn a_browser_or_os_update_is_the_same_device() {
        let before = session(device("desktop", "Chrome 123", "macOS 13"), None);
        assert!(!is_unfamiliar(
            &[&before],
            &device("desktop", "Chrome 124", "macOS 14"),
            None
        ));
    }

    #[test]
    fn another_browser_os_or_device_type_is_a_new_device() {
        let before = session(device("desktop", "Chrome 124", "Windows 10"), None);
        for other in [
            device("desktop", "Firefox 128", "Windows 10"),
            device("desktop", "Chrome 124", "Linux"),
            device("tablet", "Chrome 124", "Windows 10"),
        ] {
            assert!(is_unfamiliar(&[&before], &other, None), "{other:?}");
        }
    }

    #[test]
    fn a_known_device_in_a_country_never_seen_before_is_news() {
        let known = device("desktop", "Chrome 124", "Windows 10");
        let before = session(known.clone(), Some(in_country("GB")));
        assert!(is_unfamiliar(&[&before], &known, Some(&in_country("SE"))));
        assert!(!is_unfamiliar(&[&before], &known, Some(&in_country("gb"))));
        assert!(
            !is_unfamiliar(&[&before], &known, None),
            "an unknown place is not a new country"
        );
    }

    #[test]
    fn earlier_sessions_without_a_country_say_nothing_about_countries() {
        let known = device("desktop", "Chrome 124", "Windows 10");
        let before = session(known.clone(), None);
        assert!(!is_unfamiliar(&[&before], &known, Some(&in_country("SE"))));
    }

    #[test]
    fn families_drop_only_a_trailing_version() {
        assert_eq!(family("Samsung Internet 24"), "Samsung Internet");
        assert_eq!(family("Safari 17.4"), "Safari");
        assert_eq!(family("Windows Phone"), "Windows Phone");
        assert_eq!(family("ChromeOS"), "ChromeOS");
    }
}
