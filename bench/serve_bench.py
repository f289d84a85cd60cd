#!/usr/bin/env python3
"""Service benchmark: `leadscore serve` loaded over HTTP on loopback.

usage: bench/serve_bench.py [--database-url URL | --db FILE] [--data DIR] [--events N] [--clients N]
                            [--single-seconds S] [--skip-single] [--steady-rate R] [--config FILE]
                            [--reuse [--activations N]]

With the data of ../shared/bench/bench_gen.py (200,000 leads, 5,000,000 events;
generated if missing) it measures, against a fresh database:

1. importing the leads (POST /leads/import, CSV in chunks);
2. batched ingest: POST /events/batch with 1,000 events a request from
   --clients concurrent connections: durable events per second;
3. single-event POSTs from `wrk` (64 connections, two threads, a Lua script
   giving every request a new event, checked against the server's count of
   repeated events): the most requests per second the server takes
   with 64 requests always in flight, and their latency percentiles (by
   Little's law their mean is 64 / rate, whatever the server does);
3b. single-event POSTs at a steady --steady-rate a second (5,000 by default)
   from up to 64 connections, for as long as step 3, by the harness
   crates/leadscore-server/benches/steady_load.rs: the latency percentiles at
   that load, each request timed from when it was due, so that time spent
   queued behind a slow answer counts;
4. activating a second model: seconds until every lead is rescored (polling
   GET /models/{name}), beside DuckDB's query time on the same files;
5. the server's peak memory (VmHWM) throughout.

After phases 2 and 3 it also reports the server's CPU time per event, by
thread (the SQLite writer, the checkpointer, the async workers, the rest),
counted until the automation has caught up: on a noisy host it moves about
half as much as the rates do (about 10 % between runs of one build), so it is
the figure to compare two builds by.

Needs a release build (cargo build --release) and, for step 3, wrk
(apt-get install wrk); step 3b's harness is built with cargo when the
benchmark starts. The database is created fresh: a temporary SQLite
file by default, the SQLite file --db names (kept afterwards), or the
PostgreSQL URL given (its tables are dropped first).

--reuse runs on the database an earlier run left (--db FILE, or
--database-url): it skips steps 1 and 2 and runs step 4 --activations times
in a row (each time a new model), the quick loop for work on single POSTs and
activation at full size.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "bench")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BIN = os.environ.get("LEADSCORE_BIN", os.path.join(TARGET, "release", "leadscore"))


def rss_peak_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Api:
    def __init__(self, port, token):
        self.port, self.token = port, token

    def call(self, method, path, body=None, ctype="application/json", conn=None):
        own = conn is None
        conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": ctype}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if own:
            conn.close()
        if resp.status >= 300:
            sys.exit(f"{method} {path}: {resp.status} {data[:300]!r}")
        return json.loads(data) if data and resp.getheader("Content-Type", "").startswith("application/json") else data


def thread_cpu(pid):
    """CPU seconds the server has used so far: by thread id (with the
    thread's group: the writer, the checkpointer, the async workers, the
    automation's runtime, the scoring pool (rayon), the rest), and for the whole process under
    "process" (which keeps the time of threads that have ended, such as
    idle blocking-pool threads)."""
    tick = os.sysconf("SC_CLK_TCK")

    def used(path):
        with open(path) as f:
            stat = f.read()
        fields = stat[stat.rindex(")") + 2:].split()
        return stat[stat.index("(") + 1:stat.rindex(")")], (int(fields[11]) + int(fields[12])) / tick

    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name, cpu = used(f"/proc/{pid}/task/{tid}/stat")
        except OSError:
            continue  # the thread ended
        group = next((g for g in ("sqlite-writer", "sqlite-checkpoi", "tokio-rt-worker", "automation", "rayon") if name.startswith(g)), "other")
        threads[tid] = (group, cpu)
    return {"threads": threads, "process": used(f"/proc/{pid}/stat")[1], "written": bytes_written(pid)}


def bytes_written(pid):
    """Bytes the server has handed to write calls so far (`wchar` of
    /proc/PID/io): the WAL's frames and the checkpointer's copies into the
    database file, whatever the disk then takes to store them."""
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("wchar:"):
                return int(line.split()[1])
    return 0


def cpu_per_event(pid, before, events, results, phase, own_writes):
    """Records and prints the server's CPU microseconds per event in a phase,
    by thread group (the time of threads that ended during the phase is
    counted as "ended"), and, when it writes the database itself (SQLite;
    `own_writes`), the KiB it wrote per event: unlike the rates, a figure of
    the build, not of the disk it ran on."""
    after = thread_cpu(pid)
    used = {}
    for tid, (group, cpu) in after["threads"].items():
        used[group] = used.get(group, 0.0) + cpu - before["threads"].get(tid, (group, 0.0))[1]
    used["ended"] = max(after["process"] - before["process"] - sum(used.values()), 0.0)
    per = {g: v * 1e6 / max(events, 1) for g, v in sorted(used.items())}
    results[f"{phase}_cpu_us_per_event"] = {g: round(v, 1) for g, v in per.items()}
    written = ""
    if own_writes:
        kib = (after["written"] - before["written"]) / 1024 / max(events, 1)
        results[f"{phase}_written_kib_per_event"] = round(kib, 1)
        written = f"; written: {kib:.1f} KiB per event"
    print(f"  server CPU per event (until the automation caught up): {sum(per.values()):.0f} us ("
          + ", ".join(f"{g} {v:.0f}" for g, v in per.items()) + ")" + written, file=sys.stderr)


def metric(port, name, labels=""):
    """A metric's value from /metrics (0 when absent); `labels` (such as
    'status="duplicate"') picks one series of a family."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    series = rf"{{[^}}]*{re.escape(labels)}[^}}]*}}" if labels else rf"(?:{{[^}}]*}})?"
    m = re.search(rf"^leadscore_{name}(?:_total)?{series} ([\d.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def new_events(port, since, results, phase):
    """Records how many events the server stored as new and as repeats since
    `since` (a pair from an earlier call, or None); returns the current pair.
    A load generator whose requests repeat events would look faster than it
    is (a repeat is answered without any work): the single-POST steps check
    that none do."""
    now = (metric(port, "events_ingested", 'status="accepted"'), metric(port, "events_ingested", 'status="duplicate"'))
    if since is not None:
        results[f"{phase}_new_events"] = now[0] - since[0]
        results[f"{phase}_repeated_events"] = now[1] - since[1]
        print(f"  events stored as new: {now[0] - since[0]:,.0f}; repeats of earlier events: {now[1] - since[1]:,.0f}",
              file=sys.stderr)
    return now


def automation_caught_up(port, results, phase, since, quiet=3.0):
    """Waits until the automation engine has had no touched lead to look at
    and made no evaluation for `quiet` seconds (at most two minutes), and
    records how long after the phase it was last busy and how many
    evaluations it made since `since` (the evaluations counter). Nothing
    waiting is not enough: a sweep (at start, after an activation) shows
    nothing waiting while it reads which leads to look at."""
    t = time.time()
    busy_at, last = t, metric(port, "automation_evaluated_leads")
    while time.time() - t < 120:
        waiting, count = metric(port, "automation_waiting_leads"), metric(port, "automation_evaluated_leads")
        if waiting > 0 or count != last:
            busy_at, last = time.time(), count
        elif time.time() - busy_at >= quiet:
            break
        time.sleep(0.05)
    evaluated = last - since
    results[f"{phase}_automation_catch_up_s"] = busy_at - t
    results[f"{phase}_automation_evaluations"] = evaluated
    print(f"  automation: {evaluated:,.0f} evaluations; caught up {busy_at - t:.1f} s after", file=sys.stderr)
    return last


def start_server(db_url, env, config=None, log=None):
    extra = ["--config", config] if config else []
    proc = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--database-url", db_url, *extra],
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 300  # a kept file of an older schema is upgraded first
    out = open(log, "w") if log else None
    while time.time() < deadline:
        line = proc.stderr.readline()
        if out:
            out.write(line)
        m = re.search(r"listening on http://([\d.]+):(\d+)", line) or re.search(r"address=([\d.]+):(\d+)", line)
        if m:
            def drain():
                for line in proc.stderr:
                    if out:
                        out.write(line)
                        out.flush()
            threading.Thread(target=drain, daemon=True).start()
            port = int(m.group(2))
            # Ready once it has read its leads and events into memory (503 until then).
            while time.time() < deadline:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                conn.request("GET", "/readyz")
                ready = conn.getresponse().status == 200
                conn.close()
                if ready:
                    return proc, port
                time.sleep(0.1)
            break
    proc.kill()
    sys.exit("the server did not start")


def activate_second(api, model, results, name, points):
    """Stores the model under `name`, with its first 15-point rule at
    `points`, activates it and waits until every lead is rescored."""
    model2 = re.sub(r'^name\s*=\s*"[^"]+"', f'name = "{name}"', model, count=1, flags=re.M)
    model2 = model2.replace("points = 15", f"points = {points}", 1)
    api.call("POST", "/api/v1/models", model2.encode(), "application/toml")
    t = time.time()
    api.call("POST", f"/api/v1/models/{name}/activate")
    while True:
        m = api.call("GET", f"/api/v1/models/{name}")
        if m.get("rescore") and m["rescore"]["finished"]:
            break
        time.sleep(0.05)
    results.setdefault("activations_s", []).append(round(time.time() - t, 3))
    results["activation_s"] = time.time() - t
    results["rescored"] = m["rescore"]["done"]
    print(f"activation: {m['rescore']['done']:,} leads rescored in {results['activation_s']:.2f} s",
          file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--database-url")
    ap.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "leadscore-bench", "full"))
    ap.add_argument("--events", type=int, default=5_000_000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--single-seconds", type=int, default=20)
    ap.add_argument("--skip-single", action="store_true")
    ap.add_argument("--steady-rate", type=int, default=5000)
    ap.add_argument("--db", help="the SQLite file to use, kept afterwards")
    ap.add_argument("--reuse", action="store_true")
    ap.add_argument("--activations", type=int, default=1)
    ap.add_argument("--config", help="a settings file for the server (e.g. [automation] enabled = false)")
    ap.add_argument("--server-log", help="write the server's log to this file")
    ap.add_argument("--log-filter", default="warn",
                    help="the server's LEADSCORE_LOG, e.g. info,leadscore_store=debug (default: warn)")
    args = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit(f"build first: cargo build --release ({BIN} is missing)")
    d = args.data
    if not os.path.exists(os.path.join(d, "events.jsonl")):
        subprocess.run([sys.executable, os.path.join(SHARED, "bench_gen.py"), d, "200000", "5000000"], check=True)

    steady = None if args.skip_single else steady_harness()
    tmp = tempfile.mkdtemp(prefix="lsbench-")
    env = dict(os.environ, LEADSCORE_LOG=args.log_filter)
    if args.reuse and not (args.db or args.database_url):
        sys.exit("--reuse needs the database of an earlier run: --db FILE or --database-url")
    if args.db and os.path.exists(args.db) and not args.reuse:
        sys.exit(f"{args.db} exists: the benchmark starts from an empty database")
    if args.database_url:
        db_url = args.database_url
        if not args.reuse:
            import_psql_reset(db_url)
    elif args.db:
        db_url = f"sqlite://{os.path.abspath(args.db)}"
    else:
        db_url = f"sqlite://{tmp}/bench.db"
    own_writes = db_url.startswith("sqlite:")  # PostgreSQL's writes are its server's
    out = subprocess.run([BIN, "token", "create", "--role", "admin", "--database-url", db_url],
                         capture_output=True, text=True, check=True, env=env)
    token = out.stdout.strip().splitlines()[-1]
    proc, port = start_server(db_url, env, args.config, args.server_log)
    api = Api(port, token)
    results = {}
    try:
        model = open(os.path.join(d, "model.toml")).read()
        if args.reuse:
            with open(os.path.join(d, "leads.csv")) as f:
                lines = f.readlines()[1:]
            # The automation's start-up sweep first, so that it is not
            # counted in the next phase.
            evaluated = automation_caught_up(port, results, "start", 0)
        else:
            api.call("POST", "/api/v1/models", model.encode(), "application/toml")
            name = re.search(r'^name\s*=\s*"([^"]+)"', model, re.M).group(1)
            api.call("POST", f"/api/v1/models/{name}/activate")

            # 1. leads
            t = time.time()
            with open(os.path.join(d, "leads.csv")) as f:
                header = f.readline()
                lines = f.readlines()
            for i in range(0, len(lines), 20000):
                r = api.call("POST", "/api/v1/leads/import", (header + "".join(lines[i:i + 20000])).encode(), "text/csv")
                if r["rejected"]:
                    sys.exit(f"leads rejected: {r['rows'][:3]}")
            results["leads_import_s"] = time.time() - t
            print(f"imported {len(lines):,} leads in {results['leads_import_s']:.1f} s", file=sys.stderr)

            evaluated = automation_caught_up(port, results, "import", 0)

            # 2. batched ingest
            with open(os.path.join(d, "events.jsonl"), "rb") as f:
                ev_lines = [next(f).rstrip(b"\n") for _ in range(args.events)]
            bodies = [b"[" + b",".join(ev_lines[i:i + 1000]) + b"]" for i in range(0, len(ev_lines), 1000)]
            del ev_lines
            accepted = [0]
            lock = threading.Lock()
            nxt = [0]

            def worker():
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
                while True:
                    with lock:
                        i = nxt[0]
                        nxt[0] += 1
                    if i >= len(bodies):
                        break
                    r = api.call("POST", "/api/v1/events/batch", bodies[i], conn=conn)
                    with lock:
                        accepted[0] += r["accepted"]
                conn.close()

            cpu = thread_cpu(proc.pid)
            t = time.time()
            threads = [threading.Thread(target=worker) for _ in range(args.clients)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            el = time.time() - t
            results["batch_events_per_s"] = accepted[0] / el
            print(f"batched ingest: {accepted[0]:,} events in {el:.1f} s = {accepted[0] / el:,.0f} events/s",
                  file=sys.stderr)
            evaluated = automation_caught_up(port, results, "batch", evaluated)
            cpu_per_event(proc.pid, cpu, accepted[0], results, "batch", own_writes)

        # 3. single events with wrk
        if not args.skip_single:
            if shutil.which("wrk") is None:
                print("wrk is not installed (apt-get install wrk): single-event test skipped", file=sys.stderr)
            else:
                lua = os.path.join(tmp, "single.lua")
                with open(lua, "w") as f:
                    # Events for the imported leads only (L0 .. L<n-1>, as bench_gen.py names them).
                    f.write(WRK_LUA.replace("TOKEN", token).replace("LAST_LEAD", str(len(lines) - 1)))
                cpu = thread_cpu(proc.pid)
                counts = new_events(port, None, results, "single")
                w = subprocess.run(["wrk", "-t2", "-c64", f"-d{args.single_seconds}s", "--latency", "-s", lua,
                                    f"http://127.0.0.1:{port}/api/v1/events"], capture_output=True, text=True)
                print(w.stdout, file=sys.stderr)
                m = re.search(r"Requests/sec:\s+([\d.]+)", w.stdout)
                p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", w.stdout)
                non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", w.stdout)
                results["single_per_s"] = float(m.group(1)) if m else 0
                if p99:
                    scale = {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
                    results["single_p99_ms"] = float(p99.group(1)) * scale
                results["single_non_2xx"] = int(non2xx.group(1)) if non2xx else 0
                new_events(port, counts, results, "single")
                evaluated = automation_caught_up(port, results, "single", evaluated)
                requests = re.search(r"(\d+) requests in", w.stdout)
                cpu_per_event(proc.pid, cpu, int(requests.group(1)) if requests else 0, results, "single", own_writes)

        # 3b. single events at a steady rate
        if steady:
            cpu = thread_cpu(proc.pid)
            counts = new_events(port, None, results, "steady")
            s = subprocess.run([steady, "--url", f"http://127.0.0.1:{port}/api/v1/events", "--token", token,
                                "--rate", str(args.steady_rate), "--seconds", str(args.single_seconds),
                                "--connections", "64", "--leads", str(len(lines))],
                               capture_output=True, text=True, check=True)
            r = json.loads(s.stdout)
            results["steady"] = r
            new_events(port, counts, results, "steady")
            print(f"steady {r['rate_asked_per_s']:,.0f}/s: answered {r['answered_per_s']:,.0f}/s, "
                  f"p50 {r['p50_ms']:.2f} ms, p90 {r['p90_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
                  f"p99.9 {r['p999_ms']:.2f} ms, max {r['max_ms']:.1f} ms; "
                  f"{r['other_status']} not 2xx, {r['failed']} failed", file=sys.stderr)
            evaluated = automation_caught_up(port, results, "steady", evaluated)
            cpu_per_event(proc.pid, cpu, r["ok"], results, "steady", own_writes)

        # 4. activation of a second model (with --reuse: of new ones, a point apart in turn)
        if args.reuse:
            for i in range(args.activations):
                activate_second(api, model, results, f"bench-again-{os.getpid()}-{i}", 16 + i % 2)
        else:
            activate_second(api, model, results, "bench-second", 16)
        results["server_peak_mib"] = rss_peak_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)
    if args.reuse:  # DuckDB's time is the same as in the run that made the database
        print(json.dumps(results, indent=2))
        return
    duck = subprocess.run([sys.executable, os.path.join(SHARED, "duck_peer.py"), d, os.path.join(d, "duck.csv"), "2"],
                          capture_output=True, text=True, check=True)
    results["duckdb_query_s"] = float(duck.stdout.strip())
    print(json.dumps(results, indent=2))


def steady_harness():
    """Builds the steady-rate harness (release settings) and returns its path."""
    out = subprocess.run(["cargo", "bench", "-p", "leadscore-server", "--bench", "steady_load", "--no-run",
                          "--message-format=json"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"cannot build the steady-rate harness:\n{out.stderr[-2000:]}")
    for line in out.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == "steady_load" \
                and msg.get("executable"):
            return msg["executable"]
    sys.exit("cargo built no steady_load executable")


def import_psql_reset(url):
    subprocess.run(["psql", url, "-q", "-c",
                    "DROP TABLE IF EXISTS history, events, tokens, models, leads CASCADE"], check=True)


WRK_LUA = """
-- wrk gives every thread its own Lua state, loaded from this script: a seed
-- taken at load time (os.time()) is the same in every thread, and so would
-- be each thread's events (ids and leads): half the requests would repeat an
-- event another thread had just sent. setup() numbers the threads, and each
-- thread seeds and names its events with its number.
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_no", threads)
end

counter = 0
function init(args)
  math.randomseed(os.time() * 1000 + thread_no)
  run = tostring(math.random(1, 1000000000)) .. "t" .. tostring(thread_no)
end

request = function()
  counter = counter + 1
  local lead = "L" .. tostring(math.random(0, LAST_LEAD))
  local body = '{"id":"w' .. run .. '-' .. tostring(counter) ..
    '","lead":"' .. lead .. '","type":"email_clicked","occurred_at":"2026-10-30T10:00:00Z"}'
  return wrk.format("POST", nil, {["Authorization"] = "Bearer TOKEN", ["Content-Type"] = "application/json"}, body)
end
"""

if __name__ == "__main__":
    main()
