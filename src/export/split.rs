use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// `by-query:80/10/10`: every query, with all its pairs, goes to exactly one split.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitSpec {
    pub names: Vec<&'static str>,
    pub weights: Vec<u32>,
}

const NAMES: [&str; 3] = ["train", "dev", "test"];

impl SplitSpec {
    pub fn parse(spec: &str) -> Result<SplitSpec> {
        let Some(parts) = spec.strip_prefix("by-query:") else {
            bail!("--split {spec}: expected by-query:TRAIN/DEV/TEST, e.g. by-query:80/10/10");
        };
        let weights: Vec<u32> = parts
            .split('/')
            .map(|p| {
                p.trim()
                    .parse::<u32>()
                    .with_context(|| format!("--split {spec}: {p:?} is not a whole number"))
            })
            .collect::<Result<_>>()?;
        if weights.is_empty() || weights.len() > 3 || weights.iter().sum::<u32>() == 0 {
            bail!(
                "--split {spec}: give one to three weights (train/dev/test) that do not all be zero"
            );
        }
        Ok(SplitSpec {
            names: NAMES[..weights.len()].to_vec(),
            weights,
        })
    }

    /// Assigns each query to a split by its outside id: queries ordered by a hash of (seed, id),
    /// then cut by the weights. Deterministic for a seed, and close to the asked proportions.
    /// `queries` are (key, outside id); the result is by key (the store's row id, cheaper to
    /// look up per pair than the id's text).
    pub fn assign<K: Copy + Ord>(&self, queries: &[(K, String)], seed: u64) -> Splits<K> {
        let mut keyed: Vec<([u8; 8], &String, K)> = queries
            .iter()
            .map(|(k, q)| {
                let mut h = Sha256::new();
                h.update(seed.to_le_bytes());
                h.update(q.as_bytes());
                let d = h.finalize();
                (d[..8].try_into().expect("8 bytes"), q, *k)
            })
            .collect();
        keyed.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let total: u32 = self.weights.iter().sum();
        let n = keyed.len();
        let mut out = Vec::with_capacity(n);
        let mut start = 0;
        let mut cum = 0;
        for (name, w) in self.names.iter().zip(&self.weights) {
            cum += w;
            let end = (n as u64 * cum as u64 / total as u64) as usize;
            out.extend(keyed[start..end].iter().map(|&(_, _, k)| (k, *name)));
            start = end;
        }
        out.sort_unstable_by_key(|&(k, _)| k);
        Splits(out)
    }
}

/// Each query's split by key, sorted by key: an export looks queries up in the order it reads
/// them, so a binary search stays in cache where a hash map of 100,000 queries missed it on every
/// lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct Splits<K>(Vec<(K, &'static str)>);

impl<K: Ord> Splits<K> {
    pub fn get(&self, key: &K) -> Option<&'static str> {
        let i = self.0.binary_search_by(|(k, _)| k.cmp(key)).ok()?;
        Some(self.0[i].1)
    }

    /// How many queries went to `split`.
    pub fn count(&self, split: &str) -> usize {
        self.0.iter().filter(|(_, s)| *s == split).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_split_in_proportion_and_deterministically() {
        let ids: Vec<(usize, String)> = (0..100).map(|i| (i, format!("q{i}"))).collect();
        let s = SplitSpec::parse("by-query:80/10/10").unwrap();
        let a = s.assign(&ids, 7);
        assert_eq!(
            (a.count("train"), a.count("dev"), a.count("test")),
            (80, 10, 10)
        );
        assert!(ids.iter().all(|(k, _)| a.get(k).is_some()));
        assert_eq!(a.get(&100), None);
        assert_eq!(a, s.assign(&ids, 7));
        assert_ne!(a, s.assign(&ids, 8));
    }

    #[test]
    fn bad_specs_say_what_is_expected() {
        assert!(
            SplitSpec::parse("random:80/20")
                .unwrap_err()
                .to_string()
                .contains("by-query:TRAIN/DEV/TEST")
        );
        assert!(SplitSpec::parse("by-query:80/x").is_err());
        assert_eq!(
            SplitSpec::parse("by-query:90/10").unwrap().names,
            ["train", "dev"]
        );
    }
}
