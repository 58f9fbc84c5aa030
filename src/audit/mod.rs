//! Rationale audits and agreement metrics over the judgments in the store.
//!
//! `rules` decides what is wrong with one pair's judgment; `agreement` sums up how the teacher
//! agrees with humans (and students) over all pairs. Both read the same stream of pair records
//! the export reads, so memory stays flat in the number of pairs.

pub mod agreement;
pub mod report;
mod rules;
pub mod text;

use std::collections::BTreeMap;

use anyhow::Result;
use futures::StreamExt;
use serde::Serialize;

pub use agreement::Metrics;
pub use rules::{Finding, Rule, RuleSet, Severity, Thresholds, check, check_with};

use crate::domain::LabelScale;
use crate::store::{RecordQuery, Store, StoredFinding};

/// What one audit run found.
#[derive(Debug, Clone, Serialize)]
pub struct AuditSummary {
    pub pairs: u64,
    pub judged: u64,
    pub rules: Vec<&'static str>,
    /// Findings per rule, for every rule run (0 included).
    pub by_rule: BTreeMap<&'static str, u64>,
    pub by_severity: BTreeMap<&'static str, u64>,
    pub flagged_pairs: u64,
    /// `raw`, or `calibrated` when the rules that weigh the teacher's distribution read the
    /// calibrated one.
    pub teacher_distribution: &'static str,
    /// Judgments read through their teacher's calibration.
    pub calibrated_judgments: u64,
    /// The first findings, worst first, for the terminal.
    pub sample: Vec<Finding>,
}

/// Runs `rules` over every pair and replaces their findings in the store in one transaction.
/// `on_pair` is called once per pair read (for a progress bar).
pub async fn run(
    store: &Store,
    scale: &LabelScale,
    rules: &[Rule],
    limits: Thresholds,
    student: Option<i64>,
    calibrated: bool,
    mut on_pair: impl FnMut(),
) -> Result<AuditSummary> {
    let calibrations = if calibrated {
        let c = store.calibrations().await?;
        if c.is_empty() {
            anyhow::bail!(
                "{}: --calibrated: no teacher has a calibration yet (run `workbench teacher calibrate`)",
                store.path().display()
            );
        }
        Some(c)
    } else {
        None
    };
    let names: Vec<&'static str> = rules.iter().map(|r| r.name()).collect();
    let mut writer = store.replace_findings(&names).await?;
    let mut summary = AuditSummary {
        pairs: 0,
        judged: 0,
        rules: names.clone(),
        by_rule: names.iter().map(|n| (*n, 0)).collect(),
        by_severity: BTreeMap::new(),
        flagged_pairs: 0,
        teacher_distribution: if calibrated { "calibrated" } else { "raw" },
        calibrated_judgments: 0,
        sample: Vec::new(),
    };
    let mut records = Box::pin(store.pair_records(RecordQuery {
        include_augmented: true,
        student,
        without_rationale: false,
        labels_only: false,
    }));
    while let Some(record) = records.next().await {
        let record = record?;
        summary.pairs += 1;
        summary.judged += record.judgment.is_some() as u64;
        let calibrated = calibrations
            .as_ref()
            .zip(record.judgment.as_ref())
            .and_then(|(c, j)| c.apply_to(j));
        summary.calibrated_judgments += calibrated.is_some() as u64;
        let findings = check_with(&record, calibrated.as_ref(), scale, rules, limits);
        summary.flagged_pairs += !findings.is_empty() as u64;
        for f in findings {
            *summary.by_rule.entry(f.rule.name()).or_default() += 1;
            *summary.by_severity.entry(f.severity.as_str()).or_default() += 1;
            writer
                .push(StoredFinding {
                    pair_id: f.pair_id,
                    judgment_id: f.judgment_id,
                    rule: f.rule.name().to_string(),
                    severity: f.severity.as_str().to_string(),
                    detail: f.detail.clone(),
                })
                .await?;
            keep_worst(&mut summary.sample, f, 12);
        }
        on_pair();
    }
    drop(records);
    writer.commit().await?;
    Ok(summary)
}

/// Keeps the `n` most severe findings seen so far (earliest first among equals).
fn keep_worst(sample: &mut Vec<Finding>, f: Finding, n: usize) {
    if sample.len() < n {
        sample.push(f);
        sample.sort_by_key(|f| std::cmp::Reverse(f.severity));
    } else if sample.last().is_some_and(|last| f.severity > last.severity) {
        sample.pop();
        sample.push(f);
        sample.sort_by_key(|f| std::cmp::Reverse(f.severity));
    }
}

#[cfg(test)]
mod rule_tests;
