use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::app::View;
use super::keys;
use super::theme::Theme;

/// The key table of the view on screen (and the keys that work anywhere), drawn from the same
/// key table the keyboard uses: one view's keys fit an 80×24 terminal, all of them do not.
pub fn draw(frame: &mut Frame, area: Rect, view: View, theme: Theme) {
    let mut lines = Vec::new();
    let context = view.keys();
    let anywhere: Vec<_> = keys::section(None).collect();
    let here: Vec<_> = keys::section(Some(context)).collect();
    let width = anywhere
        .iter()
        .chain(&here)
        .map(|b| b.keys_label().chars().count())
        .max()
        .unwrap_or(0)
        + 2;
    for (title, bindings) in [("anywhere", anywhere), (context.name(), here)] {
        lines.push(Line::styled(title, theme.title()));
        for b in bindings {
            lines.push(Line::from(vec![
                Span::styled(format!("  {:<width$}", b.keys_label()), theme.human()),
                Span::raw(b.help),
            ]));
        }
    }
    let h = (lines.len() as u16 + 2).min(area.height);
    let w = area.width.min(90);
    let popup = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" keys · any key closes this help "),
        ),
        popup,
    );
}
