use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};
use serde_json::json;

use crate::cli::ShowArgs;
use crate::domain::{LabelScale, Pair, PairKey};
use crate::store::{JudgmentRecord, Store};

/// Prints one pair with every judgment of it: the rationale step by step and the distribution.
pub async fn run(db: &Path, args: ShowArgs) -> Result<ExitCode> {
    let store = Store::open(db).await?;
    let key = PairKey {
        query_id: args.query_id.clone(),
        product_id: args.product_id.clone(),
    };
    let Some(pair) = store.pair_by_key(&key).await? else {
        bail!(
            "{}: no pair with query id {:?} and product id {:?}",
            crate::store::without_password(&db.to_string_lossy()),
            args.query_id,
            args.product_id
        );
    };
    let scale = store.scale().await?;
    let judgments = store.judgments_of(pair.id).await?;
    store.close().await;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&pair, &judgments, &scale))?
        );
    } else {
        print!(
            "{}",
            render(&pair, &judgments, &scale, crate::terminal::color_enabled())
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn to_json(pair: &Pair, judgments: &[JudgmentRecord], scale: &LabelScale) -> serde_json::Value {
    json!({
        "pair": pair,
        "judgments": judgments.iter().map(|j| json!({
            "id": j.id,
            "model": j.model,
            "prompt_hash": j.prompt_hash,
            "mode": j.mode,
            "label": j.label,
            "distribution": j.distribution.by_key(scale),
            "distribution_source": j.dist_source,
            "expected_gain": j.distribution.expected_gain(scale),
            "calibrated_distribution": j.calibrated.as_ref().map(|c| c.by_key(scale)),
            "confidence": j.confidence,
            "rationale": j.rationale,
            "parse_error": j.parse_error,
            "raw_output": j.raw_output,
            "truncated": j.truncated,
            "item_truncated": j.item_truncated,
            "prompt_tokens": j.prompt_tokens,
            "completion_tokens": j.completion_tokens,
            "elapsed_ms": j.elapsed_ms,
            "created_at": j.created_at,
        })).collect::<Vec<_>>(),
    })
}

/// Data as one inert line: nothing a title or the teacher's output holds reaches the terminal as
/// a control character.
fn t(s: &str) -> std::borrow::Cow<'_, str> {
    crate::domain::text::inert(s)
}

fn paint(color: bool, code: &str, text: &str) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

pub fn render(
    pair: &Pair,
    judgments: &[JudgmentRecord],
    scale: &LabelScale,
    color: bool,
) -> String {
    let mut out = String::new();
    let label_name = |k: &str| scale.name_of(k);
    out += &format!(
        "{} {}  ({})\n",
        paint(color, "1", "query"),
        t(&pair.query.text),
        t(&pair.query.ext_id)
    );
    out += &format!(
        "{}  {}  ({})\n",
        paint(color, "1", "item"),
        t(&pair.item.title),
        t(&pair.item.ext_id)
    );
    if !pair.item.brand.is_empty() {
        out += &format!("       brand: {}\n", t(&pair.item.brand));
    }
    for (k, v) in pair.item.attribute_lines() {
        let (v, _) = crate::domain::prompt::cut_at_word(&v.replace('\n', "; "), 160);
        out += &format!("       {}: {}\n", t(&k), t(&v));
    }
    if !pair.item.description.is_empty() {
        let (d, _) = crate::domain::prompt::cut_at_word(&pair.item.description, 300);
        out += &format!("       {}\n", t(&d));
    }
    out += &format!(
        "gold   {}\n",
        pair.gold_label
            .as_deref()
            .map(label_name)
            .unwrap_or_else(|| "—".into())
    );
    if judgments.is_empty() {
        out += &format!(
            "\nno teacher judgment yet: `workbench teach --only {}/{}`\n",
            t(&pair.query.ext_id),
            t(&pair.item.ext_id)
        );
    }
    for j in judgments {
        out += &format!(
            "\n{} {} · prompt {} · {} · {}\n",
            paint(color, "1;36", "teacher"),
            t(&j.model),
            t(&j.prompt_hash),
            j.mode,
            j.created_at
        );
        if let Some(e) = &j.parse_error {
            out += &format!(
                "  {} {}\n  raw: {}\n",
                paint(color, "31", "did not parse:"),
                t(e),
                t(&j.raw_output)
            );
        }
        if let Some(r) = &j.rationale {
            out += &format!(
                "  1. query    {}\n  2. item     {}\n",
                t(&r.query_analysis),
                t(&r.item_analysis)
            );
            for (i, d) in r.dimensions.iter().enumerate() {
                let code = match d.verdict {
                    crate::domain::Verdict::Match => "32",
                    crate::domain::Verdict::Partial => "33",
                    crate::domain::Verdict::Mismatch => "31",
                    crate::domain::Verdict::NotMentioned => "90",
                };
                out += &format!(
                    "  {}. {:<9}{:<14} query {:?} · item {:?}\n",
                    i + 3,
                    t(&d.name),
                    paint(color, code, d.verdict.as_str()),
                    d.query_value,
                    d.item_value
                );
            }
            out += &format!(
                "  {}. conclude {}\n",
                r.dimensions.len() + 3,
                t(&r.conclusion)
            );
        }
        out += &format!(
            "  label  {}{}{}\n",
            j.label
                .as_deref()
                .map(label_name)
                .unwrap_or_else(|| "—".into()),
            j.confidence
                .map(|c| format!(" · agreement {:.0}%", c * 100.0))
                .unwrap_or_default(),
            if j.item_truncated {
                " · item text cut to fit"
            } else {
                ""
            }
        );
        for (l, p) in scale.labels.iter().zip(&j.distribution.probs) {
            out += &format!(
                "    {:<11} {} {:>5.1}%\n",
                l.name,
                crate::terminal::bar(*p, 30),
                p * 100.0
            );
        }
        out += &format!(
            "    from {} · expected gain {:.3}\n",
            j.dist_source,
            j.distribution.expected_gain(scale)
        );
        if let Some(c) = &j.calibrated {
            let shares: Vec<String> = scale
                .labels
                .iter()
                .zip(&c.probs)
                .map(|(l, p)| format!("{} {:.1}%", l.key, p * 100.0))
                .collect();
            out += &format!(
                "    calibrated (workbench teacher calibrate): {} · label {}\n",
                shares.join(" · "),
                label_name(&scale.labels[c.argmax().0].key)
            );
        }
    }
    out
}
