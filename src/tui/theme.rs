use ratatui::style::{Color, Modifier, Style};

use crate::domain::Verdict;

/// Colours, or none at all when NO_COLOR is set: emphasis then comes from bold and reverse.
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }

    pub fn selected(&self) -> Style {
        if self.color {
            Style::default()
                .bg(Color::DarkGray)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::REVERSED)
        }
    }

    pub fn title(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn dim(&self) -> Style {
        self.fg(Color::DarkGray)
    }

    pub fn error(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub fn human(&self) -> Style {
        self.fg(Color::Magenta)
    }

    pub fn verdict(&self, v: Verdict) -> Style {
        match v {
            Verdict::Match => self.fg(Color::Green),
            Verdict::Partial => self.fg(Color::Yellow),
            Verdict::Mismatch => self.fg(Color::Red),
            Verdict::NotMentioned => self.fg(Color::DarkGray),
        }
    }
}
