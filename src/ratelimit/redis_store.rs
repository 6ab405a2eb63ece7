//! Buckets in Redis, shared by every instance on it: one Lua script takes all of a
//! request's buckets in one round trip, atomically.

use std::time::Duration;

use redis::Script;
use redis::aio::ConnectionManager;

use super::Take;

/// GCRA over string keys holding the bucket's time (microseconds since the epoch). KEYS are
/// the buckets in order; ARGV[1] is now, then an advance and a window per key. Answers
/// `{0, 0}` when every bucket had its cells, else `{n, wait}` for the first, n-th, that did
/// not (the ones before it stay taken). A key expires when its bucket is full again.
const GCRA: &str = r"
local now = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local advance = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  if tat + advance - now > window then
    return {i, tat + advance - window - now}
  end
  local new = tat + advance
  redis.call('SET', key, string.format('%d', new), 'PX', math.ceil((new - now) / 1000))
end
return {0, 0}
";

/// A connection to Redis (reconnecting by itself) and the key prefix.
#[derive(Clone)]
pub(super) struct Buckets {
    connection: ConnectionManager,
    prefix: String,
    script: std::sync::Arc<Script>,
}

impl Buckets {
    pub(super) async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let connection = client.get_connection_manager().await?;
        Ok(Self {
            connection,
            prefix: format!("{prefix}ratelimit:"),
            script: std::sync::Arc::new(Script::new(GCRA)),
        })
    }

    /// Takes each bucket in order; the index and wait of the first that is short.
    pub(super) async fn take(
        &self,
        takes: &[Take],
        now: i64,
    ) -> anyhow::Result<Option<(usize, Duration)>> {
        let mut invocation = self.script.prepare_invoke();
        invocation.arg(now);
        for take in takes {
            let (interval, window) = take.interval_and_window();
            invocation
                .key(format!("{}{}", self.prefix, take.shared_key()))
                .arg(interval.saturating_mul(i64::from(take.cost)))
                .arg(window);
        }
        let mut connection = self.connection.clone();
        let (refused, wait): (usize, i64) = invocation.invoke_async(&mut connection).await?;
        Ok(refused
            .checked_sub(1)
            .map(|index| (index, Duration::from_micros(wait.max(0).unsigned_abs()))))
    }
}
