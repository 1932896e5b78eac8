//! JWT secrets: from the configuration, or in development generated once into `DATA_DIR`, so
//! that tokens survive a restart without anyone inventing secrets by hand.

use std::io::Write as _;
use std::path::Path;

use secrecy::ExposeSecret as _;

use crate::config::{Environment, Settings};

const FILE: &str = "jwt-secrets";

pub struct JwtSecrets {
    pub access: Vec<u8>,
    pub refresh: Vec<u8>,
}

/// # Errors
/// A message when the secrets file cannot be read or written.
pub fn resolve(settings: &Settings) -> Result<JwtSecrets, String> {
    if let (Some(access), Some(refresh)) =
        (&settings.jwt_access_secret, &settings.jwt_refresh_secret)
    {
        return Ok(JwtSecrets {
            access: access.expose_secret().as_bytes().to_vec(),
            refresh: refresh.expose_secret().as_bytes().to_vec(),
        });
    }
    if settings.environment == Environment::Production {
        return Err("JWT secrets must be set in production".to_owned());
    }
    let stored = load_or_create(&settings.data_dir.join(FILE))?;
    Ok(JwtSecrets {
        access: settings
            .jwt_access_secret
            .as_ref()
            .map_or(stored.access, |s| s.expose_secret().as_bytes().to_vec()),
        refresh: settings
            .jwt_refresh_secret
            .as_ref()
            .map_or(stored.refresh, |s| s.expose_secret().as_bytes().to_vec()),
    })
}

fn load_or_create(path: &Path) -> Result<JwtSecrets, String> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let value = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(key))
                .map(|v| v.trim().as_bytes().to_vec())
                .filter(|v| v.len() >= 32)
        };
        if let (Some(access), Some(refresh)) = (value("access="), value("refresh=")) {
            return Ok(JwtSecrets { access, refresh });
        }
        return Err(format!(
            "{}: unreadable; delete it to have new secrets generated",
            path.display()
        ));
    }
    let (access, refresh) = (
        hex::encode(rand::random::<[u8; 32]>()),
        hex::encode(rand::random::<[u8; 32]>()),
    );
    if let Some(parent) = path.parent() {
        let mut dir = std::fs::DirBuilder::new();
        dir.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut dir, 0o700);
        dir.create(parent)
            .map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    writeln!(file, "# Generated development JWT secrets; set JWT_ACCESS_SECRET/JWT_REFRESH_SECRET in production.")
        .and_then(|()| writeln!(file, "access={access}\nrefresh={refresh}"))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    tracing::info!(path = %path.display(), "generated development JWT secrets");
    Ok(JwtSecrets {
        access: access.into_bytes(),
        refresh: refresh.into_bytes(),
    })
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
        assert_eq!(
            (first.access.len(), first.access.clone()),
            (64, second.access)
        );
        assert_eq!(first.refresh, second.refresh);
        assert_ne!(first.access, first.refresh);
    }
}
