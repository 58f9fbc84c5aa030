//! Teacher-labelled augmentation (Walmart): new (query, item) pairs drawn from the catalog in
//! the store, for the teacher to label and the student to learn from.
//!
//! Strategies: `lexical` (items ranking high for the query by bm25 over title and brand: hard
//! candidates), `cross-query` (items imported with other queries: in-domain negatives) and
//! `random` (any item: easy negatives). The choice depends only on the catalog, the imported
//! pairs and the seed, so a re-run (or a run after a kill) adds exactly what is missing.

use std::collections::{BTreeMap, HashSet};

use anyhow::Result;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::domain::text::normalise;
use crate::store::{QueryItems, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Items ranking high for the query by bm25 over title and brand: hard candidates.
    #[value(alias = "bm25")]
    Lexical,
    /// Items imported with other queries: in-domain negatives.
    #[value(alias = "cross_query")]
    CrossQuery,
    /// Any item of the catalog: easy negatives.
    Random,
}

impl Strategy {
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Lexical => "lexical",
            Strategy::CrossQuery => "cross-query",
            Strategy::Random => "random",
        }
    }
}

#[derive(Debug, Clone)]
pub struct AugmentOptions {
    pub per_query: usize,
    pub strategies: Vec<Strategy>,
    pub seed: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AugmentReport {
    pub queries: u64,
    /// New pairs per strategy in this run.
    pub added: BTreeMap<&'static str, u64>,
    /// Pairs chosen that were there already (from an earlier run with the same seed).
    pub existing: u64,
    /// Queries for which the catalog had fewer candidates than asked.
    pub short_queries: u64,
    pub indexed_items: u64,
}

/// Words of a query worth matching: normalised, at least two characters, no stop words.
pub fn query_terms(query: &str) -> Vec<String> {
    const STOP: &[&str] = &[
        "and", "the", "for", "with", "without", "of", "in", "to", "a", "an", "on", "or", "by",
        "not", "no", "is", "at", "as", "from",
    ];
    let mut seen = HashSet::new();
    normalise(query)
        .split(' ')
        .filter(|w| w.chars().count() >= 2 && !STOP.contains(w))
        .filter(|w| seen.insert(w.to_string()))
        .map(str::to_owned)
        .collect()
}

/// A random generator for one query and strategy, fixed by the seed.
fn rng_for(seed: u64, query: &str, strategy: Strategy) -> StdRng {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(query.as_bytes());
    h.update(strategy.name().as_bytes());
    let d = h.finalize();
    StdRng::seed_from_u64(u64::from_le_bytes(d[..8].try_into().expect("8 bytes")))
}

/// `per_query` shared out over the strategies, the first ones taking the remainder.
fn quotas(per_query: usize, n: usize) -> Vec<usize> {
    (0..n)
        .map(|i| per_query / n + usize::from(i < per_query % n))
        .collect()
}

pub async fn augment(
    store: &Store,
    opts: &AugmentOptions,
    mut on_query: impl FnMut(u64, u64),
) -> Result<AugmentReport> {
    let mut report = AugmentReport {
        indexed_items: store.refresh_item_index().await?,
        ..Default::default()
    };
    let queries = store.imported_queries().await?;
    let (_, max_item) = store.item_id_range().await?;
    let total = queries.len() as u64;
    for (n, q) in queries.iter().enumerate() {
        let chosen = choose(store, q, opts, max_item).await?;
        if chosen.len() < opts.per_query {
            report.short_queries += 1;
        }
        let mut by_strategy: BTreeMap<&'static str, Vec<(i64, &str)>> = BTreeMap::new();
        for (item, s) in &chosen {
            by_strategy
                .entry(s.name())
                .or_default()
                .push((*item, s.name()));
        }
        for (name, items) in by_strategy {
            let added = store.add_augmented_pairs(q.query_id, &items).await?;
            *report.added.entry(name).or_default() += added;
            report.existing += items.len() as u64 - added;
        }
        report.queries += 1;
        on_query(n as u64 + 1, total);
    }
    Ok(report)
}

/// The items one query gets, each with the strategy that found it; no item twice.
async fn choose(
    store: &Store,
    q: &QueryItems,
    opts: &AugmentOptions,
    max_item: i64,
) -> Result<Vec<(i64, Strategy)>> {
    let mut chosen: Vec<(i64, Strategy)> = Vec::new();
    let mut seen: HashSet<i64> = HashSet::new();
    let mut carry = 0;
    for (strategy, quota) in opts
        .strategies
        .iter()
        .zip(quotas(opts.per_query, opts.strategies.len()))
    {
        let want = quota + carry;
        let mut got = 0;
        let mut rng = rng_for(opts.seed, &q.ext_id, *strategy);
        match strategy {
            Strategy::Lexical => {
                let limit = (want + chosen.len()) as i64 + 20;
                for item in store
                    .lexical_candidates(q.query_id, &query_terms(&q.text), limit)
                    .await?
                {
                    if got == want {
                        break;
                    }
                    if seen.insert(item) {
                        chosen.push((item, *strategy));
                        got += 1;
                    }
                }
            }
            Strategy::CrossQuery => {
                let mut items = store.other_query_items(q.query_id).await?;
                items.shuffle(&mut rng);
                for item in items {
                    if got == want {
                        break;
                    }
                    if seen.insert(item) {
                        chosen.push((item, *strategy));
                        got += 1;
                    }
                }
            }
            Strategy::Random => {
                let mut tries = 0;
                while got < want && tries < 50 * want.max(1) && max_item > 0 {
                    tries += 1;
                    let item = rng.random_range(1..=max_item);
                    if !seen.contains(&item) && store.item_usable(q.query_id, item).await? {
                        seen.insert(item);
                        chosen.push((item, *strategy));
                        got += 1;
                    }
                }
            }
        }
        carry = want - got;
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_share_the_remainder_out_first() {
        assert_eq!(quotas(7, 3), vec![3, 2, 2]);
        assert_eq!(quotas(2, 3), vec![1, 1, 0]);
        assert_eq!(quotas(4, 1), vec![4]);
    }

    #[test]
    fn query_terms_drop_stop_words_and_repeats() {
        assert_eq!(
            query_terms("Wireless thermostat without C-wire, wireless!"),
            vec!["wireless", "thermostat", "wire"]
        );
    }
}
