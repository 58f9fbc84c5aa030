//! Reading what the teacher wrote: the rationale JSON, and the label distribution from the
//! token log-probabilities at the position where the label starts.

use serde::Deserialize;

use super::backend::TokenLogprob;
use crate::domain::{Dimension, LabelScale, Rationale, ScoreDist, Verdict};

#[derive(Deserialize)]
struct RawRationale {
    #[serde(default)]
    query_analysis: String,
    #[serde(default)]
    item_analysis: String,
    #[serde(default)]
    dimensions: Vec<RawDimension>,
    #[serde(default)]
    conclusion: String,
    label: String,
}

#[derive(Deserialize)]
struct RawDimension {
    name: String,
    #[serde(default)]
    query_value: String,
    #[serde(default)]
    item_value: String,
    verdict: String,
    #[serde(default)]
    note: String,
}

/// Parses the teacher's JSON into a Rationale whose label is a key of `scale`. The error says
/// what is wrong, for storing beside the raw output.
pub fn parse_rationale(text: &str, scale: &LabelScale) -> Result<Rationale, String> {
    let body = json_object_span(text).ok_or_else(|| "no JSON object in the output".to_string())?;
    let raw: RawRationale =
        serde_json::from_str(body).map_err(|e| format!("not a rationale: {e}"))?;
    let label = scale
        .resolve(&raw.label)
        .ok_or_else(|| format!("label {:?} is not on the {} scale", raw.label, scale.name))?
        .key
        .clone();
    let dimensions = raw
        .dimensions
        .into_iter()
        .map(|d| {
            let verdict = Verdict::parse(&d.verdict).ok_or_else(|| {
                format!("dimension {:?}: unknown verdict {:?}", d.name, d.verdict)
            })?;
            Ok(Dimension {
                name: d.name,
                query_value: d.query_value,
                item_value: d.item_value,
                verdict,
                note: d.note,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Rationale {
        query_analysis: raw.query_analysis,
        item_analysis: raw.item_analysis,
        dimensions,
        conclusion: raw.conclusion,
        label,
    })
}

/// Reads a bare label (score mode): the text itself, or a `{"label": …}` object.
pub fn parse_label(text: &str, scale: &LabelScale) -> Result<String, String> {
    let t = text.trim().trim_matches('"');
    if let Some(l) = scale.resolve(t) {
        return Ok(l.key.clone());
    }
    if let Some(body) = json_object_span(text)
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(body)
        && let Some(l) = v
            .get("label")
            .and_then(|l| l.as_str())
            .and_then(|l| scale.resolve(l))
    {
        return Ok(l.key.clone());
    }
    Err(format!(
        "{:?} is not a label of the {} scale",
        text.trim(),
        scale.name
    ))
}

/// The one label whose name starts with `text` (case aside), for score mode's one-token answers:
/// the first token of the label is enough when no other label starts the same way.
pub fn label_from_prefix(text: &str, scale: &LabelScale) -> Option<String> {
    let t = text.trim().trim_matches('"').to_lowercase();
    if t.is_empty() {
        return None;
    }
    let mut hits = scale
        .labels
        .iter()
        .filter(|l| l.name.to_lowercase().starts_with(&t));
    match (hits.next(), hits.next()) {
        (Some(l), None) => Some(l.key.clone()),
        _ => None,
    }
}

fn json_object_span(text: &str) -> Option<&str> {
    let start = text.find('{')?;
    let end = text.rfind('}')?;
    (end > start).then(|| &text[start..=end])
}

/// Where the label's first token is: right after the `"label"` key when there is one (CoT),
/// else the first token that holds a letter (score mode, where the label is the whole answer).
pub fn label_position(tokens: &[TokenLogprob]) -> Option<usize> {
    let mut text = String::new();
    let mut after_key = None;
    for (i, t) in tokens.iter().enumerate() {
        text.push_str(&t.token);
        if after_key.is_none() && text.contains("\"label\"") {
            after_key = Some(i + 1);
            break;
        }
    }
    let start = match after_key {
        Some(s) => s,
        None if text.contains('{') => return None,
        None => 0,
    };
    // Skip the `: "` that the key's tokens may not have covered.
    (start..tokens.len()).find(|&i| tokens[i].token.chars().any(char::is_alphanumeric))
}

/// The distribution over the scale's labels at the label position: every alternative token
/// that is a prefix of a label's name counts for that label ("E", "Ex", " Exact" all count for
/// Exact), summed and renormalised over the scale. A token that prefixes several names is split
/// among them. `None` when the output has no label position or no alternative names a label.
pub fn label_distribution(tokens: &[TokenLogprob], scale: &LabelScale) -> Option<ScoreDist> {
    let pos = label_position(tokens)?;
    let at = &tokens[pos];
    let names: Vec<String> = scale.labels.iter().map(|l| l.name.to_lowercase()).collect();
    let mut weights = vec![0.0; names.len()];
    let mut seen: Vec<&str> = Vec::new();
    let chosen = std::iter::once((at.token.as_str(), at.logprob));
    for (tok, lp) in chosen.chain(at.top.iter().map(|(t, l)| (t.as_str(), *l))) {
        if seen.contains(&tok) || !lp.is_finite() {
            continue;
        }
        seen.push(tok);
        let piece = tok
            .trim_start_matches([' ', '"', ':', '\t', '\n'])
            .to_lowercase();
        if piece.is_empty() {
            continue;
        }
        let hits: Vec<usize> = (0..names.len())
            .filter(|&i| names[i].starts_with(&piece))
            .collect();
        for &i in &hits {
            weights[i] += lp.exp() / hits.len() as f64;
        }
    }
    (weights.iter().sum::<f64>() > 0.0).then(|| ScoreDist::from_weights(&weights))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(token: &str, logprob: f64, top: &[(&str, f64)]) -> TokenLogprob {
        TokenLogprob {
            token: token.into(),
            logprob,
            top: top.iter().map(|(t, l)| (t.to_string(), *l)).collect(),
        }
    }

    #[test]
    fn a_unique_label_prefix_names_the_label() {
        let esci = LabelScale::esci();
        assert_eq!(label_from_prefix("Ex", &esci).as_deref(), Some("E"));
        assert_eq!(label_from_prefix(" irr", &esci).as_deref(), Some("I"));
        assert_eq!(label_from_prefix("", &esci), None);
        assert_eq!(label_from_prefix("x", &esci), None);
        let wands = LabelScale::wands();
        assert_eq!(
            label_from_prefix("P", &wands).as_deref(),
            Some(wands.labels[1].key.as_str())
        );
    }

    #[test]
    fn parses_a_rationale_and_maps_the_label_name_to_its_key() {
        let out = r#"{"query_analysis":"a mouse","item_analysis":"a mouse","dimensions":[{"name":"category","query_value":"mouse","item_value":"mouse","verdict":"match"}],"conclusion":"same","label":"Exact"}"#;
        let r = parse_rationale(out, &LabelScale::esci()).unwrap();
        assert_eq!(r.label, "E");
        assert_eq!(r.dimensions[0].verdict, Verdict::Match);
    }

    #[test]
    fn unparseable_output_says_why() {
        let s = LabelScale::esci();
        assert!(
            parse_rationale("I think it is exact", &s)
                .unwrap_err()
                .contains("no JSON object")
        );
        assert!(
            parse_rationale(r#"{"label":"Maybe"}"#, &s)
                .unwrap_err()
                .contains("not on the esci scale")
        );
        let cut = r#"{"query_analysis":"a mouse","item_analysis":"a mo"#;
        assert!(parse_rationale(cut, &s).is_err());
        let bad_verdict = r#"{"dimensions":[{"name":"brand","verdict":"yes"}],"label":"Exact"}"#;
        assert!(
            parse_rationale(bad_verdict, &s)
                .unwrap_err()
                .contains("unknown verdict")
        );
    }

    #[test]
    fn score_mode_labels_parse_bare_or_as_json() {
        let s = LabelScale::esci();
        assert_eq!(parse_label("Substitute", &s).unwrap(), "S");
        assert_eq!(parse_label("{\"label\": \"Complement\"}", &s).unwrap(), "C");
        assert!(parse_label("Sure!", &s).is_err());
    }

    #[test]
    fn distribution_sums_label_prefixes_at_the_label_position() {
        let ln = |p: f64| p.ln();
        let tokens = vec![
            tok("{\"", ln(1.0), &[]),
            tok("label", ln(1.0), &[]),
            tok("\":", ln(1.0), &[]),
            tok(" \"", ln(1.0), &[]),
            tok(
                "Ex",
                ln(0.5),
                &[
                    ("Ex", ln(0.5)),
                    ("E", ln(0.2)),
                    ("Subst", ln(0.1)),
                    ("Com", ln(0.1)),
                    ("{", ln(0.1)),
                ],
            ),
            tok("act", ln(1.0), &[]),
        ];
        let d = label_distribution(&tokens, &LabelScale::esci()).unwrap();
        assert!((d.probs[0] - 0.7 / 0.9).abs() < 1e-9, "{:?}", d.probs);
        assert!((d.probs[1] - 0.1 / 0.9).abs() < 1e-9);
        assert_eq!(d.probs[3], 0.0);
        assert!((d.probs.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn score_mode_label_is_the_first_word_token() {
        let tokens = vec![
            tok(
                "Ir",
                (0.6f64).ln(),
                &[("Ir", (0.6f64).ln()), ("Sub", (0.3f64).ln())],
            ),
            tok("relevant", 0.0, &[]),
        ];
        let d = label_distribution(&tokens, &LabelScale::esci()).unwrap();
        assert!((d.probs[3] - 2.0 / 3.0).abs() < 1e-9);
        assert!(label_distribution(&[tok("{", 0.0, &[])], &LabelScale::esci()).is_none());
    }
}
