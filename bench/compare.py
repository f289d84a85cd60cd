#!/usr/bin/env python3
"""Batch-scoring benchmark: `leadscore score` against the DuckDB peer.

usage: bench/compare.py [--runs N] [--sizes full,half,quarter] [--data DIR] [--format csv|jsonl]

Generates the data with ../shared/bench/bench_gen.py (200,000 leads; 5M,
2.5M and 1.25M events) unless it exists, then runs DuckDB (2 threads, its
query time alone) and leadscore (the whole process: reading, scoring,
sorting and writing its output) alternately, N times each, and reports the
medians, their ratio and each side's peak memory. Every leadscore run's
scores are compared with DuckDB's, lead by lead.

DuckDB writes a CSV of lead, score, fit, engagement and band; leadscore's
`--format csv` (the default here) is the like-for-like output, with grade,
MQL and the reasons in words besides (21 MB on the full data). `--format
jsonl` writes every rule's contribution too (84 MB).

Needs: python3 with duckdb and numpy (pip install duckdb numpy), GNU time
(/usr/bin/time), and a release build (cargo build --release).
"""
import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "bench")
# LEADSCORE_BIN overrides the binary (e.g. a build with its own CARGO_TARGET_DIR).
BIN = os.environ.get("LEADSCORE_BIN") or os.path.join(ROOT, "target", "release", "leadscore")
SIZES = {"quarter": 1_250_000, "half": 2_500_000, "full": 5_000_000}
AS_OF = "2026-11-01T00:00:00Z"


def timed(cmd, stdout):
    """Runs cmd under GNU time; returns (wall seconds, peak RSS MiB, stdout text of the command)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        proc = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", tf.name] + cmd,
                              stdout=stdout, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr}")
        wall, rss_kb = tf.read().split()[-2:]
        return float(wall), int(rss_kb) / 1024, proc


def our_rows(path, fmt):
    """leadscore's output rows as dicts with numbers for score, fit and engagement."""
    with open(path) as f:
        if fmt == "jsonl":
            yield from map(json.loads, f)
            return
        for r in csv.DictReader(f):
            yield {**r, **{k: float(r[k]) for k in ("score", "fit", "engagement")}}


def compare(duck_csv, ours, fmt):
    duck = {r["lead"]: r for r in csv.DictReader(open(duck_csv))}
    n = bad = 0
    for r in our_rows(ours, fmt):
        d = duck[r["lead"]]
        n += 1
        if (abs(float(d["score"]) - r["score"]) > 1e-9 or abs(float(d["fit"]) - r["fit"]) > 1e-9
                or abs(float(d["engagement"]) - r["engagement"]) > 1e-9 or d["band"] != r["band"]):
            bad += 1
    return n, len(duck), bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sizes", default="quarter,half,full")
    ap.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "leadscore-bench"))
    ap.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    args = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release")

    rows = []
    for size in args.sizes.split(","):
        d = os.path.join(args.data, size)
        if not os.path.exists(os.path.join(d, "events.jsonl")):
            print(f"generating {size} data in {d} ...", file=sys.stderr)
            subprocess.run([sys.executable, os.path.join(SHARED, "bench_gen.py"), d, "200000", str(SIZES[size])], check=True)
        duck_out = os.path.join(d, "duck.csv")
        ours_out = os.path.join(d, f"leadscore.{args.format}")
        duck_t, duck_m, ours_t, ours_m = [], [], [], []
        for _ in range(args.runs):
            _, m, p = timed([sys.executable, os.path.join(SHARED, "duck_peer.py"), d, duck_out, "2"], subprocess.PIPE)
            duck_t.append(float(p.stdout.strip()))
            duck_m.append(m)
            with open(ours_out, "w") as out:
                t, m, _ = timed([BIN, "score", "--model", os.path.join(d, "model.toml"), "--leads",
                                 os.path.join(d, "leads.csv"), "--events", os.path.join(d, "events.jsonl"),
                                 "--as-of", AS_OF, "--format", args.format], out)
            ours_t.append(t)
            ours_m.append(m)
        n, nd, bad = compare(duck_out, ours_out, args.format)
        size_mb = os.path.getsize(os.path.join(d, "events.jsonl")) / 2**20
        rows.append((size, SIZES[size], size_mb, statistics.median(duck_t), statistics.median(ours_t),
                     max(duck_m), max(ours_m), n, nd, bad))

    print(f"leadscore --format {args.format}")
    print("| data | events | events.jsonl | DuckDB query s (median) | leadscore wall s (median) | ratio | DuckDB peak MiB | leadscore peak MiB | scores equal |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size, ev, mb, dt, ot, dm, om, n, nd, bad in rows:
        print(f"| {size} | {ev:,} | {mb:.0f} MiB | {dt:.3f} | {ot:.3f} | {ot / dt:.2f} | {dm:.0f} | {om:.0f} | "
              f"{n - bad:,}/{nd:,} |")
    if any(r[-1] for r in rows):
        sys.exit("scores differ from DuckDB's")


if __name__ == "__main__":
    main()
