//! Train / dev / test splits by query: every query, with all its pairs, in exactly one split, so
//! that a figure measured on `test` says how a model does on queries it never saw. Export,
//! student training and the comparison assign splits here, from the same spec and seed.

use std::fmt;

use sha2::{Digest, Sha256};

/// The seed of every seeded choice when none is given: splits, sampled pairs, training order.
/// One default, so that `export` and `student train` put the same queries in `test`.
pub const DEFAULT_SEED: u64 = 42;

/// The split a spec gives when the user names none and the pairs carry no split of their own.
pub const DEFAULT_BY_QUERY: [u32; 3] = [80, 10, 10];

const NAMES: [&str; 3] = ["train", "dev", "test"];

/// How queries are split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitSpec {
    /// `by-query:80/10/10`: queries ordered by a hash of (seed, id), cut by the weights.
    ByQuery { weights: Vec<u32> },
    /// `fold:K/N`: queries in N folds by the same hash; fold K is `test`, the first half of the
    /// next fold is `dev`, the rest `train` (five folds: 70/10/20). Running K = 1..N puts every
    /// query in exactly one test fold: cross-validation over queries.
    Fold { k: u32, n: u32 },
    /// `imported`: the `split` column of the imported pairs (ESCI ships one).
    Imported,
}

/// A split spec that cannot be parsed, or imported splits that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error(
        "--split {0}: expected by-query:TRAIN/DEV/TEST (e.g. by-query:80/10/10), fold:K/N (e.g. fold:1/5) or imported"
    )]
    Syntax(String),
    #[error("--split {spec}: {why}")]
    Invalid { spec: String, why: String },
    #[error(
        "--split imported: {pairs} imported pairs of {} queries have no split ({}); give every pair a `split` column (train, dev or test) or choose --split by-query:80/10/10",
        queries.len(), examples(queries)
    )]
    Missing { pairs: u64, queries: Vec<String> },
    #[error(
        "--split imported: query {query} has pairs in {} ({}); a query must be in one split, or a figure on `test` would include queries seen in training",
        splits.join(" and "), "fix its pairs' split column or choose --split by-query:80/10/10"
    )]
    Mixed { query: String, splits: Vec<String> },
    #[error(
        "--split imported: query {query} has split `{value}`; the splits are train, dev (or valid, validation, val) and test"
    )]
    Unknown { query: String, value: String },
}

fn examples(queries: &[String]) -> String {
    let shown: Vec<&str> = queries.iter().take(5).map(String::as_str).collect();
    let more = queries.len().saturating_sub(shown.len());
    if more > 0 {
        format!("queries {} and {more} more", shown.join(", "))
    } else {
        format!("queries {}", shown.join(", "))
    }
}

impl SplitSpec {
    pub fn parse(spec: &str) -> Result<SplitSpec, SplitError> {
        let invalid = |why: &str| SplitError::Invalid {
            spec: spec.to_string(),
            why: why.to_string(),
        };
        if spec == "imported" {
            return Ok(SplitSpec::Imported);
        }
        if let Some(parts) = spec.strip_prefix("by-query:") {
            let weights: Vec<u32> = parts
                .split('/')
                .map(|p| p.trim().parse::<u32>())
                .collect::<Result<_, _>>()
                .map_err(|_| invalid("the weights must be whole numbers, e.g. 80/10/10"))?;
            if weights.is_empty() || weights.len() > 3 || weights.iter().sum::<u32>() == 0 {
                return Err(invalid(
                    "give one to three weights (train/dev/test) that are not all zero",
                ));
            }
            return Ok(SplitSpec::ByQuery { weights });
        }
        if let Some(parts) = spec.strip_prefix("fold:") {
            let (k, n) = parts
                .split_once('/')
                .and_then(|(k, n)| Some((k.trim().parse().ok()?, n.trim().parse().ok()?)))
                .ok_or_else(|| invalid("expected fold:K/N with whole numbers, e.g. fold:1/5"))?;
            if n < 2 || k < 1 || k > n {
                return Err(invalid("K runs from 1 to N, and N is at least 2"));
            }
            return Ok(SplitSpec::Fold { k, n });
        }
        Err(SplitError::Syntax(spec.to_string()))
    }

    /// The default `by-query:80/10/10`.
    pub fn by_query_default() -> SplitSpec {
        SplitSpec::ByQuery {
            weights: DEFAULT_BY_QUERY.to_vec(),
        }
    }

    /// Assigns each query to a split. Hashed specs order queries by a hash of (seed, outside
    /// id), so the same seed gives the same splits on any database holding the same queries.
    pub fn assign(&self, queries: &[SplitQuery], seed: u64) -> Result<Splits, SplitError> {
        let mut out: Vec<(i64, &'static str)> = Vec::with_capacity(queries.len());
        match self {
            SplitSpec::Imported => {
                let mut unsplit = (0u64, Vec::new());
                for q in queries {
                    if q.unsplit_pairs > 0 {
                        unsplit.0 += q.unsplit_pairs;
                        unsplit.1.push(q.ext_id.clone());
                        continue;
                    }
                    let mut names: Vec<&'static str> = Vec::new();
                    for value in &q.imported {
                        let name = normalise(value).ok_or_else(|| SplitError::Unknown {
                            query: q.ext_id.clone(),
                            value: value.clone(),
                        })?;
                        if !names.contains(&name) {
                            names.push(name);
                        }
                    }
                    match names.as_slice() {
                        [one] => out.push((q.key, one)),
                        [] => {
                            unsplit.1.push(q.ext_id.clone());
                        }
                        _ => {
                            return Err(SplitError::Mixed {
                                query: q.ext_id.clone(),
                                splits: names.iter().map(|s| s.to_string()).collect(),
                            });
                        }
                    }
                }
                if !unsplit.1.is_empty() {
                    return Err(SplitError::Missing {
                        pairs: unsplit.0,
                        queries: unsplit.1,
                    });
                }
            }
            SplitSpec::ByQuery { weights } => {
                let keyed = hashed_order(queries, seed);
                let total: u32 = weights.iter().sum();
                let n = keyed.len();
                let (mut start, mut cum) = (0, 0);
                for (name, w) in NAMES.iter().zip(weights) {
                    cum += w;
                    let end = (n as u64 * cum as u64 / total as u64) as usize;
                    out.extend(keyed[start..end].iter().map(|&k| (k, *name)));
                    start = end;
                }
            }
            SplitSpec::Fold { k, n } => {
                let folded = query_folds(queries, *n, seed);
                let len = folded.len() as u64;
                let bound = |f: u64| (len * f / *n as u64) as usize;
                let (test, dev) = ((*k - 1) as u64, (*k as u64) % *n as u64);
                let dev_end = bound(dev) + (bound(dev + 1) - bound(dev)).div_ceil(2);
                for (i, &(key, f)) in folded.iter().enumerate() {
                    let f = f as u64;
                    let name = if f == test {
                        "test"
                    } else if f == dev && i < dev_end {
                        "dev"
                    } else {
                        "train"
                    };
                    out.push((key, name));
                }
            }
        }
        out.sort_unstable_by_key(|&(k, _)| k);
        Ok(Splits(out))
    }
}

/// Each query's fold (0 to `n` − 1) as `fold:K/N` cuts them: the queries in the order of a hash
/// of (seed, outside id), cut into `n` runs of near-equal length; in that order.
pub fn query_folds(queries: &[SplitQuery], n: u32, seed: u64) -> Vec<(i64, u32)> {
    let keyed = hashed_order(queries, seed);
    let len = keyed.len() as u64;
    let bound = |f: u64| (len * f / n as u64) as usize;
    keyed
        .iter()
        .enumerate()
        .map(|(i, &key)| {
            let f = (0..n as u64).find(|&f| i < bound(f + 1)).unwrap_or(0);
            (key, f as u32)
        })
        .collect()
}

/// The query keys in the order of a hash of (seed, outside id).
fn hashed_order(queries: &[SplitQuery], seed: u64) -> Vec<i64> {
    let mut keyed: Vec<([u8; 8], &str, i64)> = queries
        .iter()
        .map(|q| {
            let mut h = Sha256::new();
            h.update(seed.to_le_bytes());
            h.update(q.ext_id.as_bytes());
            let d = h.finalize();
            (
                d[..8].try_into().expect("8 bytes"),
                q.ext_id.as_str(),
                q.key,
            )
        })
        .collect();
    keyed.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    keyed.into_iter().map(|(_, _, k)| k).collect()
}

/// An imported split value as one of the three names.
fn normalise(value: &str) -> Option<&'static str> {
    match value.trim().to_ascii_lowercase().as_str() {
        "train" | "training" => Some("train"),
        "dev" | "valid" | "validation" | "val" => Some("dev"),
        "test" | "testing" => Some("test"),
        _ => None,
    }
}

impl fmt::Display for SplitSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitSpec::ByQuery { weights } => {
                let w: Vec<String> = weights.iter().map(u32::to_string).collect();
                write!(f, "by-query:{}", w.join("/"))
            }
            SplitSpec::Fold { k, n } => write!(f, "fold:{k}/{n}"),
            SplitSpec::Imported => f.write_str("imported"),
        }
    }
}

/// What a split needs to know of a query: its key in the store, its outside id (hashed specs),
/// and for `imported` the distinct split values of its imported pairs and how many of them
/// have none.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SplitQuery {
    pub key: i64,
    pub ext_id: String,
    pub imported: Vec<String>,
    pub unsplit_pairs: u64,
}

/// Each query's split by key, sorted by key: an export looks queries up in the order it reads
/// them, so a binary search stays in cache where a hash map of 100,000 queries missed it on every
/// lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct Splits(Vec<(i64, &'static str)>);

impl Splits {
    pub fn get(&self, key: i64) -> Option<&'static str> {
        let i = self.0.binary_search_by(|(k, _)| k.cmp(&key)).ok()?;
        Some(self.0[i].1)
    }

    /// The keys of the queries in `split`.
    pub fn keys_in(&self, split: &str) -> Vec<i64> {
        self.0
            .iter()
            .filter(|(_, s)| *s == split)
            .map(|(k, _)| *k)
            .collect()
    }

    /// How many queries went to `split`.
    pub fn count(&self, split: &str) -> usize {
        self.0.iter().filter(|(_, s)| *s == split).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queries(n: i64) -> Vec<SplitQuery> {
        (0..n)
            .map(|i| SplitQuery {
                key: i,
                ext_id: format!("q{i}"),
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn queries_split_in_proportion_and_deterministically() {
        let ids = queries(100);
        let s = SplitSpec::parse("by-query:80/10/10").unwrap();
        let a = s.assign(&ids, 7).unwrap();
        assert_eq!(
            (a.count("train"), a.count("dev"), a.count("test")),
            (80, 10, 10)
        );
        assert!(ids.iter().all(|q| a.get(q.key).is_some()));
        assert_eq!(a.get(100), None);
        assert_eq!(a, s.assign(&ids, 7).unwrap());
        assert_ne!(a, s.assign(&ids, 8).unwrap());
        assert_eq!(s.to_string(), "by-query:80/10/10");
    }

    #[test]
    fn folds_put_every_query_in_exactly_one_test_fold() {
        let ids = queries(53);
        let mut tested = vec![0; 53];
        for k in 1..=5 {
            let spec = SplitSpec::parse(&format!("fold:{k}/5")).unwrap();
            assert_eq!(spec.to_string(), format!("fold:{k}/5"));
            let s = spec.assign(&ids, 0).unwrap();
            let (train, dev, test) = (s.count("train"), s.count("dev"), s.count("test"));
            assert_eq!(train + dev + test, 53);
            assert!((10..=11).contains(&test), "fold {k}: test {test}");
            assert!((5..=6).contains(&dev), "fold {k}: dev {dev}");
            for q in &ids {
                if s.get(q.key) == Some("test") {
                    tested[q.key as usize] += 1;
                }
            }
        }
        assert!(tested.iter().all(|&t| t == 1), "{tested:?}");
    }

    #[test]
    fn imported_splits_are_used_as_given_or_refused_with_the_queries() {
        let mut ids = queries(3);
        ids[0].imported = vec!["train".into()];
        ids[1].imported = vec!["Validation".into()];
        ids[2].imported = vec!["test".into()];
        let s = SplitSpec::Imported.assign(&ids, 0).unwrap();
        assert_eq!(
            (s.get(0), s.get(1), s.get(2)),
            (Some("train"), Some("dev"), Some("test"))
        );
        // The seed plays no part.
        assert_eq!(s, SplitSpec::Imported.assign(&ids, 9).unwrap());

        ids[1].unsplit_pairs = 4;
        let err = SplitSpec::Imported.assign(&ids, 0).unwrap_err().to_string();
        assert!(
            err.contains("4 imported pairs of 1 queries have no split"),
            "{err}"
        );
        assert!(err.contains("queries q1"), "{err}");

        ids[1].unsplit_pairs = 0;
        ids[2].imported = vec!["test".into(), "train".into()];
        let err = SplitSpec::Imported.assign(&ids, 0).unwrap_err().to_string();
        assert!(
            err.contains("query q2 has pairs in test and train"),
            "{err}"
        );

        ids[2].imported = vec!["holdout".into()];
        let err = SplitSpec::Imported.assign(&ids, 0).unwrap_err().to_string();
        assert!(err.contains("split `holdout`"), "{err}");
    }

    #[test]
    fn bad_specs_say_what_is_expected() {
        for bad in [
            "random:80/20",
            "by-query:80/x",
            "fold:0/5",
            "fold:6/5",
            "fold:1",
        ] {
            let err = SplitSpec::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with(&format!("--split {bad}:")), "{err}");
        }
        assert!(
            SplitSpec::parse("random:80/20")
                .unwrap_err()
                .to_string()
                .contains("by-query:TRAIN/DEV/TEST")
        );
        assert_eq!(
            SplitSpec::parse("by-query:90/10").unwrap(),
            SplitSpec::ByQuery {
                weights: vec![90, 10]
            }
        );
    }
}
