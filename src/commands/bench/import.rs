//! Import of a generated file shaped like the ESCI fixture, then the same file again.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::peak_rss_mib;
use crate::domain::LabelScale;
use crate::ingest::FieldMap;
use crate::store::Store;

/// Writes `rows` JSONL rows shaped like the ESCI fixture (its real text, cycled, with fresh
/// ids: 10 products per query), unless the file is already there.
fn generate(rows: u64, path: &Path, compact: bool) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    let fixture = include_str!("../../../fixtures/esci-fixture.jsonl");
    let templates: Vec<serde_json::Value> = fixture
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let tmp = path.with_extension("part");
    let mut w = BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?,
    );
    for i in 0..rows {
        let mut row = templates[(i % templates.len() as u64) as usize].clone();
        row["query_id"] = format!("gq{}", i / 10).into();
        row["query"] = format!("{} {}", row["query"].as_str().unwrap_or(""), i / 2000).into();
        row["product_id"] = format!("gp{i}").into();
        if compact {
            row["description"] = "".into();
            let color = row["attributes"]["color"].clone();
            row["attributes"] = serde_json::json!({ "color": color });
        }
        serde_json::to_writer(&mut w, &row)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

pub async fn import(
    rows: u64,
    dir: &Path,
    compact: bool,
    postgres: Option<&str>,
) -> Result<ExitCode> {
    std::fs::create_dir_all(dir)?;
    let file = dir.join(format!(
        "pairs-{rows}{}.jsonl",
        if compact { "-compact" } else { "" }
    ));
    eprintln!("generating {} …", file.display());
    generate(rows, &file, compact)?;
    let bytes = std::fs::metadata(&file)?.len();
    let store = match postgres {
        Some(url) => {
            let store = Store::create(Path::new(url)).await?;
            if store.stats().await.map_or(0, |s| s.pairs) > 0 {
                bail!("{url}: holds pairs already; the benchmark imports into an empty database");
            }
            store
        }
        None => {
            let db = dir.join("import-bench.db");
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
            }
            Store::create(&db).await?
        }
    };
    store.set_scale(&LabelScale::esci()).await?;
    let rss_before = peak_rss_mib().unwrap_or(0.0);
    let started = Instant::now();
    let counts =
        crate::commands::import_file(&store, &file, FieldMap::default(), false, true).await?;
    let secs = started.elapsed().as_secs_f64();
    let reimport_started = Instant::now();
    let again =
        crate::commands::import_file(&store, &file, FieldMap::default(), false, false).await?;
    let reimport_secs = reimport_started.elapsed().as_secs_f64();
    store.close().await;
    println!(
        "import benchmark ({}): {} rows, {:.0} MiB of JSONL",
        if postgres.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        counts.rows_read,
        bytes as f64 / 1048576.0
    );
    println!(
        "  first import   {secs:.1} s   {:.0} rows/s   {:.1} MiB/s   {} pairs added",
        counts.rows_read as f64 / secs,
        bytes as f64 / 1048576.0 / secs,
        counts.pairs_added
    );
    println!(
        "  re-import      {reimport_secs:.1} s   {:.0} rows/s   {} pairs added",
        again.rows_read as f64 / reimport_secs,
        again.pairs_added
    );
    println!(
        "  peak RSS       {:.0} MiB (before import {rss_before:.0} MiB)",
        peak_rss_mib().unwrap_or(0.0)
    );
    Ok(ExitCode::SUCCESS)
}
