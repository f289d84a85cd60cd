#!/usr/bin/env python3
"""Predictive scoring benchmark: `leadscore evaluate` / `train` against
scikit-learn on the real leads in ../shared/datasets/ (the protocol of its
README: stratified 5-fold CV, shuffled, random_state=42; LR with median
imputation, scaling and one-hot; HGB with native categorical support).

usage: bench/ml_compare.py [--runs N]

Reports, with and without the columns that leak the outcome, each side's
mean AUC, log-loss, Brier and conversion in the top 10/20 %, and the wall
time of training on all rows plus the 5-fold evaluation; then the time to
predict 1,000,000 leads.

Needs: pip install scikit-learn pandas; a release build (cargo build --release).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(os.path.dirname(ROOT), "shared", "datasets", "leads-x-education.csv")
BIN = os.environ.get("LEADSCORE_BIN") or os.path.join(ROOT, "target", "release", "leadscore")
IDS = ["Prospect ID", "Lead Number"]
LEAKY = ["Tags", "Lead Quality", "Lead Profile", "Last Activity", "Last Notable Activity",
         "Asymmetrique Activity Index", "Asymmetrique Profile Index",
         "Asymmetrique Activity Score", "Asymmetrique Profile Score"]
NUMERIC = ["TotalVisits", "Total Time Spent on Website", "Page Views Per Visit",
           "Asymmetrique Activity Score", "Asymmetrique Profile Score"]


def top(p, y, share):
    k = max(1, int(np.ceil(len(p) * share)))
    order = np.argsort(-p, kind="stable")[:k]
    return y[order].mean()


def figures(p, y):
    return {"auc": roc_auc_score(y, p), "logloss": log_loss(y, p), "brier": brier_score_loss(y, p),
            "top10_conversion": top(p, y, 0.1), "top20_conversion": top(p, y, 0.2)}


def sklearn_side(df, leaky_kept):
    drop = IDS + ([] if leaky_kept else LEAKY)
    X = df.drop(columns=drop + ["Converted"]).replace("Select", np.nan)
    y = df["Converted"].to_numpy()
    num = [c for c in NUMERIC if c in X.columns]
    cat = [c for c in X.columns if c not in num]
    X[cat] = X[cat].astype("object").where(X[cat].notna(), "__missing__").astype(str)

    def lr():
        pre = ColumnTransformer([
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), num),
            ("cat", OneHotEncoder(handle_unknown="ignore"), cat)])
        return make_pipeline(pre, LogisticRegression(C=1, max_iter=2000))

    def hgb():
        pre = ColumnTransformer([("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan), cat)],
                                remainder="passthrough")
        return make_pipeline(pre, HistGradientBoostingClassifier(
            categorical_features=list(range(len(cat))), random_state=42))

    out = {}
    started = time.perf_counter()
    for name, make in (("logistic", lr), ("gbdt", hgb)):
        folds = []
        for tr, te in StratifiedKFold(5, shuffle=True, random_state=42).split(X, y):
            m = make().fit(X.iloc[tr], y[tr])
            folds.append(figures(m.predict_proba(X.iloc[te])[:, 1], y[te]))
        out[name] = {k: float(np.mean([f[k] for f in folds])) for k in folds[0]}
    final = hgb().fit(X, y)
    out["seconds"] = time.perf_counter() - started
    return out, final, X


def leadscore_side(leaky_kept):
    exclude = IDS + ([] if leaky_kept else LEAKY)
    started = time.perf_counter()
    ev = subprocess.run([BIN, "evaluate", "--data", DATA, "--target", "Converted", "--exclude", ",".join(exclude),
                         "--format", "json"], check=True, capture_output=True, text=True)
    with tempfile.NamedTemporaryFile(suffix=".json") as model:
        subprocess.run([BIN, "train", "--data", DATA, "--target", "Converted", "--exclude", ",".join(exclude),
                        "--output", model.name], check=True, capture_output=True, text=True)
        seconds = time.perf_counter() - started
    v = json.loads(ev.stdout)
    return {"gbdt": v["gbdt"], "logistic": v["logistic"], "seconds": seconds}


def predict_million(df):
    """Both sides predict the same 1,000,000 leads (the dataset repeated),
    with a model trained without the leaky columns; each side's own timing
    of the prediction step on rows already in memory."""
    big = pd.concat([df] * (1_000_000 // len(df) + 1), ignore_index=True).iloc[:1_000_000]
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "million.csv")
        big.to_csv(path, index=False)
        model = os.path.join(d, "model.json")
        subprocess.run([BIN, "train", "--data", DATA, "--target", "Converted", "--exclude", ",".join(IDS + LEAKY),
                        "--output", model], check=True, capture_output=True)
        out = subprocess.run([BIN, "predict", "--model", model, "--data", path, "--output", os.path.join(d, "p.csv")],
                             check=True, capture_output=True, text=True)
        ours = float(out.stderr.split(" in ")[1].split(" s")[0])
    _, final, _ = sklearn_side(df, False)
    Xb = big.drop(columns=IDS + LEAKY + ["Converted"]).replace("Select", np.nan)
    num = [c for c in NUMERIC if c in Xb.columns]
    cat = [c for c in Xb.columns if c not in num]
    Xb[cat] = Xb[cat].astype("object").where(Xb[cat].notna(), "__missing__").astype(str)
    started = time.perf_counter()
    final.predict_proba(Xb)
    theirs = time.perf_counter() - started
    return ours, theirs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release")
    df = pd.read_csv(DATA)
    rows = []
    for leaky_kept in (True, False):
        sk_t, ls_t = [], []
        for _ in range(args.runs):
            sk, final, X = sklearn_side(df, leaky_kept)
            ls = leadscore_side(leaky_kept)
            sk_t.append(sk["seconds"])
            ls_t.append(ls["seconds"])
        label = "all (leaky kept)" if leaky_kept else "without leaky"
        for side, res in (("scikit-learn", sk), ("leadscore", ls)):
            for model in ("logistic", "gbdt"):
                f = res[model]
                rows.append(f"| {label} | {side} {model} | {f['auc']:.5f} | {f['logloss']:.3f} | {f['brier']:.3f} | "
                            f"{f['top10_conversion']:.4f} | {f['top20_conversion']:.4f} |")
        rows.append(f"| {label} | time: train + 5-fold evaluation (both models) | scikit-learn {np.median(sk_t):.2f} s | "
                    f"leadscore {np.median(ls_t):.2f} s | ratio {np.median(ls_t) / np.median(sk_t):.2f} | | |")
    print("| columns | model | AUC | log-loss | Brier | top 10 % | top 20 % |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    ours, theirs = predict_million(df)
    print(f"\npredicting 1,000,000 leads: leadscore {ours:.2f} s, scikit-learn predict_proba {theirs:.2f} s "
          f"(ratio {ours / theirs:.2f})")


if __name__ == "__main__":
    main()
