//! Import on PostgreSQL: each batch of rows goes in through `COPY … FROM STDIN` into a
//! temporary table, and a few statements move it into queries, items and pairs with the same
//! rules as SQLite's import (the first row of a query or item wins; a pair keeps its first
//! split and takes the last gold label a file gives it). Into an empty project the rows go
//! straight into their tables instead (see `Fresh`).

use std::collections::HashMap;

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
    /// What a first import set aside, to build again at the end (see `set_aside_of`).
    set_aside: Vec<SetAside>,
    /// Set when the project held nothing when the import began.
    fresh: Option<Fresh>,
}

/// An import into an empty project: the client gives each query, item and pair its id in the
/// order they first appear in the file (the ids the SQL rounds and SQLite give) and COPYs them
/// straight into their tables, with no staging table and no index probed per row, the indexes
/// and keys built once at the end. Its maps hold every query, item and pair id of the file.
#[derive(Default)]
struct Fresh {
    queries: HashMap<String, i64>,
    items: HashMap<String, i64>,
    pairs: HashMap<(i64, i64), i64>,
    /// Gold labels that later rows gave a pair already sent: the last one wins.
    relabels: HashMap<i64, String>,
    /// COPY text for queries, items and pairs, not yet sent.
    out: [String; 3],
}

const FRESH_COPY: [&str; 3] = [
    "COPY queries (id, ext_id, text) FROM STDIN",
    "COPY items (id, ext_id, title, description, brand, attributes) FROM STDIN",
    "COPY pairs (id, query_id, item_id, gold_label, split) FROM STDIN",
];

impl Fresh {
    fn add(&mut self, rows: &[ImportRow]) {
        for r in rows {
            let next = self.queries.len() as i64 + 1;
            let query = *self.queries.entry(r.query_id.clone()).or_insert_with(|| {
                copy_line(&mut self.out[0], next, &[Some(&r.query_id), Some(&r.query)]);
                next
            });
            let next = self.items.len() as i64 + 1;
            let item = *self.items.entry(r.product_id.clone()).or_insert_with(|| {
                copy_line(
                    &mut self.out[1],
                    next,
                    &[
                        Some(&r.product_id),
                        Some(&r.title),
                        Some(&r.description),
                        Some(&r.brand),
                        Some(&r.attributes),
                    ],
                );
                next
            });
            let next = self.pairs.len() as i64 + 1;
            match self.pairs.entry((query, item)) {
                std::collections::hash_map::Entry::Occupied(pair) => {
                    if let Some(label) = &r.label {
                        self.relabels.insert(*pair.get(), label.clone());
                    }
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(next);
                    let (query, item) = (query.to_string(), item.to_string());
                    copy_line(
                        &mut self.out[2],
                        next,
                        &[
                            Some(&query),
                            Some(&item),
                            r.label.as_ref(),
                            r.split.as_ref(),
                        ],
                    );
                }
            }
        }
    }
}

/// A table's secondary indexes and constraints, as their definitions.
struct SetAside {
    table: &'static str,
    indexes: Vec<String>,
    constraints: Vec<(String, String)>,
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
        let mut set_aside = Vec::new();
        let mut fresh = None;
        if pairs_before == 0 {
            let (queries, items): (i64, i64) = sqlx::query_as(
                "SELECT (SELECT count(*) FROM queries), (SELECT count(*) FROM items)",
            )
            .fetch_one(&mut *tx)
            .await?;
            if queries == 0 && items == 0 {
                // The ids the client hands out must stay free until the import commits.
                sqlx::query("LOCK TABLE queries, items IN SHARE ROW EXCLUSIVE MODE")
                    .execute(&mut *tx)
                    .await?;
                fresh = Some(Fresh::default());
                set_aside.push(set_aside_of(&mut tx, "items", true).await?);
            }
            set_aside.push(set_aside_of(&mut tx, "pairs", fresh.is_some()).await?);
        }
        Ok(PgImport {
            tx,
            pairs_before,
            rows: 0,
            buffered: String::new(),
            buffered_rows: 0,
            set_aside,
            fresh,
        })
    }

    pub async fn add(&mut self, rows: Vec<ImportRow>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let first = self.rows;
        self.rows += rows.len() as i64;
        self.buffered_rows += rows.len();
        match &mut self.fresh {
            Some(fresh) => fresh.add(&rows),
            None => copy_text(first, &rows, &mut self.buffered),
        }
        if self.buffered_rows >= FLUSH_ROWS {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        if self.buffered_rows == 0 {
            return Ok(());
        }
        self.buffered_rows = 0;
        if let Some(fresh) = &mut self.fresh {
            for (out, sql) in fresh.out.iter_mut().zip(FRESH_COPY) {
                if !out.is_empty() {
                    copy_in(&mut self.tx, sql, std::mem::take(out)).await?;
                }
            }
            return Ok(());
        }
        copy_in(&mut self.tx, COPY, std::mem::take(&mut self.buffered)).await?;
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
        if let Some(fresh) = self.fresh.take() {
            self.fresh_end(fresh).await?;
        }
        for aside in std::mem::take(&mut self.set_aside) {
            for sql in aside.indexes {
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut *self.tx)
                    .await
                    .context("building the queue's indexes")?;
            }
            for (name, definition) in aside.constraints {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "ALTER TABLE {} ADD CONSTRAINT \"{name}\" {definition}",
                    aside.table
                )))
                .execute(&mut *self.tx)
                .await
                .with_context(|| format!("checking the {}' keys and references", aside.table))?;
            }
        }
        crate::store::imports::record(self.tx, self.pairs_before, path, rows_read, rejected).await
    }

    /// The labels later rows gave pairs already sent, and the tables' identities moved past
    /// the ids the client handed out.
    async fn fresh_end(&mut self, fresh: Fresh) -> Result<()> {
        if !fresh.relabels.is_empty() {
            sqlx::query("CREATE TEMP TABLE import_relabels (id bigint, label text) ON COMMIT DROP")
                .execute(&mut *self.tx)
                .await?;
            let mut text = String::new();
            for (id, label) in &fresh.relabels {
                copy_line(&mut text, *id, &[Some(label)]);
            }
            copy_in(&mut self.tx, "COPY import_relabels FROM STDIN", text).await?;
            sqlx::query(
                "UPDATE pairs SET gold_label = r.label FROM import_relabels r WHERE pairs.id = r.id",
            )
            .execute(&mut *self.tx)
            .await
            .context("storing pairs")?;
        }
        super::identities_past_ids(&mut self.tx, ["queries", "items", "pairs"]).await
    }
}

async fn copy_in(
    tx: &mut Transaction<'static, Postgres>,
    sql: &'static str,
    text: String,
) -> Result<()> {
    let what = || format!("storing rows ({})", sql.split(' ').nth(1).unwrap_or("rows"));
    let mut copy = tx.copy_in_raw(sql).await.with_context(what)?;
    copy.send(text.into_bytes()).await.with_context(what)?;
    copy.finish().await.with_context(what)?;
    Ok(())
}

/// A first import (no pair stored yet) drops the pairs table's secondary indexes and foreign
/// keys, and builds them again once every pair is in: one sort per index and one check per
/// reference instead of a maintained index entry and a trigger per row, which were most of an
/// import's time. Nobody reviews a project with no pairs, so holding the table for the import
/// costs no one; the transaction puts it all back if the import fails or is killed. An import
/// into an empty project (`Fresh`) probes no key, so the unique keys go too.
async fn set_aside_of(
    tx: &mut Transaction<'static, Postgres>,
    table: &'static str,
    unique_too: bool,
) -> Result<SetAside> {
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i \
         WHERE i.indrelid = $1::regclass AND NOT i.indisprimary AND NOT i.indisunique",
    )
    .bind(table)
    .fetch_all(&mut **tx)
    .await?;
    let constraints: Vec<(String, String)> = sqlx::query_as(
        "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE conrelid = $1::regclass AND (contype = 'f' OR (contype = 'u' AND $2)) \
         ORDER BY contype DESC, conname",
    )
    .bind(table)
    .bind(unique_too)
    .fetch_all(&mut **tx)
    .await?;
    for (name, _) in &constraints {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER TABLE {table} DROP CONSTRAINT \"{name}\""
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
        table,
        indexes: indexes.into_iter().map(|i| i.1).collect(),
        constraints,
    })
}

/// Appends the rows in COPY's text format, each after its place in the file.
fn copy_text(first: i64, rows: &[ImportRow], out: &mut String) {
    for (i, r) in rows.iter().enumerate() {
        copy_line(
            out,
            first + i as i64,
            &[
                Some(&r.query_id),
                Some(&r.query),
                Some(&r.product_id),
                Some(&r.title),
                Some(&r.description),
                Some(&r.brand),
                Some(&r.attributes),
                r.label.as_ref(),
                r.split.as_ref(),
            ],
        );
    }
}

/// One line of COPY's text format: tab-separated, `\N` for NULL, backslash escapes.
fn copy_line(out: &mut String, first: i64, fields: &[Option<&String>]) {
    out.push_str(&first.to_string());
    for field in fields {
        out.push('\t');
        match field {
            None => out.push_str("\\N"),
            Some(text) => escape_into(out, text),
        }
    }
    out.push('\n');
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
