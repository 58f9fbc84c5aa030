//! The store: the only module that writes SQL. A SQLite file is the embedded default; a
//! `postgres://` URL opens a team's PostgreSQL database (`postgres.rs`). Opening applies the
//! migrations in `migrations/` (or `migrations/postgres/`); a database written by a newer
//! workbench is refused and left untouched.

mod annotations;
mod augment;
mod bulk_read;
mod calibrations;
pub mod compare;
mod consistency;
pub mod copy;
mod findings;
mod imports;
mod judgments;
mod leases;
mod pairs;
mod postgres;
mod queue;
mod records;
mod schema;
mod stats;
mod students;
mod synthetic;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};

use crate::domain::LabelScale;
pub use postgres::{is_postgres_url, without_password};
use schema::MIGRATOR;

pub use augment::QueryItems;
pub use calibrations::{Calibrations, TeacherKey};
pub use consistency::Repairs;
pub use findings::{FindingsWriter, StoredFinding};
pub use imports::{ImportBatch, ImportCounts, ImportRow};
pub use judgments::{JudgmentRecord, NewJudgment, TeacherRunSpec, pick as pick_judgment};
pub use leases::LiveTeacher;
pub use pairs::PairFilter;
pub use queue::{Cursor, QueueFilter, QueueRow, QueueScope, QueueSort};
pub use records::{PairRecord, PickedJudgment, RecordQuery};
pub use stats::Stats;
pub use students::{StudentModel, StudentScore};

/// SQLite page cache per connection, in KiB: imports, exports and teach runs.
const BATCH_CACHE_KIB: u32 = 32 * 1024;
/// The same for the review app.
const INTERACTIVE_CACHE_KIB: u32 = 8 * 1024;

/// The newest student model's id, as SQL: the student the review app and `compare` show when
/// none is named. A macro so that `concat!` can put it into static SQL.
macro_rules! newest_student {
    () => {
        "(SELECT max(id) FROM student_models)"
    };
}
pub(crate) use newest_student;

/// The judgment that stands for pair `p` wherever one is shown or exported: the newest with a
/// rationale, else the newest. The index `judgments_pick` (migrations/0002) answers it;
/// `judgments::pick` is the same rule over judgments already read.
const PICKED_JUDGMENT: &str = "(SELECT id FROM judgments WHERE pair_id = p.id \
     ORDER BY rationale IS NOT NULL DESC, id DESC LIMIT 1)";

/// A handle on one workbench database.
#[derive(Clone)]
pub struct Store {
    db: Db,
    /// The SQLite file, or the PostgreSQL URL without its password: what messages name.
    path: PathBuf,
}

#[derive(Clone)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(sqlx::PgPool),
}

/// Runs `$body` with `$pool` bound to the store's pool, whichever the backend: for SQL that
/// both read alike (`$1` placeholders, which SQLite takes too). The body is compiled once per
/// backend.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// A transaction, whichever the backend.
enum Tx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// Runs `$body` with `$t` bound to the transaction, whichever the backend; as `with_pool!`.
macro_rules! with_tx {
    ($tx:expr, |$t:ident| $body:expr) => {
        match $tx {
            $crate::store::Tx::Sqlite($t) => $body,
            $crate::store::Tx::Postgres($t) => $body,
        }
    };
}
use with_tx;

/// SQL for "now" as the schema's defaults write it (UTC, ISO-8601, milliseconds).
fn now_sql(store: &Store) -> String {
    match store.db {
        Db::Sqlite(_) => "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')".into(),
        Db::Postgres(_) => postgres::time_sql(0.0),
    }
}

/// Why a database could not be opened, where a caller may want to react.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "{path}: this database was written by a newer workbench (schema version {found}, this build knows up to {known}); \
         it was not changed. Upgrade workbench to open it."
    )]
    NewerSchema {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("{path}: no workbench database here; create one with `workbench init --db {path}`")]
    Missing { path: String },
}

impl Store {
    /// The highest schema version this build knows.
    pub fn schema_version() -> i64 {
        MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// Creates the database (if absent) and brings its schema up to date.
    pub async fn create(path: &Path) -> Result<Store> {
        if let Some(url) = postgres::url_of(path) {
            return postgres::open(url, true).await;
        }
        Self::open_inner(path, true, BATCH_CACHE_KIB).await
    }

    /// Opens an existing database, applying pending migrations.
    pub async fn open(path: &Path) -> Result<Store> {
        Self::open_existing(path, BATCH_CACHE_KIB).await
    }

    async fn open_existing(path: &Path, cache_kib: u32) -> Result<Store> {
        if let Some(url) = postgres::url_of(path) {
            return postgres::open(url, false).await;
        }
        if !path.exists() {
            return Err(OpenError::Missing {
                path: path.display().to_string(),
            }
            .into());
        }
        Self::open_inner(path, false, cache_kib).await
    }

    /// Opens an existing database for the review app: the same, with a smaller page cache per
    /// connection. The app's background counts each run on their own connection, and full-size
    /// caches filled by counts over a million pairs multiply its resident memory (BENCHMARKS.md,
    /// review app).
    pub async fn open_interactive(path: &Path) -> Result<Store> {
        Self::open_existing(path, INTERACTIVE_CACHE_KIB).await
    }

    async fn open_inner(path: &Path, create: bool, cache_kib: u32) -> Result<Store> {
        if path.exists() {
            refuse_newer_schema(path).await?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // The review UI and `teach` write to one file from two processes: wait for the other
            // writer instead of surfacing "database is locked".
            .busy_timeout(Duration::from_secs(30))
            .pragma("temp_store", "memory")
            .pragma("cache_size", format!("-{cache_kib}"));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .with_context(|| format!("opening database {}", path.display()))?;
        MIGRATOR
            .run(&pool)
            .await
            .with_context(|| format!("applying the schema to {}", path.display()))?;
        Ok(Store {
            db: Db::Sqlite(pool),
            path: path.to_path_buf(),
        })
    }

    /// The SQLite file, or the PostgreSQL URL without its password.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.db, Db::Postgres(_))
    }

    /// The SQLite pool; on PostgreSQL, an error saying the work asked for does not run there yet.
    pub fn sqlite(&self) -> Result<&SqlitePool> {
        match &self.db {
            Db::Sqlite(pool) => Ok(pool),
            Db::Postgres(_) => Err(postgres::not_yet()),
        }
    }

    /// The SQLite file, for the bulk readers that open it directly.
    fn sqlite_path(&self) -> Result<PathBuf> {
        self.sqlite().map(|_| self.path.clone())
    }

    pub async fn close(self) {
        match self.db {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }

    /// The label scale chosen at `init`.
    pub async fn scale(&self) -> Result<LabelScale> {
        const SQL: &str = "SELECT value FROM settings WHERE key = 'scale'";
        let value: Option<String> = match &self.db {
            Db::Sqlite(pool) => sqlx::query_scalar(SQL).fetch_optional(pool).await?,
            Db::Postgres(pool) => sqlx::query_scalar(SQL).fetch_optional(pool).await?,
        };
        match value {
            Some(v) => {
                serde_json::from_str(&v).context("reading the label scale stored in settings")
            }
            None => bail!(
                "{}: no label scale set; run `workbench init`",
                self.path.display()
            ),
        }
    }

    /// Stores the label scale. Changing the scale of a database that has labels is refused,
    /// since every stored label would change meaning.
    pub async fn set_scale(&self, scale: &LabelScale) -> Result<()> {
        if let Ok(current) = self.scale().await {
            if &current == scale {
                return Ok(());
            }
            const SQL: &str = "SELECT (SELECT count(*) FROM pairs WHERE gold_label IS NOT NULL) + (SELECT count(*) FROM judgments)";
            let labelled: i64 = match &self.db {
                Db::Sqlite(pool) => sqlx::query_scalar(SQL).fetch_one(pool).await?,
                Db::Postgres(pool) => sqlx::query_scalar(SQL).fetch_one(pool).await?,
            };
            if labelled > 0 {
                bail!(
                    "{}: already uses the {} scale and holds {labelled} labels; start a new database for the {} scale",
                    self.path.display(),
                    current.name,
                    scale.name
                );
            }
        }
        let value = serde_json::to_string(scale)?;
        const SET: &str = "INSERT INTO settings(key, value) VALUES ('scale', $1) \
                           ON CONFLICT(key) DO UPDATE SET value = excluded.value";
        match &self.db {
            Db::Sqlite(pool) => {
                sqlx::query(SET).bind(value).execute(pool).await?;
            }
            Db::Postgres(pool) => {
                sqlx::query(SET).bind(value).execute(pool).await?;
            }
        }
        Ok(())
    }
}

/// Reads the applied schema versions without writing, and refuses a database that has versions
/// this build does not know. Runs before any write-capable connection exists, so the refused
/// file keeps its exact bytes.
async fn refuse_newer_schema(path: &Path) -> Result<()> {
    let found = match newest_applied(path).await {
        // A hot rollback journal: a process in rollback-journal mode (a database made
        // elsewhere, or one killed while it was being switched to WAL) died mid-transaction.
        // A read-only connection cannot roll it back; a plain read on a writable one does, as
        // SQLite recovers any hot journal, which puts back the file as it was before that
        // transaction. Then the check runs again, read-only.
        Err(e) if is_hot_journal(&e) => {
            roll_back_hot_journal(path).await?;
            newest_applied(path).await
        }
        other => other,
    }
    .with_context(|| format!("{}: not a SQLite database", path.display()))?;
    let known = Store::schema_version();
    if let Some(found) = found
        && found > known
    {
        return Err(OpenError::NewerSchema {
            path: path.display().to_string(),
            found,
            known,
        }
        .into());
    }
    Ok(())
}

/// The newest schema version applied to the database at `path`, read without writing.
async fn newest_applied(path: &Path) -> Result<Option<i64>, sqlx::Error> {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await?;
    let has_table: Option<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_optional(&mut conn)
    .await?;
    let found = match has_table {
        Some(_) => {
            sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations")
                .fetch_one(&mut conn)
                .await?
        }
        None => None,
    };
    conn.close().await?;
    Ok(found)
}

/// SQLITE_READONLY_ROLLBACK: a read-only connection met a hot journal it may not roll back.
fn is_hot_journal(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "776")
}

async fn roll_back_hot_journal(path: &Path) -> Result<()> {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("opening database {}", path.display()))?;
    sqlx::query("SELECT count(*) FROM sqlite_master")
        .execute(&mut conn)
        .await
        .with_context(|| {
            format!(
                "{}: rolling back an interrupted transaction",
                path.display()
            )
        })?;
    conn.close().await?;
    Ok(())
}
