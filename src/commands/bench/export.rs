//! Export of the import benchmark's database, given a judgment per pair.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;

use super::{bench_store_path, peak_rss_mib};
use crate::store::Store;

/// Exports the import benchmark's database `runs` times: soft_labels alone, then every format.
pub async fn export(dir: &Path, runs: usize, postgres: Option<&str>) -> Result<ExitCode> {
    crate::allocator::keep_freed_memory();
    let store = Store::open(&bench_store_path(dir, postgres)?).await?;
    let added = store.add_synthetic_judgments().await?;
    let pairs = store.count_pairs(false).await?;
    println!("export benchmark: {pairs} pairs ({added} synthetic judgments added)");
    for (label, formats) in [
        ("soft_labels", &[crate::export::Format::SoftLabels][..]),
        ("all formats", &crate::export::Format::ALL[..]),
    ] {
        let options = crate::export::ExportOptions {
            out: dir.join("export-bench"),
            formats: formats.to_vec(),
            split: Some(crate::domain::SplitSpec::by_query_default()),
            seed: 42,
            source: crate::export::LabelSource::Teacher,
            force: true,
            max_pairs_per_query: 20,
            negatives: 3,
            include_augmented: false,
            parquet: false,
            calibrated: false,
            command: format!("workbench bench export ({label})"),
        };
        let mut times = Vec::new();
        for _ in 0..runs.max(1) {
            // The previous run's files are removed first: deleting them is not the export's work.
            if options.out.exists() {
                std::fs::remove_dir_all(&options.out)?;
            }
            let started = Instant::now();
            let manifest =
                crate::export::export(&store, &options, &indicatif::ProgressBar::hidden()).await?;
            let secs = started.elapsed().as_secs_f64();
            times.push(secs);
            println!(
                "  {label:<12} {secs:>6.1} s   {:>9.0} pairs/s   {} pairs   peak RSS {:.0} MiB",
                pairs as f64 / secs,
                manifest["pairs"],
                peak_rss_mib().unwrap_or(0.0)
            );
        }
        if times.len() > 1 {
            times.sort_by(f64::total_cmp);
            let n = times.len();
            let median = (times[(n - 1) / 2] + times[n / 2]) / 2.0;
            println!(
                "  {label:<12} median of {}: {median:.1} s, {:.0} pairs/s",
                times.len(),
                pairs as f64 / median
            );
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
