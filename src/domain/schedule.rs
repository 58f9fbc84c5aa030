//! Learning-rate schedules shared by the trainers of the student and the teacher.

/// The learning rate at a step of a phase that runs from step `start` to `total`: a linear rise
/// over its first `warmup` steps, then a linear fall to 0 at `total` (sentence-transformers'
/// `WarmupLinear`).
pub struct Schedule {
    pub peak: f64,
    pub start: usize,
    pub warmup: usize,
    pub total: usize,
}

impl Schedule {
    pub fn at(&self, step: usize) -> f64 {
        let step = step.saturating_sub(self.start);
        let total = self.total.saturating_sub(self.start);
        if step < self.warmup {
            return self.peak * (step + 1) as f64 / self.warmup as f64;
        }
        let left = total.saturating_sub(step) as f64;
        self.peak * left / total.saturating_sub(self.warmup).max(1) as f64
    }
}
