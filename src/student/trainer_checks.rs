//! Checks that catch a broken trainer, on the real all-MiniLM-L6-v2 weights: the trainable
//! encoder computes what candle-transformers' BERT computes, every encoder weight learns, and the
//! student can memorise a handful of labelled pairs (a trainer that cannot memorise cannot learn).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use super::bert::{Bert, BertConfig, Dropout, mean_pool};
use super::data::Example;
use super::model::{Kind, Losses, Student};
use super::train::{LossWeights, TrainOptions, batch_loss, train};
use crate::domain::LabelScale;

fn base() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/student-base");
    assert!(
        p.join("model.safetensors").exists(),
        "{} is missing: run scripts/fetch-models.sh first",
        p.display()
    );
    p
}

/// The first `n` fixture pairs with their gold label, as training examples (title and brand as
/// the passage).
fn fixture_examples(n: usize) -> Vec<Example> {
    let scale = LabelScale::esci();
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/esci-fixture.jsonl"),
    )
    .unwrap();
    text.lines()
        .take(n)
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            Example {
                group: s("query_id"),
                query: s("query"),
                passage: format!("{} | Brand: {}", s("title"), s("brand")),
                split: "train".into(),
                augmented: false,
                teacher: None,
                human: scale.index_of_key(&s("esci_label")),
                verdicts: Vec::new(),
            }
        })
        .collect()
}

fn human_only() -> Losses {
    Losses {
        kl: false,
        margin_mse: false,
        cot: false,
        human_weight: 1.0,
        ..Losses::default()
    }
}

/// Fine-tuning everything from the first step, no dropout, the best dev epoch kept.
fn options(out: PathBuf, epochs: usize, batch_size: usize) -> TrainOptions {
    TrainOptions {
        out,
        base: base(),
        epochs,
        batch_size,
        learning_rate: 1e-4,
        head_learning_rate: 2e-3,
        warmup: 0.1,
        patience: None,
        keep_last: false,
        dropout: 0.0,
        probe_epochs: 0,
        max_steps: None,
        restart: false,
    }
}

fn config(kind: Kind, max_tokens: usize) -> super::StudentConfig {
    super::new_config(kind, &LabelScale::esci(), human_only(), max_tokens, 0)
}

/// Sentence embeddings (mean-pooled token states) of query–item pairs, as the cross-encoder
/// reads them (token types 0 and 1), from our encoder and from candle-transformers' `BertModel`.
#[test]
fn the_trainable_encoder_embeds_as_candle_transformers_bert_does() {
    let base = base();
    let device = Device::Cpu;
    let student = Student::from_base(&base, config(Kind::Cross, 128)).unwrap();
    let pairs: Vec<(String, String)> = fixture_examples(6)
        .into_iter()
        .map(|e| (e.query, e.passage))
        .collect();
    let encodings = student
        .tokenizer
        .encode_batch(pairs, true)
        .expect("tokenizing");
    let (rows, cols) = (encodings.len(), encodings[0].len());
    let tensor = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| {
        let flat: Vec<u32> = encodings.iter().flat_map(|e| f(e).to_vec()).collect();
        Tensor::from_vec(flat, (rows, cols), &device).unwrap()
    };
    let (ids, types, mask) = (
        tensor(&|e| e.get_ids()),
        tensor(&|e| e.get_type_ids()),
        tensor(&|e| e.get_attention_mask()),
    );
    assert!(
        types.to_vec2::<u32>().unwrap()[0].contains(&1),
        "the item is segment 1"
    );

    let weights = base.join("model.safetensors");
    let vb =
        unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, &device) }.unwrap();
    let config: candle_transformers::models::bert::Config =
        serde_json::from_str(&std::fs::read_to_string(base.join("config.json")).unwrap()).unwrap();
    let reference = candle_transformers::models::bert::BertModel::load(vb.clone(), &config)
        .unwrap()
        .forward(&ids, &types, Some(&mask))
        .unwrap();
    let ours_config: BertConfig =
        serde_json::from_str(&std::fs::read_to_string(base.join("config.json")).unwrap()).unwrap();
    let ours = Bert::load(vb, &ours_config)
        .unwrap()
        .forward_with(&ids, &types, &mask, None)
        .unwrap();

    let a = mean_pool(&reference, &mask)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let b = mean_pool(&ours, &mask).unwrap().to_vec2::<f32>().unwrap();
    let worst = a
        .iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-4, "largest difference {worst}");
    // Not a trivial match: the embeddings are of the right size and differ between pairs.
    assert_eq!(a[0].len(), 384);
    assert!(a[0].iter().zip(&a[3]).any(|(x, y)| (x - y).abs() > 1e-2));
}

/// One step's gradients reach every encoder tensor (the embeddings, every layer's attention,
/// feed-forward and layer norms) and every head of a cross-encoder.
#[test]
fn every_encoder_weight_gets_a_gradient_in_one_step() {
    let student = Student::from_base(&base(), config(Kind::Cross, 48)).unwrap();
    let examples = fixture_examples(8);
    let batch: Vec<&Example> = examples.iter().collect();
    let weights = LossWeights {
        teacher: 1.0,
        classes: vec![1.0; 4],
        teacher_classes: vec![1.0; 4],
    };
    let pairs: Vec<(&str, &str)> = batch
        .iter()
        .map(|e| (e.query.as_str(), e.passage.as_str()))
        .collect();
    let out = student
        .forward_with(&pairs, Some(&Dropout::new(0.1, 0)))
        .unwrap();
    let grads = batch_loss(&student, &batch, &out, &weights)
        .unwrap()
        .backward()
        .unwrap();
    let data = student.varmap.data().lock().unwrap();
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut dead = Vec::new();
    for name in &names {
        if name.starts_with("student.verdict") {
            continue; // no CoT targets in this batch
        }
        let size = grads
            .get(data[*name].as_tensor())
            .map(|g| {
                g.abs()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap()
            })
            .unwrap_or(0.0);
        if size.is_nan() || size <= 0.0 {
            dead.push(name.as_str());
        }
    }
    assert!(dead.is_empty(), "no gradient for {dead:?}");
    let layers = names
        .iter()
        .filter(|n| n.contains("encoder.layer."))
        .count();
    assert_eq!(layers, 6 * 16, "six layers of 16 tensors each were checked");
}

/// 32 labelled fixture pairs of all four labels: the real trainer, on human labels alone,
/// fits them (≥ 95% right on the pairs it trained on) within 6 epochs of 4 steps, at learning
/// rates a few times the defaults: memorising is what is checked, not generalising.
#[test]
fn the_student_memorises_32_labelled_pairs() {
    let examples = fixture_examples(32);
    let labels: std::collections::BTreeSet<usize> =
        examples.iter().filter_map(|e| e.human).collect();
    assert_eq!(labels.len(), 4, "all four labels among the 32");
    let out = tempfile::tempdir().unwrap();
    let mut opts = options(out.path().join("student"), 6, 8);
    opts.learning_rate = 3e-4;
    opts.head_learning_rate = 5e-3;
    let (student, state) = train(
        &examples,
        config(Kind::Cross, 48),
        &opts,
        |_, _, _| {},
        |_| {},
    )
    .unwrap();
    let pairs: Vec<(&str, &str)> = examples
        .iter()
        .map(|e| (e.query.as_str(), e.passage.as_str()))
        .collect();
    let right = student
        .frozen()
        .unwrap()
        .predict(&pairs)
        .unwrap()
        .iter()
        .zip(&examples)
        .filter(|((p, _), e)| {
            let best = p
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .unwrap()
                .0;
            Some(best) == e.human
        })
        .count();
    assert!(
        right as f64 >= 0.95 * 32.0,
        "{right} of 32 right after {} steps; losses {:?}",
        state.steps_done,
        state.epoch_losses
    );
}

/// A teacher that agrees with the humans on two pairs in three: with its weight left to
/// measurement, a student is trained with and without its terms, each kept apart in
/// `out/candidates/`, and the one with the better dev macro-F1 is the one saved in `out`; a
/// re-run resumes both and makes the same choice.
#[test]
fn an_auto_weighted_teacher_is_kept_only_when_its_student_scores_better_on_dev() {
    let labels = LabelScale::esci().labels.len();
    let mut examples = fixture_examples(80);
    let queries: Vec<String> = examples.iter().map(|e| e.group.clone()).collect();
    let dev_queries: std::collections::BTreeSet<&String> = queries.iter().skip(50).collect();
    for (i, e) in examples.iter_mut().enumerate() {
        if dev_queries.contains(&e.group) {
            e.split = "dev".into();
        }
        let human = e.human.unwrap();
        let said = if i % 3 == 0 {
            (human + 1) % labels
        } else {
            human
        };
        let mut p = vec![0.05f32; labels];
        p[said] = 1.0 - 0.05 * (labels - 1) as f32;
        e.teacher = Some(p);
    }
    // Pairs only the teacher labelled, as `augment` adds them: the student without the
    // teacher's terms leaves them out.
    let unlabelled: Vec<Example> = fixture_examples(90)
        .into_iter()
        .skip(80)
        .map(|e| Example {
            human: None,
            augmented: true,
            group: examples[0].group.clone(),
            query: examples[0].query.clone(),
            ..e
        })
        .collect();
    examples.extend(unlabelled.into_iter().map(|mut e| {
        let mut p = vec![0.05f32; labels];
        p[0] = 1.0 - 0.05 * (labels - 1) as f32;
        e.teacher = Some(p);
        e
    }));
    let losses = Losses {
        kl: true,
        margin_mse: false,
        cot: false,
        ..Losses::default()
    };
    let config = super::new_config(Kind::Bi, &LabelScale::esci(), losses, 48, 0);
    let out = tempfile::tempdir().unwrap();
    let opts = TrainOptions {
        keep_last: true,
        probe_epochs: 6,
        ..options(out.path().join("student"), 6, 16)
    };
    let mut steps = Vec::new();
    let (_, state) = train(
        &examples,
        config.clone(),
        &opts,
        |step, total, _| steps.push((step, total)),
        |_| {},
    )
    .unwrap();
    assert_eq!(
        steps.last(),
        Some(&(6 * 4 + 6 * 4, 6 * 4 + 6 * 4)),
        "one progress count over both students"
    );
    let [with, without] = &state.candidates[..] else {
        panic!("two candidates: {:?}", state.candidates)
    };
    assert!(with.teacher_weight > 0.3, "{with:?}");
    assert_eq!(without.teacher_weight, 0.0);
    assert_eq!((with.examples, without.examples), (60, 50));
    let f1 = |c: &super::train::Candidate| c.dev.as_ref().unwrap().macro_f1;
    let chosen = if f1(with) > f1(without) {
        with
    } else {
        without
    };
    assert_eq!(state.teacher_weight, chosen.teacher_weight);
    assert_eq!(state.kept_dev(), chosen.dev.as_ref());
    assert!(
        state.teacher_weight_reason.contains("dev macro-F1"),
        "{}",
        state.teacher_weight_reason
    );
    let dir = if chosen.teacher_weight > 0.0 {
        "with-teacher"
    } else {
        "without-teacher"
    };
    let weights = |p: PathBuf| std::fs::read(p.join("model.safetensors")).unwrap();
    assert_eq!(
        weights(opts.out.clone()),
        weights(opts.out.join("candidates").join(dir)),
        "the kept student is the chosen candidate"
    );
    let (_, again) = train(&examples, config, &opts, |_, _, _| {}, |_| {}).unwrap();
    assert_eq!(again.resumed_at_epoch, Some(6));
    let without_time = |c: &[super::train::Candidate]| {
        c.iter()
            .map(|c| (c.teacher_weight, c.examples, c.dev.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        without_time(&again.candidates),
        without_time(&state.candidates)
    );
    assert_eq!(again.teacher_weight, state.teacher_weight);
}
