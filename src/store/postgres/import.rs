//! Import on PostgreSQL: each batch of rows goes in through `COPY … FROM STDIN` into a
//! temporary table, and a few statements move it into queries, items and pairs with the same
//! rules as SQLite's import (the first row of a query or item wins; a pair keeps its first
//! split and takes the last gold label a file gives it).

use anyhow::{Context, Result};
use sqlx::Transaction;
use sqlx::postgres::{PgPool, Postgres};

use crate::store::{ImportCounts, ImportRow};

pub struct PgImport {
    tx: Transaction<'static, Postgres>,
    pairs_before: i64,
    /// Rows seen so far: each row's place in the file, so "first" and "last" keep their meaning
    /// within a batch.
    rows: i64,
    /// Rows in COPY's format not yet sent, and how many.
    buffered: String,
    buffered_rows: usize,
    /// What a first import set aside, to build again at the end (see `set_aside`).
    set_aside: Option<SetAside>,
}

/// The pairs table's secondary indexes and foreign keys, as their definitions.
struct SetAside {
    indexes: Vec<String>,
    foreign_keys: Vec<(String, String)>,
}

/// Rows sent in one COPY and moved by one round of statements: each round costs a few
/// round trips and statement starts whatever its size.
const FLUSH_ROWS: usize = 20_000;

const STAGE: [&str; 2] = [
    "CREATE TEMP TABLE import_rows (
        ord bigint, query_ext text, query text, product_ext text, title text, description text,
        brand text, attributes text, label text, split text) ON COMMIT DROP",
    "CREATE TEMP TABLE import_pairs (
        query_id bigint, item_id bigint, ord bigint, label text, split text) ON COMMIT DROP",
];

const COPY: &str = "COPY import_rows FROM STDIN";

// Rows already stored are left out before inserting, not only by ON CONFLICT: PostgreSQL draws
// an identity value for every row an INSERT proposes, so conflicting rows would leave gaps and
// ids would drift from the ones SQLite gives the same files.
const QUERIES: &str = "INSERT INTO queries (ext_id, text)
    SELECT query_ext, query FROM (
        SELECT DISTINCT ON (query_ext) query_ext, query, ord FROM import_rows
        ORDER BY query_ext, ord) first
    WHERE NOT EXISTS (SELECT 1 FROM queries q WHERE q.ext_id = first.query_ext)
    ORDER BY ord
    ON CONFLICT (ext_id) DO NOTHING";

const ITEMS: &str = "INSERT INTO items (ext_id, title, description, brand, attributes)
    SELECT product_ext, title, description, brand, attributes FROM (
        SELECT DISTINCT ON (product_ext) * FROM import_rows ORDER BY product_ext, ord) first
    WHERE NOT EXISTS (SELECT 1 FROM items i WHERE i.ext_id = first.product_ext)
    ORDER BY ord
    ON CONFLICT (ext_id) DO NOTHING";

/// Each pair of the batch once: its first row's place and split, its last gold label.
const BATCH_PAIRS: &str = "INSERT INTO import_pairs
    SELECT q.id AS query_id, i.id AS item_id, v.ord, v.label, v.split FROM (
        SELECT query_ext, product_ext, min(ord) AS ord,
               (array_agg(label ORDER BY ord DESC) FILTER (WHERE label IS NOT NULL))[1] AS label,
               (array_agg(split ORDER BY ord))[1] AS split
        FROM import_rows GROUP BY query_ext, product_ext) v
    JOIN queries q ON q.ext_id = v.query_ext JOIN items i ON i.ext_id = v.product_ext";

/// The batch's pairs against the stored ones in one probe each: a stored pair takes the
/// batch's gold label, a new one is inserted (left out beforehand, not by ON CONFLICT alone, for
/// the ids' sake as above).
const PAIRS: &str = "WITH probe AS MATERIALIZED (
        SELECT b.query_id, b.item_id, b.ord, b.label, b.split, p.id AS stored, p.gold_label AS old
        FROM import_pairs b LEFT JOIN pairs p ON p.query_id = b.query_id AND p.item_id = b.item_id),
    relabel AS (
        UPDATE pairs SET gold_label = probe.label FROM probe
        WHERE pairs.id = probe.stored AND probe.label IS NOT NULL
          AND probe.label IS DISTINCT FROM probe.old)
    INSERT INTO pairs (query_id, item_id, gold_label, split)
    SELECT query_id, item_id, label, split FROM probe WHERE stored IS NULL
    ORDER BY ord
    ON CONFLICT (query_id, item_id) DO NOTHING";

impl PgImport {
    pub async fn begin(pool: &PgPool) -> Result<PgImport> {
        let mut tx = pool
            .begin()
            .await
            .context("starting the import transaction")?;
        // One writer of pairs at a time, as SQLite's BEGIN IMMEDIATE: the count of new pairs is
        // then this file's alone. Readers go on.
        sqlx::query("LOCK TABLE pairs IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        for sql in STAGE {
            sqlx::query(sql).execute(&mut *tx).await?;
        }
        let pairs_before: i64 = sqlx::query_scalar("SELECT count(*) FROM pairs")
            .fetch_one(&mut *tx)
            .await?;
        let set_aside = if pairs_before == 0 {
            Some(set_aside(&mut tx).await?)
        } else {
            None
        };
        Ok(PgImport {
            tx,
            pairs_before,
            rows: 0,
            buffered: String::new(),
            buffered_rows: 0,
            set_aside,
        })
    }

    pub async fn add(&mut self, rows: Vec<ImportRow>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let first = self.rows;
        self.rows += rows.len() as i64;
        self.buffered_rows += rows.len();
        copy_text(first, &rows, &mut self.buffered);
        if self.buffered_rows >= FLUSH_ROWS {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        if self.buffered_rows == 0 {
            return Ok(());
        }
        let data = std::mem::take(&mut self.buffered);
        self.buffered_rows = 0;
        let mut copy = self.tx.copy_in_raw(COPY).await.context("storing rows")?;
        copy.send(data.into_bytes()).await.context("storing rows")?;
        copy.finish().await.context("storing rows")?;
        for (sql, what) in [
            (QUERIES, "queries"),
            (ITEMS, "items"),
            (BATCH_PAIRS, "pairs"),
            (PAIRS, "pairs"),
            ("TRUNCATE import_rows, import_pairs", "rows"),
        ] {
            sqlx::query(sql)
                .execute(&mut *self.tx)
                .await
                .with_context(|| format!("storing {what}"))?;
        }
        Ok(())
    }

    pub async fn commit(
        mut self,
        path: &str,
        rows_read: u64,
        rejected: u64,
    ) -> Result<ImportCounts> {
        self.flush().await?;
        if let Some(aside) = self.set_aside.take() {
            for sql in aside.indexes {
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut *self.tx)
                    .await
                    .context("building the queue's indexes")?;
            }
            for (name, definition) in aside.foreign_keys {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "ALTER TABLE pairs ADD CONSTRAINT \"{name}\" {definition}"
                )))
                .execute(&mut *self.tx)
                .await
                .context("checking the pairs' references")?;
            }
        }
        crate::store::imports::record(self.tx, self.pairs_before, path, rows_read, rejected).await
    }
}

/// A first import (no pair stored yet) drops the pairs table's secondary indexes and foreign
/// keys, and builds them again once every pair is in: one sort per index and one check per
/// reference instead of a maintained index entry and a trigger per row, which were most of an
/// import's time. Nobody reviews a project with no pairs, so holding the table for the import
/// costs no one; the transaction puts it all back if the import fails or is killed.
async fn set_aside(tx: &mut Transaction<'static, Postgres>) -> Result<SetAside> {
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i \
         WHERE i.indrelid = 'pairs'::regclass AND NOT i.indisprimary AND NOT i.indisunique",
    )
    .fetch_all(&mut **tx)
    .await?;
    let foreign_keys: Vec<(String, String)> = sqlx::query_as(
        "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE conrelid = 'pairs'::regclass AND contype = 'f'",
    )
    .fetch_all(&mut **tx)
    .await?;
    for (name, _) in &foreign_keys {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER TABLE pairs DROP CONSTRAINT \"{name}\""
        )))
        .execute(&mut **tx)
        .await?;
    }
    for (name, _) in &indexes {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX {name}")))
            .execute(&mut **tx)
            .await?;
    }
    Ok(SetAside {
        indexes: indexes.into_iter().map(|i| i.1).collect(),
        foreign_keys,
    })
}

/// Appends the rows in COPY's text format: tab-separated, `\N` for NULL, backslash escapes.
fn copy_text(first: i64, rows: &[ImportRow], out: &mut String) {
    for (i, r) in rows.iter().enumerate() {
        out.push_str(&(first + i as i64).to_string());
        for field in [
            Some(&r.query_id),
            Some(&r.query),
            Some(&r.product_id),
            Some(&r.title),
            Some(&r.description),
            Some(&r.brand),
            Some(&r.attributes),
            r.label.as_ref(),
            r.split.as_ref(),
        ] {
            out.push('\t');
            match field {
                None => out.push_str("\\N"),
                Some(text) => escape_into(out, text),
            }
        }
        out.push('\n');
    }
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_what_the_format_reserves_and_writes_null_apart_from_empty() {
        let row = ImportRow {
            line: 1,
            query_id: "q\\1".into(),
            query: "a\tb".into(),
            product_id: "p".into(),
            title: "line\nbreak\r".into(),
            description: String::new(),
            brand: "\\N".into(),
            attributes: "{}".into(),
            label: None,
            split: Some("train".into()),
        };
        let mut text = String::new();
        copy_text(7, &[row], &mut text);
        assert_eq!(
            text,
            "7\tq\\\\1\ta\\tb\tp\tline\\nbreak\\r\t\t\\\\N\t{}\t\\N\ttrain\n"
        );
    }
}
