use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{ExportArgs, ExportFormat};
use crate::export::{ExportOptions, Format, export};
use crate::store::Store;

/// The formats named, in the order the files are written, each once.
fn formats(named: &[ExportFormat]) -> Vec<Format> {
    let mut out = Vec::new();
    for f in named {
        out.push(match f {
            ExportFormat::All => return Format::ALL.to_vec(),
            ExportFormat::Cot => Format::Cot,
            ExportFormat::MarginMse => Format::MarginMse,
            ExportFormat::SoftLabels => Format::SoftLabels,
            ExportFormat::DistillKl => Format::DistillKl,
            ExportFormat::Sft => Format::Sft,
        });
    }
    out.sort();
    out.dedup();
    out
}

/// Writes the distillation files and prints what went where.
pub async fn run(db: &Path, args: ExportArgs) -> Result<ExitCode> {
    let options = ExportOptions {
        out: args.out.clone(),
        formats: formats(&args.format),
        split: args.split.clone(),
        seed: args.seed,
        source: args.source,
        force: args.force,
        max_pairs_per_query: args.max_pairs_per_query,
        negatives: args.negatives,
        include_augmented: args.include_augmented,
        parquet: args.parquet,
        calibrated: args.calibrated,
        command: std::env::args()
            .map(|a| crate::store::without_password(&a))
            .collect::<Vec<_>>()
            .join(" "),
    };
    crate::allocator::keep_freed_memory();
    let store = Store::open(db).await?;
    let total = store.count_pairs(args.include_augmented).await?;
    let bar = crate::terminal::progress(
        total as u64,
        "{spinner} exporting {pos}/{len} pairs {wide_bar} {per_sec} eta {eta}",
    );
    let manifest = export(&store, &options, &bar).await?;
    bar.finish_and_clear();
    store.close().await;
    println!(
        "{}: {} pairs ({} human-corrected)",
        args.out.display(),
        manifest["pairs"],
        manifest["human_corrected"]
    );
    if let Some(rows) = manifest["rows"].as_object() {
        for (file, splits) in rows {
            let parts: Vec<String> = splits
                .as_object()
                .into_iter()
                .flatten()
                .map(|(s, n)| format!("{s} {n}"))
                .collect();
            println!("  {file:<20} {}", parts.join(" · "));
        }
    }
    Ok(ExitCode::SUCCESS)
}
