//! `leadscore`: the one binary, with subcommands.

mod batch;
mod check_model;
mod output;
mod predictive;
mod service;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use leadscore_core::{ModelError, ScoringModel, Timestamp};

use crate::batch::{Inputs, StrictStop};
use crate::output::Format;

/// mimalloc instead of glibc's malloc: see README ("Dependencies").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "leadscore",
    version,
    about = "Lead qualification and lead scoring engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Score a file of leads (and their events) with a model; best leads first.
    Score {
        /// The scoring model (TOML).
        #[arg(long, value_name = "MODEL.toml")]
        model: PathBuf,
        /// Leads as CSV with a header row (standard columns plus custom attributes).
        #[arg(long, value_name = "LEADS.csv")]
        leads: PathBuf,
        /// Events as JSON lines: {"id", "lead", "type", "occurred_at", "properties"}.
        #[arg(long, value_name = "EVENTS.jsonl")]
        events: Option<PathBuf>,
        /// Score as of this moment (RFC 3339); defaults to now.
        #[arg(long, value_name = "RFC3339")]
        as_of: Option<String>,
        /// Output format; `table` when stdout is a terminal, else `jsonl`.
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Stop at the first bad row (exit status 1) instead of skipping it.
        #[arg(long)]
        strict: bool,
    },
    /// Validate a model and summarise its rules, bands and MQL rule.
    CheckModel {
        #[arg(value_name = "MODEL.toml")]
        model: PathBuf,
    },
    /// Run the lead service: the HTTP API over the database.
    Serve {
        /// Address to listen on (default 127.0.0.1:8080; setting `LEADSCORE_LISTEN`).
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<String>,
        /// Load sample leads, events and a model into an empty database first.
        #[arg(long)]
        demo: bool,
        #[command(flatten)]
        db: service::DbArgs,
    },
    /// Manage the users of the web pages.
    User {
        #[command(subcommand)]
        command: service::UserCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: service::TokenCommand,
    },
    /// Import leads from a CSV file (standard columns or CRM export headers).
    Import {
        #[arg(value_name = "FILE.csv")]
        file: PathBuf,
        /// Update leads whose id or e-mail already exists instead of refusing them.
        #[arg(long)]
        upsert: bool,
        #[command(flatten)]
        db: service::DbArgs,
    },
    /// Export every lead, with its score, as CSV.
    Export {
        /// Write here instead of standard output.
        #[arg(long, short, value_name = "FILE.csv")]
        output: Option<PathBuf>,
        #[command(flatten)]
        db: service::DbArgs,
    },
    /// List follow-up tasks (call back later, contract ending), soonest due first.
    Tasks {
        /// Only this rep's tasks.
        #[arg(long, value_name = "NAME")]
        owner: Option<String>,
        /// Only tasks due before this date (YYYY-MM-DD or RFC 3339).
        #[arg(long, value_name = "DATE")]
        due_before: Option<String>,
        /// Include tasks that are done.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        db: service::DbArgs,
    },
    /// How well a model's scores match real outcomes (conversion by band and
    /// grade, ROC AUC, calibration, gains, rules, MQL threshold advice).
    Report {
        /// A stored model (a backtest before activating it); default: the active one.
        #[arg(long, value_name = "NAME")]
        model: Option<String>,
        /// Leads a week the sales team can work, for the MQL threshold advice.
        #[arg(long, value_name = "N")]
        capacity: Option<f64>,
        /// Also write the report as an HTML page with its charts.
        #[arg(long, value_name = "FILE.html")]
        html: Option<PathBuf>,
        /// `text` (default) or `json`.
        #[arg(long, default_value = "text")]
        format: String,
        #[command(flatten)]
        db: service::DbArgs,
    },
    /// Learn a predictive model (gradient-boosted trees) from historical leads with outcomes.
    Train {
        #[command(flatten)]
        data: predictive::DataArgs,
        /// Where to write the model (JSON).
        #[arg(long, short, value_name = "MODEL.json")]
        output: PathBuf,
    },
    /// Cross-validate the predictive models on historical leads: ROC AUC,
    /// log-loss, Brier score, conversion in the top 10 and 20 %.
    Evaluate {
        #[command(flatten)]
        data: predictive::DataArgs,
        #[arg(long, default_value_t = 5)]
        folds: usize,
        /// `table` (default) or `json`.
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// The conversion probability of every lead in a CSV, with a model `train` wrote.
    Predict {
        #[arg(long, value_name = "MODEL.json")]
        model: PathBuf,
        #[arg(long, value_name = "FILE.csv")]
        data: PathBuf,
        #[command(flatten)]
        events: predictive::EventArgs,
        /// Write here instead of standard output.
        #[arg(long, short, value_name = "OUT.csv")]
        output: Option<PathBuf>,
    },
    /// Train the service's predictive model from every lead with a known
    /// outcome in the database, and make it active.
    Retrain {
        #[command(flatten)]
        db: service::DbArgs,
    },
    /// Print the settings file with every default.
    DefaultConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Named, so that a thread's CPU is told apart (`/proc`, perf): unnamed,
    // the pool's threads take the name of the thread that first used it
    // (in the service, the SQLite writer, which scores activations on it).
    let _ = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("rayon-{i}"))
        .build_global();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let Some(e) = err.downcast_ref::<ModelError>() {
                eprintln!("leadscore: invalid model: {e}");
                return ExitCode::from(2);
            }
            if let Some(StrictStop(row)) = err.downcast_ref::<StrictStop>() {
                eprintln!("leadscore: bad row {row} (stopped: --strict)");
                return ExitCode::from(1);
            }
            // The reader of our output stopped (`leadscore score … | head`):
            // not an error, and nothing more to say.
            if err
                .chain()
                .filter_map(|e| e.downcast_ref::<std::io::Error>())
                .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("leadscore: error: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Score {
            model,
            leads,
            events,
            as_of,
            format,
            strict,
        } => {
            let timer = batch::Timer::new();
            let model = load_model(&model)?;
            // Load the check data (phone metadata takes a while) while the input is read.
            let phones = model.checks_phones();
            std::thread::spawn(move || leadscore_core::checks::warm_up(phones));
            let as_of = match as_of {
                Some(s) => Timestamp::parse(&s).with_context(|| "--as-of".to_owned())?,
                None => now(),
            };
            let leads = path_str(&leads)?;
            let events = events.as_deref().map(path_str).transpose()?;
            let scored = batch::score_files(
                &model,
                &Inputs {
                    leads,
                    timer: &timer,
                    events,
                    as_of,
                    strict,
                },
            )?;
            if let Some(report) = scored.bad.report() {
                eprint!("{report}");
            }
            if scored.duplicates > 0 {
                eprintln!(
                    "ignored {} events whose id was already seen (the first one counts)",
                    scored.duplicates
                );
            }
            let stdout = std::io::stdout();
            let format = format.unwrap_or(if stdout.is_terminal() {
                Format::Table
            } else {
                Format::Jsonl
            });
            // JSON lines are written in parts of hundreds of KiB, larger than
            // this buffer, so they go straight to the output without a copy.
            let mut out = std::io::BufWriter::with_capacity(64 << 10, stdout.lock());
            output::write(&model, &scored, format, &mut out)?;
            out.flush()?;
            timer.mark("output written");
            // Freeing hundreds of thousands of scores one by one would only delay the exit.
            std::mem::forget(scored);
            Ok(())
        }
        Command::CheckModel { model: path } => {
            let model = load_model(&path)?;
            print!("{}", check_model::summary(&model, &path.display().to_string()));
            Ok(())
        }
        Command::Serve { listen, demo, db } => service::serve(&db, listen.as_deref(), demo),
        Command::Token { command } => service::token(&command),
        Command::User { command } => service::user(&command),
        Command::Import { file, upsert, db } => service::import_file(&db, &file, upsert),
        Command::Export { output, db } => service::export(&db, output.as_deref()),
        Command::Tasks {
            owner,
            due_before,
            all,
            db,
        } => service::tasks(&db, owner, due_before.as_deref(), all),
        Command::Report {
            model,
            capacity,
            html,
            format,
            db,
        } => service::report(&db, model.as_deref(), capacity, html.as_deref(), &format),
        Command::Train { data, output } => predictive::train(&data, &output),
        Command::Evaluate { data, folds, format } => predictive::evaluate(&data, folds, &format),
        Command::Predict {
            model,
            data,
            events,
            output,
        } => predictive::predict(&model, &data, &events, output.as_deref()),
        Command::Retrain { db } => service::retrain(&db),
        Command::DefaultConfig => {
            print!("{}", leadscore_server::Settings::default_file());
            Ok(())
        }
    }
}

fn load_model(path: &Path) -> Result<ScoringModel> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read model file {}", path.display()))?;
    Ok(ScoringModel::from_toml(&text, &path.display().to_string())?)
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .with_context(|| format!("the path {} is not UTF-8", p.display()))
}

pub(crate) fn now() -> Timestamp {
    (leadscore_server::system_clock())()
}
