//! Bulk reads on a direct SQLite connection (rusqlite over the same bundled SQLite
//! as sqlx). sqlx hands every row through a channel from its worker thread, which dominated a
//! large export's time (BENCHMARKS.md, export). Here a reader thread
//! steps the statement itself and passes rows on in chunks, so reading and decoding run beside
//! the consumer on the second core. A chunk's text columns are copied into one buffer (`Arena`)
//! rather than a `String` each: the reader thread then allocates nothing per row, and the
//! consumer's strings are allocated and freed on its own thread (mimalloc's cheap path).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::{Stream, StreamExt};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OpenFlags, Row};

/// Rows per message from the reader thread.
const CHUNK: usize = 1024;
/// Text bytes after which a chunk is sent on with fewer rows: bounds memory when rows are big.
const ARENA_FULL: usize = 64 << 20;
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

/// Every row of `sql`, mapped: a list read without sqlx's per-row channel (the export's split
/// reads every query before its first row).
pub(super) fn read_all<T>(
    path: &Path,
    sql: &str,
    map: impl FnMut(&Row) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let conn = connect(path)?;
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], map)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Where one text column's bytes sit in its chunk's `Arena`; `Span::NULL` for NULL. Eight
/// bytes, so that a row of spans stays small to move between threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    start: u32,
    end: u32,
}

impl Span {
    pub(super) const NULL: Span = Span {
        start: u32::MAX,
        end: u32::MAX,
    };
}

/// The text columns of a chunk of rows, one after another, checked as UTF-8 by the reader.
#[derive(Debug, Default)]
pub(super) struct Arena(String);

impl Arena {
    /// Copies text column `i` of `row` in. Another type than text or NULL is an error, as
    /// reading it as a `String` would be.
    pub(super) fn text(&mut self, row: &Row, i: usize) -> Result<Span> {
        match row.get_ref(i)? {
            ValueRef::Null => Ok(Span::NULL),
            ValueRef::Text(bytes) => {
                let text = match std::str::from_utf8(bytes) {
                    Ok(text) => text,
                    Err(e) => bail!(
                        "column {:?} is not UTF-8: {e}",
                        row.as_ref().column_name(i)?
                    ),
                };
                // A chunk is sent on before its text reaches `ARENA_FULL`, far below 4 GiB.
                let start = self.0.len() as u32;
                self.0.push_str(text);
                Ok(Span {
                    start,
                    end: self.0.len() as u32,
                })
            }
            other => Err(rusqlite::Error::InvalidColumnType(
                i,
                row.as_ref().column_name(i)?.to_string(),
                other.data_type(),
            )
            .into()),
        }
    }

    /// Copies `text` in (a column read some other way than from SQLite).
    pub(super) fn push(&mut self, text: Option<&str>) -> Span {
        match text {
            None => Span::NULL,
            Some(t) => {
                let start = self.0.len() as u32;
                self.0.push_str(t);
                Span {
                    start,
                    end: self.0.len() as u32,
                }
            }
        }
    }

    /// The text at `span`; `None` for NULL.
    pub(super) fn str(&self, span: Span) -> Option<&str> {
        (span != Span::NULL).then(|| &self.0[span.start as usize..span.end as usize])
    }

    pub(super) fn string(&self, span: Span) -> Option<String> {
        self.str(span).map(str::to_owned)
    }
}

/// Streams `sql`'s rows: each is copied out by `read` on a thread of its own (its text into the
/// chunk's `Arena`), then finished by `finish` on the consumer's side (where the rest of a row's
/// decoding goes, so that both cores share the work). Dropping the stream stops the reader at
/// its next chunk.
/// `path` is an error when the store is not a SQLite file: the stream then yields that error.
pub(super) fn stream<R: Send + 'static, T: 'static>(
    path: Result<PathBuf>,
    sql: String,
    params: Vec<Value>,
    read: impl Fn(&Row, &mut Arena) -> Result<R> + Send + 'static,
    finish: fn(R, &Arena) -> Result<T>,
) -> impl Stream<Item = Result<T>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<(Vec<R>, Arena)>>(IN_FLIGHT);
    // Emptied chunks come back to be filled again: fresh ones cost page faults on both threads.
    let (spare_tx, spare) = std::sync::mpsc::channel::<(Vec<R>, Arena)>();
    std::thread::spawn(move || {
        let read_all = || -> Result<()> {
            let conn = connect(&path?)?;
            let mut stmt = conn.prepare(&sql)?;
            let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
            let mut chunk = Vec::with_capacity(CHUNK);
            let mut arena = Arena::default();
            while let Some(row) = rows.next()? {
                chunk.push(read(row, &mut arena)?);
                if chunk.len() == CHUNK || arena.0.len() >= ARENA_FULL {
                    let next = spare.try_recv().unwrap_or_else(|_| {
                        (
                            Vec::with_capacity(CHUNK),
                            Arena(String::with_capacity(arena.0.len())),
                        )
                    });
                    let full = std::mem::replace(&mut chunk, next.0);
                    let text = std::mem::replace(&mut arena, next.1);
                    if tx.blocking_send(Ok((full, text))).is_err() {
                        return Ok(()); // the consumer is gone
                    }
                }
            }
            if !chunk.is_empty() {
                let _ = tx.blocking_send(Ok((chunk, arena)));
            }
            Ok(())
        };
        if let Err(e) = read_all() {
            let _ = tx.blocking_send(Err(e));
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((chunk, rx))
    })
    .flat_map(move |chunk| {
        let done: Vec<Result<T>> = match chunk {
            Ok((mut rows, mut arena)) => {
                let done = rows.drain(..).map(|r| finish(r, &arena)).collect();
                arena.0.clear();
                let _ = spare_tx.send((rows, arena));
                done
            }
            Err(e) => vec![Err(e)],
        };
        futures::stream::iter(done)
    })
}
