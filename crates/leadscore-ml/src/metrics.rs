//! How good predictions are against outcomes.

use serde::Serialize;

pub use leadscore_core::report::auc;

/// The figures `leadscore evaluate` reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Scores {
    pub auc: f64,
    pub logloss: f64,
    pub brier: f64,
    /// Conversion among the 10 % (20 %) of leads with the highest prediction.
    pub top10_conversion: f64,
    pub top20_conversion: f64,
    pub base_rate: f64,
}

/// The figures of probabilities `p` against outcomes `y`.
pub fn scores(p: &[f64], y: &[bool]) -> Scores {
    let n = p.len().max(1) as f64;
    let pairs: Vec<(f64, bool)> = p.iter().copied().zip(y.iter().copied()).collect();
    let eps = 1e-15;
    let logloss = -pairs
        .iter()
        .map(|&(p, y)| {
            let p = p.clamp(eps, 1.0 - eps);
            if y { p.ln() } else { (1.0 - p).ln() }
        })
        .sum::<f64>()
        / n;
    let brier = pairs
        .iter()
        .map(|&(p, y)| (p - f64::from(u8::from(y))).powi(2))
        .sum::<f64>()
        / n;
    let mut sorted = pairs.clone();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let top = |share: f64| {
        let k = ((sorted.len() as f64 * share).ceil() as usize)
            .max(1)
            .min(sorted.len());
        sorted[..k].iter().filter(|x| x.1).count() as f64 / k as f64
    };
    Scores {
        auc: auc(&pairs).unwrap_or(f64::NAN),
        logloss,
        brier,
        top10_conversion: top(0.1),
        top20_conversion: top(0.2),
        base_rate: y.iter().filter(|y| **y).count() as f64 / n,
    }
}

/// Predicted probability against observed conversion, in ten equal slices
/// of leads by prediction (lowest first): (mean prediction, observed rate, leads).
pub fn calibration(p: &[f64], y: &[bool]) -> Vec<(f64, f64, usize)> {
    let mut v: Vec<(f64, bool)> = p.iter().copied().zip(y.iter().copied()).collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = v.len();
    (0..10)
        .filter_map(|d| {
            let part = &v[n * d / 10..n * (d + 1) / 10];
            (!part.is_empty()).then(|| {
                let k = part.len() as f64;
                (
                    part.iter().map(|x| x.0).sum::<f64>() / k,
                    part.iter().filter(|x| x.1).count() as f64 / k,
                    part.len(),
                )
            })
        })
        .collect()
}
