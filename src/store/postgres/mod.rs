//! A team's store on PostgreSQL: `--db postgres://…`. The same schema as SQLite's, in
//! `migrations/postgres/`, version for version. The password comes from `PGPASSWORD` or
//! `~/.pgpass` (sqlx reads both), or the URL the user typed; the store never writes a URL down
//! with its password.

pub(super) mod import;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

use super::schema::PG_MIGRATOR;
use super::{Db, OpenError, Store};

/// A `--db` value that names a PostgreSQL database rather than a SQLite file.
pub fn is_postgres_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

pub(super) fn url_of(path: &Path) -> Option<&str> {
    path.to_str().filter(|s| is_postgres_url(s))
}

/// The error of work that has no PostgreSQL counterpart yet.
pub(super) fn not_yet() -> anyhow::Error {
    anyhow!("this does not run against a PostgreSQL database yet; run it on a SQLite file")
}

/// SQL for now plus `secs` as the schema's times are written (UTC ISO-8601 text with
/// milliseconds, which compare as text), on the server's clock so that machines agree.
pub(super) fn time_sql(secs: f64) -> String {
    format!(
        "to_char(clock_timestamp() AT TIME ZONE 'UTC' + make_interval(secs => {secs}), \
         'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
    )
}

/// The URL as messages and files may show it: without a password, in the user part or as a
/// `password=` parameter.
pub(super) fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (rest, query) = rest
        .split_once('?')
        .map_or((rest, None), |(r, q)| (r, Some(q)));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split_once(':').map_or(user, |(u, _)| u);
            format!("{user}@{host}")
        }
        None => authority.to_string(),
    };
    let query = query
        .map(|q| {
            q.split('&')
                .filter(|kv| !kv.starts_with("password="))
                .collect::<Vec<_>>()
                .join("&")
        })
        .filter(|q| !q.is_empty())
        .map_or(String::new(), |q| format!("?{q}"));
    format!("{scheme}://{authority}{path}{query}")
}

/// A command-line argument or `--db` value as messages and files may show it: a PostgreSQL
/// URL (alone or after `--db=`) without its password, anything else as it is.
pub fn without_password(arg: &str) -> String {
    match arg.split_once('=') {
        Some((flag, url)) if flag.starts_with("--") && is_postgres_url(url) => {
            format!("{flag}={}", redacted(url))
        }
        _ if is_postgres_url(arg) => redacted(arg),
        _ => arg.to_string(),
    }
}

/// SQLSTATE 3D000: the database named does not exist.
/// Moves each table's identity past its largest id, once rows were written with their ids, so
/// that the next row inserted without one gets the next id.
pub(super) async fn identities_past_ids(
    conn: &mut sqlx::PgConnection,
    tables: impl IntoIterator<Item = &str>,
) -> Result<()> {
    for table in tables {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table} \
             HAVING max(id) IS NOT NULL"
        )))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn is_missing_database(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "3D000")
}

pub(super) async fn open(url: &str, create: bool) -> Result<Store> {
    let shown = redacted(url);
    let options: PgConnectOptions = url
        .parse()
        .with_context(|| format!("{shown}: not a PostgreSQL URL"))?;
    let pool = match connect(&options).await {
        Err(e) if is_missing_database(&e) && create => {
            create_database(&options)
                .await
                .with_context(|| format!("{shown}: creating the database"))?;
            connect(&options).await
        }
        Err(e) if is_missing_database(&e) => {
            return Err(OpenError::Missing { path: shown }.into());
        }
        other => other,
    }
    .with_context(|| format!("opening database {shown}"))?;
    let found = newest_applied(&pool)
        .await
        .with_context(|| format!("{shown}: reading the schema version"))?;
    let known = Store::schema_version();
    match found {
        Some(found) if found > known => {
            pool.close().await;
            return Err(OpenError::NewerSchema {
                path: shown,
                found,
                known,
            }
            .into());
        }
        None if !create => {
            pool.close().await;
            return Err(OpenError::Missing { path: shown }.into());
        }
        _ => {}
    }
    // A database already up to date is left alone: an annotator's role, which may not create
    // tables (not even the migrator's own, if absent), opens it all the same.
    if found != Some(known) {
        PG_MIGRATOR
            .run(&pool)
            .await
            .with_context(|| format!("applying the schema to {shown}"))?;
    }
    Ok(Store {
        db: Db::Postgres(pool),
        path: PathBuf::from(shown),
    })
}

async fn connect(options: &PgConnectOptions) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options.clone())
        .await
}

/// Creates the database the options name, through the server's maintenance database.
async fn create_database(options: &PgConnectOptions) -> Result<()> {
    let name = options
        .get_database()
        .context("the URL names no database")?
        .to_string();
    let mut conn = options.clone().database("postgres").connect().await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE DATABASE \"{}\"",
        name.replace('"', "\"\"")
    )))
    .execute(&mut conn)
    .await?;
    conn.close().await?;
    Ok(())
}

/// The newest schema version applied, read without writing; `None` on a database workbench
/// has not touched.
async fn newest_applied(pool: &PgPool) -> Result<Option<i64>, sqlx::Error> {
    let has_table: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await?;
    if !has_table {
        return Ok(None);
    }
    sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations")
        .fetch_one(pool)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_files_and_shown_without_their_password() {
        assert!(is_postgres_url("postgres://u@h/db"));
        assert!(is_postgres_url("postgresql:///db?host=/tmp"));
        assert!(!is_postgres_url("work.db"));
        assert!(!is_postgres_url("postgres.db"));
        assert_eq!(
            redacted("postgres://ann:s3cret@db.example:5432/labels?sslmode=require"),
            "postgres://ann@db.example:5432/labels?sslmode=require"
        );
        assert_eq!(redacted("postgres://ann@h/db"), "postgres://ann@h/db");
        assert_eq!(
            redacted("postgres:///db?host=/run/pg"),
            "postgres:///db?host=/run/pg"
        );
        assert_eq!(
            redacted("postgres:///db?password=x&host=/run/pg"),
            "postgres:///db?host=/run/pg"
        );
        assert_eq!(
            without_password("--db=postgres://ann:pw@h/db"),
            "--db=postgres://ann@h/db"
        );
        assert_eq!(
            without_password("postgres://ann:pw@h/db"),
            "postgres://ann@h/db"
        );
        assert_eq!(without_password("a=b:c@d"), "a=b:c@d");
    }
}
