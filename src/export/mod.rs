//! `workbench export`: CoT + score data for student distillation, in the shapes the usual
//! trainers load unchanged (sentence-transformers, Hugging Face `datasets`). Streams the store
//! one query at a time; writes atomically.

mod card;
mod formats;
mod labels;
mod parquet;
mod writer;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Result, bail};
use futures::StreamExt;
use serde_json::json;

pub use formats::Format;
pub use labels::LabelSource;

use crate::domain::{Mode, Prompt};
use crate::domain::{SplitSpec, Splits, review};
use crate::store::{Calibrations, PairRecord, RecordQuery, Store};
use formats::Entry;
use writer::ExportDir;

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub out: PathBuf,
    pub formats: Vec<Format>,
    /// None: the imported splits when every pair has one, else `by-query:80/10/10`.
    pub split: Option<SplitSpec>,
    pub seed: u64,
    pub source: LabelSource,
    pub force: bool,
    pub max_pairs_per_query: usize,
    pub negatives: usize,
    pub include_augmented: bool,
    /// Also write every file as Parquet.
    pub parquet: bool,
    /// The teacher's label and score come from its calibrated distribution where its teacher
    /// has a calibration.
    pub calibrated: bool,
    /// The command line, recorded in the manifest.
    pub command: String,
}

#[derive(Debug, Clone, Default)]
struct Tally {
    pairs: u64,
    human_corrected: u64,
    augmented: u64,
    labels: BTreeMap<String, u64>,
    label_sources: BTreeMap<String, u64>,
}

/// Writes the export and returns its manifest.
pub async fn export(
    store: &Store,
    opts: &ExportOptions,
    bar: &indicatif::ProgressBar,
) -> Result<serde_json::Value> {
    if !store.has_judgments().await? && opts.source != LabelSource::HumanOnly {
        bail!(
            "{}: nothing to export: no teacher judgments yet (run `workbench teach`, or export human labels with --source human-only)",
            store.path().display()
        );
    }
    let scale = store.scale().await?;
    let calibrations = store.calibrations().await?;
    if opts.calibrated && calibrations.is_empty() {
        bail!(
            "{}: --calibrated: no teacher has a calibration yet (run `workbench teacher calibrate`)",
            store.path().display()
        );
    }
    let (split, splits) = store.splits(opts.split.as_ref(), opts.seed).await?;
    let sft_prompt = Prompt::new(&scale, Mode::Cot, false);
    let mut dir = ExportDir::create(&opts.out, opts.force)?;
    dir.parquet = opts.parquet;
    let mut tally = Tally::default();
    // Only cot.jsonl and sft.jsonl write the rationale's steps and the judgment's provenance.
    let steps = opts
        .formats
        .iter()
        .any(|f| matches!(f, Format::Cot | Format::Sft));
    // A calibration belongs to a model and prompt: reading them takes the full record.
    let mut rows = Box::pin(store.pair_records(RecordQuery {
        include_augmented: opts.include_augmented,
        labels_only: !steps && !opts.calibrated,
        ..RecordQuery::default()
    }));
    let shared = Shared {
        splits: &splits,
        scale: &scale,
        sft_prompt: &sft_prompt,
        calibrations: &calibrations,
    };
    let mut group: Vec<Box<PairRecord>> = Vec::new();
    loop {
        let next = rows.next().await.transpose()?;
        let boundary = match (&next, group.last()) {
            (Some(n), Some(last)) => n.query_key != last.query_key,
            (None, Some(_)) => true,
            _ => false,
        };
        if boundary {
            write_group(&mut dir, &group, shared, opts, &mut tally)?;
            bar.inc(group.len() as u64);
            group.clear();
        }
        match next {
            Some(r) => group.push(r),
            None => break,
        }
    }
    drop(rows);
    if tally.pairs == 0 {
        bail!(
            "{}: nothing to export: no pair has a label from the chosen --source",
            store.path().display()
        );
    }
    dir.finish(|files| {
        (
            manifest(store, opts, &split, &scale.name, files, &tally),
            card::dataset_card(&opts.formats, files, &scale, opts.negatives),
        )
    })
}

/// What every query's group is written with.
#[derive(Clone, Copy)]
struct Shared<'a> {
    splits: &'a Splits,
    scale: &'a crate::domain::LabelScale,
    sft_prompt: &'a Prompt,
    calibrations: &'a Calibrations,
}

fn write_group(
    dir: &mut ExportDir,
    group: &[Box<PairRecord>],
    shared: Shared,
    opts: &ExportOptions,
    tally: &mut Tally,
) -> Result<()> {
    let Shared {
        splits,
        scale,
        sft_prompt,
        calibrations,
    } = shared;
    let Some(first) = group.first() else {
        return Ok(());
    };
    let split = splits.get(first.query_key).unwrap_or("train");
    let entries: Vec<Entry> = group
        .iter()
        .map(|row| {
            let reviewed = review::derive(
                row.judgment.as_ref().and_then(|j| j.rationale.as_ref()),
                &row.annotations,
            );
            // Only the label (asked for) and cot.jsonl (always both) read it.
            let calibrated = (opts.calibrated || opts.formats.contains(&Format::Cot))
                .then(|| calibrations.apply_to(row.judgment.as_ref()?))
                .flatten();
            let used = calibrated.as_ref().filter(|_| opts.calibrated);
            let decided = labels::decide(row, &reviewed, scale, opts.source, used);
            Entry {
                row,
                reviewed,
                decided,
                calibrated,
            }
        })
        .collect();
    for e in &entries {
        if let Some(d) = &e.decided {
            tally.pairs += 1;
            tally.human_corrected += u64::from(e.reviewed.is_reviewed());
            tally.augmented += u64::from(e.row.pair.origin.starts_with("augmented"));
            bump(&mut tally.labels, &d.label);
            bump(&mut tally.label_sources, d.from);
        }
    }
    for &f in &opts.formats {
        let path = format!("{split}/{}", f.file());
        match f {
            Format::Cot => {
                for e in &entries {
                    if let Some(row) = formats::cot_row(e, scale, split) {
                        dir.write(&path, &row)?;
                    }
                }
            }
            Format::SoftLabels => {
                for e in &entries {
                    if let Some(row) = formats::soft_label_row(e) {
                        dir.write_with(&path, |bytes| row.write_json(bytes))?;
                    }
                }
            }
            Format::MarginMse => {
                for row in formats::margin_rows(&entries, opts.max_pairs_per_query, opts.seed) {
                    dir.write(&path, &row)?;
                }
            }
            Format::DistillKl => {
                if let Some(row) = formats::distill_kl_row(&entries, opts.negatives, opts.seed) {
                    dir.write(&path, &row)?;
                }
            }
            Format::Sft => {
                for e in &entries {
                    if let Some(row) = formats::sft_row(e, sft_prompt, scale) {
                        dir.write(&path, &row)?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Counts one more `key` (without allocating it again for every row).
fn bump(counts: &mut BTreeMap<String, u64>, key: &str) {
    match counts.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            counts.insert(key.to_string(), 1);
        }
    }
}

fn manifest(
    store: &Store,
    opts: &ExportOptions,
    split: &SplitSpec,
    scale: &str,
    files: &BTreeMap<String, (u64, String)>,
    tally: &Tally,
) -> serde_json::Value {
    let mut counts: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (rel, (rows, _)) in files {
        let (split, file) = rel.split_once('/').unwrap_or(("", rel));
        counts
            .entry(file.to_string())
            .or_default()
            .insert(split.to_string(), *rows);
    }
    json!({
        "source_database": store.path().display().to_string(),
        "scale": scale,
        "command": opts.command,
        "seed": opts.seed,
        "split": split.to_string(),
        "label_source": format!("{:?}", opts.source),
        "teacher_distribution": if opts.calibrated { "calibrated" } else { "raw" },
        "pairs": tally.pairs,
        "human_corrected": tally.human_corrected,
        "augmented": tally.augmented,
        "labels": tally.labels,
        "label_sources": tally.label_sources,
        "rows": counts,
        "files": files.iter().map(|(rel, (rows, sha))| (rel.clone(), json!({"rows": rows, "sha256": sha}))).collect::<serde_json::Map<_, _>>(),
    })
}
