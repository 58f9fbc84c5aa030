//! Teacher calibrations: fitted by `workbench teacher calibrate`, read wherever a judgment's
//! calibrated distribution is shown beside its raw one.

use anyhow::Result;

use super::PickedJudgment;
use super::Store;
use crate::domain::{Calibration, CalibrationFit, ScoreDist};

/// The teacher a calibration belongs to: its model and prompt.
pub type TeacherKey = (String, String);

/// Every teacher's newest calibration, with what it was fitted on (`teacher calibrate`'s split
/// text: `SPEC seed N, train|dev, OBJECTIVE`). A store has a handful of teachers: a scan compares
/// borrowed strings, where a map would build a key for every pair an export reads.
#[derive(Debug, Clone, Default)]
pub struct Calibrations(Vec<(TeacherKey, Calibration, String)>);

impl Calibrations {
    pub fn get(&self, model: &str, prompt_hash: &str) -> Option<&Calibration> {
        self.0
            .iter()
            .find(|((m, p), _, _)| m == model && p == prompt_hash)
            .map(|(_, c, _)| c)
    }

    /// Only the calibrations for which `keep` holds of what they were fitted on.
    pub fn fitted_where(self, keep: impl Fn(&str) -> bool) -> Calibrations {
        Calibrations(self.0.into_iter().filter(|(_, _, on)| keep(on)).collect())
    }

    /// What each kept calibration was fitted on, one entry per teacher.
    pub fn fitted_on(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(_, _, on)| on.as_str())
    }

    /// A picked judgment's distribution through its teacher's calibration, if it has one.
    pub fn apply_to(&self, j: &PickedJudgment) -> Option<ScoreDist> {
        Some(self.get(&j.model, &j.prompt_hash)?.apply(&j.distribution))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Store {
    pub async fn save_calibration(
        &self,
        teacher: &TeacherKey,
        mode: &str,
        fit: &CalibrationFit,
        split: &str,
    ) -> Result<i64> {
        const SQL: &str = "INSERT INTO calibrations (model, prompt_hash, mode, slope, bias, samples, \
             split, nll_before, nll_after) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id";
        let bias = serde_json::to_string(&fit.calibration.bias)?;
        super::with_pool!(self, |pool| Ok(sqlx::query_scalar(SQL)
            .bind(&teacher.0)
            .bind(&teacher.1)
            .bind(mode)
            .bind(fit.calibration.slope)
            .bind(&bias)
            .bind(fit.samples as i64)
            .bind(split)
            .bind(fit.nll_before)
            .bind(fit.nll_after)
            .fetch_one(pool)
            .await?))
    }

    /// The teachers (model and prompt) whose runs used a model fine-tuned by `teacher tune`:
    /// its GGUF header's stamp, kept in the run's parameters.
    pub async fn tuned_teachers(&self) -> Result<std::collections::BTreeSet<TeacherKey>> {
        const SQL: &str = "SELECT DISTINCT model, prompt_hash, params FROM teacher_runs";
        let rows: Vec<(String, String, String)> =
            super::with_pool!(self, |pool| sqlx::query_as(SQL).fetch_all(pool).await?);
        Ok(rows
            .into_iter()
            .filter(|(_, _, params)| {
                serde_json::from_str::<serde_json::Value>(params)
                    .is_ok_and(|p| p["backend"]["tuned"].is_object())
            })
            .map(|(model, prompt, _)| (model, prompt))
            .collect())
    }

    /// Pairs reviewed (any annotation) since the newest calibration of any teacher, or ever when
    /// there is none: what `workbench teacher calibrate` has not yet learnt from. Times compare
    /// as Julian days: calibrations keep whole seconds, annotations milliseconds.
    pub async fn reviews_since_calibration(&self) -> Result<i64> {
        let sql = match self.db {
            super::Db::Sqlite(_) => {
                "SELECT count(DISTINCT pair_id) FROM annotations WHERE julianday(created_at) > \
                 COALESCE((SELECT julianday(max(created_at)) FROM calibrations), 0)"
            }
            super::Db::Postgres(_) => {
                "SELECT count(DISTINCT pair_id) FROM annotations WHERE created_at::timestamptz > \
                 COALESCE((SELECT max(created_at::timestamptz) FROM calibrations), '-infinity')"
            }
        };
        super::with_pool!(self, |pool| Ok(sqlx::query_scalar(sql)
            .fetch_one(pool)
            .await?))
    }

    /// The newest calibration of every teacher that has one.
    pub async fn calibrations(&self) -> Result<Calibrations> {
        let rows: Vec<(String, String, f64, String, String)> = super::with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT model, prompt_hash, slope, bias, split FROM calibrations c WHERE id = \
                 (SELECT max(id) FROM calibrations d \
                  WHERE d.model = c.model AND d.prompt_hash = c.prompt_hash)",
            )
            .fetch_all(pool)
            .await?
        });
        let mut out = Vec::new();
        for (model, prompt_hash, slope, bias, split) in rows {
            out.push((
                (model, prompt_hash),
                Calibration {
                    slope,
                    bias: serde_json::from_str(&bias)?,
                },
                split,
            ));
        }
        Ok(Calibrations(out))
    }
}
