//! Teach processes on several machines sharing one PostgreSQL database: each claims the pairs it
//! is about to judge with a lease (`teach_leases`: owner, expiry), so no two live processes
//! judge one pair, and a dead process's pairs are taken over once its leases expire. Claims lock
//! the pairs they take with `FOR UPDATE … SKIP LOCKED`, so processes claiming at the same moment
//! take different pairs without waiting on each other.

use std::time::Duration;

use anyhow::Result;
use sqlx::QueryBuilder;

use super::pairs::{PAIR_COLUMNS, PairFilter, pair_from_row, push_to_judge};
use super::postgres::{not_yet, time_sql};
use super::{Db, Store};
use crate::domain::Pair;

/// A live teach process (one holding an unexpired claim): who, how many pairs it holds that are
/// not judged yet, and how many of its pairs were judged in the last minute.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct LiveTeacher {
    pub owner: String,
    pub claimed: i64,
    pub judged_last_minute: i64,
}

/// ` AND l.model = … AND l.prompt_hash = … AND l.mode = …`: a lease `l` of this run.
fn push_same_run(q: &mut QueryBuilder<sqlx::Postgres>, (model, hash, mode): (&str, &str, &str)) {
    q.push(" AND l.model = ")
        .push_bind(model.to_string())
        .push(" AND l.prompt_hash = ")
        .push_bind(hash.to_string())
        .push(" AND l.mode = ")
        .push_bind(mode.to_string());
}

impl Store {
    /// Claims up to `n` pairs still to judge by this run that no live lease holds, for `lease`,
    /// in pair order, and returns them.
    pub async fn claim_pairs(
        &self,
        run: (&str, &str, &str),
        filter: &PairFilter,
        owner: &str,
        lease: Duration,
        n: usize,
    ) -> Result<Vec<Pair>> {
        let Db::Postgres(pool) = &self.db else {
            return Err(not_yet());
        };
        let (model, hash, mode) = run;
        let mut tx = pool.begin().await?;
        let mut q = QueryBuilder::new(
            "WITH todo AS (SELECT p.id FROM pairs p \
             JOIN queries q ON q.id = p.query_id JOIN items i ON i.id = p.item_id WHERE ",
        );
        push_to_judge(&mut q, run, filter);
        q.push(
            " AND NOT EXISTS (SELECT 1 FROM teach_leases l WHERE l.pair_id = p.id AND l.model = ",
        )
        .push_bind(model.to_string())
        .push(" AND l.prompt_hash = ")
        .push_bind(hash.to_string())
        .push(" AND l.mode = ")
        .push_bind(mode.to_string())
        .push(format!(" AND l.expires_at > {})", time_sql(0.0)))
        .push(" ORDER BY p.id LIMIT ")
        .push_bind(n as i64)
        .push(" FOR UPDATE OF p SKIP LOCKED) ")
        .push(
            "INSERT INTO teach_leases (pair_id, model, prompt_hash, mode, owner, expires_at) \
                 SELECT id, ",
        )
        .push_bind(model.to_string())
        .push(", ")
        .push_bind(hash.to_string())
        .push(", ")
        .push_bind(mode.to_string())
        .push(", ")
        .push_bind(owner.to_string())
        .push(format!(
            ", {} FROM todo \
                 ON CONFLICT (pair_id, model, prompt_hash, mode) DO UPDATE \
                 SET owner = excluded.owner, expires_at = excluded.expires_at \
                 RETURNING pair_id",
            time_sql(lease.as_secs_f64())
        ));
        let ids: Vec<i64> = q.build_query_scalar().fetch_all(&mut *tx).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PAIR_COLUMNS} WHERE p.id = ANY($1) ORDER BY p.id"
        )))
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(pair_from_row).collect()
    }

    /// When the pairs still to judge are all claimed by other live processes: how long until
    /// the first of those claims lapses. `None` when none is (all judged, or only this owner's
    /// own pairs left).
    pub async fn wait_for_leases(
        &self,
        run: (&str, &str, &str),
        filter: &PairFilter,
        owner: &str,
    ) -> Result<Option<Duration>> {
        let Db::Postgres(pool) = &self.db else {
            return Err(not_yet());
        };
        let mut q = QueryBuilder::new(format!(
            "SELECT extract(epoch FROM (min(l.expires_at)::timestamp - \
             (clock_timestamp() AT TIME ZONE 'UTC')))::float8 \
             FROM pairs p JOIN queries q ON q.id = p.query_id JOIN items i ON i.id = p.item_id \
             JOIN teach_leases l ON l.pair_id = p.id AND l.expires_at > {} AND l.owner <> ",
            time_sql(0.0)
        ));
        q.push_bind(owner.to_string());
        push_same_run(&mut q, run);
        q.push(" WHERE ");
        push_to_judge(&mut q, run, filter);
        let secs: Option<f64> = q.build_query_scalar().fetch_one(pool).await?;
        Ok(secs.map(|s| Duration::from_secs_f64(s.max(0.0))))
    }

    /// Drops this owner's leases: at the end of its run, judged or not.
    pub async fn release_leases(&self, owner: &str) -> Result<()> {
        if let Db::Postgres(pool) = &self.db {
            sqlx::query("DELETE FROM teach_leases WHERE owner = $1")
                .bind(owner)
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// The teach processes holding live leases, with their rates.
    pub async fn live_teachers(&self) -> Result<Vec<LiveTeacher>> {
        let Db::Postgres(pool) = &self.db else {
            return Ok(Vec::new());
        };
        let (now, minute_ago) = (time_sql(0.0), time_sql(-60.0));
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT l.owner, \
               count(*) FILTER (WHERE j.id IS NULL AND l.expires_at > {now}), \
               count(*) FILTER (WHERE j.created_at > {minute_ago}) \
             FROM teach_leases l LEFT JOIN judgments j ON j.pair_id = l.pair_id \
               AND j.model = l.model AND j.prompt_hash = l.prompt_hash AND j.mode = l.mode \
             GROUP BY l.owner HAVING count(*) FILTER (WHERE l.expires_at > {now}) > 0 \
             ORDER BY l.owner"
        )))
        .fetch_all(pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(owner, claimed, judged_last_minute)| LiveTeacher {
                owner,
                claimed,
                judged_last_minute,
            })
            .collect())
    }
}
