//! Training examples for a student, read from the store or from an export's `cot.jsonl`: the
//! teacher's distribution, the human label where there is one, and the (human-corrected)
//! rationale's verdict per dimension.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use anyhow::{Context, Result, bail};
use futures::StreamExt;

use crate::domain::prompt::passage;
use crate::domain::review::derive;
use crate::domain::{Item, LabelScale, Pair, Query, SplitSpec, Verdict};
use crate::store::{Calibrations, RecordQuery, Store};

#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// Pairs of one query share a group (Margin-MSE compares items within a group).
    pub group: String,
    pub query: String,
    pub passage: String,
    pub split: String,
    pub augmented: bool,
    /// The teacher's distribution over the scale, when it judged the pair.
    pub teacher: Option<Vec<f32>>,
    /// The human label's index on the scale: an annotator's, else the imported gold label.
    pub human: Option<usize>,
    /// Per student dimension, the verdict's index in `Verdict::ALL`, when the rationale has one.
    pub verdicts: Vec<Option<usize>>,
}

/// Which of the teacher's distributions a student learns from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeacherDistribution {
    /// The calibrated one where the teacher's newest calibration was fitted on this very split
    /// (spec and seed), so that no test label reached the targets; the raw one elsewhere.
    Auto,
    Raw,
    /// The calibrated one wherever the teacher has a calibration, whatever it was fitted on.
    Calibrated,
}

/// The examples of `from_store`, the split they were assigned by, and which teacher
/// distribution their targets are (`raw`, or `calibrated (fitted on …)`), as `student.json`
/// records it.
pub struct FromStore {
    pub examples: Vec<Example>,
    pub spec: SplitSpec,
    pub teacher_distribution: String,
}

/// The calibrations `which` lets a student learn from, and why the others are left out.
async fn calibrations_for(
    store: &Store,
    which: TeacherDistribution,
    spec: &SplitSpec,
    seed: u64,
) -> Result<(Calibrations, Option<String>)> {
    if which == TeacherDistribution::Raw {
        return Ok((Calibrations::default(), None));
    }
    let all = store.calibrations().await?;
    if which == TeacherDistribution::Calibrated {
        if all.is_empty() {
            bail!(
                "--teacher-distribution calibrated: no teacher has a calibration yet (run \
                 `workbench teacher calibrate --split {spec} --seed {seed}`)"
            );
        }
        return Ok((all, None));
    }
    // `teacher calibrate` records its split as `SPEC seed N, train|dev, OBJECTIVE`.
    let this_split = format!("{spec} seed {seed}, ");
    let elsewhere: Vec<String> = all
        .fitted_on()
        .filter(|on| !on.starts_with(&this_split))
        .map(str::to_owned)
        .collect();
    let kept = all.fitted_where(|on| on.starts_with(&this_split));
    let why = (!elsewhere.is_empty()).then(|| {
        format!(
            "a calibration fitted on another split is left out ({}), as its fit pairs may be \
             this split's test pairs; --teacher-distribution calibrated uses it anyway",
            elsewhere.join("; ")
        )
    });
    Ok((kept, why))
}

/// Every pair of the store with a teacher or human target, its split assigned by query as the
/// export assigns it (the same spec and seed give the same split in both), and the spec used.
pub async fn from_store(
    store: &Store,
    scale: &LabelScale,
    dimensions: &[String],
    split: Option<&SplitSpec>,
    seed: u64,
    include_augmented: bool,
    which: TeacherDistribution,
) -> Result<FromStore> {
    let (spec, splits) = store.splits(split, seed).await?;
    let (calibrations, left_out) = calibrations_for(store, which, &spec, seed).await?;
    let (mut calibrated, mut raw) = (0usize, 0usize);
    let mut out = Vec::new();
    let mut records = Box::pin(store.pair_records(RecordQuery {
        include_augmented,
        ..RecordQuery::default()
    }));
    while let Some(r) = records.next().await {
        let r = r?;
        let j = r.judgment.as_ref();
        let reviewed = derive(j.and_then(|j| j.rationale.as_ref()), &r.annotations);
        let teacher = j.filter(|j| j.label.is_some()).map(|j| {
            let dist = match calibrations.apply_to(j) {
                Some(c) => {
                    calibrated += 1;
                    c
                }
                None => {
                    raw += 1;
                    j.distribution.clone()
                }
            };
            dist.probs.iter().map(|p| *p as f32).collect()
        });
        let human = reviewed
            .human_label
            .as_deref()
            .or(r.pair.gold_label.as_deref())
            .and_then(|l| scale.index_of_key(l));
        let verdicts = dimensions
            .iter()
            .map(|d| {
                reviewed
                    .rationale
                    .as_ref()
                    .and_then(|rat| rat.dimension(d))
                    .and_then(|dim| Verdict::ALL.iter().position(|v| *v == dim.verdict))
            })
            .collect();
        if teacher.is_none() && human.is_none() {
            continue;
        }
        out.push(Example {
            group: r.pair.query.ext_id.clone(),
            query: r.pair.query.text.clone(),
            passage: passage(&r.pair),
            split: splits.get(r.query_key).unwrap_or("train").to_string(),
            augmented: r.pair.origin.starts_with("augmented"),
            teacher,
            human,
            verdicts,
        });
    }
    let teacher_distribution = match (calibrated, raw) {
        (0, _) => match left_out {
            Some(why) => format!("raw: {why}"),
            None => "raw".to_string(),
        },
        (_, 0) => format!("calibrated (fitted on {})", fitted_on(&calibrations)),
        // No counts: a checkpoint resumes only under the same targets, and this names them.
        _ => format!(
            "calibrated where the teacher has a calibration (fitted on {}), raw elsewhere{}",
            fitted_on(&calibrations),
            left_out.map(|w| format!("; {w}")).unwrap_or_default()
        ),
    };
    Ok(FromStore {
        examples: out,
        spec,
        teacher_distribution,
    })
}

fn fitted_on(c: &Calibrations) -> String {
    c.fitted_on().collect::<Vec<_>>().join("; ")
}

/// The rows of every `cot.jsonl` under an export directory (`train/`, `dev/`, `test/`), with
/// the split the export gave them, and which teacher distribution their targets are. An export
/// holds the calibrated distribution beside the raw one but not what it was fitted on, so only
/// `Calibrated` reads it.
pub fn from_export(
    dir: &Path,
    scale: &LabelScale,
    dimensions: &[String],
    include_augmented: bool,
    which: TeacherDistribution,
) -> Result<(Vec<Example>, String)> {
    let calibrated = which == TeacherDistribution::Calibrated;
    let mut with_calibrated = 0usize;
    let mut out = Vec::new();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = entry?.path().join("cot.jsonl");
        if p.exists() {
            files.push(p);
        }
    }
    files.sort();
    if files.is_empty() {
        bail!(
            "{}: no */cot.jsonl here; write one with `workbench export --out {} --format cot`",
            dir.display(),
            dir.display()
        );
    }
    for file in files {
        let reader = std::io::BufReader::new(std::fs::File::open(&file)?);
        for (n, line) in reader.lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let at = || format!("{}:{}", file.display(), n + 1);
            let row: serde_json::Value =
                serde_json::from_str(&line).with_context(|| format!("{}: not JSON", at()))?;
            if let Some(e) = example_from_cot(&row, scale, dimensions, calibrated)
                .with_context(at)?
                .filter(|e| include_augmented || !e.augmented)
            {
                with_calibrated += usize::from(
                    e.teacher.is_some() && row["teacher"]["calibrated_distribution"].is_object(),
                );
                out.push(e);
            }
        }
    }
    let used = if !calibrated {
        "raw".to_string()
    } else if with_calibrated > 0 {
        "calibrated (as exported) where a row has one, raw elsewhere".to_string()
    } else {
        bail!(
            "--teacher-distribution calibrated: {} holds no calibrated teacher distribution \
             (run `workbench teacher calibrate`, then export again)",
            dir.display()
        );
    };
    Ok((out, used))
}

fn example_from_cot(
    row: &serde_json::Value,
    scale: &LabelScale,
    dimensions: &[String],
    calibrated: bool,
) -> Result<Option<Example>> {
    let text = |v: &serde_json::Value, field: &str| -> Result<String> {
        v[field]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("field `{field}`: missing or not text"))
    };
    let item = &row["item"];
    let pair = Pair {
        id: 0,
        query: Query {
            ext_id: text(row, "query_id")?,
            text: text(row, "query")?,
        },
        item: Item {
            ext_id: text(row, "product_id")?,
            title: text(item, "title")?,
            description: item["description"].as_str().unwrap_or_default().into(),
            brand: item["brand"].as_str().unwrap_or_default().into(),
            attributes: attributes_of(&item["attributes"]),
        },
        gold_label: None,
        split: None,
        origin: row["origin"].as_str().unwrap_or("import").into(),
    };
    let chosen = row["teacher"]["calibrated_distribution"]
        .as_object()
        .filter(|_| calibrated)
        .or(row["teacher"]["distribution"].as_object());
    let teacher = match chosen {
        Some(d) if row["teacher"]["label"].is_string() => Some(
            scale
                .labels
                .iter()
                .map(|l| d.get(&l.key).and_then(|p| p.as_f64()).unwrap_or(0.0) as f32)
                .collect(),
        ),
        _ => None,
    };
    let human = match row["label_source"].as_str() {
        Some("annotator") | Some("gold") => {
            row["label"].as_str().and_then(|l| scale.index_of_key(l))
        }
        _ => None,
    };
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for step in row["steps"].as_array().into_iter().flatten() {
        if step["step"] == "dimension"
            && let (Some(name), Some(v)) = (step["name"].as_str(), step["verdict"].as_str())
            && let Some(v) = Verdict::parse(v)
        {
            by_name.insert(
                name.to_lowercase(),
                Verdict::ALL.iter().position(|x| *x == v).unwrap_or(0),
            );
        }
    }
    if teacher.is_none() && human.is_none() {
        return Ok(None);
    }
    Ok(Some(Example {
        group: pair.query.ext_id.clone(),
        query: pair.query.text.clone(),
        passage: passage(&pair),
        split: text(row, "split")?,
        augmented: pair.origin.starts_with("augmented"),
        teacher,
        human,
        verdicts: dimensions
            .iter()
            .map(|d| by_name.get(&d.to_lowercase()).copied())
            .collect(),
    }))
}

/// `cot.jsonl`'s attributes, a list of name and text, as an item's attributes (an object, as
/// older exports wrote them, is taken as it is).
fn attributes_of(v: &serde_json::Value) -> crate::domain::Attributes {
    match v.as_array() {
        Some(list) => serde_json::Value::Object(
            list.iter()
                .filter_map(|a| Some((a["name"].as_str()?.to_string(), a["value"].clone())))
                .collect(),
        )
        .into(),
        None => v.clone().into(),
    }
}

impl Example {
    /// Whether `losses` can learn anything from this pair.
    pub fn learnable(&self, losses: &crate::student::Losses) -> bool {
        self.teacher.is_some()
            || (losses.human_weight > 0.0 && self.human.is_some())
            || (losses.cot && self.verdicts.iter().any(Option::is_some))
    }
}

/// Keeps `ratio` × as many augmented train pairs as there are learnable imported train pairs
/// (a seeded sample; the other splits and the imported pairs stay as they are), so that a curve
/// over 1×, 4×, 16× augmented data adds exactly that much. An error when fewer are labelled.
pub fn sample_augmented(
    examples: Vec<Example>,
    ratio: f64,
    losses: &crate::student::Losses,
    seed: u64,
) -> Result<Vec<Example>> {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    if !(ratio.is_finite() && ratio >= 0.0) {
        bail!("--augmented-ratio {ratio}: give a number ≥ 0, such as 1, 4 or 16");
    }
    let in_train = |e: &Example| e.split == "train" && e.learnable(losses);
    let base = examples
        .iter()
        .filter(|e| in_train(e) && !e.augmented)
        .count();
    let want = (ratio * base as f64).round() as usize;
    let mut augmented: Vec<usize> = (0..examples.len())
        .filter(|&i| in_train(&examples[i]) && examples[i].augmented)
        .collect();
    if augmented.len() < want {
        bail!(
            "--augmented-ratio {ratio}: {want} augmented train pairs wanted ({ratio} × {base} imported), \
             only {} have a label; augment with a larger --per-query and run \
             `workbench teach --only augmented --mode score`",
            augmented.len()
        );
    }
    augmented.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    let mut keep = vec![true; examples.len()];
    for &i in &augmented[want..] {
        keep[i] = false;
    }
    Ok(examples
        .into_iter()
        .zip(keep)
        .filter_map(|(e, k)| k.then_some(e))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::student::Losses;

    fn example(n: usize, split: &str, augmented: bool, teacher: bool) -> Example {
        Example {
            group: format!("q{}", n % 7),
            query: "q".into(),
            passage: format!("item {n}"),
            split: split.into(),
            augmented,
            teacher: teacher.then(|| vec![0.5, 0.5]),
            human: (!augmented).then_some(0),
            verdicts: Vec::new(),
        }
    }

    const TEACHER_ONLY: Losses = Losses {
        balanced: false,
        teacher_weight: None,
        kl: true,
        margin_mse: false,
        cot: false,
        human_weight: 0.0,
        temperature: 1.0,
        head_l2: 0.0,
    };

    fn set() -> Vec<Example> {
        let mut v = Vec::new();
        for n in 0..10 {
            v.push(example(n, "train", false, true)); // the base: learnable
            v.push(example(100 + n, "train", false, false)); // human only: not under weight 0
            v.push(example(200 + n, "dev", true, true));
        }
        for n in 0..45 {
            v.push(example(300 + n, "train", true, true));
            v.push(example(400 + n, "train", true, false)); // unlabelled augmented
        }
        v
    }

    fn kept_augmented_train(v: &[Example]) -> Vec<String> {
        v.iter()
            .filter(|e| e.split == "train" && e.augmented && e.teacher.is_some())
            .map(|e| e.passage.clone())
            .collect()
    }

    #[test]
    fn a_ratio_keeps_that_many_labelled_augmented_train_pairs_per_base_pair() {
        let kept = sample_augmented(set(), 4.0, &TEACHER_ONLY, 3).unwrap();
        assert_eq!(
            kept_augmented_train(&kept).len(),
            40,
            "4 × the 10 teacher-labelled imported"
        );
        assert_eq!(
            kept.iter().filter(|e| e.split == "dev").count(),
            10,
            "other splits untouched"
        );
        assert_eq!(
            kept.iter().filter(|e| !e.augmented).count(),
            20,
            "imported pairs untouched"
        );
        let again = sample_augmented(set(), 4.0, &TEACHER_ONLY, 3).unwrap();
        assert_eq!(
            kept_augmented_train(&kept),
            kept_augmented_train(&again),
            "same seed"
        );
        let other = sample_augmented(set(), 4.0, &TEACHER_ONLY, 4).unwrap();
        assert_ne!(
            kept_augmented_train(&kept),
            kept_augmented_train(&other),
            "another seed"
        );
        let one = sample_augmented(set(), 1.0, &TEACHER_ONLY, 3).unwrap();
        assert_eq!(kept_augmented_train(&one).len(), 10);
    }

    #[test]
    fn a_ratio_beyond_the_labelled_pairs_says_how_many_are_missing() {
        let err = sample_augmented(set(), 16.0, &TEACHER_ONLY, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("160 augmented train pairs wanted"), "{err}");
        assert!(err.contains("only 45 have a label"), "{err}");
        let err = sample_augmented(set(), -1.0, &TEACHER_ONLY, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("≥ 0"), "{err}");
    }
}
