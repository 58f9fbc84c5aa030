use super::shown;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Block, Borders, Cell, Row, Table};

use super::app::App;
use super::theme::Theme;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    // Columns no row of the page fills give their room to query and item: at 80 columns
    // that is the difference between reading a title and guessing it.
    let students = app.queue.rows.iter().any(|r| r.student_score.is_some());
    let flagged = app.queue.rows.iter().any(|r| r.findings > 0);
    let keep = [true, true, true, true, true, true, students, flagged, true];
    let pick = |cells: Vec<Cell<'static>>| -> Vec<Cell<'static>> {
        cells
            .into_iter()
            .zip(keep)
            .filter_map(|(c, k)| k.then_some(c))
            .collect()
    };
    let header = Row::new(pick(
        [
            "query", "item", "gold", "teacher", "p", "", "student", "flags", "human",
        ]
        .map(Cell::from)
        .to_vec(),
    ))
    .style(theme.title());
    let rows = app.queue.rows.iter().enumerate().map(|(i, r)| {
        let (p, bar) = match &r.teacher_dist {
            Some(d) => {
                let (_, p) = d.argmax();
                (format!("{:.2}", p), crate::terminal::bar(p, 8))
            }
            None => (String::new(), String::new()),
        };
        let teacher = if r.parse_error {
            "parse error".to_string()
        } else {
            r.teacher_label.clone().unwrap_or_else(|| "—".into())
        };
        let student = match (&r.student_label, r.student_score) {
            (Some(l), Some(x)) => format!("{l} {x:.2}"),
            _ => String::new(),
        };
        let flags = if r.findings > 0 {
            format!("⚑{}", r.findings)
        } else {
            String::new()
        };
        let row = Row::new(pick(vec![
            Cell::from(shown(&r.query)),
            Cell::from(shown(&r.title)),
            Cell::from(r.gold_label.clone().unwrap_or_else(|| "—".into())),
            Cell::from(teacher),
            Cell::from(p),
            Cell::from(bar),
            Cell::from(student),
            Cell::from(flags),
            Cell::from(r.human.clone().unwrap_or_default()),
        ]));
        if i == app.queue.selected {
            row.style(theme.selected())
        } else {
            row
        }
    });
    let widths: Vec<Constraint> = [
        Constraint::Fill(2),
        Constraint::Fill(3),
        Constraint::Length(4),
        Constraint::Length(11),
        Constraint::Length(4),
        Constraint::Length(8),
        Constraint::Length(10),
        Constraint::Length(5),
        Constraint::Length(5),
    ]
    .into_iter()
    .zip(keep)
    .filter_map(|(w, k)| k.then_some(w))
    .collect();
    let plural = if app.queue.total == 1 { "" } else { "s" };
    let mut search = match (&app.queue.search_input, &app.queue.scope.search) {
        (Some(typing), _) => format!(" · search: {typing}▏"),
        (None, Some(s)) => format!(" · \"{s}\""),
        (None, None) => String::new(),
    };
    if let Some(l) = &app.queue.scope.label {
        search.push_str(&format!(" · teacher {l}"));
    }
    if let Some(q) = &app.queue.scope_query {
        search.push_str(&format!(" · query \"{}\"", shown(q)));
    }
    let sort = if app.queue.sort == crate::store::QueueSort::Pair {
        String::new()
    } else {
        format!(" · by {}", app.queue.sort.name())
    };
    let count = if app.counting() {
        "counting…".to_string()
    } else {
        format!("{} pair{plural}", app.queue.total)
    };
    let title = format!(
        " queue · {}{search}{sort} · {count} ",
        app.queue.filter.name()
    );
    let table = Table::new(rows, widths).header(header).block(
        Block::default()
            .borders(Borders::ALL)
            .title(title)
            .title_style(theme.title()),
    );
    frame.render_widget(table, area);
}
