use anyhow::{Context, Result};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::{Db, Store};
use crate::domain::review::{Annotation, Change, derive};

impl Store {
    /// Appends one human change and sets the pair's `reviewed` flag from all its changes (an
    /// undo of the only change leaves it unreviewed), in one transaction; returns the change's id.
    /// Annotations are never updated or deleted. On PostgreSQL the annotator is the database
    /// role (`current_user`), whatever name the caller gives: row-level security admits no other.
    pub async fn annotate(
        &self,
        pair_id: i64,
        judgment_id: Option<i64>,
        annotator: &str,
        change: &Change,
    ) -> Result<i64> {
        let (field, before, after, undoes) = columns(change);
        let who = match self.db {
            Db::Sqlite(_) => "$3",
            Db::Postgres(_) => "current_user",
        };
        let sql = format!(
            "INSERT INTO annotations (pair_id, judgment_id, annotator, action, field, before, after, undoes) \
             VALUES ($1, $2, {who}, $4, $5, $6, $7, $8) RETURNING id"
        );
        let what = || format!("saving a {} annotation on pair {pair_id}", change.action());
        super::with_pool!(self, |pool| {
            let mut tx = pool.begin().await.with_context(what)?;
            let id: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(pair_id)
                .bind(judgment_id)
                .bind(annotator)
                .bind(change.action())
                .bind(field)
                .bind(before)
                .bind(after)
                .bind(undoes)
                .fetch_one(&mut *tx)
                .await
                .with_context(what)?;
            let annotations = annotations_of(&mut *tx, pair_id).await?;
            update_reviewed(&mut *tx, pair_id, &annotations).await?;
            tx.commit().await.with_context(what)?;
            Ok(id)
        })
    }

    /// Every annotation of a pair, oldest first.
    pub async fn annotations_of(&self, pair_id: i64) -> Result<Vec<Annotation>> {
        super::with_pool!(self, |pool| {
            let mut conn = pool.acquire().await?;
            annotations_of(&mut *conn, pair_id).await
        })
    }

    /// The database role annotations are saved under on PostgreSQL; None on SQLite, where the
    /// caller names the annotator.
    pub async fn db_role(&self) -> Result<Option<String>> {
        match &self.db {
            Db::Sqlite(_) => Ok(None),
            Db::Postgres(pool) => Ok(Some(
                sqlx::query_scalar("SELECT current_user::text")
                    .fetch_one(pool)
                    .await?,
            )),
        }
    }
}

pub(super) async fn annotations_of<'c, E, DB>(conn: E, pair_id: i64) -> Result<Vec<Annotation>>
where
    E: Executor<'c, Database = DB>,
    DB: Database,
    for<'q> DB::Arguments: IntoArguments<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> String: Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    let rows = sqlx::query(
        "SELECT id, pair_id, judgment_id, annotator, action, field, before, after, undoes, created_at \
         FROM annotations WHERE pair_id = $1 ORDER BY id",
    )
    .bind(pair_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(annotation_from_row).collect()
}

/// Sets the pair's `reviewed` flag to what its annotations derive (a change in force), inside
/// the caller's transaction.
pub(super) async fn update_reviewed<'c, E, DB>(
    conn: E,
    pair_id: i64,
    annotations: &[Annotation],
) -> Result<()>
where
    E: Executor<'c, Database = DB>,
    DB: Database,
    for<'q> DB::Arguments: IntoArguments<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    let reviewed = i64::from(derive(None, annotations).is_reviewed());
    sqlx::query("UPDATE pairs SET reviewed = $1 WHERE id = $2 AND reviewed <> $1")
        .bind(reviewed)
        .bind(pair_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// (field, before, after, undoes) as stored: the change itself is kept whole in `after` as JSON,
/// with `field` and `before` (a JSON string) filled for people reading the table with sqlite3.
fn columns(change: &Change) -> (Option<String>, Option<String>, String, Option<i64>) {
    let whole = serde_json::to_string(change).expect("changes serialise");
    let json = |s: &str| Some(serde_json::Value::from(s).to_string());
    match change {
        Change::SetLabel { before, .. } => (
            Some("label".into()),
            before.as_deref().and_then(json),
            whole,
            None,
        ),
        Change::SetVerdict {
            dimension, before, ..
        } => (
            Some(format!("dimension:{dimension}")),
            json(before.as_str()),
            whole,
            None,
        ),
        Change::EditStep { step, before, .. } => {
            (Some(step.as_str().into()), json(before), whole, None)
        }
        Change::EditDimension {
            dimension,
            field,
            before,
            ..
        } => (
            Some(format!("dimension:{dimension}.{field}")),
            json(before),
            whole,
            None,
        ),
        Change::AddDimension { dimension } | Change::RemoveDimension { dimension } => (
            Some(format!("dimension:{}", dimension.name)),
            None,
            whole,
            None,
        ),
        Change::Undo { target } => (None, None, whole, Some(*target)),
        Change::Accept | Change::Reject | Change::Note { .. } => (None, None, whole, None),
    }
}

pub(super) fn annotation_from_row<R: Row>(r: &R) -> Result<Annotation>
where
    usize: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    let after: String = r.try_get(7)?;
    let id: i64 = r.try_get(0)?;
    Ok(Annotation {
        id,
        pair_id: r.try_get(1)?,
        judgment_id: r.try_get(2)?,
        annotator: r.try_get(3)?,
        created_at: r.try_get(9)?,
        change: serde_json::from_str(&after)
            .with_context(|| format!("annotation {id}: unreadable change"))?,
    })
}
