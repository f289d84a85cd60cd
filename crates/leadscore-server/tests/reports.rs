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
