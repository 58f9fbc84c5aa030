//! Teacher against student: agreement figures, a scatter of the two scores (ratatui Chart) and
//! the pairs where they differ most.

use super::shown;
use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::Line;
use ratatui::widgets::{
    Axis, Block, Borders, Cell, Chart, Dataset, GraphType, Paragraph, Row, Table, TableState,
};

use super::app::App;
use super::theme::Theme;
use crate::domain::metrics::agreement_table;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let Some(state) = &app.compare else { return };
    let c = &state.comparison;
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Length(8), Constraint::Min(8)])
        .split(area);
    let fmt = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:.3}"));
    let mut figures_of = vec![("teacher vs human", &c.teacher_vs_human)];
    if let Some(a) = &c.teacher_calibrated_vs_human {
        figures_of.push(("teacher calibrated", a));
    }
    figures_of.push(("student vs human", &c.student_vs_human));
    figures_of.push(("teacher vs student", &c.teacher_vs_student));
    let table = agreement_table(&figures_of);
    let mut figures: Vec<Line> = table
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                Line::styled(l, theme.title())
            } else {
                Line::from(l)
            }
        })
        .collect();
    figures.push(Line::from(format!(
        "NDCG@10 teacher {} · student {} · score correlation {}",
        fmt(c.ndcg10_teacher),
        fmt(c.ndcg10_student),
        fmt(c.score_pearson)
    )));
    frame.render_widget(
        Paragraph::new(figures).block(Block::default().borders(Borders::ALL).title(format!(
            " teacher vs student `{}` · {} pairs both scored ({} by the student) ",
            c.student, c.judged_pairs, c.pairs
        ))),
        rows[0],
    );

    let cols = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Percentage(40), Constraint::Percentage(60)])
        .split(rows[1]);
    let points: Vec<(f64, f64)> = c.points.iter().take(5000).copied().collect();
    let diagonal = [(0.0, 0.0), (1.0, 1.0)];
    let chart = Chart::new(vec![
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(theme.dim())
            .data(&diagonal),
        Dataset::default()
            .name("pairs")
            .marker(Marker::Braille)
            .graph_type(GraphType::Scatter)
            .style(theme.human())
            .data(&points),
    ])
    .block(Block::default().borders(Borders::ALL).title(" scores "))
    .x_axis(
        Axis::default()
            .title("teacher")
            .bounds([0.0, 1.0])
            .labels(["0", "0.5", "1"]),
    )
    .y_axis(
        Axis::default()
            .title("student")
            .bounds([0.0, 1.0])
            .labels(["0", "0.5", "1"]),
    );
    frame.render_widget(chart, cols[0]);

    let header =
        Row::new(["teacher", "student", "T", "S", "H", "query", "item"]).style(theme.title());
    let body: Vec<Row> = c
        .disagreements
        .iter()
        .map(|d| {
            Row::new(vec![
                Cell::from(format!("{:.2}", d.teacher_score)),
                Cell::from(format!("{:.2}", d.student_score)),
                Cell::from(d.teacher.clone()),
                Cell::from(d.student.clone()),
                Cell::from(d.human.clone().unwrap_or_else(|| "-".into())),
                Cell::from(shown(&d.query)),
                Cell::from(shown(&d.title)),
            ])
        })
        .collect();
    let table = Table::new(
        body,
        [
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(2),
            Constraint::Length(2),
            Constraint::Length(2),
            Constraint::Percentage(30),
            Constraint::Percentage(70),
        ],
    )
    .header(header)
    .row_highlight_style(theme.selected())
    .block(
        Block::default()
            .borders(Borders::ALL)
            .title(" largest differences (⏎ opens) "),
    );
    let mut table_state = TableState::default().with_selected(Some(state.selected));
    frame.render_stateful_widget(table, cols[1], &mut table_state);
}
