//! The commands that work on the database: `serve`, `token create`,
//! `import`, `export`, `default-config`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use leadscore_server::{AppState, Settings, auth, import};
use leadscore_store::{Store, TokenRecord};

/// Flags every database command takes.
#[derive(Args, Debug, Clone)]
pub struct DbArgs {
    /// The database: `sqlite://PATH` (default `sqlite://leadscore.db`) or `postgres://...`
    /// (setting `LEADSCORE_DATABASE_URL`).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// A settings file (TOML; see `leadscore default-config`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Make a new API token; it is printed once, on the last line.
    Create {
        /// What the token may do.
        #[arg(long, value_parser = ["admin", "manager", "rep", "ingest"])]
        role: String,
        /// The user it acts for (a rep sees the leads whose owner is this user).
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Make a user of the web pages (or reset one: new password, role, language).
    /// The password is read from standard input (one line), never from the command line.
    Create {
        /// The user name (reps: the owner name on their leads).
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = ["admin", "manager", "rep"])]
        role: String,
        /// The pages' language.
        #[arg(long, default_value = "en", value_parser = ["en", "vi", "uk"])]
        locale: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// Settings from defaults, the file, the environment, then these flags.
pub fn settings(db: &DbArgs, listen: Option<&str>) -> Result<Settings> {
    let text;
    let file = match &db.config {
        Some(p) => {
            text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read settings file {}", p.display()))?;
            Some((p.to_str().unwrap_or("settings file"), text.as_str()))
        }
        None => None,
    };
    let mut s = Settings::load(file, |v| std::env::var(v).ok()).map_err(anyhow::Error::msg)?;
    if let Some(url) = &db.database_url {
        s.database_url = url.clone();
    }
    if let Some(l) = listen {
        s.listen = l.to_owned();
    }
    Ok(s)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The automation's runtime (`AppState::background`): one worker, and its
/// threads, the blocking ones that read for it included, at a lower
/// priority ([`leadscore_store::BACKGROUND_NICE`]), so that its evaluations
/// give way to answering requests.
fn background_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("automation")
        .on_thread_start(leadscore_store::lower_this_threads_priority)
        .enable_all()
        .build()
        .context("cannot start the automation's runtime")
}

async fn open(s: &Settings) -> Result<Arc<dyn Store>> {
    leadscore_store::open(&s.database_url).await.with_context(|| {
        format!(
            "cannot open the database {}",
            leadscore_store::redact_url(&s.database_url)
        )
    })
}

fn init_logs(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LEADSCORE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub fn serve(db: &DbArgs, listen: Option<&str>, demo: bool) -> Result<()> {
    let s = settings(db, listen)?;
    init_logs(&s.log_format);
    // Dropped after the main runtime's work, outside it.
    let background = background_runtime()?;
    let background_handle = background.handle().clone();
    runtime()?.block_on(async move {
        let store = open(&s).await?;
        let listener = tokio::net::TcpListener::bind(&s.listen)
            .await
            .with_context(|| format!("cannot listen on {}", s.listen))?;
        let addr = listener.local_addr()?;
        let mut state = AppState::new(store.clone(), s.clone());
        state.background = Some(background_handle);
        warm_up(&state);
        let mut demo_token = None;
        if demo && leadscore_server::demo::load(&store, state.now()).await? {
            tracing::info!("loaded the sample model, leads and events (--demo)");
            let (secret, hash) = auth::new_token();
            store
                .create_token(TokenRecord {
                    hash,
                    role: "admin".into(),
                    user: None,
                    created_at: state.now(),
                })
                .await?;
            // And a person to sign in to the web pages as.
            let mut bytes = [0u8; 9];
            getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no random bytes: {e}"))?;
            let password = hex::encode(bytes);
            let hash = leadscore_server::web::session::hash_password(&password).map_err(anyhow::Error::msg)?;
            store
                .accounts()
                .put_user(&leadscore_store::accounts::User {
                    name: "admin".into(),
                    password_hash: hash,
                    role: "admin".into(),
                    locale: "en".into(),
                    created_at: state.now(),
                    active: true,
                })
                .await?;
            demo_token = Some((secret, password));
        }
        leadscore_server::resume_rescore(&state).await?;
        tracing::info!(
            address = %addr,
            database = %leadscore_store::redact_url(&s.database_url),
            backend = store.backend(),
            "leadscore is listening"
        );
        // A plain line (whatever the log level) that scripts and tests wait for.
        eprintln!("listening on http://{addr}");
        if let Some((token, password)) = demo_token {
            eprintln!(
                "\nDemo data is loaded, with an admin token for it (shown once):\n  {token}\n\
                 The best leads first:\n  \
                 curl -H \"Authorization: Bearer {token}\" http://{addr}/api/v1/leads\n\
                 More tokens: leadscore token create --role admin|manager|rep|ingest\n\
                 The web pages: http://{addr}/login as `admin`, password {password} (shown once)\n\
                 More people: echo 'a long password' | leadscore user create --name NAME --role rep|manager|admin\n"
            );
        }
        leadscore_server::serve(listener, state, leadscore_server::shutdown_signal()).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Warms the store up in the background (`Store::warm_up`); `/readyz`
/// answers 503 "warming up" until it is done. Reads are served meanwhile.
fn warm_up(state: &AppState) {
    state.warming.store(true, std::sync::atomic::Ordering::SeqCst);
    let state = state.clone();
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        // The e-mail lists and phone metadata load on first use (the phone
        // metadata's patterns compile in about 0.1 s): not on the first
        // write after a start, which every request queued behind it waits
        // on. Beside the store's warm-up, which does not check phones.
        let checks = tokio::task::spawn_blocking(|| leadscore_core::checks::warm_up(true));
        let (checks, store) = tokio::join!(checks, state.store.warm_up());
        if let Err(e) = checks {
            tracing::warn!(error = %e, "loading the e-mail lists and phone metadata failed; their first use loads them");
        }
        match store {
            Ok(Some((leads, events))) if leads > 0 => tracing::info!(
                leads,
                events,
                seconds = started.elapsed().as_secs_f64(),
                "warmed up: every lead and its events are in the writer's cache"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "warming up failed; leads are read as they are written to"),
        }
        state.warming.store(false, std::sync::atomic::Ordering::SeqCst);
    });
}

pub fn token(cmd: &TokenCommand) -> Result<()> {
    let TokenCommand::Create { role, user, db } = cmd;
    if role == "rep" && user.is_none() {
        bail!("a rep token needs --user NAME (the owner whose leads the rep sees)");
    }
    let s = settings(db, None)?;
    runtime()?.block_on(async move {
        let store = open(&s).await?;
        let (secret, hash) = auth::new_token();
        store
            .create_token(TokenRecord {
                hash,
                role: role.clone(),
                user: user.clone(),
                created_at: crate::now(),
            })
            .await?;
        println!(
            "Created a `{role}` token{}. It is shown only this once; keep it secret:",
            user.as_ref().map(|u| format!(" for {u}")).unwrap_or_default()
        );
        println!("{secret}");
        Ok(())
    })
}

pub fn user(cmd: &UserCommand) -> Result<()> {
    let UserCommand::Create {
        name,
        role,
        locale,
        db,
    } = cmd;
    let name = name.trim();
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        bail!("--name: 1 to 100 characters, no control characters");
    }
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("cannot read the password from standard input")?;
    let password = password.trim_end_matches(['\n', '\r']);
    leadscore_server::web::session::check_password(password).map_err(anyhow::Error::msg)?;
    let hash = leadscore_server::web::session::hash_password(password).map_err(anyhow::Error::msg)?;
    let s = settings(db, None)?;
    runtime()?.block_on(async move {
        let store = open(&s).await?;
        store
            .accounts()
            .put_user(&leadscore_store::accounts::User {
                name: name.to_owned(),
                password_hash: hash,
                role: role.clone(),
                locale: locale.clone(),
                created_at: crate::now(),
                active: true,
            })
            .await?;
        println!("User `{name}` ({role}, {locale}) can sign in at /login.");
        Ok(())
    })
}

pub fn import_file(db: &DbArgs, file: &Path, upsert: bool) -> Result<()> {
    let s = settings(db, None)?;
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let rows = import::read_csv(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let bar = indicatif::ProgressBar::new(rows.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    runtime()?.block_on(async move {
        let store = open(&s).await?;
        let report = import::import(
            &store,
            rows,
            upsert,
            crate::now(),
            import::IMPORT_CHUNK,
            &s.rating,
            &|done| bar.set_position(done),
        )
        .await?;
        bar.finish_and_clear();
        let shown: Vec<_> = report
            .rows
            .iter()
            .filter(|r| r.status == "rejected")
            .take(20)
            .collect();
        for r in &shown {
            eprintln!(
                "{}:{}: {}",
                file.display(),
                r.line,
                r.reason.as_deref().unwrap_or("rejected")
            );
        }
        if report.rejected as usize > shown.len() {
            eprintln!(
                "... and {} more rejected rows",
                report.rejected as usize - shown.len()
            );
        }
        println!(
            "{} created, {} updated, {} rejected",
            report.created, report.updated, report.rejected
        );
        Ok(())
    })
}

pub fn export(db: &DbArgs, output: Option<&Path>) -> Result<()> {
    let s = settings(db, None)?;
    runtime()?.block_on(async move {
        let store = open(&s).await?;
        let csv = import::export(&store, None).await?;
        match output {
            Some(p) => std::fs::write(p, csv).with_context(|| format!("cannot write {}", p.display()))?,
            None => {
                use std::io::Write;
                std::io::stdout().write_all(csv.as_bytes())?;
            }
        }
        Ok(())
    })
}

/// `leadscore tasks`: follow-up tasks as an aligned table.
pub fn tasks(db: &DbArgs, owner: Option<String>, due_before: Option<&str>, all: bool) -> Result<()> {
    let s = settings(db, None)?;
    let due_before = due_before
        .map(|d| {
            leadscore_core::workflow::parse_day_or_time(d).with_context(|| {
                format!("--due-before: `{d}` is not a date (YYYY-MM-DD) or an RFC 3339 time")
            })
        })
        .transpose()?;
    runtime()?.block_on(async move {
        let store = open(&s).await?;
        let tasks = store
            .list_tasks(&leadscore_store::TaskQuery {
                owner,
                lead: None,
                due_before,
                open: (!all).then_some(true),
                limit: 1000,
            })
            .await?;
        if tasks.is_empty() {
            println!("no tasks");
            return Ok(());
        }
        let rows: Vec<[String; 6]> = tasks
            .iter()
            .map(|t| {
                [
                    t.due.to_string()[..10].to_owned(),
                    if t.open { "open" } else { "done" }.to_owned(),
                    t.owner.clone().unwrap_or_else(|| "-".into()),
                    t.lead.clone(),
                    t.doc.kind.clone(),
                    t.doc.title.clone(),
                ]
            })
            .collect();
        let head = ["DUE", "STATE", "OWNER", "LEAD", "KIND", "TITLE"];
        let mut widths = head.map(str::len);
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[&str]| {
            let mut out = String::new();
            for (i, c) in cells.iter().enumerate() {
                if i + 1 == cells.len() {
                    out.push_str(c);
                } else {
                    out.push_str(&format!("{c:<w$}  ", w = widths[i]));
                }
            }
            println!("{out}");
        };
        line(&head);
        for r in &rows {
            line(&r.iter().map(String::as_str).collect::<Vec<_>>());
        }
        Ok(())
    })
}

/// `leadscore report`: the model report in the terminal (or as JSON), and as HTML.
pub fn report(
    db: &DbArgs,
    model: Option<&str>,
    capacity: Option<f64>,
    html: Option<&Path>,
    format: &str,
) -> Result<()> {
    if !matches!(format, "text" | "json") {
        bail!("--format is text or json, not `{format}`");
    }
    if capacity.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
        bail!("--capacity is a number of leads a week above 0");
    }
    let s = settings(db, None)?;
    runtime()?.block_on(async move {
        let store = open(&s).await?;
        let model = leadscore_server::reports::model(&store, model).await?;
        let cases = leadscore_server::reports::cases(&store).await?;
        let report = leadscore_core::report::report(&model, &cases, capacity);
        if format == "json" {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", leadscore_server::reports::text(&report));
        }
        if let Some(path) = html {
            std::fs::write(path, leadscore_server::reports::html(&report, model.max))
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        Ok(())
    })
}

/// `leadscore retrain`: the predictive model from the database's outcomes.
pub fn retrain(db: &DbArgs) -> Result<()> {
    let s = settings(db, None)?;
    runtime()?.block_on(async move {
        let store = open(&s).await?;
        let t = leadscore_server::predictive::retrain(&store, crate::now()).await?;
        println!(
            "trained `{}` on {} leads ({} converted, {} columns): 5-fold AUC {:.4} (logistic baseline {:.4}), \
             log-loss {:.3}, Brier {:.3}, conversion in the top 10 % {:.1}% against {:.1}% overall; it is active",
            t.name,
            t.leads,
            t.conversions,
            t.columns,
            t.auc,
            t.baseline_auc,
            t.logloss,
            t.brier,
            t.top10_conversion * 100.0,
            t.base_rate * 100.0
        );
        Ok(())
    })
}
