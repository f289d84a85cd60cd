//! Gradient-boosted trees for a yes/no outcome, on binned columns: log-loss,
//! trees grown leaf by leaf (best gain first), numbers split at a bin with
//! missing values sent to the better side, categories split natively (sorted
//! by their gradient ratio, then cut in two). Per-lead explanations follow
//! each tree's path: a split's feature gets the change it made to the
//! prediction, so the contributions add up to the prediction exactly.

use std::collections::BinaryHeap;

use serde::{Deserialize, Serialize};

use crate::binning::ColumnBins;

/// Training settings; the defaults are meant to work on data never seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub learning_rate: f64,
    pub iterations: usize,
    pub max_leaves: usize,
    pub min_samples_leaf: usize,
    /// L2 penalty on leaf values.
    pub l2: f64,
    /// A category needs this many training rows to be sorted into a split.
    pub min_category_rows: usize,
    /// Each tree learns from this share of the rows, drawn afresh per tree
    /// (with a fixed seed: the same data gives the same model).
    #[serde(default = "all_rows")]
    pub subsample: f64,
}

fn all_rows() -> f64 {
    1.0
}

impl Default for Params {
    fn default() -> Self {
        Params {
            learning_rate: 0.1,
            iterations: 100,
            max_leaves: 15,
            min_samples_leaf: 20,
            l2: 1.0,
            min_category_rows: 10,
            subsample: 0.8,
        }
    }
}

/// Which rows go left at a split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Rule {
    /// Value bins up to `bin` go left; missing values go left when `missing_left`.
    UpTo { bin: u8, missing_left: bool },
    /// The bins in the set (the missing bin among them, maybe) go left.
    In { set: [u64; 4] },
}

impl Rule {
    fn left(&self, bin: u8, missing_bin: u8) -> bool {
        match self {
            Rule::UpTo { bin: t, missing_left } => {
                if bin == missing_bin {
                    *missing_left
                } else {
                    bin <= *t
                }
            }
            Rule::In { set } => set[usize::from(bin >> 6)] >> (bin & 63) & 1 == 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// The tree's output for rows that stop here (for a split: what it would
    /// give as a leaf, used by the explanations).
    pub value: f64,
    /// `None` for a leaf.
    pub split: Option<Split>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Split {
    pub feature: u16,
    pub rule: Rule,
    pub left: u32,
    pub right: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

/// A trained model: the columns' bins, the starting log-odds and the trees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub bins: Vec<ColumnBins>,
    pub base: f64,
    pub trees: Vec<Tree>,
    pub params: Params,
}

#[derive(Clone, Copy, Default)]
struct Cell {
    g: f64,
    h: f64,
    n: u32,
}

type Histogram = Vec<Vec<Cell>>;

struct Candidate {
    gain: f64,
    node: usize,
    split_feature: u16,
    rule: Rule,
}

impl PartialEq for Candidate {
    fn eq(&self, o: &Self) -> bool {
        self.gain == o.gain
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Candidate {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.gain.total_cmp(&o.gain).then(o.node.cmp(&self.node))
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Trains on `rows` of the binned columns `x` (column-major) with outcomes `y`.
pub fn train(bins: Vec<ColumnBins>, x: &[Vec<u8>], y: &[bool], rows: &[usize], params: &Params) -> Model {
    let n = rows.len();
    let pos = rows.iter().filter(|&&r| y[r]).count() as f64;
    let p0 = ((pos + 0.5) / (n as f64 + 1.0)).clamp(1e-6, 1.0 - 1e-6);
    let base = (p0 / (1.0 - p0)).ln();
    // Training rows, renumbered 0..n; their bins gathered once, column-major.
    let xs: Vec<Vec<u8>> = x
        .iter()
        .map(|col| rows.iter().map(|&r| col[r]).collect())
        .collect();
    let ys: Vec<f64> = rows.iter().map(|&r| f64::from(u8::from(y[r]))).collect();
    let mut raw = vec![base; n];
    let mut g = vec![0.0; n];
    let mut h = vec![0.0; n];
    let mut trees = Vec::with_capacity(params.iterations);
    let missing: Vec<u8> = bins.iter().map(|b| b.bins() as u8).collect();
    let categorical: Vec<bool> = bins.iter().map(ColumnBins::is_categorical).collect();
    let mut rng = crate::rng::Rng::new(42);
    let mut order: Vec<u32> = Vec::with_capacity(n);
    for _ in 0..params.iterations {
        order.clear();
        if params.subsample < 1.0 {
            let cut = (params.subsample * u64::MAX as f64) as u64;
            order.extend((0..n as u32).filter(|_| rng.next_u64() < cut));
        } else {
            order.extend(0..n as u32);
        }
        for i in 0..n {
            let p = sigmoid(raw[i]);
            g[i] = p - ys[i];
            h[i] = (p * (1.0 - p)).max(1e-16);
        }
        let tree = grow(&xs, &g, &h, &missing, &categorical, params, &mut order);
        for (i, r) in raw.iter_mut().enumerate() {
            *r += tree_value(&tree, &xs, i, &missing);
        }
        trees.push(tree);
    }
    Model {
        bins,
        base,
        trees,
        params: params.clone(),
    }
}

fn tree_value(tree: &Tree, xs: &[Vec<u8>], row: usize, missing: &[u8]) -> f64 {
    let mut at = 0usize;
    loop {
        let node = &tree.nodes[at];
        match &node.split {
            None => return node.value,
            Some(s) => {
                let f = usize::from(s.feature);
                at = if s.rule.left(xs[f][row], missing[f]) {
                    s.left
                } else {
                    s.right
                } as usize;
            }
        }
    }
}

/// One tree, leaf-wise. `order` holds row numbers; each node owns a range of it.
fn grow(
    xs: &[Vec<u8>],
    g: &[f64],
    h: &[f64],
    missing: &[u8],
    categorical: &[bool],
    p: &Params,
    order: &mut [u32],
) -> Tree {
    let n = order.len();
    let leaf_value = |gs: f64, hs: f64| -gs / (hs + p.l2) * p.learning_rate;
    let (gs, hs): (f64, f64) = order
        .iter()
        .fold((0.0, 0.0), |(a, b), &r| (a + g[r as usize], b + h[r as usize]));
    let mut nodes = vec![Node {
        value: leaf_value(gs, hs),
        split: None,
    }];
    // Per node: its range of `order` and its histogram (kept while it may split).
    let mut ranges: Vec<(usize, usize)> = vec![(0, n)];
    let mut hists: Vec<Option<Histogram>> = vec![Some(histogram(xs, g, h, missing, &order[..]))];
    let mut heap = BinaryHeap::new();
    if let Some(c) = best_split(0, hists[0].as_ref().expect("root"), categorical, p) {
        heap.push(c);
    }
    let mut leaves = 1;
    while leaves < p.max_leaves {
        let Some(c) = heap.pop() else { break };
        let (start, end) = ranges[c.node];
        let f = usize::from(c.split_feature);
        // Stable partition of the node's rows: left first.
        let slice = &mut order[start..end];
        let (mut left_rows, mut right_rows): (Vec<u32>, Vec<u32>) = (Vec::new(), Vec::new());
        for &r in slice.iter() {
            if c.rule.left(xs[f][r as usize], missing[f]) {
                left_rows.push(r);
            } else {
                right_rows.push(r);
            }
        }
        let mid = start + left_rows.len();
        slice[..left_rows.len()].copy_from_slice(&left_rows);
        slice[left_rows.len()..].copy_from_slice(&right_rows);
        // The smaller child's histogram is built; the larger one's is the parent's minus it.
        let parent = hists[c.node]
            .take()
            .expect("a splittable node keeps its histogram");
        let (small, small_is_left) = if left_rows.len() <= right_rows.len() {
            (histogram(xs, g, h, missing, &order[start..mid]), true)
        } else {
            (histogram(xs, g, h, missing, &order[mid..end]), false)
        };
        let large: Histogram = parent
            .iter()
            .zip(&small)
            .map(|(pf, sf)| {
                pf.iter()
                    .zip(sf)
                    .map(|(a, b)| Cell {
                        g: a.g - b.g,
                        h: a.h - b.h,
                        n: a.n - b.n,
                    })
                    .collect()
            })
            .collect();
        let (lh, rh) = if small_is_left {
            (small, large)
        } else {
            (large, small)
        };
        let totals = |hist: &Histogram| hist[0].iter().fold((0.0, 0.0), |(a, b), c| (a + c.g, b + c.h));
        let li = nodes.len();
        for (hist, range) in [(lh, (start, mid)), (rh, (mid, end))] {
            let (gs, hs) = totals(&hist);
            nodes.push(Node {
                value: leaf_value(gs, hs),
                split: None,
            });
            ranges.push(range);
            let id = nodes.len() - 1;
            if let Some(cand) = best_split(id, &hist, categorical, p) {
                heap.push(cand);
            }
            hists.push(Some(hist));
        }
        nodes[c.node].split = Some(Split {
            feature: c.split_feature,
            rule: c.rule,
            left: li as u32,
            right: li as u32 + 1,
        });
        leaves += 1;
    }
    Tree { nodes }
}

fn histogram(xs: &[Vec<u8>], g: &[f64], h: &[f64], missing: &[u8], rows: &[u32]) -> Histogram {
    // The node's gradients gathered once, in row order, for every column's pass.
    let gh: Vec<(f64, f64)> = rows.iter().map(|&r| (g[r as usize], h[r as usize])).collect();
    xs.iter()
        .zip(missing)
        .map(|(col, &m)| {
            let mut cells = vec![Cell::default(); usize::from(m) + 1];
            for (&r, &(gr, hr)) in rows.iter().zip(&gh) {
                let c = &mut cells[usize::from(col[r as usize])];
                c.g += gr;
                c.h += hr;
                c.n += 1;
            }
            cells
        })
        .collect()
}

fn score(g: f64, h: f64, l2: f64) -> f64 {
    g * g / (h + l2)
}

fn best_split(node: usize, hist: &Histogram, categorical: &[bool], p: &Params) -> Option<Candidate> {
    let (gt, ht, nt) = hist[0]
        .iter()
        .fold((0.0, 0.0, 0u32), |(a, b, c), x| (a + x.g, b + x.h, c + x.n));
    if (nt as usize) < 2 * p.min_samples_leaf {
        return None;
    }
    let parent = score(gt, ht, p.l2);
    let min_n = p.min_samples_leaf as u32;
    let mut best: Option<Candidate> = None;
    let mut consider = |gain: f64, feature: usize, rule: Rule| {
        if gain > 1e-9 && best.as_ref().is_none_or(|b| gain > b.gain) {
            best = Some(Candidate {
                gain,
                node,
                split_feature: feature as u16,
                rule,
            });
        }
    };
    for (f, cells) in hist.iter().enumerate() {
        let m = cells.len() - 1;
        let miss = cells[m];
        if categorical[f] {
            // Categories (the missing one among them) with enough rows, by gradient ratio.
            let mut cats: Vec<usize> = (0..=m)
                .filter(|&b| cells[b].n as usize >= p.min_category_rows.max(1))
                .collect();
            if cats.len() < 2 {
                continue;
            }
            cats.sort_by(|&a, &b| {
                let ra = cells[a].g / (cells[a].h + 10.0);
                let rb = cells[b].g / (cells[b].h + 10.0);
                ra.total_cmp(&rb)
            });
            let (mut gl, mut hl, mut nl) = (0.0, 0.0, 0u32);
            let mut set = [0u64; 4];
            for &b in &cats[..cats.len() - 1] {
                gl += cells[b].g;
                hl += cells[b].h;
                nl += cells[b].n;
                set[b >> 6] |= 1 << (b & 63);
                let nr = nt - nl;
                if nl < min_n || nr < min_n {
                    continue;
                }
                let gain = score(gl, hl, p.l2) + score(gt - gl, ht - hl, p.l2) - parent;
                consider(gain, f, Rule::In { set });
            }
        } else {
            let (mut gl, mut hl, mut nl) = (0.0, 0.0, 0u32);
            for (t, cell) in cells[..m.saturating_sub(1)].iter().enumerate() {
                gl += cell.g;
                hl += cell.h;
                nl += cell.n;
                if cell.n == 0 {
                    continue;
                }
                for missing_left in [false, true] {
                    let (g_l, h_l, n_l) = if missing_left {
                        (gl + miss.g, hl + miss.h, nl + miss.n)
                    } else {
                        (gl, hl, nl)
                    };
                    let n_r = nt - n_l;
                    if n_l < min_n || n_r < min_n {
                        continue;
                    }
                    let gain = score(g_l, h_l, p.l2) + score(gt - g_l, ht - h_l, p.l2) - parent;
                    consider(
                        gain,
                        f,
                        Rule::UpTo {
                            bin: t as u8,
                            missing_left,
                        },
                    );
                    if miss.n == 0 {
                        break;
                    }
                }
            }
            // Missing against everything else.
            if miss.n >= min_n && nt - miss.n >= min_n {
                let gain = score(miss.g, miss.h, p.l2) + score(gt - miss.g, ht - miss.h, p.l2) - parent;
                consider(
                    gain,
                    f,
                    Rule::UpTo {
                        bin: u8::MAX,
                        missing_left: false,
                    },
                );
            }
        }
    }
    best
}

impl Model {
    fn missing(&self) -> Vec<u8> {
        self.bins.iter().map(|b| b.bins() as u8).collect()
    }

    /// Log-odds of conversion for row `row` of binned columns `x`.
    pub fn raw(&self, x: &[Vec<u8>], row: usize) -> f64 {
        let missing = self.missing();
        self.base
            + self
                .trees
                .iter()
                .map(|t| tree_value(t, x, row, &missing))
                .sum::<f64>()
    }

    /// Probabilities for rows of binned columns `x`.
    pub fn predict(&self, x: &[Vec<u8>], rows: &[usize]) -> Vec<f64> {
        use rayon::prelude::*;
        let missing = self.missing();
        // Tree by tree over a block of rows, so each tree stays in cache.
        rows.par_chunks(4096)
            .flat_map_iter(|chunk| {
                let mut raw = vec![self.base; chunk.len()];
                for t in &self.trees {
                    for (acc, &r) in raw.iter_mut().zip(chunk) {
                        *acc += tree_value(t, x, r, &missing);
                    }
                }
                raw.into_iter().map(sigmoid)
            })
            .collect()
    }

    /// Each column's share of a row's log-odds (the rest is `self.base` plus
    /// each tree's root value): they add up to the prediction.
    pub fn contributions(&self, x: &[Vec<u8>], row: usize) -> (f64, Vec<f64>) {
        let missing = self.missing();
        let mut bias = self.base;
        let mut per = vec![0.0; self.bins.len()];
        for t in &self.trees {
            let mut at = 0usize;
            bias += t.nodes[0].value;
            while let Some(s) = &t.nodes[at].split {
                let f = usize::from(s.feature);
                let next = if s.rule.left(x[f][row], missing[f]) {
                    s.left
                } else {
                    s.right
                } as usize;
                per[f] += t.nodes[next].value - t.nodes[at].value;
                at = next;
            }
        }
        (bias, per)
    }
}

impl Model {
    /// Bins the rows of a table by column name with this model's bins: a
    /// column the table lacks is blank on every row; a category the model
    /// never saw is treated as blank.
    pub fn bin_table(&self, table: &crate::Table) -> Vec<Vec<u8>> {
        use rayon::prelude::*;
        let column = |b: &ColumnBins| -> Vec<u8> {
            let missing = b.bins() as u8;
            let Some(c) = table.names.iter().position(|n| n == b.name()) else {
                return vec![missing; table.rows.len()];
            };
            // Categories are looked up by name; numbers are parsed.
            let index: std::collections::HashMap<&str, u8> = match b {
                ColumnBins::Categorical { levels, .. } => levels
                    .iter()
                    .enumerate()
                    .map(|(i, l)| (l.as_str(), i as u8))
                    .collect(),
                ColumnBins::Numeric { .. } => std::collections::HashMap::new(),
            };
            table
                .rows
                .iter()
                .map(|r| {
                    let cell = r.get(c).map_or("", String::as_str);
                    if crate::data::is_missing(cell) {
                        missing
                    } else if b.is_categorical() {
                        index.get(cell.trim()).copied().unwrap_or(missing)
                    } else {
                        b.bin_number(cell.trim().parse::<f64>().unwrap_or(f64::NAN))
                    }
                })
                .collect()
        };
        // Columns in parallel for big tables; one lead (the service) stays on
        // the caller's thread.
        if table.rows.len() >= 10_000 {
            self.bins.par_iter().map(column).collect()
        } else {
            self.bins.iter().map(column).collect()
        }
    }

    /// The conversion probability of every row of a table.
    pub fn predict_table(&self, table: &crate::Table) -> Vec<f64> {
        let x = self.bin_table(table);
        let rows: Vec<usize> = (0..table.rows.len()).collect();
        self.predict(&x, &rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binning;
    use crate::data::{Column, Dataset};

    /// A number that decides the outcome, a category that flips it, noise.
    fn data(n: usize) -> Dataset {
        let mut rng = crate::rng::Rng::new(7);
        let mut values = Vec::new();
        let mut codes = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let v = (rng.below(1000) as f64) / 10.0;
            let c = rng.below(3) as u32;
            let noisy = rng.below(10) == 0;
            let won = (v > 50.0) ^ (c == 2) ^ noisy;
            values.push(if rng.below(20) == 0 { f64::NAN } else { v });
            codes.push(Some(c));
            y.push(won);
        }
        Dataset {
            columns: vec![
                Column::Numeric {
                    name: "v".into(),
                    values,
                },
                Column::Categorical {
                    name: "c".into(),
                    levels: vec!["a".into(), "b".into(), "flip".into()],
                    codes,
                },
            ],
            target: y,
            dropped: Vec::new(),
        }
    }

    #[test]
    fn learns_a_threshold_and_a_category_and_explains_exactly() {
        let d = data(4000);
        let rows: Vec<usize> = (0..3000).collect();
        let test: Vec<usize> = (3000..4000).collect();
        let bins = binning::fit(&d, &rows);
        let x = binning::apply(&d, &bins);
        let m = train(bins.clone(), &x, &d.target, &rows, &Params::default());
        let p = m.predict(&x, &test);
        // Rows are drawn per tree with a fixed seed: the same data, the same model.
        assert_eq!(train(bins, &x, &d.target, &rows, &Params::default()), m);
        let pairs: Vec<(f64, bool)> = test.iter().zip(&p).map(|(&r, &p)| (p, d.target[r])).collect();
        let auc = crate::metrics::auc(&pairs).unwrap();
        assert!(auc > 0.85, "{auc}");
        for &r in &test[..20] {
            let (bias, per) = m.contributions(&x, r);
            let total = bias + per.iter().sum::<f64>();
            assert!((total - m.raw(&x, r)).abs() < 1e-9);
        }
        // Serialises and comes back the same.
        let text = serde_json::to_string(&m).unwrap();
        let back: Model = serde_json::from_str(&text).unwrap();
        let again = back.predict(&x, &test);
        let worst = again
            .iter()
            .zip(&p)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-12, "{worst}");
    }

    #[test]
    fn predicts_table_rows_by_column_name() {
        let d = data(3000);
        let rows: Vec<usize> = (0..3000).collect();
        let bins = binning::fit(&d, &rows);
        let x = binning::apply(&d, &bins);
        let m = train(bins, &x, &d.target, &rows, &Params::default());
        let table = crate::Table {
            // Columns in another order, plus one the model does not know.
            names: vec!["other".into(), "c".into(), "v".into()],
            rows: vec![
                vec!["?".into(), "a".into(), "90".into()],
                vec!["?".into(), "flip".into(), "90".into()],
                vec!["?".into(), "never seen".into(), "".into()],
            ],
        };
        let p = m.predict_table(&table);
        assert!(p[0] > 0.8 && p[1] < 0.2, "{p:?}");
        assert!((0.0..=1.0).contains(&p[2]));
        // A table without the model's columns: every row as if blank.
        let bare = crate::Table {
            names: vec!["x".into()],
            rows: vec![vec!["1".into()]],
        };
        assert_eq!(m.predict_table(&bare).len(), 1);
    }
}
