use anyhow::{Context, Result};
use sqlx::Row;

use sqlx::SqliteConnection;

use super::Store;
use crate::domain::review::{Annotation, Change, derive};

impl Store {
    /// Appends one human change and sets the pair's `reviewed` flag from all its changes (an
    /// undo of the only change leaves it unreviewed), in one transaction; returns the change's id.
    /// Annotations are never updated or deleted.
    pub async fn annotate(
        &self,
        pair_id: i64,
        judgment_id: Option<i64>,
        annotator: &str,
        change: &Change,
    ) -> Result<i64> {
        let (field, before, after, undoes) = columns(change);
        let mut tx = self.sqlite()?.begin().await?;
        let id = sqlx::query_scalar(
            "INSERT INTO annotations (pair_id, judgment_id, annotator, action, field, before, after, undoes) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
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
        .with_context(|| format!("saving a {} annotation on pair {pair_id}", change.action()))?;
        update_reviewed(&mut tx, pair_id).await?;
        tx.commit().await.with_context(|| {
            format!("saving a {} annotation on pair {pair_id}", change.action())
        })?;
        Ok(id)
    }

    /// Every annotation of a pair, oldest first.
    pub async fn annotations_of(&self, pair_id: i64) -> Result<Vec<Annotation>> {
        let mut conn = self.sqlite()?.acquire().await?;
        annotations_of(&mut conn, pair_id).await
    }
}

pub(super) async fn annotations_of(
    conn: &mut SqliteConnection,
    pair_id: i64,
) -> Result<Vec<Annotation>> {
    let rows = sqlx::query(
        "SELECT id, pair_id, judgment_id, annotator, action, field, before, after, undoes, created_at \
         FROM annotations WHERE pair_id = ? ORDER BY id",
    )
    .bind(pair_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(annotation_from_row).collect()
}

/// Sets the pair's `reviewed` flag to what its annotations derive (a change in force), inside
/// the caller's transaction.
pub(super) async fn update_reviewed(conn: &mut SqliteConnection, pair_id: i64) -> Result<()> {
    let reviewed = derive(None, &annotations_of(conn, pair_id).await?).is_reviewed();
    sqlx::query("UPDATE pairs SET reviewed = ? WHERE id = ? AND reviewed <> ?")
        .bind(reviewed)
        .bind(pair_id)
        .bind(reviewed)
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

pub(super) fn annotation_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<Annotation> {
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
