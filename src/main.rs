use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    workbench::ui::quiet_broken_pipe();
    let cli = workbench::cli::Cli::parse();
    workbench::ui::init_tracing();
    match workbench::commands::run(cli) {
        Ok(code) => code,
        Err(err) => workbench::ui::report_error(&err),
    }
}

/// mimalloc instead of glibc's allocator: the export's reader thread allocates rows that the
/// writer frees, and glibc serialised those frees on an arena lock (soft_labels export of 1M
/// pairs: 113k → 234–266k rows/s; BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
