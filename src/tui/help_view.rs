use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::app::View;
use super::keys::{BINDINGS, Context};
use super::theme::Theme;

/// The key table of the view on screen (and the keys that work anywhere), drawn from the same
/// `BINDINGS` the keyboard uses: one view's keys fit an 80×24 terminal, all of them do not.
pub fn draw(frame: &mut Frame, area: Rect, view: View, theme: Theme) {
    let mut lines = Vec::new();
    let here = match view {
        View::Queue => ("queue", Context::Queue),
        View::Detail => ("pair", Context::Detail),
        View::Compare => ("compare", Context::Compare),
    };
    for (title, ctx) in [("anywhere", Context::Anywhere), here] {
        lines.push(Line::styled(title, theme.title()));
        for b in BINDINGS.iter().filter(|b| b.context == ctx) {
            lines.push(Line::from(vec![
                Span::styled(format!("  {:<10}", b.keys), theme.human()),
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
