//! Avatars: uploaded pictures checked and re-encoded ([`picture`]), kept under names the
//! server makes up (`<uuid>.<ext>` and its square `<uuid>-256.<ext>`) behind a small
//! [`Store`] (a directory today; an S3-compatible bucket can implement it later), and
//! served from `/uploads/<name>`.

pub mod picture;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use futures_util::future::BoxFuture;

use self::picture::Kind;

/// The path avatars are served under.
pub const URL_PATH: &str = "/uploads";

/// Where avatar files are kept.
pub trait Store: Send + Sync {
    /// Writes `bytes` under `name` (whole or not at all).
    fn put<'a>(&'a self, name: &'a str, bytes: Vec<u8>) -> BoxFuture<'a, anyhow::Result<()>>;
    /// The file `name`, if there is one.
    fn get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, anyhow::Result<Option<Vec<u8>>>>;
    /// Removes `name`; nothing when it is not there.
    fn delete<'a>(&'a self, name: &'a str) -> BoxFuture<'a, anyhow::Result<()>>;
}

/// A directory on disk (`<data dir>/uploads`).
pub struct Directory {
    dir: PathBuf,
}

impl Directory {
    /// The directory, created if missing.
    pub fn new(dir: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the upload directory {}", dir.display()))?;
        Ok(Self { dir })
    }
}

impl Store for Directory {
    fn put<'a>(&'a self, name: &'a str, bytes: Vec<u8>) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            // Written aside, then renamed: a reader never sees half a file.
            let partial = self.dir.join(format!(".{name}.partial"));
            tokio::fs::write(&partial, bytes)
                .await
                .with_context(|| format!("writing {}", partial.display()))?;
            tokio::fs::rename(&partial, self.dir.join(name))
                .await
                .context("moving the upload into place")
        })
    }

    fn get<'a>(&'a self, name: &'a str) -> BoxFuture<'a, anyhow::Result<Option<Vec<u8>>>> {
        Box::pin(async move {
            match tokio::fs::read(self.dir.join(name)).await {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e).context("reading an upload"),
            }
        })
    }

    fn delete<'a>(&'a self, name: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            match tokio::fs::remove_file(self.dir.join(name)).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(e).context("removing an upload")
                }
                _ => Ok(()),
            }
        })
    }
}

/// The two files of one avatar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvatarFiles {
    /// The whole picture.
    pub full: String,
    /// Its square version, which `avatarUrl` names.
    pub thumb: String,
}

impl AvatarFiles {
    /// New names for a picture of `kind`.
    pub fn new(kind: Kind) -> Self {
        let id = uuid::Uuid::now_v7();
        let ext = kind.extension();
        Self {
            full: format!("{id}.{ext}"),
            thumb: format!("{id}-{}.{ext}", picture::THUMB_SIDE),
        }
    }

    /// The URL `avatarUrl` gives.
    pub fn url(&self) -> String {
        format!("{URL_PATH}/{}", self.thumb)
    }

    /// The files behind an `avatarUrl` of ours; `None` for anything else (an external URL
    /// set through `updateMyProfile`, say).
    pub fn of_url(url: &str) -> Option<Self> {
        let thumb = url.strip_prefix(URL_PATH)?.strip_prefix('/')?;
        served(thumb)?;
        let (stem, ext) = thumb.rsplit_once('.')?;
        let id = stem.strip_suffix(&format!("-{}", picture::THUMB_SIDE))?;
        Some(Self {
            full: format!("{id}.{ext}"),
            thumb: thumb.to_owned(),
        })
    }
}

/// The kind of a name we may serve: one we made (`<uuid>[-256].<ext>`), nothing else.
pub fn served(name: &str) -> Option<Kind> {
    let (stem, ext) = name.rsplit_once('.')?;
    let id = stem
        .strip_suffix(&format!("-{}", picture::THUMB_SIDE))
        .unwrap_or(stem);
    let canonical = uuid::Uuid::parse_str(id).ok()?.hyphenated().to_string();
    if canonical != id {
        return None;
    }
    Kind::of_extension(ext)
}

/// The store shared by the services and the `/uploads` route.
pub type SharedStore = Arc<dyn Store>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_we_make_are_served() {
        let files = AvatarFiles::new(Kind::Png);
        assert_eq!(served(&files.full), Some(Kind::Png));
        assert_eq!(served(&files.thumb), Some(Kind::Png));
        assert_eq!(AvatarFiles::of_url(&files.url()), Some(files.clone()));
        for name in [
            "../etc/passwd",
            ".x.png.partial",
            "passwd",
            "0000.png",
            "6f3c0c39-8cf8-4c28-9b3a-1fe0f4e2b7aa.svg",
            "6F3C0C39-8CF8-4C28-9B3A-1FE0F4E2B7AA.png",
        ] {
            assert_eq!(served(name), None, "{name}");
        }
        assert_eq!(AvatarFiles::of_url("https://gravatar.com/x.png"), None);
    }
}
