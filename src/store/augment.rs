//! Candidate items for teacher-labelled augmentation, and the new pairs they become.

use anyhow::Result;

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
        const SQL: &str = "SELECT q.id, q.ext_id, q.text FROM queries q WHERE EXISTS \
             (SELECT 1 FROM pairs p WHERE p.query_id = q.id AND p.origin = 'import') ORDER BY q.id";
        let rows: Vec<(i64, String, String)> =
            super::with_pool!(self, |pool| sqlx::query_as(SQL).fetch_all(pool).await?);
        Ok(rows
            .into_iter()
            .map(|(query_id, ext_id, text)| QueryItems {
                query_id,
                ext_id,
                text,
            })
            .collect())
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
        match &self.db {
            super::Db::Sqlite(pool) => Ok(sqlx::query_scalar(
                "SELECT f.rowid FROM items_fts f WHERE items_fts MATCH ? AND f.rowid NOT IN \
                 (SELECT item_id FROM pairs WHERE query_id = ? AND origin = 'import') \
                 ORDER BY bm25(items_fts, 2.0, 1.0), f.rowid LIMIT ?",
            )
            .bind(expr)
            .bind(query_id)
            .bind(limit)
            .fetch_all(pool)
            .await?),
            // PostgreSQL ranks by ts_rank over the same weighting (title above brand), not bm25:
            // its candidates can differ from SQLite's.
            super::Db::Postgres(pool) => {
                let words: Vec<String> = terms
                    .iter()
                    .map(|t| {
                        t.chars()
                            .filter(|c| c.is_alphanumeric())
                            .collect::<String>()
                    })
                    .filter(|t| !t.is_empty())
                    .collect();
                if words.is_empty() {
                    return Ok(Vec::new());
                }
                Ok(sqlx::query_scalar(
                    "SELECT s.item_id FROM items_search s, to_tsquery('simple', $1) AS t \
                     WHERE s.search @@ t AND s.item_id NOT IN \
                     (SELECT item_id FROM pairs WHERE query_id = $2 AND origin = 'import') \
                     ORDER BY ts_rank(s.search, t) DESC, s.item_id LIMIT $3",
                )
                .bind(words.join(" | "))
                .bind(query_id)
                .bind(limit)
                .fetch_all(pool)
                .await?)
            }
        }
    }

    /// Items imported with other queries, in id order.
    pub async fn other_query_items(&self, query_id: i64) -> Result<Vec<i64>> {
        const SQL: &str = "SELECT DISTINCT item_id FROM pairs WHERE query_id <> $1 AND origin = 'import' \
             AND item_id NOT IN (SELECT item_id FROM pairs WHERE query_id = $1 AND origin = 'import') \
             ORDER BY item_id";
        super::with_pool!(self, |pool| Ok(sqlx::query_scalar(SQL)
            .bind(query_id)
            .fetch_all(pool)
            .await?))
    }

    /// The number of items and the largest item id, for drawing random items.
    pub async fn item_id_range(&self) -> Result<(i64, i64)> {
        const SQL: &str = "SELECT count(*), coalesce(max(id), 0) FROM items";
        super::with_pool!(self, |pool| Ok(sqlx::query_as(SQL).fetch_one(pool).await?))
    }

    /// Whether an item exists, and whether it was imported with the query.
    pub async fn item_usable(&self, query_id: i64, item_id: i64) -> Result<bool> {
        const SQL: &str = "SELECT EXISTS (SELECT 1 FROM items WHERE id = $1) AND NOT EXISTS \
             (SELECT 1 FROM pairs WHERE query_id = $2 AND item_id = $1 AND origin = 'import')";
        super::with_pool!(self, |pool| Ok(sqlx::query_scalar(SQL)
            .bind(item_id)
            .bind(query_id)
            .fetch_one(pool)
            .await?))
    }

    /// Adds augmented pairs of one query in one transaction; pairs that exist already (from any
    /// origin) are left as they are. Returns how many are new.
    pub async fn add_augmented_pairs(&self, query_id: i64, items: &[(i64, &str)]) -> Result<u64> {
        const SQL: &str = "INSERT INTO pairs (query_id, item_id, origin) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING";
        super::with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let mut added = 0;
            for (item_id, strategy) in items {
                added += sqlx::query(SQL)
                    .bind(query_id)
                    .bind(item_id)
                    .bind(format!("augmented:{strategy}"))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            tx.commit().await?;
            Ok(added)
        })
    }
}
