use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    workbench::ui::quiet_broken_pipe();
    workbench::ui::bound_allocator_memory();
    let cli = workbench::cli::Cli::parse();
    workbench::ui::init_tracing();
    match workbench::commands::run(cli) {
        Ok(code) => code,
        Err(err) => workbench::ui::report_error(&err),
    }
}
