//! Columns as small integer bins (at most [`MAX_BINS`] values plus one for
//! "missing"), fitted on the training rows only, so that evaluation never
//! peeks at the rows it is tested on.

use serde::{Deserialize, Serialize};

use crate::data::{Column, Dataset};

/// Bins for values at most; one more bin (index `bins()`) holds the missing ones.
pub const MAX_BINS: usize = 255;

/// How one column is binned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ColumnBins {
    /// `edges[i]` is the upper bound (inclusive) of bin `i`; values above
    /// the last edge fall in the last bin (`edges.len()`).
    Numeric { name: String, edges: Vec<f64> },
    /// The levels that have their own bin, in bin order; other levels (rare
    /// or unseen in training) fall into the missing bin.
    Categorical { name: String, levels: Vec<String> },
}

impl ColumnBins {
    /// Bins for values (the missing bin is this index).
    pub fn bins(&self) -> usize {
        match self {
            ColumnBins::Numeric { edges, .. } => edges.len() + 1,
            ColumnBins::Categorical { levels, .. } => levels.len(),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            ColumnBins::Numeric { name, .. } | ColumnBins::Categorical { name, .. } => name,
        }
    }

    pub fn is_categorical(&self) -> bool {
        matches!(self, ColumnBins::Categorical { .. })
    }

    /// The bin of a number (`NaN`: missing).
    pub fn bin_number(&self, v: f64) -> u8 {
        match self {
            ColumnBins::Numeric { edges, .. } => {
                if v.is_nan() {
                    return (edges.len() + 1) as u8;
                }
                edges.partition_point(|e| *e < v) as u8
            }
            ColumnBins::Categorical { levels, .. } => levels.len() as u8,
        }
    }

    /// The bin of a category (`None` or an unknown level: missing).
    pub fn bin_level(&self, level: Option<&str>) -> u8 {
        match self {
            ColumnBins::Categorical { levels, .. } => level
                .and_then(|l| levels.iter().position(|x| x == l))
                .unwrap_or(levels.len()) as u8,
            ColumnBins::Numeric { edges, .. } => (edges.len() + 1) as u8,
        }
    }
}

/// Fits the bins of every column on the rows `train`.
pub fn fit(data: &Dataset, train: &[usize]) -> Vec<ColumnBins> {
    data.columns.iter().map(|c| fit_column(c, train)).collect()
}

fn fit_column(c: &Column, train: &[usize]) -> ColumnBins {
    match c {
        Column::Numeric { name, values } => {
            let mut v: Vec<f64> = train.iter().map(|&i| values[i]).filter(|x| !x.is_nan()).collect();
            v.sort_by(f64::total_cmp);
            let mut distinct = v.clone();
            distinct.dedup();
            let edges = if distinct.len() <= MAX_BINS {
                // One bin per value: the edge halfway to the next value.
                distinct.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect()
            } else {
                // Quantiles of the values, without repeated edges.
                let mut e: Vec<f64> = (1..MAX_BINS)
                    .map(|q| {
                        let i = (q * v.len() / MAX_BINS).min(v.len() - 1);
                        let j = (i + 1).min(v.len() - 1);
                        (v[i] + v[j]) / 2.0
                    })
                    .collect();
                e.dedup();
                e
            };
            ColumnBins::Numeric {
                name: name.clone(),
                edges,
            }
        }
        Column::Categorical { name, levels, codes } => {
            let mut counts = vec![0usize; levels.len()];
            for &i in train {
                if let Some(c) = codes[i] {
                    counts[c as usize] += 1;
                }
            }
            let mut order: Vec<usize> = (0..levels.len()).filter(|&l| counts[l] > 0).collect();
            // The most frequent levels keep a bin of their own (ties by name).
            order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then_with(|| levels[a].cmp(&levels[b])));
            order.truncate(MAX_BINS);
            ColumnBins::Categorical {
                name: name.clone(),
                levels: order.into_iter().map(|l| levels[l].clone()).collect(),
            }
        }
    }
}

/// Every row of `data` binned with `bins`, column by column.
pub fn apply(data: &Dataset, bins: &[ColumnBins]) -> Vec<Vec<u8>> {
    data.columns
        .iter()
        .zip(bins)
        .map(|(c, b)| match c {
            Column::Numeric { values, .. } => values.iter().map(|v| b.bin_number(*v)).collect(),
            Column::Categorical { levels, codes, .. } => {
                // Map each level once, then every row by its code.
                let map: Vec<u8> = levels.iter().map(|l| b.bin_level(Some(l))).collect();
                let missing = b.bins() as u8;
                codes
                    .iter()
                    .map(|c| c.map_or(missing, |c| map[c as usize]))
                    .collect()
            }
        })
        .collect()
}
