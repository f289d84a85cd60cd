//! Stratified, shuffled k-fold cross-validation.

use crate::rng::Rng;

/// `k` folds of row indices: each fold holds about the same share of
/// converted leads. Returns (train, test) per fold.
pub fn stratified_folds(y: &[bool], k: usize, seed: u64) -> Vec<(Vec<usize>, Vec<usize>)> {
    let mut rng = Rng::new(seed);
    let mut pos: Vec<usize> = (0..y.len()).filter(|&i| y[i]).collect();
    let mut neg: Vec<usize> = (0..y.len()).filter(|&i| !y[i]).collect();
    rng.shuffle(&mut pos);
    rng.shuffle(&mut neg);
    let mut fold_of = vec![0usize; y.len()];
    for (i, &r) in pos.iter().enumerate() {
        fold_of[r] = i % k;
    }
    for (i, &r) in neg.iter().enumerate() {
        fold_of[r] = (i + pos.len()) % k;
    }
    (0..k)
        .map(|f| {
            let test: Vec<usize> = (0..y.len()).filter(|&i| fold_of[i] == f).collect();
            let train: Vec<usize> = (0..y.len()).filter(|&i| fold_of[i] != f).collect();
            (train, test)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_cover_every_row_once_and_keep_the_rate() {
        let y: Vec<bool> = (0..1000).map(|i| i % 4 == 0).collect();
        let folds = stratified_folds(&y, 5, 42);
        let mut seen = vec![0; 1000];
        for (train, test) in &folds {
            assert_eq!(train.len() + test.len(), 1000);
            for &t in test {
                seen[t] += 1;
            }
            let rate = test.iter().filter(|&&i| y[i]).count() as f64 / test.len() as f64;
            assert!((rate - 0.25).abs() < 0.01, "{rate}");
        }
        assert!(seen.iter().all(|&s| s == 1));
    }
}

/// Cross-validated figures of both models on a dataset.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Evaluation {
    pub folds: usize,
    pub rows: usize,
    pub gbdt: crate::metrics::Scores,
    pub logistic: crate::metrics::Scores,
    /// Out-of-fold predictions of the trees in ten slices: (mean prediction, observed rate, leads).
    pub calibration: Vec<(f64, f64, usize)>,
}

/// One fold's figures (trees, baseline), its test rows and the trees' predictions for them.
type FoldResult = (
    crate::metrics::Scores,
    crate::metrics::Scores,
    Vec<usize>,
    Vec<f64>,
);

/// Stratified `k`-fold cross-validation of the trees and the baseline: each
/// fold's bins and models are fitted on its training rows only; the figures
/// are the means over the folds.
pub fn evaluate(data: &crate::Dataset, k: usize, seed: u64, params: &crate::gbdt::Params) -> Evaluation {
    use rayon::prelude::*;
    let folds = stratified_folds(&data.target, k, seed);
    let numbers = crate::logistic::numbers(data);
    let per_fold: Vec<FoldResult> = folds
        .par_iter()
        .map(|(train, test)| {
            let bins = crate::binning::fit(data, train);
            let x = crate::binning::apply(data, &bins);
            let y_test: Vec<bool> = test.iter().map(|&i| data.target[i]).collect();
            let trees = crate::gbdt::train(bins.clone(), &x, &data.target, train, params);
            let p = trees.predict(&x, test);
            let lr = crate::logistic::train(bins, &numbers, &x, &data.target, train, 1.0);
            let q = lr.predict(&numbers, &x, test);
            (
                crate::metrics::scores(&p, &y_test),
                crate::metrics::scores(&q, &y_test),
                test.clone(),
                p,
            )
        })
        .collect();
    let mean = |pick: &dyn Fn(&FoldResult) -> &crate::metrics::Scores| {
        let n = per_fold.len() as f64;
        let sum =
            |f: &dyn Fn(&crate::metrics::Scores) -> f64| per_fold.iter().map(|x| f(pick(x))).sum::<f64>() / n;
        crate::metrics::Scores {
            auc: sum(&|s| s.auc),
            logloss: sum(&|s| s.logloss),
            brier: sum(&|s| s.brier),
            top10_conversion: sum(&|s| s.top10_conversion),
            top20_conversion: sum(&|s| s.top20_conversion),
            base_rate: sum(&|s| s.base_rate),
        }
    };
    let mut oof = vec![0.0; data.rows()];
    for (_, _, test, p) in &per_fold {
        for (&i, &v) in test.iter().zip(p) {
            oof[i] = v;
        }
    }
    Evaluation {
        folds: k,
        rows: data.rows(),
        gbdt: mean(&|x| &x.0),
        logistic: mean(&|x| &x.1),
        calibration: crate::metrics::calibration(&oof, &data.target),
    }
}
