use serde::{Deserialize, Serialize};

use super::LabelScale;

/// A probability per label of a scale, in the scale's order. Always sums to 1.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScoreDist {
    pub probs: Vec<f64>,
}

impl ScoreDist {
    /// Normalises non-negative weights (probabilities, vote counts) into a distribution. All-zero
    /// or non-finite weights give the uniform distribution: "the teacher does not know".
    pub fn from_weights(weights: &[f64]) -> Self {
        let clean: Vec<f64> = weights
            .iter()
            .map(|w| if w.is_finite() && *w > 0.0 { *w } else { 0.0 })
            .collect();
        let total: f64 = clean.iter().sum();
        if total <= 0.0 {
            let n = weights.len().max(1) as f64;
            return ScoreDist {
                probs: vec![1.0 / n; weights.len()],
            };
        }
        ScoreDist {
            probs: clean.iter().map(|w| w / total).collect(),
        }
    }

    /// Softmax over natural-log scores (`-inf` allowed, meaning impossible).
    pub fn from_logprobs(logprobs: &[f64]) -> Self {
        let max = logprobs
            .iter()
            .cloned()
            .filter(|x| x.is_finite())
            .fold(f64::NEG_INFINITY, f64::max);
        if !max.is_finite() {
            return Self::from_weights(&vec![0.0; logprobs.len()]);
        }
        Self::from_weights(&logprobs.iter().map(|l| (l - max).exp()).collect::<Vec<_>>())
    }

    /// All mass on one label.
    pub fn one_hot(n: usize, index: usize) -> Self {
        let mut probs = vec![0.0; n];
        if index < n {
            probs[index] = 1.0;
        }
        ScoreDist { probs }
    }

    /// Expected gain under the scale's gains: the graded relevance score students regress on.
    pub fn expected_gain(&self, scale: &LabelScale) -> f64 {
        self.probs
            .iter()
            .zip(&scale.labels)
            .map(|(p, l)| p * l.gain)
            .sum()
    }

    /// Index and probability of the most likely label (the first one on ties).
    pub fn argmax(&self) -> (usize, f64) {
        self.probs
            .iter()
            .enumerate()
            .fold((0, f64::NEG_INFINITY), |best, (i, &p)| {
                if p > best.1 { (i, p) } else { best }
            })
    }

    /// Shannon entropy in nats.
    pub fn entropy(&self) -> f64 {
        -self
            .probs
            .iter()
            .filter(|p| **p > 0.0)
            .map(|p| p * p.ln())
            .sum::<f64>()
    }

    /// Keyed by label key, for JSON output: {"E": 0.7, "S": 0.2, ...}.
    pub fn by_key(&self, scale: &LabelScale) -> serde_json::Map<String, serde_json::Value> {
        scale
            .labels
            .iter()
            .zip(&self.probs)
            .map(|(l, p)| (l.key.clone(), serde_json::json!(p)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(d: &ScoreDist) -> f64 {
        d.probs.iter().sum()
    }

    #[test]
    fn weights_normalise_and_degenerate_weights_become_uniform() {
        let d = ScoreDist::from_weights(&[3.0, 1.0, 0.0, 0.0]);
        assert_eq!(d.probs, vec![0.75, 0.25, 0.0, 0.0]);
        let u = ScoreDist::from_weights(&[0.0, f64::NAN, -1.0]);
        assert!((sum(&u) - 1.0).abs() < 1e-12 && (u.probs[0] - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn logprobs_softmax_handles_minus_infinity() {
        let d = ScoreDist::from_logprobs(&[0.0, f64::NEG_INFINITY, (0.5f64).ln()]);
        assert!((d.probs[0] - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(d.probs[1], 0.0);
        assert!((sum(&d) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn expected_gain_uses_the_scale() {
        let s = LabelScale::esci();
        let d = ScoreDist {
            probs: vec![0.5, 0.5, 0.0, 0.0],
        };
        assert!((d.expected_gain(&s) - 0.55).abs() < 1e-12);
        assert_eq!(d.argmax(), (0, 0.5));
        assert!((d.entropy() - std::f64::consts::LN_2).abs() < 1e-12);
    }
}
