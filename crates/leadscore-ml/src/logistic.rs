//! Logistic regression, the simple baseline: numbers median-filled and
//! standardised, each category (and "missing") its own 0/1 feature, an L2
//! penalty (C = 1), fitted by Newton's method on the sparse rows.

use serde::{Deserialize, Serialize};

use crate::binning::ColumnBins;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub bins: Vec<ColumnBins>,
    /// Per numeric column: (median, mean, standard deviation) of the training rows; `None` for categories.
    pub scaling: Vec<Option<(f64, f64, f64)>>,
    /// Where each column's features start.
    pub offsets: Vec<usize>,
    pub intercept: f64,
    pub weights: Vec<f64>,
}

/// Above this many features the baseline is not fitted (its Newton step
/// holds a dense square matrix of this size).
pub const MAX_FEATURES: usize = 2000;

/// A row's nonzero features.
type Row = Vec<(usize, f64)>;

fn row(
    offsets: &[usize],
    scaling: &[Option<(f64, f64, f64)>],
    numbers: &[Vec<f64>],
    x: &[Vec<u8>],
    r: usize,
) -> Row {
    scaling
        .iter()
        .enumerate()
        .map(|(f, scale)| match *scale {
            Some((median, mean, sd)) => {
                let v = numbers[f][r];
                let v = if v.is_nan() { median } else { v };
                (offsets[f], (v - mean) / sd)
            }
            None => (offsets[f] + usize::from(x[f][r]), 1.0),
        })
        .collect()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Raw numbers per column (NaN for categories), to standardise.
pub fn numbers(data: &crate::Dataset) -> Vec<Vec<f64>> {
    data.columns
        .iter()
        .map(|c| match c {
            crate::Column::Numeric { values, .. } => values.clone(),
            crate::Column::Categorical { .. } => Vec::new(),
        })
        .collect()
}

pub fn train(
    bins: Vec<ColumnBins>,
    numbers: &[Vec<f64>],
    x: &[Vec<u8>],
    y: &[bool],
    rows: &[usize],
    c: f64,
) -> Model {
    let mut scaling = Vec::with_capacity(bins.len());
    let mut offsets = Vec::with_capacity(bins.len());
    let mut d = 0usize;
    for (f, b) in bins.iter().enumerate() {
        offsets.push(d);
        if b.is_categorical() {
            scaling.push(None);
            d += b.bins() + 1;
        } else {
            let mut v: Vec<f64> = rows
                .iter()
                .map(|&r| numbers[f][r])
                .filter(|v| !v.is_nan())
                .collect();
            v.sort_by(f64::total_cmp);
            let median = if v.is_empty() { 0.0 } else { v[v.len() / 2] };
            let filled: Vec<f64> = rows
                .iter()
                .map(|&r| {
                    if numbers[f][r].is_nan() {
                        median
                    } else {
                        numbers[f][r]
                    }
                })
                .collect();
            let mean = filled.iter().sum::<f64>() / filled.len().max(1) as f64;
            let var = filled.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / filled.len().max(1) as f64;
            let sd = if var > 0.0 { var.sqrt() } else { 1.0 };
            scaling.push(Some((median, mean, sd)));
            d += 1;
        }
    }
    if d > MAX_FEATURES {
        // The dense Newton step would cost too much memory and time: a
        // baseline this wide is left at "no information" (the intercept).
        let pos = rows.iter().filter(|&&r| y[r]).count() as f64;
        let p = ((pos + 0.5) / (rows.len() as f64 + 1.0)).clamp(1e-6, 1.0 - 1e-6);
        return Model {
            bins,
            scaling,
            offsets,
            intercept: (p / (1.0 - p)).ln(),
            weights: vec![0.0; d],
        };
    }
    let data: Vec<Row> = rows
        .iter()
        .map(|&r| row(&offsets, &scaling, numbers, x, r))
        .collect();
    let ys: Vec<f64> = rows.iter().map(|&r| f64::from(u8::from(y[r]))).collect();
    // Unknowns: the intercept (index d, unpenalised) and the weights.
    let mut w = vec![0.0; d + 1];
    for _ in 0..25 {
        let mut grad = vec![0.0; d + 1];
        let mut hess = vec![0.0; (d + 1) * (d + 1)];
        for (rw, &yv) in data.iter().zip(&ys) {
            let z = w[d] + rw.iter().map(|&(j, v)| w[j] * v).sum::<f64>();
            let p = sigmoid(z);
            let (e, s) = (p - yv, (p * (1.0 - p)).max(1e-12));
            // The Hessian's lower triangle only (a row's features come in
            // ascending order), which is all the Cholesky solve reads.
            for (a, &(j, v)) in rw.iter().enumerate() {
                grad[j] += e * v;
                let sv = s * v;
                for &(k, u) in &rw[..=a] {
                    hess[j * (d + 1) + k] += sv * u;
                }
                hess[d * (d + 1) + j] += sv;
            }
            grad[d] += e;
            hess[d * (d + 1) + d] += s;
        }
        for j in 0..d {
            grad[j] += w[j] / c;
            hess[j * (d + 1) + j] += 1.0 / c;
        }
        let step = solve(&mut hess, &grad, d + 1);
        let mut change = 0.0f64;
        for (wj, sj) in w.iter_mut().zip(&step) {
            *wj -= sj;
            change = change.max(sj.abs());
        }
        // Newton's steps shrink fast near the optimum: a weight that moves
        // less than this no longer changes a prediction that matters.
        if change < 1e-5 {
            break;
        }
    }
    let intercept = w[d];
    w.truncate(d);
    Model {
        bins,
        scaling,
        offsets,
        intercept,
        weights: w,
    }
}

/// Solves `a x = b` for a symmetric positive definite `a` (Cholesky; `a` is overwritten).
fn solve(a: &mut [f64], b: &[f64], n: usize) -> Vec<f64> {
    for j in 0..n {
        let mut s = a[j * n + j];
        for k in 0..j {
            s -= a[j * n + k] * a[j * n + k];
        }
        let d = s.max(1e-12).sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * n + k] * y[k];
        }
        y[i] = s / a[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let mut s = y[i];
        for k in i + 1..n {
            s -= a[k * n + i] * x[k];
        }
        x[i] = s / a[i * n + i];
    }
    x
}

impl Model {
    pub fn predict(&self, numbers: &[Vec<f64>], x: &[Vec<u8>], rows: &[usize]) -> Vec<f64> {
        rows.iter()
            .map(|&r| {
                let rw = row(&self.offsets, &self.scaling, numbers, x, r);
                sigmoid(self.intercept + rw.iter().map(|&(j, v)| self.weights[j] * v).sum::<f64>())
            })
            .collect()
    }
}
