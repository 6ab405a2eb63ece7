//! Password hashing with argon2id, off the async runtime and with bounded concurrency.

use std::sync::Arc;

use anyhow::Context as _;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::domain::Password;
use crate::error::AppError;

/// Hashes and verifies passwords. Cloning shares the concurrency limit.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// A hash of a random password with the current parameters: verified against when an
    /// email is unknown, so that answer takes as long as a wrong password.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    /// Builds the hasher from the argon2 settings of `config`.
    pub async fn new(config: &Config) -> anyhow::Result<Self> {
        let params = Params::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("invalid argon2 parameters: {e}"))?;
        let concurrency = config.password_hash_concurrency.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
        });
        let mut hasher = Self {
            params,
            permits: Arc::new(Semaphore::new(concurrency)),
            dummy_hash: Arc::from(""),
        };
        let mut random = [0u8; 24];
        getrandom::fill(&mut random).context("random source")?;
        let dummy = hasher
            .hash_blocking(base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                random,
            ))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        hasher.dummy_hash = Arc::from(dummy);
        Ok(hasher)
    }

    fn argon2(params: Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    /// The PHC string of a new hash of `password`.
    pub async fn hash(&self, password: &Password) -> Result<String, AppError> {
        self.hash_blocking(password.expose().to_owned()).await
    }

    async fn hash_blocking(&self, password: String) -> Result<String, AppError> {
        let params = self.params.clone();
        self.run(move || {
            let mut salt = [0u8; 16];
            getrandom::fill(&mut salt).map_err(|e| AppError::internal(anyhow::anyhow!("{e}")))?;
            let salt = SaltString::encode_b64(&salt)
                .map_err(|e| AppError::internal(anyhow::anyhow!("{e}")))?;
            Self::argon2(params)
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|e| AppError::internal(anyhow::anyhow!("hashing: {e}")))
        })
        .await?
    }

    /// Whether `password` matches `hash`. With no hash (unknown account) it verifies against
    /// the dummy hash and answers false, in the same time.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, AppError> {
        let known = hash.is_some();
        let hash = hash.map_or_else(|| self.dummy_hash.to_string(), str::to_owned);
        let password = password.to_owned();
        let matches = self
            .run(move || {
                let parsed = PasswordHash::new(&hash)
                    .map_err(|e| AppError::internal(anyhow::anyhow!("stored hash: {e}")))?;
                // The parameters stored in the hash apply, so older hashes still verify.
                Ok::<_, AppError>(
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok(),
                )
            })
            .await??;
        Ok(known && matches)
    }

    /// Whether `hash` was made with other parameters than the current ones, so it should be
    /// replaced at the next successful login.
    pub fn needs_rehash(&self, hash: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(hash) else {
            return true;
        };
        let current = (
            self.params.m_cost(),
            self.params.t_cost(),
            self.params.p_cost(),
        );
        parsed.algorithm != Algorithm::Argon2id.ident()
            || Params::try_from(&parsed)
                .map_or(true, |p| (p.m_cost(), p.t_cost(), p.p_cost()) != current)
    }

    /// Runs CPU-heavy work on the blocking pool once a permit is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| AppError::internal(anyhow::anyhow!("hash semaphore closed: {e}")))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| AppError::internal(anyhow::anyhow!("hash task failed: {e}")))
    }
}
