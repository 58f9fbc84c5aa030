//! `workbench bench`: throughput measurements that BENCHMARKS.md records. Not tests: they print
//! numbers for a person to compare, on this machine, with the command that produced them. One
//! file per benchmark; import's database is what export and review measure.

mod export;
mod import;
mod review;
mod teacher;

use std::path::Path;

use anyhow::Result;

pub use export::export;
pub use import::import;
pub use review::review;
pub use teacher::teacher;

/// Peak resident memory of this process so far (VmHWM), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The database `bench import` left in `dir`.
/// The benchmark's database: the PostgreSQL URL given, else the SQLite file in `dir`.
fn bench_store_path(dir: &Path, postgres: Option<&str>) -> Result<std::path::PathBuf> {
    match postgres {
        Some(url) => Ok(url.into()),
        None => bench_db(dir),
    }
}

fn bench_db(dir: &Path) -> Result<std::path::PathBuf> {
    let db = dir.join("import-bench.db");
    anyhow::ensure!(
        db.exists(),
        "{}: run `workbench bench import` first",
        db.display()
    );
    Ok(db)
}

/// Median, p99 and max of a set of times in milliseconds, as one row.
fn print_times(name: &str, times: &mut [f64]) {
    times.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    println!(
        "{name:<28} {:>10.2} {:>10.2} {:>10.2}",
        pct(0.5),
        pct(0.99),
        times[times.len() - 1]
    );
}
