//! The forward budget: holds the share of mail the gate forwards on live
//! traffic. Thresholds calibrated on a dev split forward the target share
//! of that split, but new mail can sit lower or higher (one unseen set
//! forwarded 25.5% against a 15% target), which moves the backend's load.
//! The budget keeps the gate's shape (per-label and confusable thresholds)
//! and shifts all of them by one offset: the target quantile of the recent
//! slacks (margin minus the threshold that applies), so that about the
//! target share of recent mail falls below it.

use std::collections::VecDeque;

use thiserror::Error;

/// Why a budget cannot be made.
#[derive(Debug, Error, PartialEq)]
pub enum BudgetError {
    #[error("the forward budget must be between 0 and 1, got {0}")]
    Target(f32),
    #[error("the budget window must hold at least {min} e-mails, got {0}", min = MIN_WINDOW)]
    Window(usize),
}

/// The smallest window that estimates a 10–20% quantile usefully.
pub const MIN_WINDOW: usize = 50;

/// A running quantile of recent slacks.
#[derive(Debug, Clone)]
pub struct ForwardBudget {
    target: f32,
    window: usize,
    recent: VecDeque<f32>,
}

impl ForwardBudget {
    /// Holds `target` (a share, 0–1) over the last `window` e-mails.
    pub fn new(target: f32, window: usize) -> Result<Self, BudgetError> {
        if !(target > 0.0 && target < 1.0) {
            return Err(BudgetError::Target(target));
        }
        if window < MIN_WINDOW {
            return Err(BudgetError::Window(window));
        }
        Ok(Self {
            target,
            window,
            recent: VecDeque::with_capacity(window),
        })
    }

    pub fn target(&self) -> f32 {
        self.target
    }

    pub fn window(&self) -> usize {
        self.window
    }

    /// The offset to add to every threshold now: 0 (the calibrated gate)
    /// until a quarter of the window has been seen.
    pub fn offset(&self) -> f32 {
        if self.recent.len() < self.window / 4 {
            return 0.0;
        }
        let mut v: Vec<f32> = self.recent.iter().copied().collect();
        v.sort_by(f32::total_cmp);
        let k = ((self.target * v.len() as f32).round() as usize).min(v.len() - 1);
        // An empty text (slack −∞) is always forwarded; the offset stays finite.
        if v[k].is_finite() { v[k] } else { 0.0 }
    }

    /// Records one e-mail's slack (after deciding it).
    pub fn observe(&mut self, slack: f32) {
        if self.recent.len() == self.window {
            self.recent.pop_front();
        }
        self.recent.push_back(slack);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_the_target_share_when_traffic_shifts() {
        let mut b = ForwardBudget::new(0.15, 400).unwrap();
        // Slacks that a static gate (forward when < 0) would forward 40% of.
        let mut forwarded = 0;
        let n = 4000;
        for i in 0..n {
            let s = ((i * 7919) % 1000) as f32 / 1000.0 - 0.4;
            if s < b.offset() {
                forwarded += 1;
            }
            b.observe(s);
        }
        let share = forwarded as f32 / n as f32;
        assert!((share - 0.15).abs() < 0.02, "held {share}");
    }

    #[test]
    fn starts_from_the_calibrated_gate_and_refuses_bad_settings() {
        let b = ForwardBudget::new(0.15, 400).unwrap();
        assert_eq!(b.offset(), 0.0);
        assert_eq!(
            ForwardBudget::new(1.5, 400).unwrap_err(),
            BudgetError::Target(1.5)
        );
        assert_eq!(
            ForwardBudget::new(0.1, 10).unwrap_err(),
            BudgetError::Window(10)
        );
    }
}
