//! `workbench db copy`: a whole project from one store to another (a SQLite file to a team's
//! PostgreSQL and back), row for row with the same ids, then checked table by table: the same
//! row count and the same hash on both sides.

use anyhow::{Context, Result, bail};
use futures::TryStreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{Db, Store, Tx, with_tx};

/// The tables a project is, in an order that inserts every row after the rows it references
/// (`pairs.judgment_id`, which points forward, is set once the judgments are in). Left out:
/// full-text indexes (rebuilt when a search first needs them), teach claims (they belong to
/// processes of the source) and the migrator's own table (the destination's migrations made it).
pub const COPIED: [&str; 12] = [
    "settings",
    "queries",
    "items",
    "imports",
    "teacher_runs",
    "pairs",
    "judgments",
    "annotations",
    "student_models",
    "student_scores",
    "audit_findings",
    "calibrations",
];

/// Tables of either schema that are not copied, and why (see `COPIED`).
pub const NOT_COPIED: [&str; 9] = [
    "_sqlx_migrations",
    "teach_leases",
    "items_search",
    "items_fts",
    "items_fts_config",
    "items_fts_content",
    "items_fts_data",
    "items_fts_docsize",
    "items_fts_idx",
];

/// Rows per insert statement (under SQLite's and PostgreSQL's limits on bound values).
const BATCH_VALUES: usize = 30_000;

/// One table's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CopiedTable {
    pub table: String,
    pub rows: u64,
    /// SHA-256 over the sorted hashes of the rows, as read back from the destination; the
    /// source's is the same or the copy fails.
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Int,
    Real,
    Text,
}

impl Kind {
    /// From a column's declared type on either backend.
    fn of(declared: &str) -> Kind {
        let t = declared.to_ascii_lowercase();
        if t.contains("int") {
            Kind::Int
        } else if t.contains("real") || t.contains("double") || t.contains("float") {
            Kind::Real
        } else {
            Kind::Text
        }
    }
}

fn read_value<R: Row>(r: &R, i: usize, kind: Kind) -> Result<Value>
where
    usize: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> f64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(match kind {
        Kind::Int => r
            .try_get::<Option<i64>, _>(i)?
            .map_or(Value::Null, Value::Int),
        Kind::Real => r
            .try_get::<Option<f64>, _>(i)?
            .map_or(Value::Null, Value::Real),
        Kind::Text => r
            .try_get::<Option<String>, _>(i)?
            .map_or(Value::Null, Value::Text),
    })
}

/// A row's hash: each value with its type and length, so that no two rows share an encoding.
fn row_hash(row: &[Value]) -> [u8; 32] {
    let mut h = Sha256::new();
    for v in row {
        match v {
            Value::Null => h.update(b"N"),
            Value::Int(i) => {
                h.update(b"I");
                h.update(i.to_le_bytes());
            }
            Value::Real(x) => {
                h.update(b"R");
                h.update(x.to_bits().to_le_bytes());
            }
            Value::Text(t) => {
                h.update(b"T");
                h.update((t.len() as u64).to_le_bytes());
                h.update(t.as_bytes());
            }
        }
    }
    h.finalize().into()
}

/// The table's hash whatever order the rows come in (collations differ between backends).
fn table_hash(mut rows: Vec<[u8; 32]>) -> String {
    rows.sort_unstable();
    let mut h = Sha256::new();
    for r in &rows {
        h.update(r);
    }
    hex::encode(h.finalize())
}

impl Store {
    /// A table's columns and their kinds, in the schema's order.
    async fn columns_of(&self, table: &str) -> Result<Vec<(String, Kind)>> {
        let rows: Vec<(String, String)> = match &self.db {
            Db::Sqlite(pool) => {
                sqlx::query_as("SELECT name, type FROM pragma_table_info($1) ORDER BY cid")
                    .bind(table)
                    .fetch_all(pool)
                    .await?
            }
            Db::Postgres(pool) => {
                sqlx::query_as(
                    "SELECT column_name::text, data_type::text FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = $1 \
                     ORDER BY ordinal_position",
                )
                .bind(table)
                .fetch_all(pool)
                .await?
            }
        };
        if rows.is_empty() {
            bail!("{}: no table {table}", self.path.display());
        }
        Ok(rows.into_iter().map(|(n, t)| (n, Kind::of(&t))).collect())
    }

    /// Every row of `table`, `columns` in order, and each row's hash.
    async fn rows_of(
        &self,
        table: &str,
        columns: &[(String, Kind)],
        mut each: impl FnMut(Vec<Value>) -> Result<()>,
    ) -> Result<Vec<[u8; 32]>> {
        let names: Vec<&str> = columns.iter().map(|c| c.0.as_str()).collect();
        let sql = format!("SELECT {} FROM {table}", names.join(", "));
        let mut hashes = Vec::new();
        super::with_pool!(self, |pool| {
            let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(pool);
            while let Some(r) = rows.try_next().await? {
                let row = columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| read_value(&r, i, c.1))
                    .collect::<Result<Vec<_>>>()?;
                hashes.push(row_hash(&row));
                each(row)?;
            }
        });
        Ok(hashes)
    }

    /// Copies every table of `self` into `to`, an empty database of the same schema version,
    /// in one transaction on `to`; then reads `to` back and checks each table's count and hash.
    pub async fn copy_to(
        &self,
        to: &Store,
        progress: &mut dyn FnMut(&str, u64),
    ) -> Result<Vec<CopiedTable>> {
        let held: i64 = super::with_pool!(to, |pool| sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM pairs) + (SELECT count(*) FROM queries) \
             + (SELECT count(*) FROM items)"
        )
        .fetch_one(pool)
        .await?);
        if held > 0 {
            bail!(
                "{} already holds a project ({held} queries, items and pairs); copy into a new, \
                 empty database",
                to.path.display()
            );
        }
        let mut tx = match &to.db {
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        };
        // `init` may have written settings already: the source's replace them.
        with_tx!(&mut tx, |t| {
            sqlx::query("DELETE FROM settings")
                .execute(&mut **t)
                .await?;
        });
        let mut sources = Vec::new();
        let mut judgment_ids: Vec<(i64, i64)> = Vec::new();
        for table in COPIED {
            let columns = self.columns_of(table).await?;
            let mut pending: Vec<Vec<Value>> = Vec::new();
            let per_batch = (BATCH_VALUES / columns.len()).max(1);
            let mut rows = 0u64;
            // Rows are gathered here and written batch by batch below: the reading stream
            // borrows the source's pool while the destination's transaction writes.
            let mut batches: Vec<Vec<Vec<Value>>> = Vec::new();
            let judgment_at = (table == "pairs")
                .then(|| columns.iter().position(|c| c.0 == "judgment_id"))
                .flatten();
            let hashes = self
                .rows_of(table, &columns, |mut row| {
                    if let Some(at) = judgment_at
                        && let (Value::Int(id), Value::Int(j)) = (&row[0], &row[at])
                    {
                        judgment_ids.push((*id, *j));
                        row[at] = Value::Null;
                    }
                    pending.push(row);
                    rows += 1;
                    if pending.len() == per_batch {
                        batches.push(std::mem::take(&mut pending));
                    }
                    Ok(())
                })
                .await
                .with_context(|| format!("reading {table} from {}", self.path.display()))?;
            batches.push(pending);
            for batch in batches {
                insert(&mut tx, table, &columns, batch)
                    .await
                    .with_context(|| format!("writing {table} to {}", to.path.display()))?;
            }
            if table == "judgments" {
                set_judgment_ids(&mut tx, &judgment_ids).await?;
            }
            progress(table, rows);
            sources.push((table, columns, rows, table_hash(hashes)));
        }
        if let Tx::Postgres(t) = &mut tx {
            // Rows came with their ids: the identities go on after the largest.
            let with_ids = sources
                .iter()
                .filter(|s| s.1.iter().any(|c| c.0 == "id"))
                .map(|s| s.0);
            super::postgres::identities_past_ids(t, with_ids).await?;
        }
        with_tx!(tx, |t| t.commit().await.with_context(|| format!(
            "committing the copy to {}",
            to.path.display()
        ))?);
        let mut out = Vec::new();
        for (table, columns, rows, hash) in sources {
            let back = to.rows_of(table, &columns, |_| Ok(())).await?;
            let (n, back_hash) = (back.len() as u64, table_hash(back));
            if n != rows || back_hash != hash {
                bail!(
                    "{table}: {rows} rows with hash {} in {}, but {n} rows with hash {} in {} \
                     after the copy",
                    &hash[..12],
                    self.path.display(),
                    &back_hash[..12],
                    to.path.display()
                );
            }
            out.push(CopiedTable {
                table: table.to_string(),
                rows,
                hash,
            });
        }
        Ok(out)
    }
}

async fn insert(
    tx: &mut Tx,
    table: &str,
    columns: &[(String, Kind)],
    rows: Vec<Vec<Value>>,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = columns.iter().map(|c| c.0.as_str()).collect();
    let head = format!("INSERT INTO {table} ({}) ", names.join(", "));
    with_tx!(tx, |t| {
        let mut q = sqlx::QueryBuilder::new(head);
        q.push_values(rows, |mut b, row| {
            for v in row {
                match v {
                    Value::Null => b.push("NULL"),
                    Value::Int(i) => b.push_bind(i),
                    Value::Real(x) => b.push_bind(x),
                    Value::Text(s) => b.push_bind(s),
                };
            }
        });
        q.build().execute(&mut **t).await?;
    });
    Ok(())
}

/// Points the copied pairs at their judgments, once these exist.
async fn set_judgment_ids(tx: &mut Tx, ids: &[(i64, i64)]) -> Result<()> {
    for chunk in ids.chunks(BATCH_VALUES / 2) {
        with_tx!(&mut *tx, |t| {
            let mut q = sqlx::QueryBuilder::new("UPDATE pairs SET judgment_id = v.j FROM (");
            let mut first = true;
            for (id, j) in chunk {
                q.push(if first {
                    "SELECT "
                } else {
                    " UNION ALL SELECT "
                });
                first = false;
                q.push_bind(*id)
                    .push(" AS id, ")
                    .push_bind(*j)
                    .push(" AS j");
            }
            q.push(") AS v WHERE pairs.id = v.id");
            q.build().execute(&mut **t).await?;
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_hashes_tell_values_apart() {
        assert_eq!(Kind::of("INTEGER"), Kind::Int);
        assert_eq!(Kind::of("bigint"), Kind::Int);
        assert_eq!(Kind::of("double precision"), Kind::Real);
        assert_eq!(Kind::of("REAL"), Kind::Real);
        assert_eq!(Kind::of("text"), Kind::Text);
        let a = row_hash(&[Value::Text("1".into()), Value::Null]);
        assert_ne!(a, row_hash(&[Value::Int(1), Value::Null]));
        assert_ne!(
            a,
            row_hash(&[Value::Text("1".into()), Value::Text(String::new())])
        );
        assert_ne!(
            row_hash(&[Value::Text("ab".into()), Value::Text("c".into())]),
            row_hash(&[Value::Text("a".into()), Value::Text("bc".into())])
        );
        assert_eq!(
            table_hash(vec![[1; 32], [2; 32]]),
            table_hash(vec![[2; 32], [1; 32]])
        );
    }
}
