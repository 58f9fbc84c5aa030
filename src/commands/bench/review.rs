//! Key press → frame in the review app over the import benchmark's database.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;

use super::{bench_store_path, peak_rss_mib, print_times};
use crate::store::Store;

/// Times key press → frame drawn in the review app over a big database (drawn to ratatui's
/// TestBackend at 140×44: the work of a real frame without a terminal's IO).
pub async fn review(dir: &Path, presses: usize, postgres: Option<&str>) -> Result<ExitCode> {
    use crate::tui::{Action, App, Theme};
    let store = Store::open_interactive(&bench_store_path(dir, postgres)?).await?;
    let opened = Instant::now();
    let mut app = App::new(store.clone(), "bench").await?;
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(140, 44))?;
    app.queue.page_size = 40;
    app.update(Action::Top).await?;
    terminal.draw(|f| crate::tui::draw(f, &app, Theme { color: true }))?;
    println!(
        "review benchmark: {} pairs; open to first frame {:.0} ms",
        app.queue.all_pairs,
        opened.elapsed().as_secs_f64() * 1e3
    );
    println!(
        "{:<28} {:>10} {:>10} {:>10}",
        "action", "median ms", "p99 ms", "max ms"
    );
    let scenarios: [(&str, Vec<Action>); 9] = [
        ("scroll (j)", vec![Action::Down]),
        ("page (PgDn)", vec![Action::PageDown]),
        ("filter (f, cycling them all)", vec![Action::NextFilter]),
        ("one label (L, cycling)", vec![Action::NextLabel]),
        ("one query (Q, on and off)", vec![Action::ThisQuery]),
        ("open a pair (⏎ then Esc)", vec![Action::Open, Action::Back]),
        ("jump to the end (G, g)", vec![Action::Bottom, Action::Top]),
        ("sort (s, cycling them all)", vec![Action::NextSort]),
        (
            "page in a sort (s, PgDn×3)",
            vec![
                Action::NextSort,
                Action::PageDown,
                Action::PageDown,
                Action::PageDown,
            ],
        ),
    ];
    for (name, actions) in scenarios {
        app.update(Action::Top).await?;
        let mut times = Vec::with_capacity(presses * actions.len());
        // Key press → counts shown (they come from the background, after the frame).
        let mut counted = Vec::new();
        for _ in 0..presses {
            for a in &actions {
                let t = Instant::now();
                app.update(*a).await?;
                terminal.draw(|f| crate::tui::draw(f, &app, Theme { color: true }))?;
                times.push(t.elapsed().as_secs_f64() * 1e3);
                if app.counting() {
                    app.settle().await?;
                    terminal.draw(|f| crate::tui::draw(f, &app, Theme { color: true }))?;
                    counted.push(t.elapsed().as_secs_f64() * 1e3);
                }
            }
        }
        print_times(name, &mut times);
        if !counted.is_empty() {
            print_times("  … counts shown", &mut counted);
        }
        while app.queue.filter != crate::store::QueueFilter::All {
            app.update(Action::NextFilter).await?;
        }
        while app.queue.sort != crate::store::QueueSort::Pair {
            app.update(Action::NextSort).await?;
        }
        while app.queue.scope.label.is_some() {
            app.update(Action::NextLabel).await?;
        }
        if app.queue.scope.query_id.is_some() {
            app.update(Action::ThisQuery).await?;
        }
    }
    // Keys pressed while `c` compares teacher and student over every pair in the background.
    if store.student_model(None).await?.is_some() {
        app.update(Action::Top).await?;
        app.settle().await?;
        let started = Instant::now();
        app.update(Action::Compare).await?;
        let mut times = Vec::new();
        while app.comparing() {
            let t = Instant::now();
            app.update(Action::Down).await?;
            app.poll_compare()?;
            terminal.draw(|f| crate::tui::draw(f, &app, Theme { color: true }))?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let ready = started.elapsed().as_secs_f64();
        if times.is_empty() {
            times.push(0.0);
        }
        print_times("scroll (j) while c compares", &mut times);
        println!(
            "  … the comparison was ready after {ready:.1} s, {} keys answered meanwhile",
            times.len()
        );
    } else {
        println!("(no student in the database: `student import` one to time keys during `c`)");
    }
    println!("peak RSS {:.0} MiB", peak_rss_mib().unwrap_or(0.0));
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
