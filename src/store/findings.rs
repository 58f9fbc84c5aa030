//! Audit findings: replaced rule by rule in one transaction, so a killed audit leaves the
//! previous findings whole and a re-run never doubles them.

use anyhow::{Context, Result};
use serde::Serialize;
use sqlx::{QueryBuilder, Row};

use super::{Db, Store, Tx, with_tx};

/// One finding as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredFinding {
    pub pair_id: i64,
    pub judgment_id: Option<i64>,
    pub rule: String,
    pub severity: String,
    pub detail: String,
}

/// Findings of one audit run, written while the pairs stream by: the old findings of the rules
/// being run go first, the new ones are added in batches, and nothing shows until `commit`.
pub struct FindingsWriter {
    tx: Tx,
    buffer: Vec<StoredFinding>,
}

const BATCH: usize = 500;

impl FindingsWriter {
    pub async fn push(&mut self, finding: StoredFinding) -> Result<()> {
        self.buffer.push(finding);
        if self.buffer.len() >= BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let rows = self.buffer.drain(..);
        with_tx!(&mut self.tx, |tx| {
            let mut q = QueryBuilder::new(
                "INSERT INTO audit_findings (pair_id, judgment_id, rule, severity, detail) ",
            );
            q.push_values(rows, |mut b, f| {
                b.push_bind(f.pair_id)
                    .push_bind(f.judgment_id)
                    .push_bind(f.rule)
                    .push_bind(f.severity)
                    .push_bind(f.detail);
            });
            q.build()
                .execute(&mut **tx)
                .await
                .context("writing audit findings")?;
        });
        Ok(())
    }

    pub async fn commit(mut self) -> Result<()> {
        self.flush().await?;
        with_tx!(self.tx, |tx| tx
            .commit()
            .await
            .context("committing audit findings")?);
        Ok(())
    }
}

impl Store {
    /// Starts replacing the findings of `rules`.
    pub async fn replace_findings(&self, rules: &[&str]) -> Result<FindingsWriter> {
        let mut tx = match &self.db {
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin().await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        };
        with_tx!(&mut tx, |t| {
            let mut q = QueryBuilder::new("DELETE FROM audit_findings WHERE rule IN (");
            let mut list = q.separated(", ");
            for r in rules {
                list.push_bind(r.to_string());
            }
            q.push(")");
            q.build().execute(&mut **t).await?;
        });
        Ok(FindingsWriter {
            tx,
            buffer: Vec::new(),
        })
    }

    /// The database clock, UTC, as the timestamps it writes (`2026-11-22T08:00:00Z`).
    pub async fn now(&self) -> Result<String> {
        let sql = match self.db {
            Db::Sqlite(_) => "SELECT strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
            Db::Postgres(_) => {
                "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
            }
        };
        super::with_pool!(self, |pool| Ok(sqlx::query_scalar(sql)
            .fetch_one(pool)
            .await?))
    }

    /// Findings per rule and severity, most frequent first.
    pub async fn finding_counts(&self) -> Result<Vec<(String, String, i64)>> {
        const SQL: &str = "SELECT rule, severity, count(*) FROM audit_findings \
             GROUP BY rule, severity ORDER BY 3 DESC, 1, 2";
        super::with_pool!(self, |pool| Ok(sqlx::query_as(SQL).fetch_all(pool).await?))
    }

    /// The findings on one pair, worst first.
    pub async fn findings_of(&self, pair_id: i64) -> Result<Vec<StoredFinding>> {
        const SQL: &str = "SELECT pair_id, judgment_id, rule, severity, detail FROM audit_findings \
             WHERE pair_id = $1 \
             ORDER BY CASE severity WHEN 'error' THEN 0 WHEN 'warn' THEN 1 ELSE 2 END, id";
        super::with_pool!(self, |pool| {
            let rows = sqlx::query(SQL).bind(pair_id).fetch_all(pool).await?;
            rows.iter()
                .map(|r| {
                    Ok(StoredFinding {
                        pair_id: r.try_get(0)?,
                        judgment_id: r.try_get(1)?,
                        rule: r.try_get(2)?,
                        severity: r.try_get(3)?,
                        detail: r.try_get(4)?,
                    })
                })
                .collect()
        })
    }
}
