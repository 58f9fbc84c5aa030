use super::shown;
use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::app::{App, Detail, StepRef};
use super::theme::Theme;
use crate::domain::review::TextStep;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let Some(d) = &app.detail else { return };
    let parts = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(8),
            Constraint::Min(6),
            Constraint::Length(app.scale.len() as u16 + 3),
        ])
        .split(area);
    draw_pair(frame, parts[0], d, theme);
    draw_rationale(frame, parts[1], app, d, theme);
    draw_distribution(frame, parts[2], app, d, theme);
    if let Some((target, area)) = &d.editor {
        let popup = centered(parts[1], 80, 50);
        frame.render_widget(ratatui::widgets::Clear, popup);
        let mut area = area.clone();
        area.set_block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" edit {} · ^s save · Esc cancel ", target.as_str())),
        );
        frame.render_widget(&area, popup);
    }
    if let Some(scroll) = d.item_scroll {
        draw_item_text(frame, area, d, scroll, theme);
    }
}

/// The item's whole text over the detail view (`i`): title, brand, each attribute with bullet
/// points one per line, and the description, wrapped and scrolled.
fn draw_item_text(frame: &mut Frame, area: Rect, d: &Detail, scroll: u16, theme: Theme) {
    let item = &d.pair.item;
    let mut lines = vec![
        Line::from(vec![
            Span::styled("title  ", theme.title()),
            Span::raw(shown(&item.title)),
        ]),
        Line::from(vec![
            Span::styled("brand  ", theme.title()),
            Span::raw(shown(&item.brand)),
        ]),
    ];
    for (name, value) in item.attribute_lines() {
        lines.push(Line::styled(name.replace('_', " "), theme.title()));
        for part in value.lines().filter(|l| !l.trim().is_empty()) {
            let mark = if name == "bullet_points" {
                "  • "
            } else {
                "  "
            };
            lines.push(Line::raw(format!("{mark}{}", shown(part))));
        }
    }
    lines.push(Line::styled("description", theme.title()));
    if item.description.trim().is_empty() {
        lines.push(Line::styled("  —", theme.dim()));
    }
    for part in item.description.lines() {
        lines.push(Line::raw(format!("  {}", shown(part))));
    }
    let inner = area.height.saturating_sub(2);
    let p = Paragraph::new(lines).wrap(Wrap { trim: false });
    let rows = p.line_count(area.width.saturating_sub(2)) as u16;
    let scroll = scroll.min(rows.saturating_sub(inner));
    let more = if rows > inner + scroll {
        " · ↓ more"
    } else {
        ""
    };
    let block = Block::default().borders(Borders::ALL).title(format!(
        " item {} · j/k scroll · i or Esc closes{more} ",
        shown(&item.ext_id)
    ));
    frame.render_widget(ratatui::widgets::Clear, area);
    frame.render_widget(p.scroll((scroll, 0)).block(block), area);
}

fn centered(r: Rect, w: u16, h: u16) -> Rect {
    let width = r.width * w / 100;
    let height = (r.height * h / 100).max(5);
    Rect {
        x: r.x + (r.width - width) / 2,
        y: r.y + (r.height.saturating_sub(height)) / 2,
        width,
        height,
    }
}

fn draw_pair(frame: &mut Frame, area: Rect, d: &Detail, theme: Theme) {
    let item = &d.pair.item;
    let (text, _) = crate::domain::prompt::render_item(item);
    let mut lines = vec![
        Line::from(vec![
            Span::styled("query ", theme.title()),
            Span::raw(shown(&d.pair.query.text)),
        ]),
        Line::from(vec![
            Span::styled("gold  ", theme.title()),
            Span::raw(d.pair.gold_label.clone().unwrap_or_else(|| "—".into())),
            Span::styled(
                format!(
                    "   {} / {}",
                    shown(&d.pair.query.ext_id),
                    shown(&item.ext_id)
                ),
                theme.dim(),
            ),
        ]),
    ];
    for (i, l) in text.lines().enumerate() {
        let head = if i == 0 { "item  " } else { "      " };
        lines.push(Line::from(vec![
            Span::styled(head, theme.title()),
            Span::raw(shown(l)),
        ]));
    }
    let p = Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .block(Block::default().borders(Borders::ALL).title(" pair "));
    frame.render_widget(p, area);
}

fn draw_rationale(frame: &mut Frame, area: Rect, app: &App, d: &Detail, theme: Theme) {
    let r = &d.reviewed;
    let mut lines: Vec<Line> = Vec::new();
    match &d.judgment {
        None => lines.push(Line::from(format!(
            "no teacher judgment yet: `workbench teach --only {}/{}`",
            shown(&d.pair.query.ext_id),
            shown(&d.pair.item.ext_id)
        ))),
        Some(j) => {
            lines.push(Line::styled(
                format!(
                    "teacher {} · prompt {} · {}",
                    shown(&j.model),
                    shown(&j.prompt_hash),
                    j.mode
                ),
                theme.dim(),
            ));
            if let Some(e) = &j.parse_error {
                lines.push(Line::styled(
                    format!("did not parse: {}", shown(e)),
                    theme.error(),
                ));
                lines.push(Line::raw(format!("raw: {}", shown(&j.raw_output))));
            }
        }
    }
    let label_name = |k: &str| app.scale.name_of(k);
    // The line the selection is on, and whether it is the last step (then what follows it,
    // label, review state and findings, is scrolled into view too).
    let mut selected_line = None;
    let last_step = d.steps().len().saturating_sub(1);
    if let Some(rat) = &r.rationale {
        for (i, step) in d.steps().iter().enumerate() {
            let cursor = if i == d.cursor { "▶ " } else { "  " };
            let mut continuation: Vec<Line> = Vec::new();
            let line = match step {
                StepRef::Text(t) => {
                    let key = t.as_str();
                    let text = match t {
                        TextStep::QueryAnalysis => &rat.query_analysis,
                        TextStep::ItemAnalysis => &rat.item_analysis,
                        TextStep::Conclusion => &rat.conclusion,
                    };
                    let who = if r.source_of(key) == crate::domain::review::Source::Human {
                        "✎ "
                    } else {
                        ""
                    };
                    // A line break an annotator saved shows as one: later lines go under the
                    // first, indented past the step's name.
                    let mut parts = text.split('\n');
                    let first = parts.next().unwrap_or_default();
                    continuation = parts
                        .map(|p| Line::raw(format!("{:18}{}", "", shown(p))))
                        .collect();
                    Line::from(vec![
                        Span::raw(cursor),
                        Span::styled(format!("{:<16}", key.replace('_', " ")), theme.title()),
                        Span::styled(who, theme.human()),
                        Span::raw(shown(first)),
                    ])
                }
                StepRef::Dimension(name) => {
                    let Some(dim) = rat.dimensions.iter().find(|x| &x.name == name) else {
                        continue;
                    };
                    let who = if r.source_of(&format!("dimension:{name}"))
                        == crate::domain::review::Source::Human
                    {
                        "✎ "
                    } else {
                        ""
                    };
                    Line::from(vec![
                        Span::raw(cursor),
                        Span::styled(format!("{:<16}", shown(&dim.name)), theme.title()),
                        Span::styled(who, theme.human()),
                        Span::styled(
                            format!("{:<14}", dim.verdict.as_str()),
                            theme.verdict(dim.verdict),
                        ),
                        Span::raw(format!(
                            "query {:?} · item {:?}",
                            dim.query_value, dim.item_value
                        )),
                    ])
                }
            };
            let line = if i == d.cursor {
                selected_line = Some(lines.len() + continuation.len());
                line.style(theme.selected())
            } else {
                line
            };
            lines.push(line);
            lines.extend(continuation);
        }
        // The keys that set each label, beside the label they would change.
        let legend: Vec<String> = app
            .scale
            .labels
            .iter()
            .enumerate()
            .map(|(i, l)| format!("{} {}", i + 1, l.name))
            .collect();
        lines.push(Line::from(vec![
            Span::raw("  "),
            Span::styled(format!("{:<16}", "label"), theme.title()),
            Span::raw(label_name(&rat.label)),
            Span::styled(
                if r.human_label.is_some() {
                    " ✎ human"
                } else {
                    ""
                },
                theme.human(),
            ),
            Span::styled(format!("   keys: {}", legend.join(" · ")), theme.dim()),
        ]));
    } else if let Some(l) = &r.human_label {
        lines.push(Line::from(format!("human label: {}", label_name(l))));
    }
    let mut state = Vec::new();
    if r.accepted {
        state.push("accepted".to_string());
    }
    if r.rejected {
        state.push("rejected".to_string());
    }
    if !r.annotators.is_empty() {
        state.push(format!("reviewed by {}", shown(&r.annotators.join(", "))));
    }
    for n in &r.notes {
        state.push(format!("note: {}", shown(n)));
    }
    if !state.is_empty() {
        lines.push(Line::styled(state.join(" · "), theme.human()));
    }
    for f in &d.findings {
        let style = if f.severity == "error" {
            theme.error()
        } else {
            theme.dim()
        };
        lines.push(Line::styled(
            format!("⚑ {} {}: {}", f.severity, f.rule, shown(&f.detail)),
            style,
        ));
    }
    let (width, height) = (area.width.saturating_sub(2), area.height.saturating_sub(2));
    let rows = |lines: &[Line]| {
        Paragraph::new(lines.to_vec())
            .wrap(Wrap { trim: false })
            .line_count(width) as u16
    };
    let total = rows(&lines);
    // Scrolled just enough that the selected step is whole on screen: at any terminal size
    // the step `e` would edit is the step the annotator sees.
    let scroll = match selected_line {
        Some(_) if d.cursor == last_step => total.saturating_sub(height),
        Some(at) => (rows(&lines[..=at])).saturating_sub(height),
        None => 0,
    };
    let mut title = " rationale ".to_string();
    if scroll > 0 {
        title.push_str("· ↑ more ");
    }
    if total > scroll + height {
        title.push_str("· ↓ more ");
    }
    let p = Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .scroll((scroll, 0))
        .block(Block::default().borders(Borders::ALL).title(title));
    frame.render_widget(p, area);
}

/// The teacher's and the student's distributions as bars, side by side.
fn draw_distribution(frame: &mut Frame, area: Rect, app: &App, d: &Detail, theme: Theme) {
    let halves = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Percentage(50), Constraint::Percentage(50)])
        .split(area);
    let bars = |probs: &[f64]| -> Vec<Line> {
        app.scale
            .labels
            .iter()
            .zip(probs)
            .map(|(l, p)| {
                Line::from(vec![
                    Span::styled(format!("{:<12}", l.name), theme.title()),
                    Span::raw(crate::terminal::bar(*p, 20)),
                    Span::raw(format!(" {:>5.1}%", p * 100.0)),
                ])
            })
            .collect()
    };
    let (teacher, title) = match &d.judgment {
        None => (vec![Line::from("—")], " teacher ".to_string()),
        Some(j) => {
            let mut lines = bars(&j.distribution.probs);
            if let Some(c) = &j.calibrated {
                let shares: Vec<String> = app
                    .scale
                    .labels
                    .iter()
                    .zip(&c.probs)
                    .map(|(l, p)| format!("{} {:.0}%", l.key, p * 100.0))
                    .collect();
                lines.push(Line::from(vec![
                    Span::styled(format!("{:<12}", "calibrated"), theme.title()),
                    Span::raw(shares.join(" ")),
                ]));
            }
            (lines, format!(" teacher distribution ({}) ", j.dist_source))
        }
    };
    frame.render_widget(
        Paragraph::new(teacher).block(Block::default().borders(Borders::ALL).title(title)),
        halves[0],
    );
    let (student, title) = match &d.student {
        None => (
            vec![Line::from("no student score (workbench student score)")],
            " student ".to_string(),
        ),
        Some((name, s)) => {
            let label =
                &app.scale.labels[app.scale.student_label(s.score, s.distribution.as_deref())];
            let mut lines = match &s.distribution {
                Some(probs) if probs.len() == app.scale.len() => bars(probs),
                _ => Vec::new(),
            };
            lines.push(Line::from(vec![
                Span::styled(format!("{:<12}", "score"), theme.title()),
                Span::raw(crate::terminal::bar(s.score, 20)),
                Span::raw(format!(" {:.2} → {}", s.score, label.key)),
            ]));
            (lines, format!(" student {name} "))
        }
    };
    frame.render_widget(
        Paragraph::new(student).block(Block::default().borders(Borders::ALL).title(title)),
        halves[1],
    );
}
