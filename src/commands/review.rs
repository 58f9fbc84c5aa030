use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::ReviewArgs;
use crate::store::Store;

/// Opens the review app on the database.
pub async fn run(db: &Path, args: ReviewArgs) -> Result<ExitCode> {
    let store = Store::open_interactive(db).await?;
    let annotator = args
        .annotator
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "annotator".into());
    crate::tui::run(store.clone(), &annotator).await?;
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
