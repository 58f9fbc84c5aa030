//! Terminal conventions shared by every command: colour that respects NO_COLOR, progress bars
//! that hide when stderr is not a terminal, and error reporting.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Logs go to stderr, quiet unless `RUST_LOG` asks (mistral.rs is chatty at info).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,mistralrs_core=error,mistralrs=error,sqlx=error")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Whether to colour output: never with NO_COLOR set (any value), never into a pipe.
pub fn color_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// Prints the error chain and picks the exit code. A closed pipe (`workbench stats | head`) ends quietly.
pub fn report_error(err: &anyhow::Error) -> ExitCode {
    if err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    }) {
        return ExitCode::SUCCESS;
    }
    let mut msg = format!("error: {err}");
    for cause in err.chain().skip(1) {
        msg.push_str(&format!("\n  caused by: {cause}"));
    }
    // Messages can quote the data they are about (a row of a file): shown, never obeyed.
    eprintln!("{}", crate::domain::text::inert_lines(&msg));
    ExitCode::from(1)
}

/// `workbench stats | head` ends quietly, as Unix tools do, instead of panicking on a closed pipe.
pub fn quiet_broken_pipe() {
    #[cfg(unix)]
    // SAFETY: restores the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// A progress bar over a known amount of work, drawn on stderr only when it is a terminal.
pub fn progress(len: u64, template: &str) -> ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(len)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("█▉▊▋▌▍▎▏ "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A horizontal bar of `width` cells for a value in [0, 1], for plain-text distributions.
pub fn bar(value: f64, width: usize) -> String {
    let cells = (value.clamp(0.0, 1.0) * width as f64 * 8.0).round() as usize;
    let full = cells / 8;
    let part = cells % 8;
    let mut s = "█".repeat(full);
    if part > 0 && full < width {
        s.push(['▏', '▎', '▍', '▌', '▋', '▊', '▉'][part - 1]);
    }
    let used = s.chars().count();
    s.push_str(&" ".repeat(width.saturating_sub(used)));
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn bar_fills_proportionally() {
        assert_eq!(super::bar(1.0, 4), "████");
        assert_eq!(super::bar(0.0, 4), "    ");
        assert_eq!(super::bar(0.5, 4), "██  ");
        assert_eq!(super::bar(0.5, 4).chars().count(), 4);
    }
}
