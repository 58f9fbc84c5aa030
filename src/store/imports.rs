use std::collections::HashSet;

use anyhow::{Context, Result};
use sqlx::sqlite::SqliteArguments;
use sqlx::{Arguments, AssertSqlSafe, Sqlite, Transaction};

use super::Store;

/// One validated row of a pairs file, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRow {
    pub line: u64,
    pub query_id: String,
    pub query: String,
    pub product_id: String,
    pub title: String,
    pub description: String,
    pub brand: String,
    /// A JSON object, as text.
    pub attributes: String,
    pub label: Option<String>,
    pub split: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportCounts {
    pub rows_read: u64,
    pub pairs_added: u64,
    pub rejected: u64,
}

/// An import in progress: one transaction for the whole file, so a failed import leaves no row
/// of that file behind. Dropping it without `commit` rolls everything back.
pub enum ImportBatch {
    Sqlite(SqliteImport),
    Postgres(super::postgres::import::PgImport),
}

pub struct SqliteImport {
    tx: Transaction<'static, Sqlite>,
    pairs_before: i64,
    /// The statements of the rows last added, not yet run: they run while the next rows' are
    /// built, so that building (hashing, copying every value) and SQLite's work overlap.
    pending: Option<Statements>,
}

/// The three statements that store a batch of rows: its new queries, its new items, its pairs.
struct Statements([(String, SqliteArguments); 3]);

impl Statements {
    fn build(rows: &[ImportRow]) -> Result<Statements> {
        let queries = first_per_key(rows, |r| &r.query_id);
        let queries = (
            format!(
                "INSERT INTO queries (ext_id, text) VALUES {} ON CONFLICT (ext_id) DO NOTHING",
                tuples(queries.len(), 2)
            ),
            arguments(
                queries
                    .iter()
                    .flat_map(|r| [&r.query_id, &r.query])
                    .map(Some),
            )?,
        );
        let items = first_per_key(rows, |r| &r.product_id);
        let items = (
            format!(
                "INSERT INTO items (ext_id, title, description, brand, attributes) VALUES {} \
                 ON CONFLICT (ext_id) DO NOTHING",
                tuples(items.len(), 5)
            ),
            arguments(
                items
                    .iter()
                    .flat_map(|r| {
                        [
                            &r.product_id,
                            &r.title,
                            &r.description,
                            &r.brand,
                            &r.attributes,
                        ]
                    })
                    .map(Some),
            )?,
        );
        let pairs = (
            format!(
                "INSERT INTO pairs (query_id, item_id, gold_label, split) \
                 SELECT q.id, i.id, v.column3, v.column4 FROM (VALUES {}) AS v \
                 JOIN queries q ON q.ext_id = v.column1 JOIN items i ON i.ext_id = v.column2 WHERE true \
                 ON CONFLICT (query_id, item_id) DO UPDATE SET gold_label = excluded.gold_label \
                 WHERE excluded.gold_label IS NOT NULL AND excluded.gold_label IS NOT pairs.gold_label",
                tuples(rows.len(), 4)
            ),
            arguments(rows.iter().flat_map(|r| {
                [
                    Some(&r.query_id),
                    Some(&r.product_id),
                    r.label.as_ref(),
                    r.split.as_ref(),
                ]
            }))?,
        );
        Ok(Statements([queries, items, pairs]))
    }

    async fn run(self, tx: &mut Transaction<'static, Sqlite>) -> Result<()> {
        for ((sql, args), what) in self.0.into_iter().zip(["queries", "items", "pairs"]) {
            sqlx::query_with(AssertSqlSafe(sql), args)
                .execute(&mut **tx)
                .await
                .with_context(|| format!("storing {what}"))?;
        }
        Ok(())
    }
}

/// The first row of each key, in file order.
fn first_per_key(rows: &[ImportRow], key: fn(&ImportRow) -> &String) -> Vec<&ImportRow> {
    let mut seen = HashSet::with_capacity(rows.len());
    rows.iter().filter(|r| seen.insert(key(r))).collect()
}

/// Text parameters, in order (`None` binds NULL).
fn arguments<'a>(values: impl Iterator<Item = Option<&'a String>>) -> Result<SqliteArguments> {
    let mut args = SqliteArguments::default();
    for v in values {
        args.add(v.map(String::as_str))
            .map_err(anyhow::Error::from_boxed)?;
    }
    Ok(args)
}

/// `(?, ?), (?, ?), …`: `rows` tuples of `width` parameters.
fn tuples(rows: usize, width: usize) -> String {
    let one = format!("({})", vec!["?"; width].join(", "));
    vec![one; rows].join(", ")
}

impl Store {
    pub async fn begin_import(&self) -> Result<ImportBatch> {
        if let super::Db::Postgres(pool) = &self.db {
            return Ok(ImportBatch::Postgres(
                super::postgres::import::PgImport::begin(pool).await?,
            ));
        }
        let mut tx = self
            .sqlite()?
            .begin_with("BEGIN IMMEDIATE")
            .await
            .context("starting the import transaction")?;
        let pairs_before = sqlx::query_scalar("SELECT count(*) FROM pairs")
            .fetch_one(&mut *tx)
            .await?;
        Ok(ImportBatch::Sqlite(SqliteImport {
            tx,
            pairs_before,
            pending: None,
        }))
    }
}

impl ImportBatch {
    /// Adds rows. Queries and items already stored are kept as they are; a pair already stored
    /// is not added again, but takes the gold label of the newer file when it has one (the
    /// last row's label when a file names a pair twice). Rows may be written by a later call
    /// (an error about them comes from that call).
    pub async fn add(&mut self, rows: Vec<ImportRow>) -> Result<()> {
        match self {
            ImportBatch::Sqlite(b) => b.add(rows).await,
            ImportBatch::Postgres(b) => b.add(rows).await,
        }
    }

    /// Commits the file and records it; returns how many pairs are new.
    pub async fn commit(self, path: &str, rows_read: u64, rejected: u64) -> Result<ImportCounts> {
        match self {
            ImportBatch::Sqlite(b) => b.commit(path, rows_read, rejected).await,
            ImportBatch::Postgres(b) => b.commit(path, rows_read, rejected).await,
        }
    }
}

impl SqliteImport {
    /// The rows are written by the next `add` or by `commit`, whichever comes first.
    async fn add(&mut self, rows: Vec<ImportRow>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        // These rows' statements are built on a thread of their own while SQLite's thread runs
        // the previous rows'.
        let build = tokio::task::spawn_blocking(move || Statements::build(&rows));
        if let Some(previous) = self.pending.take() {
            previous.run(&mut self.tx).await?;
        }
        self.pending = Some(build.await.context("building the import statements")??);
        Ok(())
    }

    async fn commit(mut self, path: &str, rows_read: u64, rejected: u64) -> Result<ImportCounts> {
        if let Some(last) = self.pending.take() {
            last.run(&mut self.tx).await?;
        }
        record(self.tx, self.pairs_before, path, rows_read, rejected).await
    }
}

/// Counts the pairs the file added, records the import and commits: the end of an import on
/// either backend.
pub(super) async fn record<DB: sqlx::Database>(
    mut tx: Transaction<'static, DB>,
    pairs_before: i64,
    path: &str,
    rows_read: u64,
    rejected: u64,
) -> Result<ImportCounts>
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> DB::Arguments: sqlx::IntoArguments<DB>,
    (i64,): for<'r> sqlx::FromRow<'r, DB::Row>,
{
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM pairs")
        .fetch_one(&mut *tx)
        .await?;
    let added = (after - pairs_before).max(0) as u64;
    sqlx::query(
        "INSERT INTO imports (path, rows_read, pairs_added, rejected) VALUES ($1, $2, $3, $4)",
    )
    .bind(path)
    .bind(rows_read as i64)
    .bind(added as i64)
    .bind(rejected as i64)
    .execute(&mut *tx)
    .await?;
    tx.commit().await.context("committing the import")?;
    Ok(ImportCounts {
        rows_read,
        pairs_added: added,
        rejected,
    })
}
