//! Agreement and ranking statistics over labels of one scale: confusion matrix, accuracy,
//! macro-F1, Cohen's kappa, calibration (ECE with a reliability table) and NDCG. Pure functions,
//! shared by `workbench metrics`, `workbench compare` and the report.

use serde::Serialize;

/// Counts of (reference label, predicted label) over a scale of `n` labels. Rows are the
/// reference (a human), columns the prediction (the teacher or a student).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Confusion {
    pub labels: Vec<String>,
    pub counts: Vec<Vec<u64>>,
}

/// The usual summary of a confusion matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agreement {
    pub n: u64,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub kappa: f64,
    pub per_label: Vec<LabelScores>,
    pub confusion: Confusion,
}

/// Precision, recall and F1 of one label; `support` is how often the reference gave it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelScores {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

impl Confusion {
    pub fn new(labels: Vec<String>) -> Self {
        let n = labels.len();
        Confusion {
            labels,
            counts: vec![vec![0; n]; n],
        }
    }

    pub fn add(&mut self, reference: usize, predicted: usize) {
        self.counts[reference][predicted] += 1;
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    fn diagonal(&self) -> u64 {
        (0..self.labels.len()).map(|i| self.counts[i][i]).sum()
    }

    fn row_sum(&self, i: usize) -> u64 {
        self.counts[i].iter().sum()
    }

    fn col_sum(&self, j: usize) -> u64 {
        self.counts.iter().map(|r| r[j]).sum()
    }

    pub fn accuracy(&self) -> f64 {
        ratio(self.diagonal() as f64, self.total() as f64)
    }

    /// Per-label F1 (0 where precision + recall is 0), averaged over the labels that occur in
    /// the reference or the prediction (scikit-learn's `f1_score(average="macro")`).
    pub fn macro_f1(&self) -> f64 {
        let present: Vec<usize> = (0..self.labels.len())
            .filter(|&i| self.row_sum(i) + self.col_sum(i) > 0)
            .collect();
        if present.is_empty() {
            return 0.0;
        }
        present
            .iter()
            .map(|&i| self.label_scores(i).f1)
            .sum::<f64>()
            / present.len() as f64
    }

    fn label_scores(&self, i: usize) -> LabelScores {
        let tp = self.counts[i][i] as f64;
        let precision = ratio(tp, self.col_sum(i) as f64);
        let recall = ratio(tp, self.row_sum(i) as f64);
        LabelScores {
            label: self.labels[i].clone(),
            precision,
            recall,
            f1: ratio(2.0 * precision * recall, precision + recall),
            support: self.row_sum(i),
        }
    }

    /// Precision, recall and F1 of every label of the scale.
    pub fn per_label(&self) -> Vec<LabelScores> {
        (0..self.labels.len())
            .map(|i| self.label_scores(i))
            .collect()
    }

    /// Cohen's kappa: agreement beyond what the two marginal distributions give by chance.
    pub fn kappa(&self) -> f64 {
        let total = self.total() as f64;
        if total == 0.0 {
            return 0.0;
        }
        let observed = self.diagonal() as f64 / total;
        let expected: f64 = (0..self.labels.len())
            .map(|i| (self.row_sum(i) as f64 / total) * (self.col_sum(i) as f64 / total))
            .sum();
        if (1.0 - expected).abs() < 1e-12 {
            return if observed >= 1.0 { 1.0 } else { 0.0 };
        }
        (observed - expected) / (1.0 - expected)
    }

    pub fn agreement(self) -> Agreement {
        Agreement {
            n: self.total(),
            accuracy: self.accuracy(),
            macro_f1: self.macro_f1(),
            kappa: self.kappa(),
            per_label: self.per_label(),
            confusion: self,
        }
    }
}

/// Per-label precision, recall and F1 as aligned text, a header first.
pub fn per_label_table(a: &Agreement) -> Vec<String> {
    let width = a
        .per_label
        .iter()
        .map(|l| l.label.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let mut out = vec![format!(
        "{:<width$}  {:>9}  {:>6}  {:>6}  {:>7}",
        "label", "precision", "recall", "F1", "support"
    )];
    for l in &a.per_label {
        out.push(format!(
            "{:<width$}  {:>9.3}  {:>6.3}  {:>6.3}  {:>7}",
            l.label, l.precision, l.recall, l.f1, l.support
        ));
    }
    out
}

/// The confusion matrix as aligned text: a row per reference label, a column per prediction.
pub fn confusion_table(c: &Confusion, reference: &str, predicted: &str) -> Vec<String> {
    let width = c
        .labels
        .iter()
        .map(|l| l.chars().count())
        .chain(c.counts.iter().flatten().map(|n| n.to_string().len()))
        .max()
        .unwrap_or(1)
        .max(3);
    let head = reference.chars().count().max(5);
    let mut out = vec![format!(
        "{:<head$}  {predicted} →",
        format!("{reference} ↓")
    )];
    let mut line = format!("{:<head$}", "");
    for l in &c.labels {
        line += &format!("  {l:>width$}");
    }
    out.push(line);
    for (label, row) in c.labels.iter().zip(&c.counts) {
        let mut line = format!("{label:<head$}");
        for n in row {
            line += &format!("  {n:>width$}");
        }
        out.push(line);
    }
    out
}

/// Rows of agreement figures as aligned text, a header first.
pub fn agreement_table(rows: &[(&str, &Agreement)]) -> Vec<String> {
    let width = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let mut out = vec![format!(
        "{:<width$}  {:>6}  {:>8}  {:>8}  {:>6}",
        "", "pairs", "accuracy", "macro-F1", "kappa"
    )];
    for (name, a) in rows {
        out.push(format!(
            "{name:<width$}  {:>6}  {:>8.3}  {:>8.3}  {:>6.3}",
            a.n, a.accuracy, a.macro_f1, a.kappa
        ));
    }
    out
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { a / b }
}

/// One bin of a reliability table: predictions whose confidence fell in [lo, hi).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalibrationBin {
    pub lo: f64,
    pub hi: f64,
    pub count: u64,
    pub mean_confidence: f64,
    pub accuracy: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    /// Expected calibration error: the count-weighted mean of |accuracy − confidence| per bin.
    pub ece: f64,
    pub bins: Vec<CalibrationBin>,
}

/// Calibration of (confidence of the predicted label, whether it was right) over `bins` equal
/// bins of [0, 1]; a confidence of exactly 1 falls in the last bin.
pub fn calibration(samples: &[(f64, bool)], bins: usize) -> Calibration {
    let bins = bins.max(1);
    let mut sums = vec![(0u64, 0.0f64, 0u64); bins];
    for &(confidence, correct) in samples {
        let b = ((confidence.clamp(0.0, 1.0) * bins as f64) as usize).min(bins - 1);
        sums[b].0 += 1;
        sums[b].1 += confidence;
        sums[b].2 += correct as u64;
    }
    let total = samples.len() as f64;
    let mut ece = 0.0;
    let bins = sums
        .iter()
        .enumerate()
        .map(|(i, &(count, conf, right))| {
            let mean_confidence = ratio(conf, count as f64);
            let accuracy = ratio(right as f64, count as f64);
            ece += ratio(count as f64, total) * (accuracy - mean_confidence).abs();
            CalibrationBin {
                lo: i as f64 / bins as f64,
                hi: (i + 1) as f64 / bins as f64,
                count,
                mean_confidence,
                accuracy,
            }
        })
        .collect();
    Calibration { ece, bins }
}

/// NDCG@k of one query's items, ranked by `score` (descending, ties keep input order), with
/// `gain` the human relevance gain of each item. None when no item has a gain above 0.
pub fn ndcg_at(items: &[(f64, f64)], k: usize) -> Option<f64> {
    let dcg = |gains: &[f64]| -> f64 {
        gains
            .iter()
            .take(k)
            .enumerate()
            .map(|(i, g)| g / ((i + 2) as f64).log2())
            .sum()
    };
    let mut ranked: Vec<(f64, f64)> = items.to_vec();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    let got: Vec<f64> = ranked.iter().map(|x| x.1).collect();
    let mut ideal: Vec<f64> = items.iter().map(|x| x.1).collect();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let best = dcg(&ideal);
    (best > 0.0).then(|| dcg(&got) / best)
}

/// Running sums for a Pearson correlation: one pass, no points kept.
#[derive(Debug, Clone, Default)]
pub struct Moments {
    n: f64,
    x: f64,
    y: f64,
    xx: f64,
    yy: f64,
    xy: f64,
}

impl Moments {
    pub fn add(&mut self, x: f64, y: f64) {
        self.n += 1.0;
        self.x += x;
        self.y += y;
        self.xx += x * x;
        self.yy += y * y;
        self.xy += x * y;
    }

    /// Pearson's r, or `None` when either side does not vary (or there are fewer than two).
    pub fn pearson(&self) -> Option<f64> {
        let cov = self.n * self.xy - self.x * self.y;
        let vx = self.n * self.xx - self.x * self.x;
        let vy = self.n * self.yy - self.y * self.y;
        (vx > 0.0 && vy > 0.0).then(|| cov / (vx.sqrt() * vy.sqrt()))
    }
}

/// Pearson's r of (x, y) points.
pub fn pearson(points: &[(f64, f64)]) -> Option<f64> {
    let mut m = Moments::default();
    for &(x, y) in points {
        m.add(x, y);
    }
    m.pearson()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn confusion(pairs: &[(usize, usize)]) -> Confusion {
        let mut c = Confusion::new(vec!["E".into(), "S".into(), "C".into(), "I".into()]);
        for &(r, p) in pairs {
            c.add(r, p);
        }
        c
    }

    /// Computed by hand: reference E E E S S I I I I C, predicted E E S S I I I E I E.
    /// Diagonal 6 of 10. F1: E p=2/4 r=2/3 → 4/7; S p=1/2 r=1/2 → 1/2; C 0; I p=3/4 r=3/4 → 3/4.
    /// Macro = (4/7 + 1/2 + 0 + 3/4)/4. Kappa: po = 0.6; pe = .3·.4 + .2·.2 + .1·0 + .4·.4 = .32.
    #[test]
    fn metrics_match_a_table_computed_by_hand() {
        let c = confusion(&[
            (0, 0),
            (0, 0),
            (0, 1),
            (1, 1),
            (1, 3),
            (3, 3),
            (3, 3),
            (3, 0),
            (3, 3),
            (2, 0),
        ]);
        assert_eq!(c.total(), 10);
        assert!((c.accuracy() - 0.6).abs() < 1e-12);
        let macro_f1 = (4.0 / 7.0 + 0.5 + 0.0 + 0.75) / 4.0;
        assert!((c.macro_f1() - macro_f1).abs() < 1e-12, "{}", c.macro_f1());
        let kappa = (0.6 - 0.32) / (1.0 - 0.32);
        assert!((c.kappa() - kappa).abs() < 1e-12, "{}", c.kappa());
        let per = c.per_label();
        assert_eq!(per[0].label, "E");
        assert!(
            (per[0].precision - 0.5).abs() < 1e-12 && (per[0].recall - 2.0 / 3.0).abs() < 1e-12
        );
        assert_eq!((per[0].support, per[2].support, per[3].support), (3, 1, 4));
        assert_eq!(per[2].f1, 0.0);
        let a = c.clone().agreement();
        let table = per_label_table(&a);
        assert_eq!(table.len(), 5);
        assert!(
            table[1].starts_with("E") && table[1].contains("0.500"),
            "{table:?}"
        );
        let m = confusion_table(&c, "human", "student");
        assert_eq!(m.len(), 6);
        // Row I (reference): predicted E 1, S 0, C 0, I 3.
        assert!(
            m[5].starts_with("I") && m[5].ends_with("1    0    0    3"),
            "{m:?}"
        );
    }

    #[test]
    fn perfect_and_empty_tables() {
        let c = confusion(&[(0, 0), (3, 3), (1, 1)]);
        assert_eq!(c.accuracy(), 1.0);
        assert_eq!(c.macro_f1(), 1.0);
        assert_eq!(c.kappa(), 1.0);
        let empty = confusion(&[]);
        assert_eq!(empty.accuracy(), 0.0);
        assert_eq!(empty.macro_f1(), 0.0);
        // One label only on both sides: chance agreement is total.
        assert_eq!(confusion(&[(0, 0), (0, 0)]).kappa(), 1.0);
    }

    /// Bins of 0.5: [0.9 right, 0.8 wrong, 0.7 right] → conf .8, acc 2/3; [0.2 wrong] → .2, 0.
    /// ECE = 3/4·|2/3 − .8| + 1/4·|0 − .2| = 0.1 + 0.05.
    #[test]
    fn calibration_by_hand() {
        let c = calibration(&[(0.9, true), (0.8, false), (0.7, true), (0.2, false)], 2);
        assert_eq!(c.bins[0].count, 1);
        assert_eq!(c.bins[1].count, 3);
        assert!((c.bins[1].mean_confidence - 0.8).abs() < 1e-12);
        assert!((c.ece - 0.15).abs() < 1e-12, "{}", c.ece);
        let top = calibration(&[(1.0, true)], 10);
        assert_eq!(top.bins[9].count, 1);
        assert_eq!(top.ece, 0.0);
    }

    #[test]
    fn ndcg_by_hand() {
        // Ranked: gains 0, 1 → dcg = 1/log2(3); ideal 1/log2(2) = 1.
        let got = ndcg_at(&[(0.9, 0.0), (0.5, 1.0)], 10).unwrap();
        assert!((got - 1.0 / 3f64.log2()).abs() < 1e-12);
        assert_eq!(ndcg_at(&[(0.9, 1.0), (0.5, 0.1)], 10), Some(1.0));
        assert_eq!(ndcg_at(&[(0.9, 0.0)], 10), None);
        // Cut at k: the relevant item at rank 2 does not count at k = 1.
        assert_eq!(ndcg_at(&[(0.9, 0.0), (0.5, 1.0)], 1), Some(0.0));
    }
}
