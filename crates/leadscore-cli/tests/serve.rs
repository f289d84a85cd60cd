//! The `leadscore` binary as a service: `default-config`, `token create`,
//! `serve` (with `--demo`), `import`, `export`, and a crash test: the server
//! is killed (SIGKILL) while clients stream events, restarted on the same
//! database, and every answered event must be there exactly once with every
//! stored score right.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use leadscore_core::Timestamp;
use reqwest::StatusCode;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_leadscore");
const SPEC_MODEL: &str = include_str!("../../leadscore-core/tests/fixtures/spec-model.toml");
const DEMO_LEADS: &str = include_str!("../../../examples/leads.csv");

/// The binary with no `LEADSCORE_*` settings from the environment.
fn leadscore() -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("LEADSCORE_") {
            c.env_remove(k);
        }
    }
    c.env("LEADSCORE_LOG", "info").env("NO_COLOR", "1");
    c
}

fn db_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("leadscore.db").display())
}

/// Runs a command to its end; (status ok, stdout, stderr).
fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `leadscore token create`: the secret from the last line.
fn token(url: &str, role: &str, user: Option<&str>) -> String {
    let mut cmd = leadscore();
    cmd.args(["token", "create", "--role", role, "--database-url", url]);
    if let Some(u) = user {
        cmd.args(["--user", u]);
    }
    let (ok, stdout, stderr) = run(&mut cmd);
    assert!(ok, "token create failed: {stderr}");
    let last = stdout
        .lines()
        .last()
        .expect("token create prints lines")
        .to_owned();
    assert!(
        last.starts_with("lsk_") && last.len() == 4 + 64 && last[4..].chars().all(|c| c.is_ascii_hexdigit()),
        "the last line is the token alone: {last:?}"
    );
    last
}

/// A running `leadscore serve` and everything it wrote to stderr.
struct Server {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(url: &str, demo: bool) -> Server {
        Server::start_with(url, if demo { &["--demo"] } else { &[] })
    }

    fn start_with(url: &str, args: &[&str]) -> Server {
        let mut cmd = leadscore();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--database-url", url])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("serve starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on http://") {
                    let _ = tx.send(addr.trim().to_owned());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(a) => a,
            Err(e) => {
                let _ = child.kill();
                panic!(
                    "the server did not say where it listens ({e}): {}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        Server {
            child,
            base: format!("http://{addr}"),
            log,
        }
    }

    fn api(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// SIGTERM, then waits for the exit (bounded).
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread take the last lines.
                let until = Instant::now() + Duration::from_secs(5);
                while Instant::now() < until && !self.log_text().contains("stopped") {
                    std::thread::sleep(Duration::from_millis(10));
                }
                return (status, self.log_text());
            }
            assert!(Instant::now() < deadline, "the server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    leadscore_server::install_tls();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn get(c: &reqwest::Client, url: &str, token: &str) -> (StatusCode, Value) {
    let r = c.get(url).bearer_auth(token).send().await.expect("answer");
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn post(c: &reqwest::Client, url: &str, token: &str, body: &Value) -> (StatusCode, Value) {
    let r = c
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("answer");
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn now() -> Timestamp {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    Timestamp::from_micros(micros)
}

#[test]
fn default_config_prints_parseable_toml() {
    let (ok, stdout, stderr) = run(leadscore().arg("default-config"));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("max_body_bytes"), "{stdout}");
    let parsed = leadscore_server::Settings::load(Some(("stdout", &stdout)), |_| None)
        .unwrap_or_else(|e| panic!("default-config is not a valid settings file: {e}\n{stdout}"));
    assert_eq!(parsed, leadscore_server::Settings::default());
}

#[test]
fn token_create_prints_the_token_alone_on_the_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_url(dir.path());
    let admin = token(&url, "admin", None);
    let rep = token(&url, "rep", Some("mai"));
    assert_ne!(admin, rep);
    // A rep token needs its user.
    let (ok, _, stderr) = run(leadscore().args(["token", "create", "--role", "rep", "--database-url", &url]));
    assert!(!ok);
    assert!(stderr.contains("--user"), "{stderr}");
    let (ok, _, stderr) =
        run(leadscore().args(["token", "create", "--role", "boss", "--database-url", &url]));
    assert!(!ok, "{stderr}");

    let srv = Server::start(&url, false);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = client();
        let (s, v) = get(&c, &srv.api("/leads"), &admin).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, _) = get(&c, &srv.api("/models"), &rep).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = get(&c, &srv.api("/leads"), "lsk_not_a_token").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    });
    // The secret is never logged.
    let (status, log) = srv.terminate();
    assert!(status.success(), "{status:?}: {log}");
    assert!(!log.contains(&admin) && !log.contains(&rep), "{log}");
    assert!(log.contains("stopped"), "a graceful stop on SIGTERM: {log}");
}

/// `serve --demo`: scored leads at once; the logs and metrics name no lead.
#[test]
fn serve_demo_has_scored_leads_and_logs_no_personal_data() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_url(dir.path());
    let admin = token(&url, "admin", None);
    let srv = Server::start(&url, true);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let metrics = rt.block_on(async {
        let c = client();
        let (s, v) = get(&c, &srv.api("/leads?limit=1000"), &admin).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let leads = v["leads"].as_array().unwrap();
        assert_eq!(leads.len(), DEMO_LEADS.lines().count() - 1, "every demo lead is there");
        for l in leads {
            assert!(l["score"]["score"].is_number(), "{} is not scored: {l}", l["id"]);
        }
        assert!(
            leads.iter().any(|l| l["score"]["engagement"].as_f64().unwrap() > 0.0),
            "the demo events count"
        );
        // Some traffic that touches personal data.
        let id = leads[0]["id"].as_str().unwrap();
        get(&c, &srv.api(&format!("/leads/{id}")), &admin).await;
        get(&c, &srv.api("/leads?q=gmail"), &admin).await;
        get(&c, &srv.api("/leads/no.one@private.example"), &admin).await;
        let (s, _) = post(
            &c,
            &srv.api("/leads"),
            &admin,
            &json!({"email": "an.nguyen@saobien-soft.example"}),
        )
        .await;
        assert_eq!(s, StatusCode::CONFLICT);
        let (s, _) = post(
            &c,
            &srv.api("/events"),
            &admin,
            &json!({"id": "x1", "lead": "secret.person@private.example", "type": "t", "occurred_at": "2026-01-01T00:00:00Z"}),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        c.delete(srv.api(&format!("/leads/{id}")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        c.get(format!("{}/metrics", srv.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    let (status, log) = srv.terminate();
    assert!(status.success(), "{log}");
    assert!(log.contains("loaded the sample model"), "{log}");
    let mut private: Vec<String> = vec!["private.example".into(), "secret.person".into()];
    let mut rdr = csv::Reader::from_reader(DEMO_LEADS.as_bytes());
    for r in rdr.records() {
        let r = r.unwrap();
        // email, first_name, last_name
        private.extend([r[3].to_owned(), r[1].to_owned(), r[2].to_owned()]);
    }
    for p in private.iter().filter(|p| p.len() > 2) {
        assert!(!log.contains(p.as_str()), "`{p}` is in the log:\n{log}");
        assert!(!metrics.contains(p.as_str()), "`{p}` is in the metrics");
    }
}

/// The automation runs on a runtime of its own, behind the requests: its
/// threads are named `automation` and (on Linux) run at nice 19, and from
/// there it routes the demo's hot leads to the senior reps of their
/// countries (`examples/automation.toml`).
#[test]
fn the_automation_routes_hot_leads_from_threads_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_url(dir.path());
    let admin = token(&url, "admin", None);
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/automation.toml");
    let srv = Server::start_with(&url, &["--demo", "--config", config]);
    if cfg!(target_os = "linux") {
        let mut automation = 0;
        for task in std::fs::read_dir(format!("/proc/{}/task", srv.child.id())).unwrap() {
            let task = task.unwrap().path();
            let name = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
            let stat = std::fs::read_to_string(task.join("stat")).unwrap_or_default();
            // The nice value is the 19th field, the 17th after the name's ")".
            let nice: Option<i64> = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(16)?.parse().ok());
            if name.trim() == "automation" {
                automation += 1;
                assert_eq!(
                    nice,
                    Some(i64::from(leadscore_store::BACKGROUND_NICE)),
                    "an automation thread's priority: {stat}"
                );
            } else if name.trim() == "tokio-rt-worker" {
                assert_eq!(nice, Some(0), "a request thread's priority: {stat}");
            }
        }
        assert!(automation > 0, "no thread is named automation");
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = client();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (s, v) = get(&c, &srv.api("/leads?limit=1000"), &admin).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            let owner = |id: &str| {
                v["leads"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|l| l["id"] == id)
                    .map(|l| l["owner"].clone())
            };
            // Very hot in Ukraine; hot in Vietnam.
            if owner("UA-2001") == Some(json!("olena")) && owner("VN-1001") == Some(json!("an")) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the hot leads were not routed: UA-2001 {:?}, VN-1001 {:?}\n{}",
                owner("UA-2001"),
                owner("VN-1001"),
                srv.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

#[test]
fn import_and_export_commands() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_url(dir.path());
    let file = dir.path().join("hubspot.csv");
    std::fs::write(
        &file,
        "First Name,Last Name,Email,Company Name,Job Title,Number of Employees,Lifecycle Stage\n\
         An,Nguyen,an@lotus-travel.vn,Lotus Travel,Founder & CEO,120,lead\n\
         Binh,Tran,binh@mekong.vn,Mekong Soft,Engineer,lots,lead\n\
         Chi,Le,chi@rice.vn,Saigon Rice,Owner,30,customer\n",
    )
    .unwrap();
    let (ok, stdout, stderr) = run(leadscore()
        .arg("import")
        .arg(&file)
        .args(["--database-url", &url]));
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "2 created, 0 updated, 1 rejected", "{stderr}");
    assert!(
        stderr.contains(&format!("{}:3:", file.display())) && stderr.contains("employees"),
        "the bad row is named with its line: {stderr}"
    );
    // Again: the same e-mails are refused, unless --upsert.
    let (ok, stdout, _) = run(leadscore()
        .arg("import")
        .arg(&file)
        .args(["--database-url", &url]));
    assert!(ok);
    assert_eq!(stdout.trim(), "0 created, 0 updated, 3 rejected");
    let (ok, stdout, _) =
        run(leadscore()
            .arg("import")
            .arg(&file)
            .args(["--upsert", "--database-url", &url]));
    assert!(ok);
    assert_eq!(stdout.trim(), "0 created, 2 updated, 1 rejected");

    let (ok, csv, stderr) = run(leadscore().args(["export", "--database-url", &url]));
    assert!(ok, "{stderr}");
    let mut rdr = csv::Reader::from_reader(csv.as_bytes());
    let header = rdr.headers().unwrap().clone();
    let email = header.iter().position(|h| h == "email").unwrap();
    let stage = header.iter().position(|h| h == "Lifecycle Stage").unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    let mut emails: Vec<&str> = rows.iter().map(|r| &r[email]).collect();
    emails.sort();
    assert_eq!(emails, ["an@lotus-travel.vn", "chi@rice.vn"], "{csv}");
    assert!(rows.iter().any(|r| &r[stage] == "customer"), "{csv}");
    let out = dir.path().join("out.csv");
    let (ok, stdout, _) = run(leadscore()
        .args(["export", "-o"])
        .arg(&out)
        .args(["--database-url", &url]));
    assert!(ok);
    assert!(stdout.is_empty());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), csv);

    // The server sees what the command imported.
    let admin = token(&url, "admin", None);
    let srv = Server::start(&url, false);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let (s, v) = get(&client(), &srv.api("/leads?q=lotus"), &admin).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["leads"].as_array().unwrap().len(), 1, "{v}");
    });
}

/// `leadscore tasks` lists the follow-ups a status change created through the API.
#[test]
fn tasks_command_lists_due_follow_ups() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_url(dir.path());
    let admin = token(&url, "admin", None);
    let ann = token(&url, "rep", Some("ann"));
    let (ok, stdout, stderr) = run(leadscore().args(["tasks", "--database-url", &url]));
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "no tasks");
    let srv = Server::start(&url, false);
    let due = now().minus_days(-3.0).to_string()[..10].to_owned();
    let contract_ends = now().minus_days(-400.0).to_string()[..10].to_owned();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let c = client();
        for (id, owner) in [("L1", "ann"), ("L2", "bob")] {
            let (s, v) = post(
                &c,
                &srv.api("/leads"),
                &admin,
                &json!({"id": id, "company": "Lotus", "owner": owner}),
            )
            .await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
        }
        let (s, v) = post(
            &c,
            &srv.api("/leads/L1/status"),
            &ann,
            &json!({"status": "contact_later", "date": due}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let body = json!({"status": "disqualified", "reason": "under_contract", "date": contract_ends});
        let (s, v) = post(&c, &srv.api("/leads/L2/status"), &admin, &body).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    });
    drop(srv);
    let (ok, stdout, stderr) = run(leadscore().args(["tasks", "--owner", "ann", "--database-url", &url]));
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with("DUE") && lines[0].contains("TITLE"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with(&due) && lines[1].contains("L1") && lines[1].contains("contact_later"),
        "{stdout}"
    );
    let (_, all, _) = run(leadscore().args(["tasks", "--database-url", &url]));
    assert_eq!(all.lines().count(), 3, "{all}");
    assert!(all.contains("contract_ending") && all.contains("bob"), "{all}");
    let in_a_month = now().minus_days(-30.0).to_string()[..10].to_owned();
    let (_, soon, _) = run(leadscore().args(["tasks", "--due-before", &in_a_month, "--database-url", &url]));
    assert_eq!(
        soon.lines().count(),
        2,
        "only the call-back is due within a month: {soon}"
    );
    let (ok, _, stderr) = run(leadscore().args(["tasks", "--due-before", "soon", "--database-url", &url]));
    assert!(!ok && stderr.contains("--due-before"), "{stderr}");
}

/// `leadscore report` in the terminal, as JSON and as an HTML page with SVG charts.
#[test]
fn report_command_prints_and_writes_html() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_url(dir.path());
    // The demo loads the sample model; then historical leads with outcomes.
    drop(Server::start(&url, true));
    let mut csv = String::from("id,email,job_title,industry,outcome,outcome_date\n");
    for i in 0..40 {
        let (title, won) = if i < 20 {
            ("CEO", i < 14)
        } else {
            ("intern", i < 22)
        };
        csv.push_str(&format!(
            "H{i},h{i}@corp{i}.vn,{title},software,{},2026-10-01\n",
            if won { "won" } else { "lost" }
        ));
    }
    let file = dir.path().join("history.csv");
    std::fs::write(&file, csv).unwrap();
    let (ok, _, stderr) = run(leadscore()
        .arg("import")
        .arg(&file)
        .args(["--database-url", &url]));
    assert!(ok, "{stderr}");
    let html = dir.path().join("report.html");
    let (ok, stdout, stderr) = run(leadscore()
        .args(["report", "--capacity", "50", "--html"])
        .arg(&html)
        .args(["--database-url", &url]));
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("against 40 leads with a known outcome (16 converted"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ROC AUC") && stdout.contains("decision_maker") && stdout.contains("MQL threshold"),
        "{stdout}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.starts_with("<!doctype html>") && page.matches("<svg").count() == 2,
        "{page}"
    );
    let (ok, json_out, _) = run(leadscore().args(["report", "--format", "json", "--database-url", &url]));
    assert!(ok);
    let v: Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(v["leads"], 40);
    assert_eq!(v["conversions"], 16);
    assert!(v["auc"].as_f64().unwrap() > 0.7, "{v}");
    let (ok, _, stderr) = run(leadscore().args(["report", "--model", "nope", "--database-url", &url]));
    assert!(!ok && stderr.contains("nope"), "{stderr}");
    // 40 outcomes are too few for a predictive model: said plainly.
    let (ok, _, stderr) = run(leadscore().args(["retrain", "--database-url", &url]));
    assert!(
        !ok && stderr.contains("too few to learn from") && stderr.contains("40 leads"),
        "{stderr}"
    );
}

/// What one streaming client saw.
#[derive(Default)]
struct Seen {
    /// Event ids a 2xx answer said are stored (accepted or duplicate).
    stored: Vec<String>,
    /// Whether the stream ended on a failed request (the kill) rather than its bound.
    broken: bool,
}

/// Streams single events and small batches until a request fails or the
/// bound is reached.
async fn stream_events(
    base: String,
    token: String,
    task: usize,
    leads: usize,
    acked: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> Seen {
    let c = client();
    let mut seen = Seen::default();
    let kinds = [
        "email_clicked",
        "page_viewed",
        "demo_requested",
        "webinar_attended",
    ];
    let t = now();
    let event = |id: String, n: usize| {
        let mut e = json!({
            "id": id,
            "lead": format!("L{}", (n * 7 + task) % leads),
            "type": kinds[n % kinds.len()],
            "occurred_at": t.minus_days(0.5 + (n % 40) as f64).to_string(),
        });
        if n % 4 == 1 {
            e["properties"] = json!({"path": "/pricing"});
        }
        e
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    for i in 0..4000usize {
        if stop.load(Ordering::SeqCst) || Instant::now() > deadline {
            break;
        }
        let (url, body) = if i % 3 == 2 {
            let mut batch: Vec<Value> = (0..5).map(|j| event(format!("k{task}-{i}-{j}"), i + j)).collect();
            // The previous (single) event again: duplicates must stay single.
            batch.push(event(format!("k{task}-{}", i - 1), i - 1));
            (format!("{base}/api/v1/events/batch"), Value::Array(batch))
        } else {
            (format!("{base}/api/v1/events"), event(format!("k{task}-{i}"), i))
        };
        let answer = c.post(&url).bearer_auth(&token).json(&body).send().await;
        let r = match answer {
            Ok(r) => r,
            Err(_) => {
                seen.broken = true;
                break;
            }
        };
        let status = r.status();
        let Ok(v) = r.json::<Value>().await else {
            seen.broken = true;
            break;
        };
        assert!(status.is_success(), "{status}: {v}");
        if let Some(results) = v["results"].as_array() {
            for res in results {
                assert_ne!(res["status"], "rejected", "{res}");
                seen.stored.push(res["id"].as_str().unwrap().to_owned());
            }
        } else {
            seen.stored.push(v["id"].as_str().unwrap().to_owned());
        }
        acked.fetch_add(1, Ordering::SeqCst);
    }
    seen
}

/// SIGKILL the server while clients stream events; restart it on the same
/// file: every answered event is stored exactly once, and every stored
/// score is the engine's score as of its `as_of`.
#[test]
fn killed_mid_stream_loses_no_answered_event() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_url(dir.path());
    let admin = token(&url, "admin", None);
    let leads = 12usize;
    let mut srv = Server::start(&url, false);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let seen: Vec<Seen> = rt.block_on(async {
        let c = client();
        let r = c
            .post(srv.api("/models"))
            .bearer_auth(&admin)
            .body(SPEC_MODEL)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let r = c
            .post(srv.api("/models/b2b-default/activate"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        for i in 0..leads {
            let lead = json!({"id": format!("L{i}"), "job_title": "Founder & CEO", "industry": "Travel",
                "email": format!("l{i}@lotus-travel.vn"), "employees": 100 * i});
            let (s, v) = post(&c, &srv.api("/leads"), &admin, &lead).await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
        }
        let acked = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = (0..4)
            .map(|task| {
                tokio::spawn(stream_events(
                    srv.base.clone(),
                    admin.clone(),
                    task,
                    leads,
                    acked.clone(),
                    stop.clone(),
                ))
            })
            .collect();
        // Kill once the clients are well under way.
        let deadline = Instant::now() + Duration::from_secs(60);
        while acked.load(Ordering::SeqCst) < 200 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        srv.child.kill().expect("SIGKILL");
        srv.child.wait().unwrap();
        stop.store(true, Ordering::SeqCst);
        let mut seen = Vec::new();
        for t in tasks {
            let s = tokio::time::timeout(Duration::from_secs(120), t)
                .await
                .expect("the clients end after the kill")
                .expect("a client task panicked");
            seen.push(s);
        }
        seen
    });
    let answered: Vec<&String> = seen.iter().flat_map(|s| &s.stored).collect();
    eprintln!(
        "crash test: {} events answered by 4 clients, {} streams cut off by the kill",
        answered.len(),
        seen.iter().filter(|s| s.broken).count()
    );
    assert!(
        answered.len() >= 200,
        "the clients got few answers: {}",
        answered.len()
    );
    assert!(
        seen.iter().any(|s| s.broken),
        "no request was cut off: the kill did not happen mid-stream"
    );
    drop(srv);

    let srv = Server::start(&url, false);
    rt.block_on(async {
        let c = client();
        let mut stored: BTreeMap<String, usize> = BTreeMap::new();
        for i in 0..leads {
            let id = format!("L{i}");
            let (s, v) = get(&c, &srv.api(&format!("/leads/{id}/events")), &admin).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            for e in v["events"].as_array().unwrap() {
                *stored.entry(e["id"].as_str().unwrap().to_owned()).or_default() += 1;
            }
            // The stored score is the engine's for the stored data.
            let (s, lead) = get(&c, &srv.api(&format!("/leads/{id}")), &admin).await;
            assert_eq!(s, StatusCode::OK);
            let score = &lead["score"];
            let as_of = score["as_of"].as_str().expect("the lead is scored");
            let r = c
                .get(srv.api(&format!("/leads/{id}/score?as_of={}", as_of.replace('+', "%2B"))))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let fresh: Value = r.json().await.unwrap();
            assert_eq!(&fresh, score, "{id}: the stored score is stale or wrong");
        }
        let twice: Vec<_> = stored.iter().filter(|(_, n)| **n != 1).collect();
        assert!(twice.is_empty(), "events stored more than once: {twice:?}");
        let answered: HashSet<&str> = answered.iter().map(|s| s.as_str()).collect();
        let missing: Vec<_> = answered.iter().filter(|id| !stored.contains_key(**id)).collect();
        assert!(
            missing.is_empty(),
            "answered events lost in the crash: {missing:?}"
        );
        // Ready once warmed up (503 until then), which may outlast the reads.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (s, v) = get(&c, &format!("{}/readyz", srv.base), &admin).await;
            if s == StatusCode::OK {
                break;
            }
            assert!(
                s == StatusCode::SERVICE_UNAVAILABLE && std::time::Instant::now() < deadline,
                "not ready after the restart: {s} {v}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}
