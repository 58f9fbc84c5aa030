//! Candidate items for teacher-labelled augmentation, and the new pairs they become.

use anyhow::Result;
use sqlx::Row;

use super::Store;

/// A query and the items it was imported with.
#[derive(Debug, Clone)]
pub struct QueryItems {
    pub query_id: i64,
    pub ext_id: String,
    pub text: String,
}

impl Store {
    /// Brings the full-text index of items up to date (new items only) and returns how many
    /// items it added.
    pub async fn refresh_item_index(&self) -> Result<u64> {
        let done = match &self.db {
            super::Db::Sqlite(pool) => sqlx::query(
                "INSERT INTO items_fts (rowid, title, brand) SELECT id, title, brand FROM items \
                 WHERE id > coalesce((SELECT max(rowid) FROM items_fts), 0) ORDER BY id",
            )
            .execute(pool)
            .await?
            .rows_affected(),
            // Title weighted above brand, as bm25 weighs them on SQLite. Two apps filling it at
            // once insert the same rows: the second's are dropped.
            super::Db::Postgres(pool) => sqlx::query(
                "INSERT INTO items_search (item_id, search) \
                 SELECT id, setweight(to_tsvector('simple', title), 'A') \
                   || setweight(to_tsvector('simple', coalesce(brand, '')), 'B') FROM items \
                 WHERE id > coalesce((SELECT max(item_id) FROM items_search), 0) ORDER BY id \
                 ON CONFLICT (item_id) DO NOTHING",
            )
            .execute(pool)
            .await?
            .rows_affected(),
        };
        Ok(done)
    }

    /// Queries that have imported pairs, in id order.
    pub async fn imported_queries(&self) -> Result<Vec<QueryItems>> {
        let rows = sqlx::query(
            "SELECT q.id, q.ext_id, q.text FROM queries q WHERE EXISTS \
             (SELECT 1 FROM pairs p WHERE p.query_id = q.id AND p.origin = 'import') ORDER BY q.id",
        )
        .fetch_all(self.sqlite()?)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(QueryItems {
                    query_id: r.try_get(0)?,
                    ext_id: r.try_get(1)?,
                    text: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// Items best matching `terms` by bm25 over title and brand, best first, leaving out the
    /// items imported with the query.
    pub async fn lexical_candidates(
        &self,
        query_id: i64,
        terms: &[String],
        limit: i64,
    ) -> Result<Vec<i64>> {
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let expr = terms
            .iter()
            .map(|t| format!("\"{}\"", t.replace('"', "")))
            .collect::<Vec<_>>()
            .join(" OR ");
        Ok(sqlx::query_scalar(
            "SELECT f.rowid FROM items_fts f WHERE items_fts MATCH ? AND f.rowid NOT IN \
             (SELECT item_id FROM pairs WHERE query_id = ? AND origin = 'import') \
             ORDER BY bm25(items_fts, 2.0, 1.0), f.rowid LIMIT ?",
        )
        .bind(expr)
        .bind(query_id)
        .bind(limit)
        .fetch_all(self.sqlite()?)
        .await?)
    }

    /// Items imported with other queries, in id order.
    pub async fn other_query_items(&self, query_id: i64) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT item_id FROM pairs WHERE query_id <> ? AND origin = 'import' AND item_id NOT IN \
             (SELECT item_id FROM pairs WHERE query_id = ? AND origin = 'import') ORDER BY item_id",
        )
        .bind(query_id)
        .bind(query_id)
        .fetch_all(self.sqlite()?)
        .await?)
    }

    /// The number of items and the largest item id, for drawing random items.
    pub async fn item_id_range(&self) -> Result<(i64, i64)> {
        let r = sqlx::query("SELECT count(*), coalesce(max(id), 0) FROM items")
            .fetch_one(self.sqlite()?)
            .await?;
        Ok((r.try_get(0)?, r.try_get(1)?))
    }

    /// Whether an item exists, and whether it was imported with the query.
    pub async fn item_usable(&self, query_id: i64, item_id: i64) -> Result<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM items WHERE id = ?) AND NOT EXISTS \
             (SELECT 1 FROM pairs WHERE query_id = ? AND item_id = ? AND origin = 'import')",
        )
        .bind(item_id)
        .bind(query_id)
        .bind(item_id)
        .fetch_one(self.sqlite()?)
        .await?)
    }

    /// Adds augmented pairs of one query in one transaction; pairs that exist already (from any
    /// origin) are left as they are. Returns how many are new.
    pub async fn add_augmented_pairs(&self, query_id: i64, items: &[(i64, &str)]) -> Result<u64> {
        let mut tx = self.sqlite()?.begin().await?;
        let mut added = 0;
        for (item_id, strategy) in items {
            added += sqlx::query(
                "INSERT OR IGNORE INTO pairs (query_id, item_id, origin) VALUES (?, ?, ?)",
            )
            .bind(query_id)
            .bind(item_id)
            .bind(format!("augmented:{strategy}"))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(added)
    }
}
