use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use anyhow::{Context, Result, bail};

use crate::cli::ImportArgs;
use crate::ingest::{FieldMap, RowError, RowReader, rejects_path};
use crate::store::{ImportCounts, ImportRow, Store};

const BATCH: usize = 1000;

/// Imports a pairs file in one transaction: either every row lands or, on a bad row, none.
pub async fn run(db: &Path, args: ImportArgs) -> Result<ExitCode> {
    let store = Store::open(db).await?;
    let map = match &args.map {
        Some(spec) => FieldMap::parse(spec)?,
        None => FieldMap::default(),
    };
    let counts = import_file(&store, &args.file, map, args.skip_invalid, true).await?;
    store.close().await;
    println!(
        "{}: {} rows read, {} new pairs{}",
        args.file.display(),
        counts.rows_read,
        counts.pairs_added,
        if counts.rejected > 0 {
            format!(
                ", {} rejected (see {})",
                counts.rejected,
                rejects_path(&args.file).display()
            )
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// Streams `path` into the store. Parsing runs on its own thread while SQLite writes, so the two
/// cores both work. Returns the counts; on a bad row without `skip_invalid`, an error
/// `FILE:LINE: field: what is wrong` and nothing of the file stored.
pub async fn import_file(
    store: &Store,
    path: &Path,
    map: FieldMap,
    skip_invalid: bool,
    show_progress: bool,
) -> Result<ImportCounts> {
    let scale = store.scale().await?;
    let reader = RowReader::open(path, map, scale)?;
    let total = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let bytes = reader.bytes_read();
    let bar = if show_progress {
        crate::terminal::progress(
            total,
            "{spinner} importing {bytes}/{total_bytes} {wide_bar} {bytes_per_sec} eta {eta}",
        )
    } else {
        indicatif::ProgressBar::hidden()
    };

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<Result<ImportRow, RowError>>>>(4);
    let parser = std::thread::spawn(move || {
        let mut batch = Vec::with_capacity(BATCH);
        for row in reader {
            match row {
                Ok(r) => batch.push(r),
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
            if batch.len() == BATCH
                && tx
                    .blocking_send(Ok(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))))
                    .is_err()
            {
                return;
            }
        }
        let _ = tx.blocking_send(Ok(batch));
    });

    let display = path.display().to_string();
    let mut import = store.begin_import().await?;
    let mut rejects: Option<std::io::BufWriter<std::fs::File>> = None;
    let (mut read, mut rejected) = (0u64, 0u64);
    let mut good = Vec::with_capacity(BATCH);
    while let Some(batch) = rx.recv().await {
        for row in batch? {
            read += 1;
            match row {
                Ok(r) => good.push(r),
                Err(e) if skip_invalid => {
                    rejected += 1;
                    if rejects.is_none() {
                        let rp = rejects_path(path);
                        let f = std::fs::File::create(&rp)
                            .with_context(|| format!("creating {}", rp.display()))?;
                        rejects = Some(std::io::BufWriter::new(f));
                    }
                    write_reject(rejects.as_mut().expect("opened above"), &e)?;
                }
                Err(e) => {
                    drop(rx);
                    let _ = parser.join();
                    bar.finish_and_clear();
                    bail!(
                        "{display}:{e}\nnothing from {display} was imported (use --skip-invalid to import the valid rows)"
                    );
                }
            }
        }
        import
            .add(std::mem::replace(&mut good, Vec::with_capacity(BATCH)))
            .await
            .with_context(|| format!("importing {display}"))?;
        bar.set_position(bytes.load(Ordering::Relaxed));
    }
    let _ = parser.join();
    if let Some(mut w) = rejects {
        w.flush().context("writing the rejected rows")?;
    }
    let counts = import
        .commit(&display, read, rejected)
        .await
        .with_context(|| format!("importing {display}"))?;
    bar.finish_and_clear();
    Ok(counts)
}

fn write_reject(w: &mut impl Write, e: &RowError) -> Result<()> {
    let row =
        serde_json::json!({"line": e.line, "field": e.field, "error": e.message, "row": e.raw});
    writeln!(w, "{row}").context("writing a rejected row")
}
