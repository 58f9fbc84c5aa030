//! Audit findings: replaced rule by rule in one transaction, so a killed audit leaves the
//! previous findings whole and a re-run never doubles them.

use anyhow::{Context, Result};
use serde::Serialize;
use sqlx::{QueryBuilder, Row, Sqlite, Transaction};

use super::Store;

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
    tx: Transaction<'static, Sqlite>,
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
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO audit_findings (pair_id, judgment_id, rule, severity, detail) ",
        );
        q.push_values(self.buffer.drain(..), |mut b, f| {
            b.push_bind(f.pair_id)
                .push_bind(f.judgment_id)
                .push_bind(f.rule)
                .push_bind(f.severity)
                .push_bind(f.detail);
        });
        q.build()
            .execute(&mut *self.tx)
            .await
            .context("writing audit findings")?;
        Ok(())
    }

    pub async fn commit(mut self) -> Result<()> {
        self.flush().await?;
        self.tx
            .commit()
            .await
            .context("committing audit findings")?;
        Ok(())
    }
}

impl Store {
    /// Starts replacing the findings of `rules`.
    pub async fn replace_findings(&self, rules: &[&str]) -> Result<FindingsWriter> {
        let mut tx = self.sqlite()?.begin().await?;
        let mut q = QueryBuilder::<Sqlite>::new("DELETE FROM audit_findings WHERE rule IN (");
        let mut list = q.separated(", ");
        for r in rules {
            list.push_bind(r.to_string());
        }
        q.push(")");
        q.build().execute(&mut *tx).await?;
        Ok(FindingsWriter {
            tx,
            buffer: Vec::new(),
        })
    }

    /// The database clock, UTC, as the timestamps it writes (`2026-11-22T08:00:00Z`).
    pub async fn now(&self) -> Result<String> {
        Ok(
            sqlx::query_scalar("SELECT strftime('%Y-%m-%dT%H:%M:%SZ', 'now')")
                .fetch_one(self.sqlite()?)
                .await?,
        )
    }

    /// Findings per rule and severity, most frequent first.
    pub async fn finding_counts(&self) -> Result<Vec<(String, String, i64)>> {
        let rows = sqlx::query(
            "SELECT rule, severity, count(*) FROM audit_findings GROUP BY rule, severity ORDER BY 3 DESC, 1",
        )
        .fetch_all(self.sqlite()?)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
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
