//! The columns the store derives from other rows (a pair's picked judgment and its copy of the
//! judgment's label, top probability and parse state; a pair's `reviewed` flag), checked against
//! their source rows and repaired. Each is written in the transaction of the rows it derives
//! from, so a check after a kill finds nothing; it repairs databases written otherwise.

use std::collections::BTreeMap;

use anyhow::Result;
use futures::TryStreamExt;
use serde::Serialize;

use super::annotations::{annotation_from_row, update_reviewed};
use super::judgments::QueueColumns;
use super::{PICKED_JUDGMENT, Store};
use crate::domain::review::derive;

/// What a check found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Repairs {
    /// SQLite's `PRAGMA integrity_check`: "ok", or what it reported.
    pub integrity: String,
    pub pairs: i64,
    /// Pairs whose judgment columns did not match their picked judgment.
    pub judgment_columns: Vec<i64>,
    /// Pairs whose `reviewed` flag did not match their annotations.
    pub reviewed: Vec<i64>,
}

impl Repairs {
    pub fn repaired(&self) -> usize {
        self.judgment_columns.len() + self.reviewed.len()
    }
}

impl Store {
    /// Checks SQLite's integrity and every derived column, repairs what disagrees (in one
    /// transaction) and says what it repaired.
    pub async fn check_and_repair(&self) -> Result<Repairs> {
        // PostgreSQL checks its own pages (checksums, amcheck); SQLite is asked here.
        let integrity: Vec<String> = match &self.db {
            super::Db::Sqlite(pool) => {
                sqlx::query_scalar("PRAGMA integrity_check")
                    .fetch_all(pool)
                    .await?
            }
            super::Db::Postgres(_) => vec!["ok".to_string()],
        };
        let mismatched = match self.db {
            super::Db::Sqlite(_) => {
                "p.judgment_id IS NOT j.id OR p.teacher_label IS NOT j.label \
                 OR p.teacher_parse_error IS NOT coalesce(j.parse_error IS NOT NULL, 0) \
                 OR p.teacher_p IS NOT (SELECT max(value) FROM json_each(j.distribution))"
            }
            super::Db::Postgres(_) => {
                "p.judgment_id IS DISTINCT FROM j.id OR p.teacher_label IS DISTINCT FROM j.label \
                 OR p.teacher_parse_error <> coalesce((j.parse_error IS NOT NULL)::int, 0) \
                 OR p.teacher_p IS DISTINCT FROM (SELECT max(v::double precision) \
                    FROM json_array_elements_text(j.distribution::json) AS v)"
            }
        };
        super::with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let pairs: i64 = sqlx::query_scalar("SELECT count(*) FROM pairs")
                .fetch_one(&mut *tx)
                .await?;
            let judgment_columns: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT p.id FROM pairs p LEFT JOIN judgments j ON j.id = {PICKED_JUDGMENT} \
             WHERE {mismatched} ORDER BY p.id"
            )))
            .fetch_all(&mut *tx)
            .await?;
            for &id in &judgment_columns {
                sqlx::query(
                    "UPDATE pairs SET judgment_id = NULL, teacher_label = NULL, teacher_p = NULL, \
                 teacher_parse_error = 0 WHERE id = $1",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
                tx.update_queue_columns(id).await?;
            }

            // Annotations are few: derive every annotated pair's flag from its rows.
            let mut by_pair: BTreeMap<i64, Vec<_>> = BTreeMap::new();
            {
                let mut rows = sqlx::query(
                "SELECT id, pair_id, judgment_id, annotator, action, field, before, after, undoes, \
                 created_at FROM annotations ORDER BY pair_id, id",
            )
            .fetch(&mut *tx);
                while let Some(row) = rows.try_next().await? {
                    let a = annotation_from_row(&row)?;
                    by_pair.entry(a.pair_id).or_default().push(a);
                }
            }
            let flagged: Vec<(i64, i64)> =
                sqlx::query_as("SELECT id, reviewed FROM pairs WHERE reviewed = 1 ORDER BY id")
                    .fetch_all(&mut *tx)
                    .await?;
            let mut reviewed = Vec::new();
            for (&pair, annotations) in &by_pair {
                let want = derive(None, annotations).is_reviewed();
                let has = flagged.binary_search_by_key(&pair, |f| f.0).is_ok();
                if want != has {
                    reviewed.push(pair);
                }
            }
            reviewed.extend(
                flagged
                    .iter()
                    .filter(|(id, _)| !by_pair.contains_key(id))
                    .map(|(id, _)| *id),
            );
            reviewed.sort_unstable();
            for &id in &reviewed {
                let annotations = by_pair.get(&id).map_or(&[][..], Vec::as_slice);
                update_reviewed(&mut *tx, id, annotations).await?;
            }
            tx.commit().await?;
            Ok(Repairs {
                integrity: integrity.join("; "),
                pairs,
                judgment_columns,
                reviewed,
            })
        })
    }
}
