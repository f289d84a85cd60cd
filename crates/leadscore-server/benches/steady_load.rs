//! Single-event POSTs at a steady rate (open loop), for latency at a given load.
//!
//! `wrk` (in `bench/serve_bench.py`) keeps 64 connections busy back to back: it
//! finds the most requests a second the server can take, but its latencies are
//! those of a server kept saturated (with 64 requests always in flight, the
//! mean is 64 / rate by Little's law, whatever the server does). This harness
//! instead sends at a fixed rate from up to `--connections` connections, the
//! way real clients arrive, and times every request from the moment it was
//! *due*, not from when a connection was free to send it: when the server falls
//! behind, the wait in the queue counts too (no "coordinated omission").
//!
//! Every request is a new event (a fresh id) for a random lead `L0 ..
//! L<leads-1>`, as `bench_gen.py` names them.
//!
//! Run: `cargo bench -p leadscore-server --bench steady_load -- --url
//! http://127.0.0.1:PORT/api/v1/events --token TOKEN [--rate 5000]
//! [--seconds 20] [--connections 64] [--leads 200000]`. Prints one JSON
//! object: the rate asked for and reached, the statuses, and the latency
//! percentiles in milliseconds. Times are kept to the tokio timer's
//! millisecond, so a request may start up to 1 ms after it was due; that
//! delay is counted in its latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

struct Args {
    url: hyper::Uri,
    token: String,
    rate: f64,
    seconds: f64,
    connections: usize,
    leads: u64,
}

fn args() -> Result<Args> {
    let mut a = Args {
        url: hyper::Uri::from_static("http://127.0.0.1:8080/api/v1/events"),
        token: String::new(),
        rate: 5000.0,
        seconds: 20.0,
        connections: 64,
        leads: 200_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--bench" {
            continue; // added by `cargo bench`
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--url" => a.url = value.parse().with_context(|| format!("--url {value}"))?,
            "--token" => a.token = value,
            "--rate" => a.rate = value.parse().context("--rate")?,
            "--seconds" => a.seconds = value.parse().context("--seconds")?,
            "--connections" => a.connections = value.parse().context("--connections")?,
            "--leads" => a.leads = value.parse().context("--leads")?,
            _ => bail!("unknown option {flag}"),
        }
    }
    if a.rate <= 0.0 || a.seconds <= 0.0 || a.connections == 0 || a.leads == 0 {
        bail!("--rate, --seconds, --connections and --leads must be positive");
    }
    Ok(a)
}

#[derive(Default)]
struct Tally {
    /// Microseconds from when each answered request was due to its answer.
    latencies: Vec<u32>,
    /// Milliseconds from the start to when each answered request was due.
    due_ms: Vec<u32>,
    ok: u64,
    other_status: u64,
    failed: u64,
}

fn main() -> Result<()> {
    let args = Arc::new(args()?);
    // One thread: the generator should take as little of the machine from
    // the server as it can.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let (tallies, elapsed) = runtime.block_on(run(args.clone()))?;
    let mut all = Tally::default();
    for t in tallies {
        all.latencies.extend(t.latencies);
        all.due_ms.extend(t.due_ms);
        all.ok += t.ok;
        all.other_status += t.other_status;
        all.failed += t.failed;
    }
    // Where the slow answers were: per tenth of a second of the run, how
    // many took over 10 ms and the slowest, for the ten worst tenths.
    let mut tenths: std::collections::BTreeMap<u32, (u32, u32)> = Default::default();
    for (&lat, &due) in all.latencies.iter().zip(&all.due_ms) {
        let t = tenths.entry(due / 100).or_default();
        t.0 += u32::from(lat > 10_000);
        t.1 = t.1.max(lat);
    }
    let mut worst: Vec<_> = tenths.into_iter().filter(|(_, (n, _))| *n > 0).collect();
    worst.sort_by_key(|(_, (n, _))| std::cmp::Reverse(*n));
    let worst: Vec<_> = worst
        .iter()
        .take(10)
        .map(|(t, (n, max))| serde_json::json!({"at_s": f64::from(*t) / 10.0, "over_10ms": n, "max_ms": f64::from(*max) / 1000.0}))
        .collect();
    all.latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        let n = all.latencies.len();
        if n == 0 {
            return f64::NAN;
        }
        let i = ((n as f64 * p).ceil() as usize).clamp(1, n) - 1;
        f64::from(all.latencies[i]) / 1000.0
    };
    let answered = all.latencies.len() as f64;
    println!(
        "{}",
        serde_json::json!({
            "rate_asked_per_s": args.rate,
            "seconds": elapsed,
            "answered_per_s": answered / elapsed,
            "ok": all.ok,
            "other_status": all.other_status,
            "failed": all.failed,
            "p50_ms": pct(0.50),
            "p90_ms": pct(0.90),
            "p99_ms": pct(0.99),
            "p999_ms": pct(0.999),
            "max_ms": pct(1.0),
            "started_unix_s": started_unix,
            "slowest_tenths": worst,
        })
    );
    Ok(())
}

async fn run(args: Arc<Args>) -> Result<(Vec<Tally>, f64)> {
    let total = (args.rate * args.seconds).round() as u64;
    let next = Arc::new(AtomicU64::new(0));
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    let run_id = fastrand::u64(..);
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let (args, next) = (args.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            connection(&args, &next, total, start, run_id).await
        }));
    }
    let mut tallies = Vec::new();
    for t in tasks {
        tallies.push(t.await??);
    }
    let elapsed = Instant::now().duration_since(start.into_std()).as_secs_f64();
    Ok((tallies, elapsed))
}

/// One connection: takes the next due request, waits until it is due, sends
/// it and waits for the answer; reconnects after a failure.
async fn connection(
    args: &Args,
    next: &AtomicU64,
    total: u64,
    start: tokio::time::Instant,
    run_id: u64,
) -> Result<Tally> {
    let authority = args.url.authority().context("--url has no host")?.clone();
    let auth = format!("Bearer {}", args.token);
    let mut tally = Tally::default();
    let mut sender: Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>> = None;
    let mut rng = fastrand::Rng::new();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= total {
            return Ok(tally);
        }
        let due = start + Duration::from_secs_f64(i as f64 / args.rate);
        if due > tokio::time::Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        if sender.is_none() {
            match open(authority.as_str()).await {
                Ok(s) => sender = Some(s),
                Err(_) => {
                    tally.failed += 1;
                    continue;
                }
            }
        }
        let body = format!(
            r#"{{"id":"s{run_id:x}-{i}","lead":"L{}","type":"email_clicked","occurred_at":"2026-10-30T10:00:00Z"}}"#,
            rng.u64(..args.leads)
        );
        let request = hyper::Request::post(args.url.clone())
            .header(hyper::header::HOST, authority.as_str())
            .header(hyper::header::AUTHORIZATION, &auth)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))?;
        let s = sender.as_mut().expect("connected above");
        let answer = async {
            s.ready().await?;
            let response = s.send_request(request).await?;
            let status = response.status();
            response.into_body().collect().await?;
            Ok::<_, hyper::Error>(status)
        }
        .await;
        match answer {
            Ok(status) => {
                let waited = tokio::time::Instant::now().duration_since(due);
                tally
                    .latencies
                    .push(u32::try_from(waited.as_micros()).unwrap_or(u32::MAX));
                tally
                    .due_ms
                    .push(u32::try_from(due.duration_since(start).as_millis()).unwrap_or(u32::MAX));
                if status.is_success() {
                    tally.ok += 1;
                } else {
                    tally.other_status += 1;
                }
            }
            Err(_) => {
                tally.failed += 1;
                sender = None;
            }
        }
    }
}

async fn open(authority: &str) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}
