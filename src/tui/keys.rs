//! Every key binding in one table; the help screen is drawn from the same table.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a key asks the app to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Open,
    Back,
    Quit,
    Help,
    NextFilter,
    Refresh,
    NextUnreviewed,
    CycleVerdict,
    SetLabel(usize),
    Accept,
    AcceptAndNext,
    Reject,
    Edit,
    Undo,
    Redo,
    Compare,
    Search,
    NextSort,
    AddDimension,
    RemoveDimension,
    Note,
    NextLabel,
    ThisQuery,
    ItemText,
}

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Anywhere,
    Queue,
    Detail,
    Compare,
}

pub struct Binding {
    pub keys: &'static str,
    pub context: Context,
    pub action: Action,
    pub help: &'static str,
}

const fn b(keys: &'static str, context: Context, action: Action, help: &'static str) -> Binding {
    Binding {
        keys,
        context,
        action,
        help,
    }
}

pub const BINDINGS: &[Binding] = &[
    b(
        "j ↓",
        Context::Anywhere,
        Action::Down,
        "next row / next step",
    ),
    b(
        "k ↑",
        Context::Anywhere,
        Action::Up,
        "previous row / previous step",
    ),
    b("PgDn ^d", Context::Queue, Action::PageDown, "next page"),
    b("PgUp ^u", Context::Queue, Action::PageUp, "previous page"),
    b("g Home", Context::Queue, Action::Top, "first pair"),
    b("G End", Context::Queue, Action::Bottom, "last pair"),
    b("⏎ l", Context::Queue, Action::Open, "open the pair"),
    b(
        "f",
        Context::Queue,
        Action::NextFilter,
        "next filter: all, unreviewed, to review (judged, unreviewed: what is left), teacher ≠ gold, low confidence, parse error, flagged, teacher ≠ student",
    ),
    b(
        "L",
        Context::Queue,
        Action::NextLabel,
        "only pairs the teacher gave one label: next label of the scale, then all again",
    ),
    b(
        "Q",
        Context::Queue,
        Action::ThisQuery,
        "only the selected pair's query (again: every query)",
    ),
    b(
        "s",
        Context::Queue,
        Action::NextSort,
        "next order: pair, confidence (lowest first), disagreement (teacher ≠ gold, surest first), query",
    ),
    b(
        "r",
        Context::Queue,
        Action::Refresh,
        "reload (judgments written meanwhile appear)",
    ),
    b(
        "n",
        Context::Anywhere,
        Action::NextUnreviewed,
        "jump to the next unreviewed pair",
    ),
    b(
        "v",
        Context::Detail,
        Action::CycleVerdict,
        "cycle the verdict of the selected dimension",
    ),
    b(
        "1-9",
        Context::Detail,
        Action::SetLabel(0),
        "set the label (numbers follow the scale)",
    ),
    b(
        "a",
        Context::Detail,
        Action::Accept,
        "accept the teacher's judgment as it stands",
    ),
    b(
        "A",
        Context::Detail,
        Action::AcceptAndNext,
        "accept and go to the next unreviewed pair (⏎ never writes)",
    ),
    b(
        "i",
        Context::Detail,
        Action::ItemText,
        "the item's whole text: description, bullet points, attributes (j/k scroll, i or Esc closes)",
    ),
    b(
        "x",
        Context::Detail,
        Action::Reject,
        "reject the judgment (not to be learned from)",
    ),
    b(
        "e",
        Context::Detail,
        Action::Edit,
        "edit the selected step, or a dimension's values (^s saves, Esc cancels)",
    ),
    b(
        "+",
        Context::Detail,
        Action::AddDimension,
        "add a dimension: its name and values (^s adds; then v sets its verdict)",
    ),
    b(
        "-",
        Context::Detail,
        Action::RemoveDimension,
        "remove the selected dimension",
    ),
    b(
        "N",
        Context::Detail,
        Action::Note,
        "write a note on the pair (^s saves, Esc cancels)",
    ),
    b(
        "u",
        Context::Detail,
        Action::Undo,
        "undo your last change on this pair",
    ),
    b("^r", Context::Detail, Action::Redo, "redo"),
    b(
        "Esc h q",
        Context::Detail,
        Action::Back,
        "back to the queue",
    ),
    b(
        "/",
        Context::Queue,
        Action::Search,
        "search query and item text (⏎ applies, empty clears, Esc cancels)",
    ),
    b(
        "c",
        Context::Queue,
        Action::Compare,
        "compare teacher and student: scatter, agreement, largest differences",
    ),
    b(
        "⏎ l",
        Context::Compare,
        Action::Open,
        "open the selected pair",
    ),
    b("Esc q", Context::Compare, Action::Back, "back to the queue"),
    b(
        "?",
        Context::Anywhere,
        Action::Help,
        "this help (any key closes it, and does nothing else)",
    ),
    b("Esc", Context::Queue, Action::Back, "clear the search"),
    b(
        "q ^c",
        Context::Queue,
        Action::Quit,
        "quit (every change is already saved)",
    ),
];

/// The action of a key in a context, if any.
pub fn action_for(key: KeyEvent, context: Context) -> Option<Action> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let detail = context == Context::Detail;
    let compare = context == Context::Compare;
    Some(match key.code {
        KeyCode::Char('c') if ctrl => Action::Quit,
        KeyCode::Char('d') if ctrl => Action::PageDown,
        KeyCode::Char('u') if ctrl => Action::PageUp,
        KeyCode::Char('r') if ctrl => Action::Redo,
        KeyCode::Char('j') | KeyCode::Down => Action::Down,
        KeyCode::Char('k') | KeyCode::Up => Action::Up,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::Char('g') | KeyCode::Home => Action::Top,
        KeyCode::Char('G') | KeyCode::End => Action::Bottom,
        KeyCode::Char('?') => Action::Help,
        KeyCode::Char('n') => Action::NextUnreviewed,
        // ⏎ pressed twice from the queue must not accept a pair never read: it only opens.
        KeyCode::Enter | KeyCode::Char('l') if detail => Action::Open,
        KeyCode::Enter | KeyCode::Char('l') => Action::Open,
        KeyCode::Esc | KeyCode::Char('h') if detail => Action::Back,
        KeyCode::Char('q') if detail => Action::Back,
        KeyCode::Char('q') | KeyCode::Esc if compare => Action::Back,
        // Esc in the queue clears a search; it never quits.
        KeyCode::Esc => Action::Back,
        KeyCode::Char('c') if !detail => Action::Compare,
        KeyCode::Char('/') if context == Context::Queue => Action::Search,
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Char('f') => Action::NextFilter,
        KeyCode::Char('r') => Action::Refresh,
        KeyCode::Char('v') if detail => Action::CycleVerdict,
        KeyCode::Char('a') if detail => Action::Accept,
        KeyCode::Char('A') if detail => Action::AcceptAndNext,
        KeyCode::Char('i') if detail => Action::ItemText,
        KeyCode::Char('x') if detail => Action::Reject,
        KeyCode::Char('e') if detail => Action::Edit,
        KeyCode::Char('u') if detail => Action::Undo,
        KeyCode::Char('+') if detail => Action::AddDimension,
        KeyCode::Char('-') if detail => Action::RemoveDimension,
        KeyCode::Char('N') if detail => Action::Note,
        KeyCode::Char('s') if context == Context::Queue => Action::NextSort,
        KeyCode::Char('L') if context == Context::Queue => Action::NextLabel,
        KeyCode::Char('Q') if context == Context::Queue => Action::ThisQuery,
        KeyCode::Char(c @ '1'..='9') if detail => Action::SetLabel(c as usize - '1' as usize),
        _ => return None,
    })
}
