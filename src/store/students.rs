//! Student models and their scores.

use anyhow::{Result, bail};
use serde::Serialize;
use sqlx::Row;

use super::Store;

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
        let row = match name {
            Some(n) => {
                sqlx::query("SELECT id, name, kind, path FROM student_models WHERE name = ?")
                    .bind(n)
                    .fetch_optional(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(
                    "SELECT id, name, kind, path FROM student_models ORDER BY id DESC LIMIT 1",
                )
                .fetch_optional(&self.pool)
                .await?
            }
        };
        match (row, name) {
            (Some(r), _) => Ok(Some(StudentModel {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                kind: r.try_get(2)?,
                path: r.try_get(3)?,
            })),
            (None, None) => Ok(None),
            (None, Some(n)) => {
                let names: Vec<String> =
                    sqlx::query_scalar("SELECT name FROM student_models ORDER BY id")
                        .fetch_all(&self.pool)
                        .await?;
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
