use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::InitArgs;
use crate::domain::LabelScale;
use crate::store::Store;

/// Creates the database with its schema and label scale; on an existing database, checks it and
/// keeps it (changing the scale of a labelled database is refused).
pub async fn run(db: &Path, args: InitArgs) -> Result<ExitCode> {
    let scale = load_scale(&args.scale)?;
    let existed = match db.to_str().filter(|d| crate::store::is_postgres_url(d)) {
        Some(_) => match Store::open(db).await {
            Ok(store) => {
                store.close().await;
                true
            }
            Err(_) => false,
        },
        None => db.exists(),
    };
    let store = Store::create(db).await?;
    store.set_scale(&scale).await?;
    let verb = if existed { "checked" } else { "created" };
    println!(
        "{verb} {} (schema v{}, {} scale: {})",
        store.path().display(),
        Store::schema_version(),
        scale.name,
        scale.describe()
    );
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

pub fn load_scale(spec: &str) -> Result<LabelScale> {
    if let Some(s) = LabelScale::builtin(spec) {
        return Ok(s);
    }
    let text = std::fs::read_to_string(spec).with_context(|| {
        format!("--scale {spec}: not esci, wands or binary, and not a readable TOML file")
    })?;
    LabelScale::from_toml(&text).with_context(|| format!("{spec}: not a valid label scale"))
}
