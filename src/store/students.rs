//! Student models and their scores.

use anyhow::{Result, bail};
use serde::Serialize;

use super::{Store, newest_student};

/// A student known to the store: trained here (`cross`, `bi`) or imported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StudentModel {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub path: Option<String>,
}

impl Store {
    /// The student called `name`, or without a name the newest one; None when there is none.
    /// A name that is not in the store is an error listing the ones that are.
    pub async fn student_model(&self, name: Option<&str>) -> Result<Option<StudentModel>> {
        let row: Option<(i64, String, String, Option<String>)> =
            super::with_pool!(self, |pool| {
                match name {
                    Some(n) => {
                        sqlx::query_as(
                            "SELECT id, name, kind, path FROM student_models WHERE name = $1",
                        )
                        .bind(n)
                        .fetch_optional(pool)
                        .await?
                    }
                    None => sqlx::query_as(
                        "SELECT id, name, kind, path FROM student_models ORDER BY id DESC LIMIT 1",
                    )
                    .fetch_optional(pool)
                    .await?,
                }
            });
        match (row, name) {
            (Some((id, name, kind, path)), _) => Ok(Some(StudentModel {
                id,
                name,
                kind,
                path,
            })),
            (None, None) => Ok(None),
            (None, Some(n)) => {
                let names: Vec<String> = super::with_pool!(self, |pool| {
                    sqlx::query_scalar("SELECT name FROM student_models ORDER BY id")
                        .fetch_all(pool)
                        .await?
                });
                if names.is_empty() {
                    bail!(
                        "no student `{n}`: the database has no student yet (`workbench student train` or `student import`)"
                    )
                }
                bail!("no student `{n}`; the database has: {}", names.join(", "))
            }
        }
    }
}

/// One student prediction to store.
#[derive(Debug, Clone, PartialEq)]
pub struct StudentScore {
    pub pair_id: i64,
    pub score: f64,
    pub distribution: Option<Vec<f64>>,
}

impl Store {
    /// SQL for the ids in the JSON array that parameter `param` holds.
    fn ids_of_json(&self, param: &str) -> String {
        match self.db {
            super::Db::Sqlite(_) => format!("SELECT value FROM json_each({param})"),
            super::Db::Postgres(_) => {
                format!("SELECT value::bigint FROM json_array_elements_text({param}::json)")
            }
        }
    }

    /// Records a student under `name`. A student trained or imported again under the same name
    /// replaces the old one and forgets its scores.
    pub async fn register_student(
        &self,
        name: &str,
        kind: &str,
        path: Option<&str>,
        config: &serde_json::Value,
    ) -> Result<i64> {
        super::with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let old: Option<i64> =
                sqlx::query_scalar("SELECT id FROM student_models WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(id) = old {
                sqlx::query("DELETE FROM student_scores WHERE model_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM student_models WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO student_models (name, kind, path, config) VALUES ($1, $2, $3, $4) \
                 RETURNING id",
            )
            .bind(name)
            .bind(kind)
            .bind(path)
            .bind(config.to_string())
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(id)
        })
    }

    /// The JSON configuration a student was registered with.
    pub async fn student_config(&self, model_id: i64) -> Result<String> {
        const SQL: &str = "SELECT config FROM student_models WHERE id = $1";
        super::with_pool!(self, |pool| Ok(sqlx::query_scalar(SQL)
            .bind(model_id)
            .fetch_one(pool)
            .await?))
    }

    /// Pairs the student has not scored yet, after pair id `after`, in id order.
    /// Up to `limit` queries after `after` (by row id) with a pair the model has not scored, of
    /// the queries `only` when given.
    pub async fn queries_to_score(
        &self,
        model_id: i64,
        after: i64,
        limit: i64,
        only: Option<&[i64]>,
    ) -> Result<Vec<i64>> {
        let sql = format!(
            "SELECT DISTINCT p.query_id FROM pairs p WHERE p.query_id > $1 AND NOT EXISTS \
             (SELECT 1 FROM student_scores s WHERE s.model_id = $2 AND s.pair_id = p.id) \
             AND ($4 IS NULL OR p.query_id IN ({})) \
             ORDER BY p.query_id LIMIT $3",
            self.ids_of_json("$4")
        );
        super::with_pool!(self, |pool| Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(
            sql
        ))
        .bind(after)
        .bind(model_id)
        .bind(limit)
        .bind(only.map(|q| serde_json::to_string(q).expect("ids serialise")))
        .fetch_all(pool)
        .await?))
    }

    /// Every pair of the queries `ids` (row ids), a query's pairs together.
    pub async fn pairs_of_queries(&self, ids: &[i64]) -> Result<Vec<crate::domain::Pair>> {
        let sql = format!(
            "SELECT {} WHERE p.query_id IN ({}) ORDER BY p.query_id, p.id",
            super::pairs::PAIR_COLUMNS,
            self.ids_of_json("$1")
        );
        super::with_pool!(self, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(serde_json::to_string(ids).expect("ids serialise"))
                .fetch_all(pool)
                .await?;
            rows.iter().map(super::pairs::pair_from_row).collect()
        })
    }

    pub async fn count_unscored(&self, model_id: i64, queries: Option<&[i64]>) -> Result<i64> {
        let sql = format!(
            "SELECT count(*) FROM pairs p WHERE NOT EXISTS \
             (SELECT 1 FROM student_scores s WHERE s.model_id = $1 AND s.pair_id = p.id) \
             AND ($2 IS NULL OR p.query_id IN ({}))",
            self.ids_of_json("$2")
        );
        super::with_pool!(self, |pool| Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(
            sql
        ))
        .bind(model_id)
        .bind(queries.map(|q| serde_json::to_string(q).expect("ids serialise")))
        .fetch_one(pool)
        .await?))
    }

    /// Stores scores in one transaction (a re-scored pair is replaced).
    pub async fn save_student_scores(&self, model_id: i64, scores: &[StudentScore]) -> Result<()> {
        let scale = self.scale().await?;
        super::with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for chunk in scores.chunks(200) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO student_scores (model_id, pair_id, score, distribution, label) ",
                );
                q.push_values(chunk, |mut b, s| {
                    let label = scale.student_label(s.score, s.distribution.as_deref());
                    b.push_bind(model_id)
                        .push_bind(s.pair_id)
                        .push_bind(s.score)
                        .push_bind(
                            s.distribution
                                .as_ref()
                                .map(|d| serde_json::to_string(d).expect("numbers serialise")),
                        )
                        .push_bind(scale.labels[label].key.clone());
                });
                // A re-scored pair is replaced.
                q.push(
                    " ON CONFLICT (model_id, pair_id) DO UPDATE SET score = excluded.score, \
                 distribution = excluded.distribution, label = excluded.label",
                );
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The newest student's prediction for one pair: its name, score and distribution.
    pub async fn newest_student_score(
        &self,
        pair_id: i64,
    ) -> Result<Option<(String, StudentScore)>> {
        const SQL: &str = concat!(
            "SELECT m.name, s.score, s.distribution FROM student_scores s \
             JOIN student_models m ON m.id = s.model_id WHERE s.model_id = ",
            newest_student!(),
            " AND s.pair_id = $1"
        );
        let row: Option<(String, f64, Option<String>)> = super::with_pool!(self, |pool| {
            sqlx::query_as(SQL)
                .bind(pair_id)
                .fetch_optional(pool)
                .await?
        });
        row.map(|(name, score, d)| {
            Ok((
                name,
                StudentScore {
                    pair_id,
                    score,
                    distribution: d.map(|t| serde_json::from_str(&t)).transpose()?,
                },
            ))
        })
        .transpose()
    }

    /// Pair ids by (query id, product id) for the given keys; unknown keys are left out.
    pub async fn pair_ids(
        &self,
        keys: &[crate::domain::PairKey],
    ) -> Result<std::collections::HashMap<crate::domain::PairKey, i64>> {
        let mut out = std::collections::HashMap::with_capacity(keys.len());
        const SQL: &str = "SELECT p.id FROM pairs p JOIN queries q ON q.id = p.query_id \
             JOIN items i ON i.id = p.item_id WHERE q.ext_id = $1 AND i.ext_id = $2";
        for k in keys {
            let id: Option<i64> = super::with_pool!(self, |pool| sqlx::query_scalar(SQL)
                .bind(&k.query_id)
                .bind(&k.product_id)
                .fetch_optional(pool)
                .await?);
            if let Some(id) = id {
                out.insert(k.clone(), id);
            }
        }
        Ok(out)
    }
}
