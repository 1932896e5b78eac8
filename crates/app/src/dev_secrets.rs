//! JWT secrets and the job payload key: from the configuration, or in development generated
//! once into `DATA_DIR`, so that tokens and queued jobs survive a restart without anyone
//! inventing secrets by hand.

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use secrecy::{ExposeSecret as _, SecretString};

use crate::config::{Environment, Settings, parse_key};

const FILE: &str = "jwt-secrets";
const PAYLOAD_KEY_FILE: &str = "job-payload-key";

/// The key sealing job payloads, and the earlier ones that still open them.
pub struct PayloadKeys {
    pub current: [u8; 32],
    pub previous: Vec<[u8; 32]>,
}

/// # Errors
/// A message when the key file cannot be read or written (configuration validation has
/// already checked the configured keys' form).
pub fn payload_keys(settings: &Settings) -> anyhow::Result<PayloadKeys> {
    let previous = settings
        .job_payload_keys_previous
        .as_ref()
        .map(|keys| {
            keys.expose_secret()
                .split(',')
                .filter_map(|key| parse_key(key.trim()))
                .collect()
        })
        .unwrap_or_default();
    if let Some(key) = &settings.job_payload_key {
        let current = parse_key(key.expose_secret())
            .context("JOB_PAYLOAD_KEY: expected 64 hex characters")?;
        return Ok(PayloadKeys { current, previous });
    }
    if settings.environment == Environment::Production {
        bail!("JOB_PAYLOAD_KEY must be set in production");
    }
    if settings.redis.is_some() {
        // A key generated into this DATA_DIR is no other process's key.
        bail!(
            "JOB_PAYLOAD_KEY must be set when Redis is configured: every process of the deployment seals and opens job payloads with it"
        );
    }
    let path = settings.data_dir.join(PAYLOAD_KEY_FILE);
    if !path.exists() {
        let key: [u8; 32] = rand::random();
        let text = SecretString::from(format!(
            "# Generated development key sealing job payloads; set JOB_PAYLOAD_KEY in production.\nkey={}\n",
            hex::encode(key)
        ));
        // Another process starting beside this one may have written it first; its key wins.
        if write_private(&path, text.expose_secret()).is_ok() {
            tracing::info!(path = %path.display(), "generated a development job payload key");
        }
    }
    let text = std::fs::read_to_string(&path)
        .map(SecretString::from)
        .with_context(|| path.display().to_string())?;
    let current = text
        .expose_secret()
        .lines()
        .find_map(|line| line.strip_prefix("key="))
        .and_then(|key| parse_key(key.trim()))
        .with_context(|| {
            format!(
                "{}: unreadable; delete it to have a new key generated (queued jobs sealed with the old one then fail)",
                path.display()
            )
        })?;
    Ok(PayloadKeys { current, previous })
}

/// Creates `path` (and its directory) readable by the owner only.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        let mut dir = std::fs::DirBuilder::new();
        dir.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut dir, 0o700);
        dir.create(parent)
            .with_context(|| parent.display().to_string())?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .with_context(|| path.display().to_string())
}

pub struct JwtSecrets {
    pub access: SecretString,
    pub refresh: SecretString,
}

/// # Errors
/// A message when the secrets file cannot be read or written.
pub fn resolve(settings: &Settings) -> anyhow::Result<JwtSecrets> {
    if let (Some(access), Some(refresh)) =
        (&settings.jwt_access_secret, &settings.jwt_refresh_secret)
    {
        return Ok(JwtSecrets {
            access: access.clone(),
            refresh: refresh.clone(),
        });
    }
    if settings.environment == Environment::Production {
        bail!("JWT secrets must be set in production");
    }
    let stored = load_or_create(&settings.data_dir.join(FILE))?;
    Ok(JwtSecrets {
        access: settings.jwt_access_secret.clone().unwrap_or(stored.access),
        refresh: settings
            .jwt_refresh_secret
            .clone()
            .unwrap_or(stored.refresh),
    })
}

fn load_or_create(path: &Path) -> anyhow::Result<JwtSecrets> {
    // The whole file is secret, so its text is wiped from memory when dropped too.
    if let Ok(text) = std::fs::read_to_string(path).map(SecretString::from) {
        let value = |key: &str| {
            text.expose_secret()
                .lines()
                .find_map(|line| line.strip_prefix(key))
                .map(str::trim)
                .filter(|v| v.len() >= 32)
                .map(SecretString::from)
        };
        if let (Some(access), Some(refresh)) = (value("access="), value("refresh=")) {
            return Ok(JwtSecrets { access, refresh });
        }
        bail!(
            "{}: unreadable; delete it to have new secrets generated",
            path.display()
        );
    }
    let (access, refresh) = (
        SecretString::from(hex::encode(rand::random::<[u8; 32]>())),
        SecretString::from(hex::encode(rand::random::<[u8; 32]>())),
    );
    let text = SecretString::from(format!(
        "# Generated development JWT secrets; set JWT_ACCESS_SECRET/JWT_REFRESH_SECRET in production.\naccess={}\nrefresh={}\n",
        access.expose_secret(),
        refresh.expose_secret()
    ));
    write_private(path, text.expose_secret())?;
    tracing::info!(path = %path.display(), "generated development JWT secrets");
    Ok(JwtSecrets { access, refresh })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_kept_and_reused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("nested").join(FILE);
        let first = load_or_create(&path).unwrap_or_else(|e| panic!("{e}"));
        let second = load_or_create(&path).unwrap_or_else(|e| panic!("{e}"));
        let exposed = |s: &SecretString| s.expose_secret().to_owned();
        assert_eq!(
            (first.access.expose_secret().len(), exposed(&first.access)),
            (64, exposed(&second.access))
        );
        assert_eq!(exposed(&first.refresh), exposed(&second.refresh));
        assert_ne!(exposed(&first.access), exposed(&first.refresh));
    }

    #[test]
    fn a_generated_payload_key_is_kept_private_and_reused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let settings = crate::config::Settings::from_lookup(&|name| {
            (name == "DATA_DIR").then(|| dir.path().join("data").display().to_string())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let first = payload_keys(&settings).unwrap_or_else(|e| panic!("{e}"));
        let second = payload_keys(&settings).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first.current, second.current);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("data").join(PAYLOAD_KEY_FILE))
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or_default();
            assert_eq!(mode, 0o600);
        }
    }
}
