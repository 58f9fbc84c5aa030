//! `workbench report`: one self-contained HTML file (inline CSS and SVG, no script, no network)
//! with the agreement figures as plots and the worst pairs' text.

pub mod svg;

use std::collections::BTreeMap;
use std::fmt::Write;

use super::Metrics;
use crate::domain::metrics::Agreement;
use crate::store::StoredFinding;
use svg::escape;

/// Everything the report shows besides the metrics.
pub struct ReportInput<'a> {
    pub database: &'a str,
    pub scale: &'a str,
    pub generated_at: &'a str,
    pub metrics: &'a Metrics,
    /// (rule, severity, count) over the whole store.
    pub finding_counts: &'a [(String, String, i64)],
    /// Findings on each of the worst pairs, by pair id.
    pub worst_findings: &'a BTreeMap<i64, Vec<StoredFinding>>,
}

const STYLE: &str = "
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
.meta { color: #666; } .grid { display: flex; flex-wrap: wrap; gap: 2rem; align-items: flex-start; }
table { border-collapse: collapse; } td, th { padding: .25rem .6rem; border-bottom: 1px solid #eee; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.figure { margin: .5rem 0; } .figure h3 { font-size: 1rem; margin: .3rem 0; }
.pair { border: 1px solid #ddd; border-radius: 6px; padding: .6rem 1rem; margin: .8rem 0; }
.pair:target { border-color: #1565c0; box-shadow: 0 0 0 3px #bbdefb; }
.label { font-weight: 600; } .err { color: #c62828; } .warn { color: #ef6c00; } .info { color: #546e7a; }
code { background: #f4f4f4; padding: 0 .3rem; border-radius: 3px; }
";

pub fn render(input: &ReportInput) -> String {
    let m = input.metrics;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Relevance report: {}</title><style>{STYLE}</style></head><body>\
         <h1>Relevance report</h1><p class=\"meta\">{} · scale {} · {} pairs, {} judged by the teacher, \
         {} reviewed · generated {}</p>",
        escape(input.database),
        escape(input.database),
        escape(input.scale),
        m.pairs,
        m.judged,
        m.reviewed_pairs,
        escape(input.generated_at)
    );

    h.push_str("<h2 id=\"agreement\">Teacher agreement with humans</h2>");
    h.push_str("<table><tr><th></th><th>pairs</th><th>accuracy</th><th>macro-F1</th><th>Cohen's κ</th></tr>");
    agreement_row(&mut h, "teacher vs gold labels", &m.teacher_vs_gold);
    agreement_row(&mut h, "teacher vs annotators", &m.teacher_vs_annotators);
    agreement_row(
        &mut h,
        "annotator vs annotator",
        &m.inter_annotator.agreement,
    );
    let _ = write!(
        h,
        "</table><p>Expected calibration error of the teacher: <b>{:.3}</b> (10 bins).</p>",
        m.calibration.ece
    );

    h.push_str("<div class=\"grid\">");
    figure(
        &mut h,
        "Confusion matrix: gold label × teacher label",
        &svg::confusion(
            &m.scale,
            &m.teacher_vs_gold.confusion.counts,
            "gold",
            "teacher",
        ),
    );
    let bins: Vec<(f64, f64, u64)> = m
        .calibration
        .bins
        .iter()
        .map(|b| (b.mean_confidence, b.accuracy, b.count))
        .collect();
    figure(
        &mut h,
        "Calibration curve (reliability)",
        &svg::reliability(&bins),
    );
    match &m.student {
        Some(st) => figure(
            &mut h,
            &format!(
                "Teacher vs student `{}` ({} pairs{})",
                st.name,
                st.scored,
                st.pearson.map_or(String::new(), |r| format!(", Pearson r = {r:.3}"))
            ),
            &svg::scatter(&st.points, "teacher expected gain", "student score"),
        ),
        None => h.push_str(
            "<div class=\"figure\"><h3>Teacher vs student</h3><p>No student has scored these pairs \
             yet (<code>workbench student train</code>, then <code>student score</code>).</p></div>",
        ),
    }
    h.push_str("</div>");

    h.push_str("<h2 id=\"corrections\">What annotators correct</h2>");
    let corrections: Vec<(String, f64)> = m
        .corrections
        .iter()
        .map(|(k, v)| (k.clone(), *v as f64))
        .collect();
    figure(
        &mut h,
        "Corrections per step (pairs)",
        &svg::bars(&corrections, "", "corrections"),
    );

    h.push_str("<h2 id=\"findings\">Audit findings</h2>");
    let mut per_rule: BTreeMap<&str, i64> = BTreeMap::new();
    for (rule, _, n) in input.finding_counts {
        *per_rule.entry(rule).or_default() += n;
    }
    let mut rules: Vec<(String, f64)> = per_rule
        .into_iter()
        .map(|(r, n)| (r.to_string(), n as f64))
        .collect();
    rules.sort_by(|a, b| b.1.total_cmp(&a.1));
    if input.finding_counts.is_empty() {
        h.push_str("<p>No findings stored: run <code>workbench audit</code> first.</p>");
    }
    figure(
        &mut h,
        "Findings per rule",
        &svg::bars(&rules, "", "findings per rule"),
    );

    h.push_str("<h2 id=\"worst\">The teacher's most confident errors</h2>");
    if m.worst.is_empty() {
        h.push_str("<p>None: no judged pair disagrees with a human label.</p>");
    } else {
        h.push_str(
            "<table><tr><th>query</th><th>item</th><th>human</th><th>teacher</th><th>p</th></tr>",
        );
        for w in &m.worst {
            let _ = write!(
                h,
                "<tr><td>{}</td><td><a href=\"#pair-{}\">{}</a></td><td class=\"label\">{}</td>\
                 <td class=\"label\">{}</td><td class=\"num\">{:.2}</td></tr>",
                escape(&w.query),
                w.pair_id,
                escape(&w.title),
                escape(&w.reference),
                escape(&w.teacher),
                w.teacher_p
            );
        }
        h.push_str("</table>");
        for w in &m.worst {
            let _ = write!(
                h,
                "<div class=\"pair\" id=\"pair-{}\"><p><b>Query</b> {} <span class=\"meta\">({})</span></p>\
                 <p><b>Item</b> {} <span class=\"meta\">({})</span></p><p>{}</p>\
                 <p>human <span class=\"label\">{}</span> · teacher <span class=\"label\">{}</span> at {:.2}</p>",
                w.pair_id,
                escape(&w.query),
                escape(&w.query_id),
                escape(&w.title),
                escape(&w.product_id),
                escape(&w.description),
                escape(&w.reference),
                escape(&w.teacher),
                w.teacher_p
            );
            if let Some(c) = &w.conclusion {
                let _ = write!(h, "<p><b>Teacher's conclusion</b> {}</p>", escape(c));
            }
            if let Some(findings) = input.worst_findings.get(&w.pair_id) {
                h.push_str("<ul>");
                for f in findings {
                    let class = match f.severity.as_str() {
                        "error" => "err",
                        "warn" => "warn",
                        _ => "info",
                    };
                    let _ = write!(
                        h,
                        "<li class=\"{class}\">{}: {}</li>",
                        escape(&f.rule),
                        escape(&f.detail)
                    );
                }
                h.push_str("</ul>");
            }
            let _ = write!(
                h,
                "<p class=\"meta\">In the terminal: <code>workbench show {} {}</code></p></div>",
                escape(&w.query_id),
                escape(&w.product_id)
            );
        }
    }
    h.push_str("</body></html>\n");
    h
}

fn agreement_row(h: &mut String, name: &str, a: &Agreement) {
    if a.n == 0 {
        let _ = write!(
            h,
            "<tr><td>{name}</td><td class=\"num\">0</td><td colspan=\"3\" class=\"meta\">no pairs yet</td></tr>"
        );
        return;
    }
    let _ = write!(
        h,
        "<tr><td>{name}</td><td class=\"num\">{}</td><td class=\"num\">{:.3}</td>\
         <td class=\"num\">{:.3}</td><td class=\"num\">{:.3}</td></tr>",
        a.n, a.accuracy, a.macro_f1, a.kappa
    );
}

fn figure(h: &mut String, title: &str, svg: &str) {
    let _ = write!(
        h,
        "<div class=\"figure\"><h3>{}</h3>{svg}</div>",
        escape(title)
    );
}
