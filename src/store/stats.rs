use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use super::{Db, Store};

/// What a database holds: the numbers `workbench stats` prints.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Stats {
    pub database: String,
    pub scale: String,
    pub schema_version: i64,
    pub pairs: i64,
    pub queries: i64,
    pub items: i64,
    /// Gold (imported human) labels by scale key, in the scale's order; `unlabelled` counts the rest.
    pub labels: BTreeMap<String, i64>,
    pub label_order: Vec<String>,
    pub unlabelled: i64,
    /// Pairs by origin: `import`, `augmented:lexical`, …
    pub origins: BTreeMap<String, i64>,
    /// Pairs with a teacher label (a judgment that parsed), by origin.
    pub teacher_labelled_by_origin: BTreeMap<String, i64>,
    /// Pairs with at least one teacher judgment, and how many judgments failed to parse.
    pub judged: i64,
    pub judgments: i64,
    pub parse_errors: i64,
    /// Teacher labels by scale key, over each pair's latest judgment.
    pub teacher_labels: BTreeMap<String, i64>,
    /// Pairs with a human change in force (an undone change does not count).
    pub reviewed: i64,
    pub annotations: i64,
    pub student_models: i64,
    pub audit_findings: i64,
    /// On PostgreSQL: the teach processes at work now, with their rates.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub teach_processes: Vec<super::LiveTeacher>,
}

// The counts' SQL reads alike in SQLite and PostgreSQL.
async fn count(store: &Store, sql: &'static str) -> Result<i64> {
    Ok(match &store.db {
        Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await?,
        Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await?,
    })
}

async fn grouped(store: &Store, sql: &'static str) -> Result<BTreeMap<String, i64>> {
    let rows: Vec<(Option<String>, i64)> = match &store.db {
        Db::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await?,
        Db::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await?,
    };
    Ok(rows
        .into_iter()
        .filter_map(|(k, n)| k.map(|k| (k, n)))
        .collect())
}

impl Store {
    pub async fn stats(&self) -> Result<Stats> {
        let scale = self.scale().await?;
        let mut labels = grouped(
            self,
            "SELECT gold_label, count(*) FROM pairs GROUP BY gold_label",
        )
        .await?;
        for key in scale.keys() {
            labels.entry(key.to_string()).or_insert(0);
        }
        let mut teacher_labels = grouped(
            self,
            "SELECT j.label, count(*) FROM judgments j \
             WHERE j.id = (SELECT max(id) FROM judgments WHERE pair_id = j.pair_id) GROUP BY j.label",
        )
        .await?;
        for key in scale.keys() {
            teacher_labels.entry(key.to_string()).or_insert(0);
        }
        Ok(Stats {
            database: self.path.display().to_string(),
            scale: scale.name.clone(),
            schema_version: Store::schema_version(),
            pairs: count(self, "SELECT count(*) FROM pairs").await?,
            queries: count(self, "SELECT count(*) FROM queries").await?,
            items: count(self, "SELECT count(*) FROM items").await?,
            labels,
            label_order: scale.keys().map(str::to_string).collect(),
            unlabelled: count(self, "SELECT count(*) FROM pairs WHERE gold_label IS NULL").await?,
            origins: grouped(self, "SELECT origin, count(*) FROM pairs GROUP BY origin").await?,
            teacher_labelled_by_origin: grouped(
                self,
                "SELECT origin, count(*) FROM pairs WHERE teacher_label IS NOT NULL GROUP BY origin",
            )
            .await?,
            judged: count(self, "SELECT count(DISTINCT pair_id) FROM judgments").await?,
            judgments: count(self, "SELECT count(*) FROM judgments").await?,
            parse_errors: count(
                self,
                "SELECT count(*) FROM judgments WHERE parse_error IS NOT NULL",
            )
            .await?,
            teacher_labels,
            reviewed: count(
                self,
                "SELECT (SELECT count(*) FROM pairs) - (SELECT count(*) FROM pairs WHERE reviewed = 0)",
            )
            .await?,
            annotations: count(self, "SELECT count(*) FROM annotations").await?,
            student_models: count(self, "SELECT count(*) FROM student_models").await?,
            audit_findings: count(self, "SELECT count(*) FROM audit_findings").await?,
            teach_processes: self.live_teachers().await?,
        })
    }
}
