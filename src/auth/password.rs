//! Password hashing with argon2id on a fixed set of threads, each reusing one memory block.
//!
//! argon2id at OWASP's parameters needs 19 MiB per hash. Allocated per hash on the blocking
//! pool, a login flood left hundreds of megabytes in the allocator's arenas. Here one thread
//! per core (or `USERGRAPH_PASSWORD_HASH_CONCURRENCY`) keeps one block for the current
//! parameters for the life of the process, fed by a bounded queue: when the queue is full
//! a hash is refused at once with `RATE_LIMITED` instead of piling up. The threads run at a
//! lower priority than request handling.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::oneshot;

use crate::config::Config;
use crate::domain::Password;
use crate::error::AppError;
use crate::instruments;

/// Hashes waiting for a thread, per thread, before more are refused.
const QUEUE_PER_THREAD: usize = 32;

/// One argon2 computation.
struct Work {
    algorithm: Algorithm,
    version: Version,
    params: Params,
    password: Vec<u8>,
    salt: Vec<u8>,
    output_len: usize,
}

/// Work for a hashing thread, with where its answer goes.
struct Job {
    work: Work,
    reply: oneshot::Sender<Result<Vec<u8>, argon2::Error>>,
}

/// Hashes and verifies passwords. Cloning shares the threads and their queue.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    queue: SyncSender<Job>,
    /// Hashes queued or running (for the metrics).
    in_queue: Arc<AtomicUsize>,
    /// A hash of a random password with the current parameters: verified against when an
    /// email is unknown, so that answer takes as long as a wrong password.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    /// Builds the hasher from the argon2 settings of `config` and starts its threads.
    pub async fn new(config: &Config) -> anyhow::Result<Self> {
        let params = Params::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("invalid argon2 parameters: {e}"))?;
        let threads = config.password_hash_concurrency.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
        });
        let (queue, jobs) = sync_channel(threads.saturating_mul(QUEUE_PER_THREAD));
        let jobs = Arc::new(Mutex::new(jobs));
        for n in 0..threads {
            let jobs = jobs.clone();
            let blocks = params.block_count();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || work(&jobs, blocks))
                .context("starting a password hashing thread")?;
        }
        let mut hasher = Self {
            params,
            queue,
            in_queue: Arc::default(),
            dummy_hash: Arc::from(""),
        };
        let mut random = [0u8; 24];
        getrandom::fill(&mut random).context("random source")?;
        let dummy = hasher
            .hash_bytes(random.to_vec())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        hasher.dummy_hash = Arc::from(dummy);
        Ok(hasher)
    }

    /// The PHC string of a new hash of `password`.
    pub async fn hash(&self, password: &Password) -> Result<String, AppError> {
        self.hash_bytes(password.expose().as_bytes().to_vec()).await
    }

    async fn hash_bytes(&self, password: Vec<u8>) -> Result<String, AppError> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| AppError::internal(anyhow::anyhow!("{e}")))?;
        let output_len = self
            .params
            .output_len()
            .unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let output = self
            .compute(Work {
                algorithm: Algorithm::Argon2id,
                version: Version::V0x13,
                params: self.params.clone(),
                password,
                salt: salt.to_vec(),
                output_len,
            })
            .await?;
        let internal = |e: argon2::password_hash::Error| AppError::internal(anyhow::anyhow!("{e}"));
        let salt = SaltString::encode_b64(&salt).map_err(internal)?;
        let hash = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).map_err(internal)?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&output).map_err(internal)?),
        };
        Ok(hash.to_string())
    }

    /// Whether `password` matches `hash`. With no hash (unknown account) it verifies against
    /// the dummy hash and answers false, in the same time. The parameters stored in the hash
    /// apply, so older hashes still verify.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, AppError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or(&self.dummy_hash);
        let stored = |e: argon2::password_hash::Error| {
            AppError::internal(anyhow::anyhow!("stored hash: {e}"))
        };
        let parsed = PasswordHash::new(hash).map_err(stored)?;
        let algorithm = Algorithm::try_from(parsed.algorithm).map_err(stored)?;
        let version = parsed
            .version
            .map_or(Ok(Version::V0x13), Version::try_from)
            .map_err(|e| AppError::internal(anyhow::anyhow!("stored hash: {e}")))?;
        let params = Params::try_from(&parsed).map_err(stored)?;
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return Err(AppError::internal(anyhow::anyhow!(
                "stored hash without salt or output"
            )));
        };
        let mut salt_buffer = [0u8; 64];
        let salt = salt.decode_b64(&mut salt_buffer).map_err(stored)?.to_vec();
        let output = self
            .compute(Work {
                algorithm,
                version,
                params,
                password: password.as_bytes().to_vec(),
                salt,
                output_len: expected.len(),
            })
            .await?;
        // `Output` compares in constant time.
        let matches = Output::new(&output).is_ok_and(|computed| computed == expected);
        Ok(known && matches)
    }

    /// Queues one argon2 computation and waits for it; `RATE_LIMITED` when the queue is full.
    async fn compute(&self, work: Work) -> Result<Vec<u8>, AppError> {
        let (reply, answer) = oneshot::channel();
        let job = Job { work, reply };
        let started = std::time::Instant::now();
        match self.queue.try_send(job) {
            Ok(()) => {
                let depth = self.in_queue.fetch_add(1, Ordering::Relaxed) + 1;
                metrics::gauge!(instruments::HASH_QUEUE).set(depth as f64);
            }
            Err(TrySendError::Full(_)) => {
                return Err(AppError::RateLimited {
                    retry_after: 1,
                    limit: "password_hashing.queue",
                });
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(AppError::internal(anyhow::anyhow!(
                    "hashing threads are gone"
                )));
            }
        }
        let answer = answer.await;
        let depth = self
            .in_queue
            .fetch_sub(1, Ordering::Relaxed)
            .saturating_sub(1);
        metrics::gauge!(instruments::HASH_QUEUE).set(depth as f64);
        metrics::histogram!(instruments::HASH_DURATION).record(started.elapsed().as_secs_f64());
        answer
            .map_err(|e| AppError::internal(anyhow::anyhow!("hashing thread failed: {e}")))?
            .map_err(|e| AppError::internal(anyhow::anyhow!("hashing: {e}")))
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
}

/// A hashing thread: takes jobs until every sender is gone, reusing one memory block sized
/// for the current parameters (a hash made with more memory borrows a larger one).
fn work(jobs: &Mutex<Receiver<Job>>, blocks: usize) {
    lower_priority();
    let mut memory = vec![Block::default(); blocks];
    loop {
        let Job { work, reply } = {
            let Ok(queue) = jobs.lock() else { return };
            match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let argon2 = Argon2::new(work.algorithm, work.version, work.params.clone());
        let mut output = vec![0u8; work.output_len];
        let needed = work.params.block_count();
        let mut larger = Vec::new();
        let blocks = if needed <= memory.len() {
            &mut memory
        } else {
            larger.resize(needed, Block::default());
            &mut larger
        };
        let result =
            argon2.hash_password_into_with_memory(&work.password, &work.salt, &mut output, blocks);
        let _ = reply.send(result.map(|()| output));
    }
}

/// Hashing yields the CPU to request handling (nice 10): a login flood then slows the
/// logins, not every other request, and the hashes still get every cycle left over.
#[cfg(target_os = "linux")]
fn lower_priority() {
    // SAFETY: gettid and setpriority take plain integers and touch no memory of ours; on
    // Linux, PRIO_PROCESS with a thread id sets that one thread's nice value.
    let tid = unsafe { libc::gettid() };
    if let Ok(tid) = libc::id_t::try_from(tid) {
        // SAFETY: as above. Failure (a sandbox forbidding it) leaves the default priority.
        let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, 10) };
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    async fn hasher(args: &[&str]) -> PasswordHasher {
        let mut all = vec!["usergraph"];
        all.extend_from_slice(args);
        let config = crate::config::Cli::try_parse_from(all).unwrap().config;
        PasswordHasher::new(&config).await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashes_verify_and_a_full_queue_refuses_at_once() {
        let hasher = hasher(&[
            "--password-hash-concurrency",
            "1",
            "--argon2-memory-kib",
            "8192",
            "--argon2-iterations",
            "4",
        ])
        .await;
        let password = Password::verified("correct horse battery staple");
        let hash = hasher.hash(&password).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=8192,t=4,p=1$"), "{hash}");
        assert!(hasher.verify(password.expose(), Some(&hash)).await.unwrap());
        assert!(!hasher.verify("another one", Some(&hash)).await.unwrap());
        assert!(!hasher.verify(password.expose(), None).await.unwrap());

        let many = (0..(QUEUE_PER_THREAD * 3)).map(|_| hasher.verify("guess", Some(&hash)));
        let answers = futures_util::future::join_all(many).await;
        let refused = answers
            .iter()
            .filter(|a| {
                matches!(
                    a,
                    Err(AppError::RateLimited {
                        limit: "password_hashing.queue",
                        ..
                    })
                )
            })
            .count();
        assert!(refused >= QUEUE_PER_THREAD, "refused {refused}");
        assert!(
            answers
                .iter()
                .all(|a| matches!(a, Ok(false) | Err(AppError::RateLimited { .. })))
        );
    }
}
