use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::widgets::{Gauge, Paragraph};

use super::app::{App, View};
use super::theme::Theme;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let parts = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Min(30), Constraint::Length(34)])
        .split(area);
    let position = match (&app.view, &app.detail) {
        (View::Detail, Some(d)) => format!("pair {}", d.pair.id),
        (View::Compare, _) => "compare".into(),
        _ => app
            .selected_row()
            .map(|r| format!("pair {}", r.pair_id))
            .unwrap_or_else(|| "empty".into()),
    };
    // The filter is in the queue's title already.
    let mut text = format!(" {} · {} · {}", app.annotator, position, app.status);
    // The loop back to the teacher: enough reviews it has not learnt from, and the command.
    if app.queue.since_calibration >= super::app::CALIBRATE_AFTER {
        text.push_str(&format!(
            " · {} reviews since the teacher's calibration: workbench teacher calibrate",
            app.queue.since_calibration
        ));
    }
    frame.render_widget(Paragraph::new(text).style(theme.dim()), parts[0]);
    let ratio = if app.queue.all_pairs > 0 {
        app.queue.reviewed_total as f64 / app.queue.all_pairs as f64
    } else {
        0.0
    };
    let gauge = Gauge::default()
        .ratio(ratio.clamp(0.0, 1.0))
        .label(format!(
            "reviewed {}/{}",
            app.queue.reviewed_total, app.queue.all_pairs
        ))
        .gauge_style(theme.human());
    frame.render_widget(gauge, parts[1]);
}
