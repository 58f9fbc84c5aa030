use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::StatsArgs;
use crate::store::{Stats, Store};

/// Prints what the database holds, as a table or as one JSON object.
pub async fn run(db: &Path, args: StatsArgs) -> Result<ExitCode> {
    let store = Store::open(db).await?;
    let stats = store.stats().await?;
    store.close().await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        print!("{}", render(&stats));
    }
    Ok(ExitCode::SUCCESS)
}

fn render(s: &Stats) -> String {
    let mut out = String::new();
    let pct = |n: i64| {
        if s.pairs > 0 {
            100.0 * n as f64 / s.pairs as f64
        } else {
            0.0
        }
    };
    out += &format!(
        "database   {} (schema v{}, {} scale)\n",
        s.database, s.schema_version, s.scale
    );
    out += &format!(
        "pairs      {} over {} queries and {} items\n",
        s.pairs, s.queries, s.items
    );
    for (origin, n) in &s.origins {
        let labelled = s
            .teacher_labelled_by_origin
            .get(origin)
            .copied()
            .unwrap_or(0);
        out += &format!("  {origin:<22} {n:>8}  ({labelled} teacher-labelled)\n");
    }
    out += "gold labels\n";
    let max = s.labels.values().copied().max().unwrap_or(0).max(1);
    for key in &s.label_order {
        let n = s.labels.get(key).copied().unwrap_or(0);
        out += &format!(
            "  {key:<10} {n:>8} {:>5.1}%  {}\n",
            pct(n),
            crate::terminal::bar(n as f64 / max as f64, 30)
        );
    }
    if s.unlabelled > 0 {
        out += &format!(
            "  {:<10} {:>8} {:>5.1}%\n",
            "unlabelled",
            s.unlabelled,
            pct(s.unlabelled)
        );
    }
    out += &format!(
        "teacher    {} pairs judged ({:.1}%), {} judgments, {} did not parse\n",
        s.judged,
        pct(s.judged),
        s.judgments,
        s.parse_errors
    );
    if s.judged > 0 {
        let labels: Vec<String> = s
            .label_order
            .iter()
            .map(|k| format!("{k} {}", s.teacher_labels.get(k).copied().unwrap_or(0)))
            .collect();
        out += &format!("  teacher labels   {}\n", labels.join(" / "));
    }
    out += &format!(
        "reviewed   {} pairs ({:.1}%), {} annotations\n",
        s.reviewed,
        pct(s.reviewed),
        s.annotations
    );
    out += &format!(
        "students   {} models\naudit      {} findings\n",
        s.student_models, s.audit_findings
    );
    for t in &s.teach_processes {
        out += &format!(
            "teaching   {}: {} pairs claimed, {} judged in the last minute\n",
            t.owner, t.claimed, t.judged_last_minute
        );
    }
    out
}
