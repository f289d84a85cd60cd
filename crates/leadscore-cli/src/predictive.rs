//! `leadscore train` and `leadscore evaluate`: predictive models learned
//! from historical leads with outcomes (a CSV with a header row).

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use leadscore_ml::{Dataset, Table};

/// The options both commands share.
#[derive(clap::Args, Debug)]
pub struct DataArgs {
    /// Historical leads as CSV with a header row, one lead a row.
    #[arg(long, value_name = "FILE.csv")]
    pub data: std::path::PathBuf,
    /// The outcome column (1/0, true/false, yes/no, won/lost).
    #[arg(long, value_name = "COLUMN")]
    pub target: String,
    /// Columns to leave out, comma-separated (e.g. ones filled in after contact).
    #[arg(long, value_name = "COL,...", value_delimiter = ',')]
    pub exclude: Vec<String>,
}

fn read_table(path: &Path) -> Result<Table> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let names: Vec<String> = rdr
        .headers()
        .with_context(|| format!("{}: the header row cannot be read", path.display()))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_owned())
        .collect();
    let mut rows = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.with_context(|| format!("{}: row {} cannot be read", path.display(), i + 2))?;
        rows.push(rec.iter().map(str::to_owned).collect());
    }
    Ok(Table { names, rows })
}

fn load(args: &DataArgs) -> Result<Dataset> {
    let table = read_table(&args.data)?;
    let exclude: Vec<String> = args
        .exclude
        .iter()
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty())
        .collect();
    let data = Dataset::from_table(&table, &args.target, &exclude)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.data.display()))?;
    let conversions = data.target.iter().filter(|y| **y).count();
    if data.rows() < 200 || conversions < 30 {
        bail!(
            "{}: {} leads with {} conversions are too few to learn from (at least 200 leads and 30 \
             conversions); keep scoring with the rule model",
            args.data.display(),
            data.rows(),
            conversions
        );
    }
    for (name, why) in &data.dropped {
        if why != "excluded" {
            eprintln!("left out `{name}`: {why}");
        }
    }
    Ok(data)
}

pub fn evaluate(args: &DataArgs, folds: usize, format: &str) -> Result<()> {
    if !matches!(format, "table" | "json") {
        bail!("--format is table or json, not `{format}`");
    }
    if folds < 2 {
        bail!("--folds must be at least 2");
    }
    let started = Instant::now();
    let data = load(args)?;
    let params = leadscore_ml::gbdt::Params::default();
    let ev = leadscore_ml::cv::evaluate(&data, folds, 42, &params);
    let seconds = started.elapsed().as_secs_f64();
    if format == "json" {
        let v = serde_json::json!({
            "rows": ev.rows,
            "folds": ev.folds,
            "seconds": seconds,
            "gbdt": ev.gbdt,
            "logistic": ev.logistic,
            "calibration": ev.calibration.iter().map(|(p, o, n)| serde_json::json!({"predicted": p, "observed": o, "leads": n})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{} leads, {} columns used, base rate {:.1}%; stratified {}-fold cross-validation ({seconds:.2} s)\n",
        ev.rows,
        data.columns.len(),
        ev.gbdt.base_rate * 100.0,
        ev.folds
    );
    println!(
        "{:<22} {:>7} {:>8} {:>7} {:>10} {:>10}",
        "model", "AUC", "log-loss", "Brier", "top 10 %", "top 20 %"
    );
    for (name, s) in [
        ("gradient-boosted trees", &ev.gbdt),
        ("logistic regression", &ev.logistic),
    ] {
        println!(
            "{name:<22} {:>7.4} {:>8.3} {:>7.3} {:>9.1}% {:>9.1}%",
            s.auc,
            s.logloss,
            s.brier,
            s.top10_conversion * 100.0,
            s.top20_conversion * 100.0
        );
    }
    println!("\nCalibration of the trees (out-of-fold, ten slices by prediction):");
    for (p, o, n) in &ev.calibration {
        println!(
            "  predicted {:>5.1}%  observed {:>5.1}%  ({n} leads)",
            p * 100.0,
            o * 100.0
        );
    }
    Ok(())
}

pub fn train(args: &DataArgs, output: &Path) -> Result<()> {
    let started = Instant::now();
    let data = load(args)?;
    let rows: Vec<usize> = (0..data.rows()).collect();
    let bins = leadscore_ml::binning::fit(&data, &rows);
    let x = leadscore_ml::binning::apply(&data, &bins);
    let model = leadscore_ml::gbdt::train(
        bins,
        &x,
        &data.target,
        &rows,
        &leadscore_ml::gbdt::Params::default(),
    );
    let text = serde_json::to_string(&model)?;
    std::fs::write(output, text).with_context(|| format!("cannot write {}", output.display()))?;
    println!(
        "trained on {} leads ({} columns, {} trees) in {:.2} s; wrote {}",
        data.rows(),
        data.columns.len(),
        model.trees.len(),
        started.elapsed().as_secs_f64(),
        output.display()
    );
    Ok(())
}

/// `leadscore predict`: the conversion probability of every row of a CSV,
/// written as CSV (`row,probability`, plus the first column when it is an id).
pub fn predict(model: &Path, data: &Path, output: Option<&Path>) -> Result<()> {
    let text = std::fs::read_to_string(model).with_context(|| format!("cannot read {}", model.display()))?;
    let model: leadscore_ml::gbdt::Model = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a model `leadscore train` wrote", model.display()))?;
    let table = read_table(data)?;
    let started = Instant::now();
    let p = model.predict_table(&table);
    let seconds = started.elapsed().as_secs_f64();
    let mut out = String::with_capacity(p.len() * 24);
    out.push_str("row,probability\n");
    for (i, v) in p.iter().enumerate() {
        out.push_str(&format!("{},{v:.6}\n", i + 1));
    }
    match output {
        Some(path) => {
            std::fs::write(path, out).with_context(|| format!("cannot write {}", path.display()))?
        }
        None => print!("{out}"),
    }
    eprintln!("predicted {} leads in {seconds:.3} s", p.len());
    Ok(())
}
