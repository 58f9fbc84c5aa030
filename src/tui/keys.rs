//! Every key binding in one table: the keyboard's mapping, the help screen and the README's key
//! list are all read from `BINDINGS`.

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
    /// A click on the queue's row N (from the top of the page): selects it, or opens it when
    /// it is already selected.
    Click(usize),
}

/// Where a binding applies: the view on screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Queue,
    Detail,
    Compare,
}

const EVERY_VIEW: &[Context] = &[Context::Queue, Context::Detail, Context::Compare];
const QUEUE: &[Context] = &[Context::Queue];
const DETAIL: &[Context] = &[Context::Detail];
const COMPARE: &[Context] = &[Context::Compare];

/// A key as the table names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Ctrl(char),
    Enter,
    Esc,
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    /// 1 to 9: `Action::SetLabel` of the digit's place on the scale.
    Digits,
}

impl Key {
    /// How the help screen and the README write the key.
    pub fn label(self) -> String {
        match self {
            Key::Char(c) => c.to_string(),
            Key::Ctrl(c) => format!("^{c}"),
            Key::Enter => "⏎".into(),
            Key::Esc => "Esc".into(),
            Key::Up => "↑".into(),
            Key::Down => "↓".into(),
            Key::PageUp => "PgUp".into(),
            Key::PageDown => "PgDn".into(),
            Key::Home => "Home".into(),
            Key::End => "End".into(),
            Key::Digits => "1-9".into(),
        }
    }

    /// The digit's place (0 for 1) when `event` is this key; `Some(0)` for any other match.
    fn matches(self, event: KeyEvent) -> Option<usize> {
        let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
        let hit = match (self, event.code) {
            (Key::Ctrl(c), KeyCode::Char(k)) => ctrl && c == k,
            (Key::Digits, KeyCode::Char(k @ '1'..='9')) if !ctrl => {
                return Some(k as usize - '1' as usize);
            }
            (Key::Char(c), KeyCode::Char(k)) => !ctrl && c == k,
            (Key::Enter, KeyCode::Enter)
            | (Key::Esc, KeyCode::Esc)
            | (Key::Up, KeyCode::Up)
            | (Key::Down, KeyCode::Down)
            | (Key::PageUp, KeyCode::PageUp)
            | (Key::PageDown, KeyCode::PageDown)
            | (Key::Home, KeyCode::Home)
            | (Key::End, KeyCode::End) => true,
            _ => false,
        };
        hit.then_some(0)
    }
}

/// One line of the help screen: its keys, each with the action it asks for, in the views
/// where they apply.
pub struct Binding {
    pub keys: &'static [(Key, Action)],
    pub contexts: &'static [Context],
    pub help: &'static str,
}

impl Binding {
    /// The keys as the help screen writes them: "j ↓".
    pub fn keys_label(&self) -> String {
        self.keys
            .iter()
            .map(|(k, _)| k.label())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Whether the binding applies in every view (the help screen's "anywhere").
    pub fn anywhere(&self) -> bool {
        EVERY_VIEW.iter().all(|c| self.contexts.contains(c))
    }
}

const fn b(
    keys: &'static [(Key, Action)],
    contexts: &'static [Context],
    help: &'static str,
) -> Binding {
    Binding {
        keys,
        contexts,
        help,
    }
}

use Action as A;
use Key as K;

pub const BINDINGS: &[Binding] = &[
    b(
        &[(K::Char('j'), A::Down), (K::Down, A::Down)],
        EVERY_VIEW,
        "next row / next step",
    ),
    b(
        &[(K::Char('k'), A::Up), (K::Up, A::Up)],
        EVERY_VIEW,
        "previous row / previous step",
    ),
    b(
        &[(K::Char('n'), A::NextUnreviewed)],
        EVERY_VIEW,
        "jump to the next unreviewed pair",
    ),
    b(
        &[(K::Char('?'), A::Help)],
        EVERY_VIEW,
        "this help (any key closes it, and does nothing else)",
    ),
    b(
        &[(K::Ctrl('c'), A::Quit)],
        EVERY_VIEW,
        "quit (every change is already saved)",
    ),
    b(
        &[(K::PageDown, A::PageDown), (K::Ctrl('d'), A::PageDown)],
        QUEUE,
        "next page",
    ),
    b(
        &[(K::PageUp, A::PageUp), (K::Ctrl('u'), A::PageUp)],
        QUEUE,
        "previous page",
    ),
    b(
        &[(K::Char('g'), A::Top), (K::Home, A::Top)],
        QUEUE,
        "first pair",
    ),
    b(
        &[(K::Char('G'), A::Bottom), (K::End, A::Bottom)],
        QUEUE,
        "last pair",
    ),
    b(
        &[(K::Enter, A::Open), (K::Char('l'), A::Open)],
        QUEUE,
        "open the pair",
    ),
    b(
        &[(K::Char('f'), A::NextFilter)],
        QUEUE,
        "next filter: all, unreviewed, to review (judged, unreviewed: what is left), teacher ≠ gold, low confidence, parse error, flagged, teacher ≠ student",
    ),
    b(
        &[(K::Char('L'), A::NextLabel)],
        QUEUE,
        "only pairs the teacher gave one label: next label of the scale, then all again",
    ),
    b(
        &[(K::Char('Q'), A::ThisQuery)],
        QUEUE,
        "only the selected pair's query (again: every query)",
    ),
    b(
        &[(K::Char('s'), A::NextSort)],
        QUEUE,
        "next order: pair, confidence (lowest first), disagreement (teacher ≠ gold, surest first), query",
    ),
    b(
        &[(K::Char('r'), A::Refresh)],
        QUEUE,
        "reload (judgments written meanwhile appear)",
    ),
    b(
        &[(K::Char('/'), A::Search)],
        QUEUE,
        "search query and item text (⏎ applies, empty clears, Esc cancels)",
    ),
    b(
        &[(K::Char('c'), A::Compare)],
        QUEUE,
        "compare teacher and student: scatter, agreement, largest differences",
    ),
    b(&[(K::Esc, A::Back)], QUEUE, "clear the search"),
    b(&[(K::Char('q'), A::Quit)], QUEUE, "quit"),
    b(
        &[(K::Char('v'), A::CycleVerdict)],
        DETAIL,
        "cycle the verdict of the selected dimension",
    ),
    b(
        &[(K::Digits, A::SetLabel(0))],
        DETAIL,
        "set the label (numbers follow the scale)",
    ),
    b(
        &[(K::Char('a'), A::Accept)],
        DETAIL,
        "accept the teacher's judgment as it stands",
    ),
    b(
        &[(K::Char('A'), A::AcceptAndNext)],
        DETAIL,
        "accept and go to the next unreviewed pair",
    ),
    b(
        &[(K::Enter, A::Open), (K::Char('l'), A::Open)],
        DETAIL,
        "nothing: ⏎ never writes, so ⏎ ⏎ from the queue cannot accept a pair unread",
    ),
    b(
        &[(K::Char('i'), A::ItemText)],
        DETAIL,
        "the item's whole text: description, bullet points, attributes (j/k scroll, i or Esc closes)",
    ),
    b(
        &[
            (K::PageDown, A::PageDown),
            (K::PageUp, A::PageUp),
            (K::Char('g'), A::Top),
        ],
        DETAIL,
        "in the item's text: a page down, a page up, back to its top",
    ),
    b(
        &[(K::Char('x'), A::Reject)],
        DETAIL,
        "reject the judgment (not to be learned from)",
    ),
    b(
        &[(K::Char('e'), A::Edit)],
        DETAIL,
        "edit the selected step, or a dimension's values (^s saves, Esc cancels)",
    ),
    b(
        &[(K::Char('+'), A::AddDimension)],
        DETAIL,
        "add a dimension: its name and values (^s adds; then v sets its verdict)",
    ),
    b(
        &[(K::Char('-'), A::RemoveDimension)],
        DETAIL,
        "remove the selected dimension",
    ),
    b(
        &[(K::Char('N'), A::Note)],
        DETAIL,
        "write a note on the pair (^s saves, Esc cancels)",
    ),
    b(
        &[(K::Char('u'), A::Undo), (K::Ctrl('r'), A::Redo)],
        DETAIL,
        "undo your last change on this pair; redo",
    ),
    b(
        &[
            (K::Esc, A::Back),
            (K::Char('h'), A::Back),
            (K::Char('q'), A::Back),
        ],
        DETAIL,
        "back to the queue",
    ),
    b(
        &[(K::Enter, A::Open), (K::Char('l'), A::Open)],
        COMPARE,
        "open the selected pair",
    ),
    b(
        &[(K::Esc, A::Back), (K::Char('q'), A::Back)],
        COMPARE,
        "back to the queue",
    ),
];

/// The action of a key in a context, if any: the first binding of the view that holds it.
pub fn action_for(key: KeyEvent, context: Context) -> Option<Action> {
    BINDINGS
        .iter()
        .filter(|b| b.contexts.contains(&context))
        .flat_map(|b| b.keys.iter())
        .find_map(|(k, action)| {
            k.matches(key).map(|digit| match action {
                Action::SetLabel(_) => Action::SetLabel(digit),
                other => *other,
            })
        })
}

/// The bindings the help screen lists under `section`: those of every view for `None`, else
/// the view's own.
pub fn section(section: Option<Context>) -> impl Iterator<Item = &'static Binding> {
    BINDINGS.iter().filter(move |b| match section {
        None => b.anywhere(),
        Some(c) => !b.anywhere() && b.contexts.contains(&c),
    })
}

impl Context {
    /// The view's name on the help screen.
    pub fn name(self) -> &'static str {
        match self {
            Context::Queue => "queue",
            Context::Detail => "pair",
            Context::Compare => "compare",
        }
    }
}

/// The key table as the README lists it: a Markdown table, one row per binding, in the help
/// screen's sections.
pub fn markdown() -> String {
    let mut out = String::from("| where | keys | what they do |\n|---|---|---|\n");
    for part in [None]
        .into_iter()
        .chain(EVERY_VIEW.iter().copied().map(Some))
    {
        let name = part.map_or("anywhere", Context::name);
        for b in section(part) {
            let keys = b
                .keys
                .iter()
                .map(|(k, _)| format!("`{}`", k.label()))
                .collect::<Vec<_>>()
                .join(" ");
            out.push_str(&format!(
                "| {name} | {keys} | {} |\n",
                b.help.replace('|', "\\|")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    /// A key means one thing per view: no two bindings of a view claim the same key.
    #[test]
    fn no_key_is_bound_twice_in_a_view() {
        for context in EVERY_VIEW {
            let keys: Vec<Key> = BINDINGS
                .iter()
                .filter(|b| b.contexts.contains(context))
                .flat_map(|b| b.keys.iter().map(|(k, _)| *k))
                .collect();
            for (i, k) in keys.iter().enumerate() {
                assert!(!keys[i + 1..].contains(k), "{k:?} twice in {context:?}");
            }
        }
    }

    #[test]
    fn keys_map_as_the_table_says() {
        let none = KeyModifiers::NONE;
        let ctrl = KeyModifiers::CONTROL;
        let q = press(KeyCode::Char('q'), none);
        assert_eq!(action_for(q, Context::Queue), Some(Action::Quit));
        assert_eq!(action_for(q, Context::Detail), Some(Action::Back));
        assert_eq!(action_for(q, Context::Compare), Some(Action::Back));
        let ctrl_c = press(KeyCode::Char('c'), ctrl);
        for context in EVERY_VIEW {
            assert_eq!(action_for(ctrl_c, *context), Some(Action::Quit));
        }
        let c = press(KeyCode::Char('c'), none);
        assert_eq!(action_for(c, Context::Queue), Some(Action::Compare));
        assert_eq!(action_for(c, Context::Detail), None);
        let three = press(KeyCode::Char('3'), none);
        assert_eq!(
            action_for(three, Context::Detail),
            Some(Action::SetLabel(2))
        );
        assert_eq!(action_for(three, Context::Queue), None);
        let ctrl_r = press(KeyCode::Char('r'), ctrl);
        assert_eq!(action_for(ctrl_r, Context::Detail), Some(Action::Redo));
        let r = press(KeyCode::Char('r'), none);
        assert_eq!(action_for(r, Context::Queue), Some(Action::Refresh));
        assert_eq!(action_for(r, Context::Detail), None);
        let page = press(KeyCode::PageDown, none);
        assert_eq!(action_for(page, Context::Detail), Some(Action::PageDown));
        assert_eq!(action_for(page, Context::Compare), None);
        let shift_g = press(KeyCode::Char('G'), KeyModifiers::SHIFT);
        assert_eq!(action_for(shift_g, Context::Queue), Some(Action::Bottom));
    }

    /// The README lists the keys as this table does.
    #[test]
    fn the_readme_lists_the_key_table() {
        let readme = include_str!("../../README.md");
        let table = markdown();
        assert!(
            readme.contains(&table),
            "README.md's key list differs from the key table; put this in its place:\n{table}"
        );
    }
}
