//! DRY ("don't repeat yourself", Weidmann 2024) over the answer alone, inside JSON strings.
//!
//! mistral.rs's own DRY, frequency and presence penalties count the whole context. On a CoT
//! answer that costs twice: the few-shot examples in the prompt end in `"label": "Exact"` and
//! the like, so the answer's own `"label": "` is penalised for continuing the way an example did
//! (measured: agreement with gold fell), and quoting the product text, which the prompt asks
//! for, is penalised as a repeat. Here the prompt is left out, and a repeat stops counting at a
//! token holding a double quote, so the JSON's keys and the start of each value are free and
//! only a loop inside one string ("Men's, Men's, Men's") or a copy of an earlier string of the
//! answer grows costly: `multiplier × base^(n − allowed)` off the logit of the token that would
//! make a repeat of n tokens one longer.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use candle_core::Tensor;

/// DRY's published defaults.
const BASE: f32 = 1.75;
const ALLOWED_LENGTH: usize = 2;
/// Longest repeat measured; longer ones cost as much (and a loop is long before this).
const MAX_MATCH: usize = 50;

pub struct AnswerDry {
    multiplier: f32,
    /// Token id → holds a double quote.
    breakers: Arc<Vec<bool>>,
    /// The prompt's length, learnt on the first call: the context then is the prompt alone.
    prompt_len: OnceLock<usize>,
}

impl AnswerDry {
    pub fn new(multiplier: f32, breakers: Arc<Vec<bool>>) -> AnswerDry {
        AnswerDry {
            multiplier,
            breakers,
            prompt_len: OnceLock::new(),
        }
    }

    fn breaks(&self, token: u32) -> bool {
        self.breakers.get(token as usize).copied().unwrap_or(false)
    }

    /// The penalty per token id for the next position after `answer`.
    pub fn penalties(&self, answer: &[u32]) -> HashMap<u32, f32> {
        let mut longest: HashMap<u32, usize> = HashMap::new();
        let n = answer.len();
        if n < 2 || self.breaks(answer[n - 1]) {
            return HashMap::new();
        }
        let last = answer[n - 1];
        for i in 0..n - 1 {
            if answer[i] != last {
                continue;
            }
            let next = answer[i + 1];
            if self.breaks(next) {
                continue;
            }
            // How far the tokens before position i repeat the tokens before the last one.
            let mut len = 1;
            while len <= i
                && len < MAX_MATCH
                && answer[i - len] == answer[n - 1 - len]
                && !self.breaks(answer[i - len])
            {
                len += 1;
            }
            let e = longest.entry(next).or_default();
            *e = (*e).max(len);
        }
        longest
            .into_iter()
            .filter(|&(_, len)| len >= ALLOWED_LENGTH)
            .map(|(t, len)| {
                let penalty = self.multiplier * BASE.powi((len - ALLOWED_LENGTH) as i32);
                (t, penalty)
            })
            .collect()
    }
}

impl mistralrs::CustomLogitsProcessor for AnswerDry {
    fn apply(&self, logits: &Tensor, context: &[u32]) -> candle_core::Result<Tensor> {
        let start = *self.prompt_len.get_or_init(|| context.len());
        let answer = context.get(start..).unwrap_or_default();
        let penalties = self.penalties(answer);
        if penalties.is_empty() {
            return Ok(logits.clone());
        }
        let mut values = logits.to_vec1::<f32>()?;
        for (token, p) in penalties {
            if let Some(v) = values.get_mut(token as usize) {
                *v -= p;
            }
        }
        Tensor::from_vec(values, logits.dims(), logits.device())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Token 9 holds a quote.
    fn dry() -> AnswerDry {
        let mut breakers = vec![false; 10];
        breakers[9] = true;
        AnswerDry::new(1.0, Arc::new(breakers))
    }

    #[test]
    fn a_loop_inside_a_string_costs_more_the_longer_it_runs() {
        let d = dry();
        // "a b a b a" → b would make "a b" repeat a third time.
        let p = d.penalties(&[9, 1, 2, 1, 2, 1]);
        assert_eq!(p.len(), 1);
        let short = p[&2];
        let p = d.penalties(&[9, 1, 2, 1, 2, 1, 2, 1, 2, 1]);
        assert!(p[&2] > short, "{} vs {short}", p[&2]);
    }

    #[test]
    fn a_repeat_stops_at_a_quote_so_keys_and_value_starts_are_free() {
        let d = dry();
        // `"k": "x" "k": "` – after the second opening quote nothing is penalised …
        assert!(d.penalties(&[9, 3, 9, 4, 9, 3, 9]).is_empty());
        // … and one token into the value, the repeat counts only from the quote.
        let p = d.penalties(&[9, 3, 9, 4, 5, 9, 3, 9, 4]);
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn the_prompt_is_not_part_of_the_answer() {
        let d = dry();
        let logits = Tensor::new(&[0f32; 10], &candle_core::Device::Cpu).unwrap();
        use mistralrs::CustomLogitsProcessor;
        // First call: the context is the prompt, full of repeats; nothing is penalised.
        let prompt = [1, 2, 1, 2, 1, 2, 1];
        let out = d.apply(&logits, &prompt).unwrap();
        assert_eq!(out.to_vec1::<f32>().unwrap(), vec![0.0; 10]);
        // Later calls read only what follows the prompt.
        let mut context = prompt.to_vec();
        context.extend([9, 1, 2, 1, 2, 1]);
        let out = d
            .apply(&logits, &context)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!(out[2] < 0.0 && out.iter().filter(|v| **v < 0.0).count() == 1);
    }
}
