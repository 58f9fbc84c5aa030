//! Calibrating a teacher's label distribution against human labels: vector scaling (Guo et al.,
//! 2017) on the log-probabilities, `p' = softmax(a · log p + b)` with one slope `a` (1 / the
//! temperature) and a bias per label. The bias is what "Calibrate Before Use" (Zhao et al., 2021)
//! corrects: a prior the model puts on some labels whatever the input; the slope sharpens or
//! softens how sure it is. Fitted by minimising the human labels' negative log-likelihood, which
//! is convex in (a, b); for labels rather than probabilities, the biases are then moved, one
//! label at a time, to the values that give the fit pairs' argmax labels the best macro-F1
//! (searched from the likelihood fit and from the raw distribution).

use serde::{Deserialize, Serialize};

use super::ScoreDist;
use super::metrics::Confusion;

/// Probabilities are floored here before their log: a label the teacher gave 0 stays reachable.
const FLOOR: f64 = 1e-6;
/// A small L2 pull of the biases towards 0, so that a label no human used does not run off to
/// minus infinity.
const BIAS_L2: f64 = 1e-3;

/// What a fit makes best on its pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Objective {
    /// The human labels' log-likelihood: probabilities that mean what they say (a teacher whose
    /// distribution a student learns by KL).
    #[default]
    LogLoss,
    /// Each label's bias set for the macro-F1 of the argmax label, from the log-likelihood fit
    /// or the raw distribution, whichever ends better: labels that a team scores by macro-F1,
    /// every label counted alike, at some cost in log-loss (the prior of a rare label is raised
    /// past its frequency).
    MacroF1,
}

impl Objective {
    pub fn as_str(self) -> &'static str {
        match self {
            Objective::LogLoss => "log-loss",
            Objective::MacroF1 => "macro-f1",
        }
    }
}

/// The bias moves tried per label and pass in the macro-F1 search: ±4 in log-probability (a
/// factor of e⁴ ≈ 55 on the label's odds), by quarters.
const BIAS_STEPS: i32 = 16;
const BIAS_STEP: f64 = 0.25;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The slope on the log-probabilities (1 / temperature).
    pub slope: f64,
    /// One bias per label, in the scale's order.
    pub bias: Vec<f64>,
}

/// How well a calibration fits its samples: mean negative log-likelihood and accuracy, before
/// and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationFit {
    pub calibration: Calibration,
    pub objective: Objective,
    pub samples: usize,
    pub nll_before: f64,
    pub nll_after: f64,
    pub accuracy_before: f64,
    pub accuracy_after: f64,
    pub macro_f1_before: f64,
    pub macro_f1_after: f64,
}

impl Calibration {
    /// The identity: slope 1, no bias.
    pub fn identity(labels: usize) -> Calibration {
        Calibration {
            slope: 1.0,
            bias: vec![0.0; labels],
        }
    }

    fn logits(&self, probs: &[f64]) -> Vec<f64> {
        probs
            .iter()
            .zip(&self.bias)
            .map(|(p, b)| self.slope * p.max(FLOOR).ln() + b)
            .collect()
    }

    /// The calibrated distribution of a raw one (of the same scale).
    pub fn apply(&self, raw: &ScoreDist) -> ScoreDist {
        if raw.probs.len() != self.bias.len() {
            return raw.clone();
        }
        ScoreDist::from_logprobs(&self.logits(&raw.probs))
    }

    /// The index of the label with the highest calibrated probability.
    fn predict(&self, probs: &[f64]) -> usize {
        let z = self.logits(probs);
        (0..z.len()).fold(0, |best, k| if z[k] > z[best] { k } else { best })
    }

    /// Macro-F1 of the argmax labels against the samples' labels.
    fn macro_f1(&self, samples: &[(Vec<f64>, usize)]) -> f64 {
        let mut m = Confusion::new((0..self.bias.len()).map(|k| k.to_string()).collect());
        for (probs, y) in samples {
            m.add(*y, self.predict(probs));
        }
        m.macro_f1()
    }

    /// Fits the slope and biases to (raw distribution, human label index) samples.
    pub fn fit(
        samples: &[(Vec<f64>, usize)],
        labels: usize,
        objective: Objective,
    ) -> CalibrationFit {
        let identity = Calibration::identity(labels);
        let (nll_before, accuracy_before) = identity.score(samples);
        let macro_f1_before = identity.macro_f1(samples);
        let mut c = Calibration::fit_log_loss(samples, labels);
        if objective == Objective::MacroF1 {
            // The search is local: it starts from the likelihood fit and from the raw
            // distribution, and keeps the better end (the likelihood fit's on a tie), so the fit
            // pairs' macro-F1 ends no lower than either gives.
            let mut raw = identity.clone();
            let from_raw = raw.raise_macro_f1(samples);
            if from_raw > c.raise_macro_f1(samples) {
                c = raw;
            }
        }
        let (nll_after, accuracy_after) = c.score(samples);
        CalibrationFit {
            macro_f1_after: c.macro_f1(samples),
            calibration: c,
            objective,
            samples: samples.len(),
            nll_before,
            nll_after,
            accuracy_before,
            accuracy_after,
            macro_f1_before,
        }
    }

    /// Coordinate ascent on macro-F1, which is a step function of the biases: each label's bias
    /// in turn takes the grid value with the best macro-F1 (staying put on a tie), until a pass
    /// moves none, and returns the macro-F1 it ends at. The first label stays as it is: only the
    /// differences between biases change an argmax.
    fn raise_macro_f1(&mut self, samples: &[(Vec<f64>, usize)]) -> f64 {
        let mut best = self.macro_f1(samples);
        for _ in 0..8 {
            let mut moved = false;
            for k in 1..self.bias.len() {
                let start = self.bias[k];
                let mut keep = start;
                for step in -BIAS_STEPS..=BIAS_STEPS {
                    self.bias[k] = start + f64::from(step) * BIAS_STEP;
                    let m = self.macro_f1(samples);
                    if m > best + 1e-12 {
                        best = m;
                        keep = self.bias[k];
                        moved = true;
                    }
                }
                self.bias[k] = keep;
            }
            if !moved {
                break;
            }
        }
        best
    }

    /// Newton's method on the convex log-likelihood objective.
    fn fit_log_loss(samples: &[(Vec<f64>, usize)], labels: usize) -> Calibration {
        let mut c = Calibration::identity(labels);
        // Newton's method on the convex objective, with a step halved until it improves.
        let n = labels + 1;
        let mut objective = c.objective(samples);
        for _ in 0..100 {
            let (grad, hess) = c.derivatives(samples);
            let Some(step) = solve(hess, grad.clone()) else {
                break;
            };
            let mut t = 1.0;
            let mut improved = false;
            for _ in 0..30 {
                let trial = Calibration {
                    slope: c.slope - t * step[0],
                    bias: (0..labels).map(|k| c.bias[k] - t * step[k + 1]).collect(),
                };
                let o = trial.objective(samples);
                if o < objective {
                    c = trial;
                    improved = objective - o > 1e-12;
                    objective = o;
                    break;
                }
                t /= 2.0;
            }
            if !improved || grad.iter().take(n).map(|g| g.abs()).fold(0.0, f64::max) < 1e-9 {
                break;
            }
        }
        c
    }

    /// Mean negative log-likelihood and accuracy of the samples under this calibration.
    fn score(&self, samples: &[(Vec<f64>, usize)]) -> (f64, f64) {
        if samples.is_empty() {
            return (0.0, 0.0);
        }
        let mut nll = 0.0;
        let mut right = 0usize;
        for (probs, y) in samples {
            let p = self.apply(&ScoreDist {
                probs: probs.clone(),
            });
            nll -= p.probs[*y].max(1e-300).ln();
            right += usize::from(p.argmax().0 == *y);
        }
        let n = samples.len() as f64;
        (nll / n, right as f64 / n)
    }

    fn objective(&self, samples: &[(Vec<f64>, usize)]) -> f64 {
        self.score(samples).0 + BIAS_L2 * self.bias.iter().map(|b| b * b).sum::<f64>()
    }

    /// Gradient and Hessian of the objective in (slope, bias…).
    fn derivatives(&self, samples: &[(Vec<f64>, usize)]) -> (Vec<f64>, Vec<Vec<f64>>) {
        let k = self.bias.len();
        let n = k + 1;
        let mut g = vec![0.0; n];
        let mut h = vec![vec![0.0; n]; n];
        let m = samples.len().max(1) as f64;
        for (probs, y) in samples {
            let x: Vec<f64> = probs.iter().map(|p| p.max(FLOOR).ln()).collect();
            let p = ScoreDist::from_logprobs(&self.logits(probs)).probs;
            // d z_j / d slope = x_j, d z_j / d b_i = [i = j]: features per label.
            let feature = |j: usize, param: usize| -> f64 {
                if param == 0 {
                    x[j]
                } else if param - 1 == j {
                    1.0
                } else {
                    0.0
                }
            };
            let mean: Vec<f64> = (0..n)
                .map(|a| (0..k).map(|j| p[j] * feature(j, a)).sum())
                .collect();
            for a in 0..n {
                g[a] += (mean[a] - feature(*y, a)) / m;
                for b in 0..n {
                    let cov: f64 = (0..k)
                        .map(|j| p[j] * feature(j, a) * feature(j, b))
                        .sum::<f64>()
                        - mean[a] * mean[b];
                    h[a][b] += cov / m;
                }
            }
        }
        for i in 0..k {
            g[i + 1] += 2.0 * BIAS_L2 * self.bias[i];
            h[i + 1][i + 1] += 2.0 * BIAS_L2;
        }
        (g, h)
    }
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting; None when singular.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (top, rest) = a.split_at_mut(col + 1);
        let pivot_row = &top[col];
        for (r, row) in rest.iter_mut().enumerate() {
            let f = row[col] / pivot_row[col];
            for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= f * p;
            }
            b[col + 1 + r] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|c| a[row][c] * x[c]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A teacher that says "I" (index 3) with 0.7 whatever the truth, and humans who say "E"
    /// (index 0) 60% of the time: the fit moves the distribution towards the humans' frequencies.
    #[test]
    fn a_biased_teacher_is_pulled_towards_the_human_label_frequencies() {
        let raw = vec![0.1, 0.1, 0.1, 0.7];
        let samples: Vec<(Vec<f64>, usize)> = (0..100)
            .map(|i| (raw.clone(), if i < 60 { 0 } else { 1 + i % 3 }))
            .collect();
        let fit = Calibration::fit(&samples, 4, Objective::LogLoss);
        let p = fit.calibration.apply(&ScoreDist { probs: raw.clone() });
        assert!(fit.nll_after < fit.nll_before, "{fit:?}");
        assert!((p.probs[0] - 0.6).abs() < 0.02, "{p:?}");
        assert_eq!(p.argmax().0, 0);
        assert!(fit.accuracy_after > fit.accuracy_before);
    }

    /// A teacher whose argmax is right but too unsure gets a slope above 1 (sharper); one that is
    /// right half the time at 0.99 gets a slope below 1 (softer).
    #[test]
    fn the_slope_sharpens_an_unsure_teacher_and_softens_an_overconfident_one() {
        let unsure: Vec<(Vec<f64>, usize)> = (0..80)
            .map(|i| {
                let y = i % 4;
                let mut p = vec![0.2; 4];
                p[y] = 0.4;
                (p, y)
            })
            .collect();
        assert!(
            Calibration::fit(&unsure, 4, Objective::LogLoss)
                .calibration
                .slope
                > 1.5
        );
        let sure: Vec<(Vec<f64>, usize)> = (0..80)
            .map(|i| {
                let guess = i % 4;
                let mut p = vec![0.01 / 3.0; 4];
                p[guess] = 0.99;
                let wrong = (i / 4) % 2 == 1;
                (p, if wrong { (guess + 1) % 4 } else { guess })
            })
            .collect();
        let fit = Calibration::fit(&sure, 4, Objective::LogLoss);
        assert!(fit.calibration.slope < 0.5, "{fit:?}");
    }

    /// Humans say "I" (index 3) for 30 of 100 pairs; the teacher gives all 30 and 40 of the "E"
    /// pairs the same look, so the best probability there is "E" (4 in 7) and the log-likelihood
    /// fit never says "I": macro-F1 0.41. Moving the "I" bias to say it on that look is worth
    /// macro-F1 0.6, for a worse log-loss.
    #[test]
    fn the_macro_f1_objective_says_a_minority_label_that_the_log_loss_fit_never_says() {
        let clear = vec![0.6, 0.1, 0.1, 0.2];
        let unclear = vec![0.5, 0.1, 0.1, 0.3];
        let mut samples: Vec<(Vec<f64>, usize)> = Vec::new();
        samples.extend((0..30).map(|_| (clear.clone(), 0)));
        samples.extend((0..40).map(|_| (unclear.clone(), 0)));
        samples.extend((0..30).map(|_| (unclear.clone(), 3)));
        let log_loss = Calibration::fit(&samples, 4, Objective::LogLoss);
        let macro_f1 = Calibration::fit(&samples, 4, Objective::MacroF1);
        assert_eq!(log_loss.calibration.predict(&unclear), 0, "{log_loss:?}");
        assert!(
            (log_loss.macro_f1_after - 0.41).abs() < 0.01,
            "{log_loss:?}"
        );
        assert_eq!(macro_f1.calibration.predict(&unclear), 3, "{macro_f1:?}");
        assert_eq!(macro_f1.calibration.predict(&clear), 0, "{macro_f1:?}");
        assert!((macro_f1.macro_f1_after - 0.6).abs() < 1e-9, "{macro_f1:?}");
        assert!(macro_f1.nll_after > log_loss.nll_after, "{macro_f1:?}");
        assert_eq!(macro_f1.objective, Objective::MacroF1);
    }

    #[test]
    fn the_identity_changes_nothing_and_a_mismatched_scale_is_left_alone() {
        let raw = ScoreDist {
            probs: vec![0.5, 0.3, 0.2],
        };
        let same = Calibration::identity(3).apply(&raw);
        for (a, b) in raw.probs.iter().zip(&same.probs) {
            assert!((a - b).abs() < 1e-9);
        }
        assert_eq!(Calibration::identity(4).apply(&raw), raw);
        let fit = Calibration::fit(&[], 3, Objective::MacroF1);
        assert_eq!(fit.calibration, Calibration::identity(3));
    }
}
