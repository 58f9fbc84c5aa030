//! Bulk reads on a direct SQLite connection (rusqlite over the same bundled SQLite
//! as sqlx). sqlx hands every row through a channel from its worker thread, about 8 µs a row:
//! a million-pair export spent 8 of its 11 s there (BENCHMARKS.md, export). Here a reader thread
//! steps the statement itself and passes rows on in chunks, so reading and decoding run beside
//! the consumer on the second core.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use futures::{Stream, StreamExt};
use rusqlite::{Connection, OpenFlags, Row, types::Value};

/// Rows per message from the reader thread.
const CHUNK: usize = 1024;
/// Chunks in flight: bounds memory whatever the consumer's speed.
const IN_FLIGHT: usize = 4;

/// A read-only connection with the store's busy timeout (a writer may hold the file) and page
/// cache.
fn connect(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .with_context(|| format!("opening database {}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.execute_batch(&format!(
        "PRAGMA temp_store = MEMORY; PRAGMA cache_size = -{};",
        super::BATCH_CACHE_KIB
    ))?;
    Ok(conn)
}

/// Streams `sql`'s rows: each is copied out by `read` on a thread of its own, then finished by
/// `finish` on the consumer's side (where the rest of a row's decoding goes, so that both cores
/// share the work). Dropping the stream stops the reader at its next chunk.
pub(super) fn stream<R: Send + 'static, T: 'static>(
    path: PathBuf,
    sql: String,
    params: Vec<Value>,
    read: fn(&Row) -> Result<R>,
    finish: fn(R) -> Result<T>,
) -> impl Stream<Item = Result<T>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<R>>>(IN_FLIGHT);
    std::thread::spawn(move || {
        let read = || -> Result<()> {
            let conn = connect(&path)?;
            let mut stmt = conn.prepare(&sql)?;
            let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
            let mut chunk = Vec::with_capacity(CHUNK);
            while let Some(row) = rows.next()? {
                chunk.push(read(row)?);
                if chunk.len() == CHUNK {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                    if tx.blocking_send(Ok(full)).is_err() {
                        return Ok(()); // the consumer is gone
                    }
                }
            }
            if !chunk.is_empty() {
                let _ = tx.blocking_send(Ok(chunk));
            }
            Ok(())
        };
        if let Err(e) = read() {
            let _ = tx.blocking_send(Err(e));
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((chunk, rx))
    })
    .flat_map(move |chunk| {
        let (rows, failed) = match chunk {
            Ok(rows) => (rows, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        futures::stream::iter(rows.into_iter().map(finish).chain(failed.map(Err)))
    })
}
