//! The review app: a ratatui + crossterm terminal UI over the store. Keys become `Action`s
//! (keys.rs), `App::react` changes state at once and hands store work (reads, annotations) to
//! tasks whose results come back in order (app.rs), and the views only draw that state (one
//! file each). The loop draws while the store works.

pub mod app;
mod compare_view;
pub mod detail;
mod detail_view;
mod help_view;
pub mod keys;
mod queue_view;
mod status_bar;
mod tasks;
mod theme;

use std::time::{Duration, Instant};

use anyhow::Result;
use crossterm::event::{self, Event};
use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout};

pub use app::{App, View};
pub use keys::{Action, Context};
pub use theme::Theme;

use crate::store::Store;

/// Draws the whole screen from the app's state.
pub fn draw(frame: &mut Frame, app: &App, theme: Theme) {
    let parts = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Min(3), Constraint::Length(1)])
        .split(frame.area());
    match app.view {
        View::Queue => queue_view::draw(frame, parts[0], app, theme),
        View::Detail => detail_view::draw(frame, parts[0], app, theme),
        View::Compare => compare_view::draw(frame, parts[0], app, theme),
    }
    status_bar::draw(frame, parts[1], app, theme);
    if app.show_help {
        help_view::draw(frame, parts[0], app.view, theme);
    }
}

/// Text from the data as a view shows it: control characters and bidi controls as visible
/// stand-ins (ratatui drops zero-width characters, which would hide that they are there), so
/// an item's text can neither drive the annotator's terminal nor pass unseen.
pub(crate) fn shown(s: &str) -> String {
    crate::domain::text::inert(s).into_owned()
}

/// Feeds one terminal event to the app and waits for the store work it started (tests and
/// benchmarks; the terminal's loop uses `App::handle` and draws on).
pub async fn handle_event(app: &mut App, ev: Event) -> Result<()> {
    app.finish_tasks().await?;
    app.handle(ev)?;
    app.finish_tasks().await
}

/// Events handled between two frames at most, so the screen still follows a long burst.
const MAX_EVENTS_PER_FRAME: usize = 4096;

/// Runs the app in the terminal until the user quits. Every change was written when it was
/// made, so quitting (or a crash, or a kill) loses nothing already shown as saved.
pub async fn run(store: Store, annotator: &str) -> Result<()> {
    let mut app = App::new(store, annotator).await?;
    let theme = Theme {
        color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    let mut terminal = ratatui::init();
    crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture)?;
    let result = async {
        let mut last_refresh = Instant::now();
        while !app.quit {
            // The loop waits on the terminal, never on the runtime: yield once a frame so that
            // tokio's cooperative budget, which a spent loop would keep spent, starts afresh.
            tokio::task::yield_now().await;
            app.poll_tasks()?;
            app.poll_counts()?;
            app.poll_compare()?;
            let height = terminal.size()?.height;
            app.queue.page_size = (height.saturating_sub(4) as usize).max(1);
            terminal.draw(|f| draw(f, &app, theme))?;
            // Poll in short slices so other tasks run; refresh the queue every few seconds so
            // judgments written by a `teach` in another terminal appear.
            // While counts are worked out in the background, wake up often to show them; while
            // a key's store work runs, at once (it takes a millisecond or so).
            let wait = if app.busy() {
                1
            } else if app.counting() {
                20
            } else {
                250
            };
            if event::poll(Duration::from_millis(wait))? {
                // Every key already typed is handled before the next frame: a paste of
                // thousands of characters costs one frame, not one per character, and the
                // Enter or Esc behind it answers at once.
                let mut handled = 0;
                loop {
                    app.handle(event::read()?)?;
                    handled += 1;
                    if app.quit || handled >= MAX_EVENTS_PER_FRAME || !event::poll(Duration::ZERO)?
                    {
                        break;
                    }
                }
            } else if app.view == View::Queue
                && !app.busy()
                && last_refresh.elapsed() > Duration::from_secs(5)
            {
                app.refresh();
                last_refresh = Instant::now();
            }
        }
        anyhow::Ok(())
    }
    .await;
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    ratatui::restore();
    result
}
