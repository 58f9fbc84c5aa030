//! Developer probe: judges the first N fixture pairs of a database with the local teacher and
//! prints the label-position alternatives. `cargo run --example probe -- DB N`
use std::sync::Arc;

use workbench::store::Store;
use workbench::teacher::backend::{ChatRequest, OutputConstraint};
use workbench::teacher::local::LocalBackend;
use workbench::teacher::{Backend, Mode, Prompt, parse};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let store = Store::open(std::path::Path::new(&args[1])).await?;
    let n: usize = args[2].parse()?;
    let mode = if args.get(3).map(|s| s.as_str()) == Some("score") {
        Mode::Score
    } else {
        Mode::Cot
    };
    let scale = store.scale().await?;
    let backend =
        Arc::new(LocalBackend::load(&workbench::models::teacher(), Default::default()).await?);
    let prompt = Prompt::new(&scale, mode, true);
    for pair in store.first_pairs(n * 10).await?.into_iter().step_by(10) {
        let pp = prompt.for_pair(&pair);
        let constraint = match mode {
            Mode::Cot => OutputConstraint::JsonSchema(prompt.schema.clone()),
            Mode::Score => OutputConstraint::OneOf(prompt.label_names.clone()),
        };
        let req = ChatRequest {
            messages: pp.messages,
            constraint,
            max_tokens: 320,
            temperature: None,
            n: 1,
            top_logprobs: 10,
            penalties: Default::default(),
        };
        let t = std::time::Instant::now();
        let out = backend.complete(req).await?;
        let c = &out.choices[0];
        println!(
            "== {} | {} | gold {:?} | {:.1}s {}+{} tok",
            pair.query.text,
            pair.item.title,
            pair.gold_label,
            t.elapsed().as_secs_f64(),
            out.prompt_tokens,
            out.completion_tokens
        );
        println!("{}", c.text);
        if let Some(pos) = parse::label_position(&c.tokens) {
            for i in pos.saturating_sub(3)..(pos + 2).min(c.tokens.len()) {
                println!(
                    "tok {i} {:?} lp {:.4}: {:?}",
                    c.tokens[i].token,
                    c.tokens[i].logprob,
                    c.tokens[i]
                        .top
                        .iter()
                        .take(5)
                        .map(|(t, l)| format!("{t:?}:{:.4}", l))
                        .collect::<Vec<_>>()
                );
            }
        }
        println!(
            "dist {:?}",
            parse::label_distribution(&c.tokens, &scale).map(|d| d.probs)
        );
    }
    Ok(())
}
