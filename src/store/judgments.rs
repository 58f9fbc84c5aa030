use anyhow::{Context, Result};
use serde::Serialize;
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{PICKED_JUDGMENT, Store, now_sql, with_pool};
use crate::domain::{Judgment, Mode, Rationale, ScoreDist};

/// What a teacher run is: recorded once per `workbench teach`.
#[derive(Debug, Clone, Serialize)]
pub struct TeacherRunSpec {
    pub model: String,
    pub prompt_hash: String,
    pub mode: String,
    pub backend: String,
    pub params: serde_json::Value,
}

/// One finished judgment, ready to store.
#[derive(Debug, Clone)]
pub struct NewJudgment {
    pub pair_id: i64,
    pub run_id: Option<i64>,
    pub model: String,
    pub prompt_hash: String,
    pub mode: Mode,
    /// What the teacher said, stored as it is.
    pub judgment: Judgment,
}

/// A stored judgment.
#[derive(Debug, Clone, Serialize)]
pub struct JudgmentRecord {
    pub id: i64,
    pub pair_id: i64,
    pub model: String,
    pub prompt_hash: String,
    pub mode: String,
    pub label: Option<String>,
    pub distribution: ScoreDist,
    pub dist_source: String,
    pub confidence: Option<f64>,
    pub rationale: Option<Rationale>,
    pub raw_output: String,
    pub parse_error: Option<String>,
    pub truncated: bool,
    pub item_truncated: bool,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub elapsed_ms: Option<i64>,
    pub created_at: String,
    /// The distribution through its teacher's newest calibration, when it has one (the raw
    /// `distribution` is never changed).
    pub calibrated: Option<ScoreDist>,
}

/// The judgment that stands for a pair among its judgments (newest first, as `judgments_of`
/// returns them): the rule of `PICKED_JUDGMENT`, over rows already read.
pub fn pick(judgments: &[JudgmentRecord]) -> Option<&JudgmentRecord> {
    judgments
        .iter()
        .find(|j| j.rationale.is_some())
        .or(judgments.first())
}

/// Copies the picked judgment's id, label, top probability and parse state onto the pair, where
/// the review queue filters on them (migrations/0003) and bulk readers join it by id
/// (migrations/0008). Run inside the transaction that changed the pair's judgments.
pub(super) trait QueueColumns {
    async fn update_queue_columns(&mut self, pair_id: i64) -> Result<()>;
}

impl QueueColumns for sqlx::SqliteConnection {
    async fn update_queue_columns(&mut self, pair_id: i64) -> Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE pairs AS p SET judgment_id = j.id, teacher_label = j.label, \
               teacher_p = (SELECT max(value) FROM json_each(j.distribution)), \
               teacher_parse_error = j.parse_error IS NOT NULL \
             FROM judgments j WHERE p.id = ? AND j.id = {PICKED_JUDGMENT}"
        )))
        .bind(pair_id)
        .execute(self)
        .await?;
        Ok(())
    }
}

impl QueueColumns for sqlx::PgConnection {
    async fn update_queue_columns(&mut self, pair_id: i64) -> Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE pairs AS p SET judgment_id = j.id, teacher_label = j.label, \
               teacher_p = (SELECT max(v::double precision) \
                            FROM json_array_elements_text(j.distribution::json) AS v), \
               teacher_parse_error = (j.parse_error IS NOT NULL)::int \
             FROM judgments j WHERE p.id = $1 AND j.id = {PICKED_JUDGMENT}"
        )))
        .bind(pair_id)
        .execute(self)
        .await?;
        Ok(())
    }
}

/// A judgment row in `JUDGMENT_COLUMNS` order, from either backend.
fn judgment_from_row<R: Row>(r: &R, calibrations: &super::Calibrations) -> Result<JudgmentRecord>
where
    usize: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> f64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    let dist: String = r.try_get(6)?;
    let distribution = ScoreDist {
        probs: serde_json::from_str(&dist)?,
    };
    let model: String = r.try_get(2)?;
    let prompt_hash: String = r.try_get(3)?;
    let dist_source: String = r.try_get(7)?;
    let calibrated = calibrations
        .get(&model, &prompt_hash)
        .filter(|_| dist_source != "none")
        .map(|c| c.apply(&distribution));
    let rationale: Option<String> = r.try_get(9)?;
    Ok(JudgmentRecord {
        id: r.try_get(0)?,
        pair_id: r.try_get(1)?,
        model,
        prompt_hash,
        mode: r.try_get(4)?,
        label: r.try_get(5)?,
        distribution,
        dist_source,
        confidence: r.try_get(8)?,
        rationale: rationale.map(|t| serde_json::from_str(&t)).transpose()?,
        raw_output: r.try_get(10)?,
        parse_error: r.try_get(11)?,
        truncated: r.try_get::<i64, _>(12)? != 0,
        item_truncated: r.try_get::<i64, _>(13)? != 0,
        prompt_tokens: r.try_get(14)?,
        completion_tokens: r.try_get(15)?,
        elapsed_ms: r.try_get(16)?,
        created_at: r.try_get(17)?,
        calibrated,
    })
}

impl Store {
    pub async fn start_teacher_run(&self, spec: &TeacherRunSpec) -> Result<i64> {
        let id = with_pool!(self, |pool| sqlx::query_scalar(
            "INSERT INTO teacher_runs (model, prompt_hash, mode, backend, params) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(&spec.model)
        .bind(&spec.prompt_hash)
        .bind(&spec.mode)
        .bind(&spec.backend)
        .bind(spec.params.to_string())
        .fetch_one(pool)
        .await
        .context("recording the teacher run")?);
        Ok(id)
    }

    pub async fn finish_teacher_run(&self, run_id: i64) -> Result<()> {
        let sql = format!(
            "UPDATE teacher_runs SET finished_at = {} WHERE id = $1",
            now_sql(self)
        );
        with_pool!(self, |pool| {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(run_id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Stores a judgment at once, with the pair's columns derived from it, in one transaction: a
    /// kill leaves both or neither. Returns false when this model, prompt and mode had already
    /// judged the pair: a judgment is never stored twice.
    pub async fn save_judgment(&self, new: &NewJudgment) -> Result<bool> {
        let j = &new.judgment;
        let rationale = j
            .rationale
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?;
        let distribution = serde_json::to_string(&j.distribution.probs)?;
        let saved = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(
                "INSERT INTO judgments (pair_id, run_id, model, prompt_hash, mode, label, \
                 distribution, dist_source, confidence, rationale, raw_output, parse_error, \
                 truncated, item_truncated, prompt_tokens, completion_tokens, elapsed_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
                 ON CONFLICT (pair_id, model, prompt_hash, mode) DO NOTHING",
            )
            .bind(new.pair_id)
            .bind(new.run_id)
            .bind(&new.model)
            .bind(&new.prompt_hash)
            .bind(new.mode.as_str())
            .bind(&j.label)
            .bind(&distribution)
            .bind(j.dist_source.as_str())
            .bind(j.confidence)
            .bind(&rationale)
            .bind(&j.raw_output)
            .bind(&j.parse_error)
            .bind(j.truncated as i64)
            .bind(j.item_truncated as i64)
            .bind(j.prompt_tokens as i64)
            .bind(j.completion_tokens as i64)
            .bind(j.elapsed_ms as i64)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("saving the judgment of pair {}", new.pair_id))?;
            let saved = done.rows_affected() == 1;
            if saved {
                tx.update_queue_columns(new.pair_id).await?;
            }
            tx.commit()
                .await
                .with_context(|| format!("saving the judgment of pair {}", new.pair_id))?;
            saved
        });
        Ok(saved)
    }

    /// Every judgment of a pair, newest first.
    pub async fn judgments_of(&self, pair_id: i64) -> Result<Vec<JudgmentRecord>> {
        let calibrations = self.calibrations().await?;
        with_pool!(self, |pool| {
            let rows = sqlx::query(
                "SELECT id, pair_id, model, prompt_hash, mode, label, distribution, dist_source, \
                 confidence, rationale, raw_output, parse_error, truncated, item_truncated, \
                 prompt_tokens, completion_tokens, elapsed_ms, created_at \
                 FROM judgments WHERE pair_id = $1 ORDER BY id DESC",
            )
            .bind(pair_id)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| judgment_from_row(r, &calibrations))
                .collect()
        })
    }
}
