use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::ReviewArgs;
use crate::store::Store;

/// Opens the review app on the database.
pub async fn run(db: &Path, args: ReviewArgs) -> Result<ExitCode> {
    let store = Store::open_interactive(db).await?;
    // On PostgreSQL the database role is the annotator: row-level security saves changes in no
    // other name.
    let annotator = if let Some(role) = store.db_role().await? {
        if let Some(given) = args.annotator.filter(|a| a != &role) {
            anyhow::bail!(
                "on PostgreSQL the annotator is the database role: this connection is `{role}`, \
                 not `{given}`; connect as `{given}` (the URL's user) instead of passing --annotator"
            );
        }
        role
    } else {
        args.annotator
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "annotator".into())
    };
    crate::tui::run(store.clone(), &annotator).await?;
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
