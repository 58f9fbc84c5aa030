//! The audit rules: each reads one pair's record and says what is wrong with its judgment.

use serde::Serialize;

use super::text;
use crate::domain::review::derive;
use crate::domain::{LabelScale, ScoreDist, Verdict};
use crate::store::PairRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warn,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Error => "error",
        }
    }
}

/// Every rule the audit knows, in the order they are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Rule {
    CategoryMismatchTopLabel,
    AllMatchBottomLabel,
    ConclusionNamesOtherLabel,
    UngroundedItemValue,
    UngroundedQueryValue,
    HighEntropy,
    SamplesDisagree,
    TeacherVsGold,
    TeacherVsAnnotator,
    TeacherVsStudent,
    ParseFailure,
    TruncatedOutput,
    DegenerateStep,
    Injection,
}

impl Rule {
    pub const ALL: [Rule; 14] = [
        Rule::CategoryMismatchTopLabel,
        Rule::AllMatchBottomLabel,
        Rule::ConclusionNamesOtherLabel,
        Rule::UngroundedItemValue,
        Rule::UngroundedQueryValue,
        Rule::HighEntropy,
        Rule::SamplesDisagree,
        Rule::TeacherVsGold,
        Rule::TeacherVsAnnotator,
        Rule::TeacherVsStudent,
        Rule::ParseFailure,
        Rule::TruncatedOutput,
        Rule::DegenerateStep,
        Rule::Injection,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Rule::CategoryMismatchTopLabel => "category-mismatch-top-label",
            Rule::AllMatchBottomLabel => "all-match-bottom-label",
            Rule::ConclusionNamesOtherLabel => "conclusion-other-label",
            Rule::UngroundedItemValue => "ungrounded-item-value",
            Rule::UngroundedQueryValue => "ungrounded-query-value",
            Rule::HighEntropy => "high-entropy",
            Rule::SamplesDisagree => "samples-disagree",
            Rule::TeacherVsGold => "teacher-vs-gold",
            Rule::TeacherVsAnnotator => "teacher-vs-annotator",
            Rule::TeacherVsStudent => "teacher-vs-student",
            Rule::ParseFailure => "parse-failure",
            Rule::TruncatedOutput => "truncated-output",
            Rule::DegenerateStep => "degenerate-step",
            Rule::Injection => "injection",
        }
    }

    /// The group a rule belongs to; `--rules` accepts groups as well as names.
    pub fn group(self) -> &'static str {
        match self {
            Rule::CategoryMismatchTopLabel
            | Rule::AllMatchBottomLabel
            | Rule::ConclusionNamesOtherLabel => "label",
            Rule::UngroundedItemValue | Rule::UngroundedQueryValue => "grounding",
            Rule::HighEntropy | Rule::SamplesDisagree => "confidence",
            Rule::TeacherVsGold | Rule::TeacherVsAnnotator | Rule::TeacherVsStudent => {
                "disagreement"
            }
            Rule::ParseFailure | Rule::TruncatedOutput | Rule::DegenerateStep => "output",
            Rule::Injection => "injection",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Rule::CategoryMismatchTopLabel => {
                "the category dimension is a mismatch, yet the label is the scale's best (Exact)"
            }
            Rule::AllMatchBottomLabel => {
                "every dimension matches, yet the label is the scale's worst (Irrelevant)"
            }
            Rule::ConclusionNamesOtherLabel => {
                "the conclusion names another label than the label field"
            }
            Rule::UngroundedItemValue => {
                "an item value the rationale quotes is not in the item's text"
            }
            Rule::UngroundedQueryValue => "a query value the rationale quotes is not in the query",
            Rule::HighEntropy => "the score distribution is close to uniform",
            Rule::SamplesDisagree => "self-consistency samples disagree on the label",
            Rule::TeacherVsGold => "the teacher's label differs from the imported human label",
            Rule::TeacherVsAnnotator => "the teacher's label differs from an annotator's label",
            Rule::TeacherVsStudent => "teacher and student scores differ by more than the margin",
            Rule::ParseFailure => "the teacher's output did not parse",
            Rule::TruncatedOutput => "the teacher's output hit the token limit",
            Rule::DegenerateStep => {
                "a step repeats a word or phrase in a run, or copies another step"
            }
            Rule::Injection => "the item text addresses the model (prompt injection)",
        }
    }

    pub fn parse(name: &str) -> Option<Rule> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The rules one `--rules` item names: a rule, a group, or `all`.
    pub fn named(item: &str) -> Result<RuleSet, String> {
        let item = item.trim();
        let found: Vec<Rule> = match item {
            "all" => Self::ALL.to_vec(),
            _ => match Rule::parse(item) {
                Some(r) => vec![r],
                None => Self::ALL
                    .into_iter()
                    .filter(|r| r.group() == item)
                    .collect(),
            },
        };
        if found.is_empty() {
            return Err(format!(
                "unknown rule or group `{item}`; see `workbench audit --list-rules`"
            ));
        }
        Ok(RuleSet(found))
    }

    /// Every rule of `sets`, once each, in the rules' order.
    pub fn union(sets: &[RuleSet]) -> Vec<Rule> {
        let mut out: Vec<Rule> = sets.iter().flat_map(|s| s.0.iter().copied()).collect();
        out.sort();
        out.dedup();
        out
    }
}

/// The rules one name of a `--rules` list stands for (`Rule::named`).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSet(pub Vec<Rule>);

/// What a rule found on one pair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub pair_id: i64,
    pub judgment_id: Option<i64>,
    pub rule: Rule,
    pub severity: Severity,
    pub detail: String,
}

/// Thresholds of the rules that need one.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// Entropy over ln(number of labels) above which a distribution counts as uncertain.
    pub max_entropy: f64,
    /// |teacher expected gain − student score| above which they disagree.
    pub student_margin: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_entropy: 0.9,
            student_margin: 0.5,
        }
    }
}

/// Runs `rules` over one pair.
pub fn check(
    record: &PairRecord,
    scale: &LabelScale,
    rules: &[Rule],
    limits: Thresholds,
) -> Vec<Finding> {
    check_with(record, None, scale, rules, limits)
}

/// Runs `rules` over one pair; with `calibrated`, the rules that weigh the teacher's distribution
/// or hold its label against a human or the student read the calibrated distribution and its
/// most likely label, and say so. Rules about the rationale keep the label it was written with.
pub fn check_with(
    record: &PairRecord,
    calibrated: Option<&ScoreDist>,
    scale: &LabelScale,
    rules: &[Rule],
    limits: Thresholds,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let judgment = record.judgment.as_ref();
    let mut found = |rule: Rule, severity: Severity, detail: String| {
        out.push(Finding {
            pair_id: record.pair.id,
            judgment_id: judgment.map(|j| j.id),
            rule,
            severity,
            detail,
        })
    };
    let name_of = |key: &str| scale.name_of(key);
    let best = scale
        .labels
        .iter()
        .max_by(|a, b| a.gain.total_cmp(&b.gain))
        .map(|l| l.key.as_str());
    let worst = scale
        .labels
        .iter()
        .min_by(|a, b| a.gain.total_cmp(&b.gain))
        .map(|l| l.key.as_str());
    let label = judgment.and_then(|j| j.label.as_deref());
    let rationale = judgment.and_then(|j| j.rationale.as_ref());
    let distribution = calibrated.or(judgment.map(|j| &j.distribution));
    let (weighed_label, teacher) = match calibrated {
        Some(c) if label.is_some() => (
            Some(scale.labels[c.argmax().0].key.as_str()),
            "the calibrated teacher",
        ),
        _ => (label, "teacher"),
    };
    let item_text = item_text(record);

    for &rule in rules {
        match rule {
            Rule::CategoryMismatchTopLabel => {
                let Some(r) = rationale else { continue };
                let category = r.dimensions.iter().find(|d| {
                    matches!(
                        d.name.to_lowercase().as_str(),
                        "category" | "product type" | "type"
                    )
                });
                if let Some(d) = category
                    && d.verdict == Verdict::Mismatch
                    && label.is_some()
                    && label == best
                {
                    found(
                        rule,
                        Severity::Error,
                        format!(
                            "category is a mismatch (query \"{}\", item \"{}\") but the label is {}",
                            d.query_value,
                            d.item_value,
                            name_of(label.unwrap_or_default())
                        ),
                    );
                }
            }
            Rule::AllMatchBottomLabel => {
                let Some(r) = rationale else { continue };
                if !r.dimensions.is_empty()
                    && r.dimensions.iter().all(|d| d.verdict == Verdict::Match)
                    && label.is_some()
                    && label == worst
                {
                    found(
                        rule,
                        Severity::Error,
                        format!(
                            "all {} dimensions match but the label is {}",
                            r.dimensions.len(),
                            name_of(label.unwrap_or_default())
                        ),
                    );
                }
            }
            Rule::ConclusionNamesOtherLabel => {
                let (Some(r), Some(label)) = (rationale, label) else {
                    continue;
                };
                let words = format!(" {} ", text::normalise(&r.conclusion));
                let named: Vec<&str> = scale
                    .labels
                    .iter()
                    .filter(|l| words.contains(&format!(" {} ", text::normalise(&l.name))))
                    .map(|l| l.key.as_str())
                    .collect();
                if !named.is_empty() && !named.contains(&label) {
                    let names: Vec<String> = named.iter().map(|k| name_of(k)).collect();
                    found(
                        rule,
                        Severity::Warn,
                        format!(
                            "the conclusion says {} but the label is {}",
                            names.join(" / "),
                            name_of(label)
                        ),
                    );
                }
            }
            Rule::UngroundedItemValue => {
                let Some(r) = rationale else { continue };
                for d in &r.dimensions {
                    if !text::grounded(&d.item_value, &item_text) {
                        found(
                            rule,
                            Severity::Warn,
                            format!(
                                "{}: item value \"{}\" is not in the item's text",
                                d.name, d.item_value
                            ),
                        );
                    }
                }
            }
            Rule::UngroundedQueryValue => {
                let Some(r) = rationale else { continue };
                for d in &r.dimensions {
                    if !text::grounded(&d.query_value, &record.pair.query.text) {
                        found(
                            rule,
                            Severity::Warn,
                            format!(
                                "{}: query value \"{}\" is not in the query",
                                d.name, d.query_value
                            ),
                        );
                    }
                }
            }
            Rule::HighEntropy => {
                let (Some(j), Some(d)) = (judgment, distribution) else {
                    continue;
                };
                let n = d.probs.len();
                if n < 2 || j.parse_error.is_some() && j.label.is_none() {
                    continue;
                }
                let relative = d.entropy() / (n as f64).ln();
                if relative > limits.max_entropy {
                    found(
                        rule,
                        Severity::Info,
                        format!(
                            "{}entropy is {:.0}% of the maximum (limit {:.0}%)",
                            if calibrated.is_some() {
                                "calibrated "
                            } else {
                                ""
                            },
                            relative * 100.0,
                            limits.max_entropy * 100.0
                        ),
                    );
                }
            }
            Rule::SamplesDisagree => {
                let Some(j) = judgment else { continue };
                if j.dist_source == "votes"
                    && let Some(share) = j.confidence
                    && share < 1.0
                {
                    let votes: Vec<String> = scale
                        .labels
                        .iter()
                        .zip(&j.distribution.probs)
                        .filter(|(_, p)| **p > 0.0)
                        .map(|(l, p)| format!("{} {:.0}%", l.key, p * 100.0))
                        .collect();
                    let severity = if share <= 0.5 {
                        Severity::Warn
                    } else {
                        Severity::Info
                    };
                    found(
                        rule,
                        severity,
                        format!("samples split: {}", votes.join(", ")),
                    );
                }
            }
            Rule::TeacherVsGold => {
                if let (Some(label), Some(gold)) =
                    (weighed_label, record.pair.gold_label.as_deref())
                    && label != gold
                {
                    found(
                        rule,
                        severity_of_gap(scale, label, gold),
                        format!(
                            "{teacher} says {}, the imported label is {}",
                            name_of(label),
                            name_of(gold)
                        ),
                    );
                }
            }
            Rule::TeacherVsAnnotator => {
                let Some(label) = weighed_label else { continue };
                let reviewed = derive(rationale, &record.annotations);
                if let Some(human) = reviewed.human_label.as_deref()
                    && human != label
                {
                    found(
                        rule,
                        severity_of_gap(scale, label, human),
                        format!(
                            "{teacher} says {}, {} set {}",
                            name_of(label),
                            reviewed.annotators.join(", "),
                            name_of(human)
                        ),
                    );
                }
            }
            Rule::TeacherVsStudent => {
                let (Some(j), Some(d), Some(student)) =
                    (judgment, distribution, record.student_score)
                else {
                    continue;
                };
                if j.label.is_none() {
                    continue;
                }
                let score = d.expected_gain(scale) / scale.top_gain();
                if (score - student).abs() > limits.student_margin {
                    found(
                        rule,
                        Severity::Warn,
                        format!("{teacher} score {score:.2}, student score {student:.2}"),
                    );
                }
            }
            Rule::ParseFailure => {
                if let Some(j) = judgment
                    && let Some(error) = &j.parse_error
                {
                    found(rule, Severity::Error, error.clone());
                }
            }
            Rule::TruncatedOutput => {
                if judgment.is_some_and(|j| j.truncated) {
                    found(
                        rule,
                        Severity::Warn,
                        "the output stopped at the token limit".into(),
                    );
                }
            }
            Rule::DegenerateStep => {
                let Some(r) = rationale else { continue };
                let mut steps: Vec<(String, &str)> = vec![
                    ("query analysis".into(), r.query_analysis.as_str()),
                    ("item analysis".into(), r.item_analysis.as_str()),
                ];
                for d in &r.dimensions {
                    steps.push((format!("{} query value", d.name), d.query_value.as_str()));
                    steps.push((format!("{} item value", d.name), d.item_value.as_str()));
                    steps.push((format!("{} note", d.name), d.note.as_str()));
                }
                steps.push(("conclusion".into(), r.conclusion.as_str()));
                for (name, step) in &steps {
                    if let Some(run) = text::repeated_run(step) {
                        found(
                            rule,
                            Severity::Warn,
                            format!("{name} repeats \"{}\" {} times in a row", run.0, run.1),
                        );
                    }
                }
                // Copies among the prose steps (values may rightly repeat each other).
                let prose = [
                    ("query analysis", &r.query_analysis),
                    ("item analysis", &r.item_analysis),
                    ("conclusion", &r.conclusion),
                ];
                for (i, (a, x)) in prose.iter().enumerate() {
                    for (b, y) in &prose[i + 1..] {
                        let (x, y) = (text::normalise(x), text::normalise(y));
                        if x.split(' ').count() >= 3 && x == y {
                            found(rule, Severity::Warn, format!("{b} copies {a}"));
                        }
                    }
                }
            }
            Rule::Injection => {
                if let Some(phrase) = text::injection(&item_text) {
                    found(
                        rule,
                        Severity::Warn,
                        format!(
                            "item text says \"{phrase}\"; the teacher labelled it {}",
                            label.map_or("nothing".into(), name_of)
                        ),
                    );
                }
            }
        }
    }
    out
}

/// All the text of the item the teacher saw: title, brand, description and attributes.
fn item_text(record: &PairRecord) -> String {
    let item = &record.pair.item;
    let mut text = format!("{}\n{}\n{}", item.title, item.brand, item.description);
    for (k, v) in item.attribute_lines() {
        text.push('\n');
        text.push_str(&k);
        text.push_str(": ");
        text.push_str(&v);
    }
    text
}

/// Two labels far apart on the scale (by gain) are an error, neighbours a warning.
fn severity_of_gap(scale: &LabelScale, a: &str, b: &str) -> Severity {
    let gap = (scale.gain_of(a).unwrap_or(0.0) - scale.gain_of(b).unwrap_or(0.0)).abs();
    if gap >= 0.5 * scale.top_gain() {
        Severity::Error
    } else {
        Severity::Warn
    }
}
