//! The signing keys on disk: a directory of Ed25519 keys, each named after the moment it
//! starts signing (`20261201T120000Z.pem`, UTC), so that a key can be published before it is
//! used and every instance sharing the directory switches at the same time.
//!
//! The key with the latest start time that has passed signs; keys whose time is still to
//! come are published already (so verifiers fetching the JWKS know them first); an older key
//! is accepted, and published, until its successor has signed for one access-token lifetime
//! (no token of it can still be valid then). Files are never deleted here: a retired key
//! simply stops counting.
//!
//! `USERGRAPH_JWT_KEY_FILE` names one fixed key instead (no rotation), and the key of earlier
//! versions, `jwt-ed25519.pem` in the data directory, still counts, as the oldest.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use chrono::{DateTime, NaiveDateTime, Utc};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{
    DecodePrivateKey as _, EncodePrivateKey as _, spki::der::pem::LineEnding,
};

use crate::config::Config;

/// The file-name form of a start time.
const NAME_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// A key read from disk with the moment it starts signing.
pub struct KeyFile {
    /// When it starts signing (seconds since the epoch).
    pub starts: i64,
    /// The key.
    pub key: SigningKey,
}

/// Where the keys of a configuration are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// One fixed key (`USERGRAPH_JWT_KEY_FILE`).
    File(PathBuf),
    /// A directory of keys named by start time, and the single key of earlier versions if
    /// it is there.
    Dir {
        /// The directory.
        dir: PathBuf,
        /// `jwt-ed25519.pem` in the data directory.
        legacy: PathBuf,
    },
}

impl KeySource {
    /// The keys `config` names.
    pub fn of(config: &Config) -> Self {
        match &config.jwt_key_file {
            Some(file) => Self::File(file.clone()),
            None => Self::Dir {
                dir: config.jwt_key_dir(),
                legacy: config.data_dir.join("jwt-ed25519.pem"),
            },
        }
    }

    /// What is on disk now, cheap to compare: the file names, to reload only on a change.
    pub fn listing(&self) -> anyhow::Result<Vec<PathBuf>> {
        match self {
            Self::File(file) => Ok(vec![file.clone()]),
            Self::Dir { dir, legacy } => {
                let mut files = Vec::new();
                if legacy.exists() {
                    files.push(legacy.clone());
                }
                let entries = match std::fs::read_dir(dir) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
                    Err(e) => {
                        return Err(e).with_context(|| format!("reading {}", dir.display()));
                    }
                };
                for entry in entries {
                    let path = entry?.path();
                    if path.extension().is_some_and(|e| e == "pem") {
                        files.push(path);
                    }
                }
                files.sort();
                files.dedup();
                Ok(files)
            }
        }
    }

    /// Every key, oldest first; the first start makes one when there is none.
    pub fn load(&self, production: bool) -> anyhow::Result<Vec<KeyFile>> {
        let listing = self.listing()?;
        if listing.is_empty() {
            return match self {
                Self::File(file) => {
                    bail!("USERGRAPH_JWT_KEY_FILE: {} does not exist", file.display())
                }
                // The first key signs from the beginning of time, under a fixed name: two
                // instances starting at once make the same file, and one of them wins.
                Self::Dir { dir, .. } => {
                    let key = generate(&dir.join(file_name(0)))?;
                    Ok(vec![KeyFile { starts: 0, key }])
                }
            };
        }
        let mut keys = Vec::with_capacity(listing.len());
        for path in &listing {
            let starts = match self {
                Self::Dir { legacy, .. } if path != legacy => start_of(path)?,
                // The fixed key and the one of earlier versions: the oldest.
                _ => 0,
            };
            keys.push(KeyFile {
                starts,
                key: read(path, production)?,
            });
        }
        keys.sort_by_key(|k| k.starts);
        Ok(keys)
    }
}

/// Adds a key to `dir` that starts signing at `starts`; returns its path.
pub fn add(dir: &Path, starts: DateTime<Utc>) -> anyhow::Result<(PathBuf, SigningKey)> {
    let path = dir.join(file_name(starts.timestamp()));
    if path.exists() {
        bail!("{} exists already: one key per second", path.display());
    }
    let key = generate(&path)?;
    Ok((path, key))
}

fn file_name(starts: i64) -> String {
    let time = DateTime::from_timestamp(starts, 0).unwrap_or_default();
    format!("{}.pem", time.format(NAME_FORMAT))
}

fn start_of(path: &Path) -> anyhow::Result<i64> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    NaiveDateTime::parse_from_str(stem, NAME_FORMAT)
        .map(|t| t.and_utc().timestamp())
        .with_context(|| {
            format!(
                "{}: name signing keys after the UTC time they start signing, like \
                 20261201T120000Z.pem",
                path.display()
            )
        })
}

fn read(path: &Path, production: bool) -> anyhow::Result<SigningKey> {
    refuse_if_shared(path, production, "the signing key")?;
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the signing key {}", path.display()))?;
    SigningKey::from_pkcs8_pem(&pem)
        .map_err(|e| anyhow::anyhow!("{} is not an Ed25519 PKCS#8 PEM key ({e})", path.display()))
}

fn generate(path: &Path) -> anyhow::Result<SigningKey> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).context("random source")?;
    let key = SigningKey::from_bytes(&seed);
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| anyhow::anyhow!("encoding the signing key: {e}"))?;
    if create_secret_file(path, pem.as_bytes())? {
        tracing::info!(path = %path.display(), "generated a new token signing key");
        Ok(key)
    } else {
        // Another instance sharing the directory won the race: use its key.
        read(path, false)
    }
}

/// Creates the secret file `path` (mode 600) holding `contents`, unless it exists: false
/// then (another instance sharing the directory made it first). Written aside and linked
/// into place, so a process starting at the same moment reads the whole file or none.
pub(crate) fn create_secret_file(path: &Path, contents: &[u8]) -> anyhow::Result<bool> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut nonce = [0u8; 4];
    getrandom::fill(&mut nonce).context("random source")?;
    let draft = path.with_extension(format!(
        "{}.{:08x}.tmp",
        std::process::id(),
        u32::from_le_bytes(nonce)
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&draft)
        .with_context(|| format!("creating {}", draft.display()))?;
    std::io::Write::write_all(&mut file, contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", draft.display()))?;
    let linked = std::fs::hard_link(&draft, path);
    // The draft's only use was to be linked; a leftover would be harmless.
    let _ = std::fs::remove_file(&draft);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

/// A secret file (`what`) that others than its owner may read: refused in production, a
/// warning otherwise.
pub(crate) fn refuse_if_shared(path: &Path, production: bool, what: &str) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            if production {
                bail!(
                    "USERGRAPH_ENV=production: {what} {} may be read by others (mode {:o}); \
                     chmod 600 it",
                    path.display(),
                    mode & 0o777
                );
            }
            tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "{what} may be read by others; chmod 600 it");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_file_is_made_once_whole_by_one_of_many_at_once() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("secret.pem");
        let makers: Vec<_> = (0..8u8)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let made = create_secret_file(&path, &[i; 4096]).unwrap();
                    let read = std::fs::read(&path).unwrap();
                    (made, read)
                })
            })
            .collect();
        let results: Vec<_> = makers.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(results.iter().filter(|(made, _)| *made).count(), 1);
        let kept = std::fs::read(&path).unwrap();
        assert_eq!(kept.len(), 4096, "never half a file");
        assert!(
            results.iter().all(|(_, read)| read == &kept),
            "everyone read the winner's"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let files = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(files, 1, "no draft is left behind");
    }

    #[test]
    fn key_names_are_start_times() {
        assert_eq!(file_name(0), "19700101T000000Z.pem");
        let path = Path::new("/keys/20261201T120000Z.pem");
        assert_eq!(
            start_of(path).unwrap(),
            DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
                .unwrap()
                .timestamp()
        );
        assert!(start_of(Path::new("/keys/newest.pem")).is_err());
    }
}
