//! Buckets in this process: governor's keyed GCRA limiters, one per limit.

use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::{Policy, Take, cells};

/// One keyed limiter per limit that is on, indexed like the policies.
pub(super) struct Buckets {
    limiters: Vec<Option<DefaultKeyedRateLimiter<u128>>>,
}

impl Buckets {
    pub(super) fn new(policies: &[Policy]) -> Self {
        let limiters = policies
            .iter()
            .map(|policy| {
                let rate = policy.rate?;
                let interval = rate.period / rate.count;
                let quota = Quota::with_period(interval.max(Duration::from_micros(1)))?
                    .allow_burst(cells(rate.count));
                Some(RateLimiter::keyed(quota))
            })
            .collect();
        Self { limiters }
    }

    /// Takes each bucket in order; the index and wait of the first that is short.
    pub(super) fn take(&self, takes: &[Take]) -> Option<(usize, Duration)> {
        takes.iter().enumerate().find_map(|(index, take)| {
            let limiter = self.limiters.get(take.policy)?.as_ref()?;
            match limiter.check_key_n(&take.key, cells(take.cost)) {
                Ok(Ok(())) => None,
                Ok(Err(not_until)) => Some((
                    index,
                    not_until.wait_time_from(DefaultClock::default().now()),
                )),
                Err(_) => Some((index, take.rate.period)),
            }
        })
    }

    /// Forgets the buckets that are full again.
    pub(super) fn sweep(&self) {
        for limiter in self.limiters.iter().flatten() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}
