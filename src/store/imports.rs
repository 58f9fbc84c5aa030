use std::collections::HashSet;

use anyhow::{Context, Result};
use sqlx::{QueryBuilder, Sqlite, Transaction};

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
pub struct ImportBatch {
    tx: Transaction<'static, Sqlite>,
    pairs_before: i64,
}

impl Store {
    pub async fn begin_import(&self) -> Result<ImportBatch> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .context("starting the import transaction")?;
        let pairs_before = sqlx::query_scalar("SELECT count(*) FROM pairs")
            .fetch_one(&mut *tx)
            .await?;
        Ok(ImportBatch { tx, pairs_before })
    }
}

impl ImportBatch {
    /// Adds rows. Queries and items already stored are kept as they are; a pair already stored
    /// is not added again, but takes the gold label of the newer file when it has one.
    pub async fn add(&mut self, rows: &[ImportRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut seen = HashSet::with_capacity(rows.len());
        let queries: Vec<&ImportRow> = rows
            .iter()
            .filter(|r| seen.insert(r.query_id.as_str()))
            .collect();
        let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO queries (ext_id, text) ");
        q.push_values(queries, |mut b, r| {
            b.push_bind(r.query_id.as_str()).push_bind(r.query.as_str());
        });
        q.push(" ON CONFLICT (ext_id) DO NOTHING");
        q.build()
            .execute(&mut *self.tx)
            .await
            .context("storing queries")?;

        let mut seen = HashSet::with_capacity(rows.len());
        let items: Vec<&ImportRow> = rows
            .iter()
            .filter(|r| seen.insert(r.product_id.as_str()))
            .collect();
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO items (ext_id, title, description, brand, attributes) ",
        );
        q.push_values(items, |mut b, r| {
            b.push_bind(r.product_id.as_str())
                .push_bind(r.title.as_str())
                .push_bind(r.description.as_str())
                .push_bind(r.brand.as_str())
                .push_bind(r.attributes.as_str());
        });
        q.push(" ON CONFLICT (ext_id) DO NOTHING");
        q.build()
            .execute(&mut *self.tx)
            .await
            .context("storing items")?;

        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO pairs (query_id, item_id, gold_label, split) \
             SELECT q.id, i.id, v.column3, v.column4 FROM (",
        );
        q.push_values(rows, |mut b, r| {
            b.push_bind(r.query_id.as_str())
                .push_bind(r.product_id.as_str())
                .push_bind(r.label.as_deref())
                .push_bind(r.split.as_deref());
        });
        q.push(
            ") AS v JOIN queries q ON q.ext_id = v.column1 JOIN items i ON i.ext_id = v.column2 WHERE true \
             ON CONFLICT (query_id, item_id) DO UPDATE SET gold_label = excluded.gold_label \
             WHERE excluded.gold_label IS NOT NULL AND excluded.gold_label IS NOT pairs.gold_label",
        );
        q.build()
            .execute(&mut *self.tx)
            .await
            .context("storing pairs")?;
        Ok(())
    }

    /// Commits the file and records it; returns how many pairs are new.
    pub async fn commit(
        mut self,
        path: &str,
        rows_read: u64,
        rejected: u64,
    ) -> Result<ImportCounts> {
        let after: i64 = sqlx::query_scalar("SELECT count(*) FROM pairs")
            .fetch_one(&mut *self.tx)
            .await?;
        let added = (after - self.pairs_before).max(0) as u64;
        sqlx::query(
            "INSERT INTO imports (path, rows_read, pairs_added, rejected) VALUES (?, ?, ?, ?)",
        )
        .bind(path)
        .bind(rows_read as i64)
        .bind(added as i64)
        .bind(rejected as i64)
        .execute(&mut *self.tx)
        .await?;
        self.tx.commit().await.context("committing the import")?;
        Ok(ImportCounts {
            rows_read,
            pairs_added: added,
            rejected,
        })
    }
}
