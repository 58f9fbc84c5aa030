//! Store work off the key path: a key's reads and writes run as tasks, and what each hands
//! back is applied to the app in the order the tasks were started. Events that arrive while
//! one runs wait for it, so every key acts on the state the keys before it left.

use std::future::Future;

use anyhow::Result;
use futures::FutureExt;
use tokio::task::{JoinError, JoinHandle};

use super::app::App;

/// What a store task hands back once its IO is done: the change it makes to the app.
pub(super) type Apply = Box<dyn FnOnce(&mut App) -> Result<()> + Send>;

/// What comes after a page load: told whether a page was there to show.
pub(super) type AfterLoad = Box<dyn FnOnce(&mut App, bool) -> Result<()> + Send>;

/// What comes after a task's result is applied (a change written and its pair reread, a page
/// reloaded).
pub(super) type Then = Box<dyn FnOnce(&mut App) -> Result<()> + Send>;

pub(super) fn nothing_after_load() -> AfterLoad {
    Box::new(|_, _| Ok(()))
}

pub(super) fn nothing_then() -> Then {
    Box::new(|_| Ok(()))
}

impl App {
    /// Runs `work` (store IO) as a task; what it hands back is applied, in the order tasks
    /// were started, by `poll_tasks` or `finish_tasks`. Events that arrive meanwhile wait
    /// for it, so every key acts on the state the keys before it left.
    pub(super) fn spawn(&mut self, work: impl Future<Output = Result<Apply>> + Send + 'static) {
        self.tasks.push_back(tokio::spawn(work));
    }

    /// Whether store work started by a key is still running.
    pub fn busy(&self) -> bool {
        !self.tasks.is_empty()
    }

    /// Applies the finished store tasks, in order, then the events that waited for them;
    /// true when the screen changed.
    pub fn poll_tasks(&mut self) -> Result<bool> {
        let mut changed = false;
        loop {
            if let Some(done) = self.tasks.front_mut().and_then(finished) {
                self.tasks.pop_front();
                let apply = done??;
                apply(self)?;
                changed = true;
            } else if !self.busy()
                && let Some(ev) = self.waiting.pop_front()
            {
                self.handle(ev)?;
                changed = true;
            } else {
                return Ok(changed);
            }
        }
    }

    /// Waits for the store tasks and the events behind them (tests, benchmarks, the first
    /// frame).
    pub async fn finish_tasks(&mut self) -> Result<()> {
        loop {
            if let Some(task) = self.tasks.pop_front() {
                let apply = task.await??;
                apply(self)?;
            } else if let Some(ev) = self.waiting.pop_front() {
                self.handle(ev)?;
            } else {
                return Ok(());
            }
        }
    }
}

/// The result of `task` if it has finished, else `None`. Read outside tokio's cooperative
/// budget: the terminal's loop never yields to the runtime between frames, and a handle
/// polled on a spent budget answers "not yet" even when its task is done.
fn finished<T>(task: &mut JoinHandle<T>) -> Option<std::result::Result<T, JoinError>> {
    if !task.is_finished() {
        return None;
    }
    tokio::task::unconstrained(task).now_or_never()
}

/// The result of a background task if it has finished (the slot is then empty), else `None`.
pub(super) fn take_finished<T>(
    slot: &mut Option<JoinHandle<T>>,
) -> Option<std::result::Result<T, JoinError>> {
    let done = finished(slot.as_mut()?)?;
    *slot = None;
    Some(done)
}
