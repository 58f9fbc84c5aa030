//! Teach processes sharing a PostgreSQL database take pairs by claiming them (a lease with this
//! process's name and an expiry, `store::leases`), so several machines judge one project
//! without judging a pair twice, and a killed process's pairs go to the others once its leases
//! lapse.

use std::time::Duration;

use anyhow::Result;

use crate::domain::Pair;
use crate::store::{PairFilter, Store};

/// How long a claimed pair stays a process's by default: far longer than one judgment takes
/// (a CoT judgment on this CPU is under a minute), short enough that a dead machine's pairs
/// come back the same hour.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(600);

/// Who claims, and for how long.
#[derive(Debug, Clone)]
pub struct Claimant {
    pub owner: String,
    pub lease: Duration,
}

impl Claimant {
    /// This process, as `host:pid`.
    pub fn this_process(lease: Duration) -> Claimant {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        Claimant {
            owner: format!("{host}:{}", std::process::id()),
            lease,
        }
    }
}

/// Longest wait between looks at the leases of other processes: how soon this process sees that
/// they finished the pairs they hold.
const RECHECK: Duration = Duration::from_secs(2);

/// The next `n` pairs this process may judge; empty when none is left. While every pair left is
/// held by another live process, waits (their pairs come back to the pool if they die).
pub async fn next_claims(
    store: &Store,
    run: (&str, &str, &str),
    filter: &PairFilter,
    who: &Claimant,
    n: usize,
) -> Result<Vec<Pair>> {
    loop {
        let claimed = store
            .claim_pairs(run, filter, &who.owner, who.lease, n)
            .await?;
        if !claimed.is_empty() {
            return Ok(claimed);
        }
        match store.wait_for_leases(run, filter, &who.owner).await? {
            None => return Ok(Vec::new()),
            Some(wait) => {
                tokio::time::sleep(wait.clamp(Duration::from_millis(100), RECHECK)).await;
            }
        }
    }
}
