//! Outcomes and the model report (issue 5) over HTTP, on SQLite and
//! PostgreSQL: historical outcomes imported in bulk and set through the
//! status workflow, then the report of the active model and a backtest of a
//! stored one.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// 30 decision makers in a target industry (20 converted) and 30 clerks in
/// retail (3 converted), with their outcomes, plus one row with a bad outcome.
fn history_csv() -> String {
    let mut csv = String::from(
        "id,first_name,last_name,email,job_title,industry,outcome,outcome_date,outcome_value,outcome_reason\n",
    );
    for i in 0..30 {
        let outcome = if i < 20 { "won" } else { "lost" };
        csv.push_str(&format!(
            "G{i},Ann,Le,g{i}@travelco.vn,CEO,travel,{outcome},2026-10-0{},{},\n",
            1 + i % 9,
            1000 * i
        ));
    }
    for i in 0..30 {
        let outcome = if i < 3 { "1" } else { "0" };
        csv.push_str(&format!(
            "W{i},Bo,Tran,w{i}@gmail.com,clerk,retail,{outcome},2026-09-15,,no budget\n"
        ));
    }
    csv.push_str("X1,Cy,Vo,x1@shop.vn,clerk,retail,maybe,2026-09-15,,\n");
    csv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_feed_the_model_report() {
    for srv in servers().await {
        srv.activate_spec_model().await;
        let (s, r) = send(
            srv.req(Method::POST, "/leads/import", &srv.admin)
                .header("content-type", "text/csv")
                .body(history_csv()),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert_eq!(r["created"], 60, "{r}");
        assert_eq!(r["rejected"], 1);
        let bad = r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["status"] == "rejected")
            .unwrap();
        assert_eq!(bad["line"], 62);
        assert!(bad["reason"].as_str().unwrap().contains("outcome"), "{bad}");
        let (_, g0) = srv.get("/leads/G0").await;
        assert_eq!(g0["status"], "converted", "{g0}");
        assert_eq!(g0["status_detail"]["since"], "2026-10-01T00:00:00Z");
        let (_, w5) = srv.get("/leads/W5").await;
        assert_eq!(w5["status"], "lost");
        assert_eq!(w5["status_detail"]["reason"], "no budget");

        // One more of each through the status workflow.
        srv.post("/leads", spec_lead("S1")).await;
        srv.post(
            "/leads",
            json!({"id": "S2", "email": "s2@gmail.com", "job_title": "clerk"}),
        )
        .await;
        for step in [
            json!({"status": "contacted"}),
            json!({"status": "qualified"}),
            json!({"status": "converted", "expected_value": 5000, "date": "2026-12-01"}),
        ] {
            let (s, v) = srv.post("/leads/S1/status", step).await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
        let (s, v) = srv
            .post(
                "/leads/S2/status",
                json!({"status": "disqualified", "reason": "not_a_fit"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        // A lead without an outcome is left out.
        srv.post("/leads", json!({"id": "open", "email": "o@x.vn"})).await;

        let (s, r) = srv.get("/reports/model?capacity=10").await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert_eq!(r["model"], "b2b-default");
        assert_eq!(r["leads"], 62, "{r}");
        assert_eq!(r["conversions"], 24);
        let dm = r["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["rule"] == "decision_maker")
            .unwrap();
        assert_eq!(dm["fires"], 31, "{dm}");
        assert!((dm["rate_when_fires"].as_f64().unwrap() - 21.0 / 31.0).abs() < 1e-12);
        assert!((dm["rate_when_not"].as_f64().unwrap() - 3.0 / 31.0).abs() < 1e-12);
        assert_eq!(dm["flag"], Value::Null);
        let auc = r["auc"].as_f64().unwrap();
        assert!(auc > 0.75 && auc <= 1.0, "{auc}");
        let bands: i64 = r["by_band"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["leads"].as_i64().unwrap())
            .sum();
        assert_eq!(bands, 62);
        assert_eq!(r["gains"][0]["top_percent"], 10);
        assert!(r["mql_advice"]["threshold"].is_number(), "{r}");
        assert!(r["warnings"][0].as_str().unwrap().contains("at least 200"));

        // A backtest of a stored model that is not active.
        let other = SPEC_MODEL.replacen("name = \"b2b-default\"", "name = \"v2\"", 1);
        let (s, v) = srv.post_model(&other).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let (s, r) = srv.get("/reports/model?model=v2").await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert_eq!(r["model"], "v2");
        assert_eq!(r["mql_advice"], Value::Null);
        assert_error(
            &srv.get("/reports/model?model=nope").await,
            404,
            "not_found",
            None,
        );
        assert_error(
            &srv.get("/reports/model?capacity=-3").await,
            422,
            "invalid_field",
            Some("capacity"),
        );
        let rep = srv.token("rep", Some("ann")).await;
        assert_error(
            &send(srv.req(Method::GET, "/reports/model", &rep)).await,
            403,
            "forbidden",
            None,
        );
        srv.stop().await.unwrap();
    }
}

/// Historical leads whose outcome follows their source and job title, with
/// noise, as an import CSV with outcomes.
fn learnable_history(n: usize) -> String {
    let mut csv = String::from("id,email,job_title,industry,source,employees,outcome,outcome_date\n");
    let mut seed = 99u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..n {
        let source = ["referral", "ads", "webinar"][(next() % 3) as usize];
        let title = ["CEO", "intern", "manager"][(next() % 3) as usize];
        let mut p: f64 = match source {
            "referral" => 0.6,
            "webinar" => 0.35,
            _ => 0.1,
        };
        if title == "intern" {
            p *= 0.3;
        }
        let won = (next() % 1000) as f64 / 1000.0 < p;
        csv.push_str(&format!(
            "H{i},h{i}@co{i}.vn,{title},software,{source},{},{},2026-10-{:02}\n",
            10 + next() % 500,
            if won { "won" } else { "lost" },
            1 + i % 28
        ));
    }
    csv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_predictive_model_learns_from_outcomes_and_explains_each_lead() {
    for srv in servers().await {
        srv.activate_spec_model().await;
        // Too few outcomes: said plainly, nothing changes.
        let import = |csv: String| {
            send(
                srv.req(Method::POST, "/leads/import", &srv.admin)
                    .header("content-type", "text/csv")
                    .body(csv),
            )
        };
        let (s, _) = import(learnable_history(50)).await;
        assert_eq!(s, StatusCode::OK);
        let refused = srv.post("/predictive/train", json!(null)).await;
        assert_error(&refused, 409, "too_few_outcomes", None);
        assert!(
            refused.1["error"]["message"]
                .as_str()
                .unwrap()
                .contains("rule model stays in charge")
        );
        assert_error(&srv.get("/predictive").await, 404, "not_found", None);
        let (_, lead) = srv.get("/leads/H1").await;
        assert!(lead.get("probability").is_none(), "{lead}");

        // Enough history: trained, cross-validated, active.
        // The same generator: its first 50 rows are the leads already there (refused), 550 are new.
        let (s, r) = import(learnable_history(600)).await;
        assert_eq!(s, StatusCode::OK, "{r}");
        let (s, t) = srv.admin(Method::POST, "/predictive/train", None).await;
        assert_eq!(s, StatusCode::CREATED, "{t}");
        assert_eq!(t["leads"], 600, "the 50 first leads were imported again: {t}");
        assert!(t["auc"].as_f64().unwrap() > 0.7, "{t}");
        let (s, active) = srv.get("/predictive").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(active["name"], t["name"]);

        // A new lead carries its probability and the factors behind it.
        srv.post("/leads", json!({"id": "N1", "email": "n1@x.vn", "job_title": "CEO", "source": "referral", "industry": "software"})).await;
        srv.post("/leads", json!({"id": "N2", "email": "n2@y.vn", "job_title": "intern", "source": "ads", "industry": "software"})).await;
        let (_, n1) = srv.get("/leads/N1").await;
        let (_, n2) = srv.get("/leads/N2").await;
        let (p1, p2) = (
            n1["probability"].as_f64().unwrap(),
            n2["probability"].as_f64().unwrap(),
        );
        assert!(p1 > p2 + 0.2, "{p1} vs {p2}");
        assert_eq!(n1["predictive_score"].as_f64().unwrap(), (p1 * 100.0).round());
        assert_eq!(n1["prediction"]["model"], t["name"]);
        let factors = n1["prediction"]["factors"].as_array().unwrap();
        assert!(
            !factors.is_empty() && factors.iter().any(|f| f["feature"] == "source"),
            "{n1}"
        );
        // The contributions add up to the prediction (to the rounding shown).
        let logit: f64 = n1["prediction"]["base"].as_f64().unwrap()
            + n1["prediction"]["others"].as_f64().unwrap()
            + factors
                .iter()
                .map(|f| f["contribution"].as_f64().unwrap())
                .sum::<f64>();
        let p = 1.0 / (1.0 + (-logit).exp());
        assert!((p - p1).abs() < 0.005, "{p} vs {p1}: {n1}");
        // The rule score is untouched by it.
        assert_eq!(n1["score"]["model"], "b2b-default");
        let rep = srv.token("rep", Some("ann")).await;
        assert_error(
            &send(srv.req(Method::POST, "/predictive/train", &rep)).await,
            403,
            "forbidden",
            None,
        );
        srv.stop().await.unwrap();
    }
}
