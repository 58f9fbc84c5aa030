//! `workbench audit`, `workbench metrics` and `workbench report`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};

use crate::audit::report::{self, ReportInput};
use crate::audit::{self, Metrics, Rule, Thresholds};
use crate::cli::{AuditArgs, MetricsArgs, ReportArgs};
use crate::domain::metrics::agreement_table;
use crate::store::Store;

pub async fn run(db: &Path, args: AuditArgs) -> Result<ExitCode> {
    let rules = Rule::union(&args.rules);
    for (name, v) in [
        ("--max-entropy", args.max_entropy),
        ("--student-margin", args.student_margin),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err(anyhow!("{name} must be between 0 and 1, not {v}"));
        }
    }
    let store = Store::open(db).await?;
    let scale = store.scale().await?;
    let student = store.student_model(args.student.as_deref()).await?;
    let total = store.count_pairs(true).await?;
    let bar = crate::terminal::progress(
        total as u64,
        "{spinner} auditing {pos}/{len} pairs {wide_bar} {per_sec} eta {eta}",
    );
    let limits = Thresholds {
        max_entropy: args.max_entropy,
        student_margin: args.student_margin,
    };
    let summary = audit::run(
        &store,
        &scale,
        &rules,
        limits,
        student.as_ref().map(|s| s.id),
        args.calibrated,
        || bar.inc(1),
    )
    .await?;
    bar.finish_and_clear();
    let metrics = if args.metrics {
        Some(audit::agreement::collect(&store, &scale, student.map(|s| (s.id, s.name))).await?)
    } else {
        None
    };
    store.close().await;
    if args.json {
        let mut value = serde_json::to_value(&summary)?;
        if let Some(m) = &metrics {
            value["metrics"] = serde_json::to_value(m)?;
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "audited {} pairs ({} judged) with {} rules: {} pairs flagged",
        summary.pairs,
        summary.judged,
        summary.rules.len(),
        summary.flagged_pairs
    );
    if args.calibrated {
        println!(
            "  the teacher's distribution and its label against humans and the student: calibrated ({} judgments; the rest have no calibration and read raw)",
            summary.calibrated_judgments
        );
    }
    for rule in &rules {
        let n = summary.by_rule.get(rule.name()).copied().unwrap_or(0);
        println!("  {:>6}  {:<28} {}", n, rule.name(), rule.description());
    }
    if !summary.sample.is_empty() {
        println!("\nworst findings:");
        for f in &summary.sample {
            println!(
                "  pair {:<6} {:<5} {:<26} {}",
                f.pair_id,
                f.severity.as_str(),
                f.rule.name(),
                crate::domain::text::inert(&f.detail)
            );
        }
        println!("\nreview them: workbench review (press f until \"flagged by audit\")");
    }
    if let Some(m) = &metrics {
        print!("\n{}", render_metrics(m));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn metrics(db: &Path, args: MetricsArgs) -> Result<ExitCode> {
    let store = Store::open(db).await?;
    let scale = store.scale().await?;
    let student = store.student_model(args.student.as_deref()).await?;
    let m = audit::agreement::collect(&store, &scale, student.map(|s| (s.id, s.name))).await?;
    store.close().await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&m)?);
    } else {
        print!("{}", render_metrics(&m));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn report(db: &Path, args: ReportArgs) -> Result<ExitCode> {
    let store = Store::open(db).await?;
    let scale = store.scale().await?;
    let student = store.student_model(args.student.as_deref()).await?;
    let m = audit::agreement::collect(&store, &scale, student.map(|s| (s.id, s.name))).await?;
    let counts = store.finding_counts().await?;
    let mut worst_findings = BTreeMap::new();
    for w in &m.worst {
        worst_findings.insert(w.pair_id, store.findings_of(w.pair_id).await?);
    }
    let generated_at = store.now().await?;
    store.close().await;
    let html = report::render(&ReportInput {
        database: &crate::store::without_password(&db.to_string_lossy()),
        scale: &scale.name,
        generated_at: &generated_at,
        metrics: &m,
        finding_counts: &counts,
        worst_findings: &worst_findings,
    });
    let partial = args.out.with_extension("html.partial");
    std::fs::write(&partial, html)
        .with_context(|| format!("writing the report to {}", partial.display()))?;
    std::fs::rename(&partial, &args.out)
        .with_context(|| format!("moving the report into place at {}", args.out.display()))?;
    println!(
        "{}: {} pairs, {} judged, {} findings, {} worst pairs",
        args.out.display(),
        m.pairs,
        m.judged,
        counts.iter().map(|c| c.2).sum::<i64>(),
        m.worst.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn render_metrics(m: &Metrics) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} pairs, {} judged by the teacher, {} reviewed",
        m.pairs, m.judged, m.reviewed_pairs
    );
    out.push('\n');
    for line in agreement_table(&[
        ("teacher vs gold", &m.teacher_vs_gold),
        ("teacher vs annotators", &m.teacher_vs_annotators),
        ("annotator vs annotator", &m.inter_annotator.agreement),
    ]) {
        let _ = writeln!(out, "{line}");
    }

    let c = &m.teacher_vs_gold.confusion;
    if c.total() > 0 {
        let _ = writeln!(out, "\nconfusion (rows gold, columns teacher)");
        let _ = write!(out, "      ");
        for l in &c.labels {
            let _ = write!(out, "{l:>6}");
        }
        out.push('\n');
        for (l, row) in c.labels.iter().zip(&c.counts) {
            let _ = write!(out, "{l:>6}");
            for n in row {
                let _ = write!(out, "{n:>6}");
            }
            out.push('\n');
        }
    }
    let _ = writeln!(
        out,
        "\ncalibration: ECE {:.3}\n  confidence    pairs  mean conf  accuracy",
        m.calibration.ece
    );
    for b in m.calibration.bins.iter().filter(|b| b.count > 0) {
        let _ = writeln!(
            out,
            "  {:.1}–{:.1}  {:>9}  {:>9.3}  {:>8.3}  {}",
            b.lo,
            b.hi,
            b.count,
            b.mean_confidence,
            b.accuracy,
            crate::terminal::bar(b.accuracy, 10)
        );
    }
    if !m.corrections.is_empty() {
        let _ = writeln!(out, "\ncorrected by annotators (pairs)");
        for (step, n) in &m.corrections {
            let _ = writeln!(out, "  {n:>6}  {step}");
        }
    }
    if let Some(s) = &m.student {
        let _ = writeln!(
            out,
            "\nstudent {}: {} pairs scored, Pearson r with the teacher {}",
            s.name,
            s.scored,
            s.pearson.map_or("n/a".into(), |r| format!("{r:.3}"))
        );
    }
    out
}
