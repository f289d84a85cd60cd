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
    #[command(flatten)]
    pub events: EventArgs,
}

/// Behaviour as features: per event type, how many events a lead had and
/// the days since its last one.
#[derive(clap::Args, Debug)]
pub struct EventArgs {
    /// The leads' events as JSON lines (`{"id", "lead", "type", "occurred_at"}`).
    #[arg(long, value_name = "EVENTS.jsonl")]
    pub events: Option<std::path::PathBuf>,
    /// The column of the CSV that holds the lead id events refer to.
    #[arg(long, value_name = "COLUMN", default_value = "id")]
    pub id_column: String,
    /// Count events up to this moment (RFC 3339); default: the latest event.
    #[arg(long, value_name = "RFC3339")]
    pub as_of: Option<String>,
}

/// Adds `events:TYPE` (count) and `days_since:TYPE` columns from an events file.
fn add_event_columns(table: &mut Table, args: &EventArgs) -> Result<()> {
    let Some(path) = &args.events else { return Ok(()) };
    let id_col = table
        .names
        .iter()
        .position(|n| *n == args.id_column)
        .with_context(|| {
            format!(
                "the data has no `{}` column to match events to (--id-column)",
                args.id_column
            )
        })?;
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut events: Vec<(String, String, leadscore_core::Timestamp)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut bad = 0usize;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let parsed = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| {
                let get = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
                let at = leadscore_core::Timestamp::parse(&get("occurred_at")?).ok()?;
                Some((get("id")?, get("lead")?, get("type")?, at))
            });
        match parsed {
            Some((id, lead, kind, at)) => {
                // Events with the same id are the same event: the first one counts.
                if seen.insert(id) {
                    events.push((lead, kind, at));
                }
            }
            None => bad += 1,
        }
    }
    if bad > 0 {
        eprintln!("{}: {bad} lines are not events and were skipped", path.display());
    }
    let as_of = match &args.as_of {
        Some(t) => leadscore_core::Timestamp::parse(t).with_context(|| "--as-of".to_owned())?,
        None => events.iter().map(|e| e.2).max().unwrap_or(crate::now()),
    };
    let mut per_lead: std::collections::HashMap<
        &str,
        std::collections::BTreeMap<&str, (u32, leadscore_core::Timestamp)>,
    > = std::collections::HashMap::new();
    let mut kinds = std::collections::BTreeSet::new();
    for (lead, kind, at) in events.iter().filter(|e| e.2 <= as_of) {
        kinds.insert(kind.as_str());
        let e = per_lead.entry(lead).or_default().entry(kind).or_insert((0, *at));
        e.0 += 1;
        e.1 = e.1.max(*at);
    }
    for kind in &kinds {
        table.names.push(format!("events:{kind}"));
        table.names.push(format!("days_since:{kind}"));
    }
    for row in &mut table.rows {
        let mine = per_lead.get(row[id_col].trim());
        for kind in &kinds {
            match mine.and_then(|m| m.get(kind)) {
                Some((n, last)) => {
                    row.push(n.to_string());
                    row.push(format!("{:.2}", as_of.days_since(*last)));
                }
                None => {
                    row.push("0".into());
                    row.push(String::new());
                }
            }
        }
    }
    Ok(())
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
    let mut table = read_table(&args.data)?;
    add_event_columns(&mut table, &args.events)?;
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
pub fn predict(model: &Path, data: &Path, events: &EventArgs, output: Option<&Path>) -> Result<()> {
    let text = std::fs::read_to_string(model).with_context(|| format!("cannot read {}", model.display()))?;
    let model: leadscore_ml::gbdt::Model = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a model `leadscore train` wrote", model.display()))?;
    let mut table = read_table(data)?;
    add_event_columns(&mut table, events)?;
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
