//! The HTTP API end to end: a real server (`serve` on 127.0.0.1:0) over a
//! real database (a SQLite file; PostgreSQL too when `DATABASE_URL` is set),
//! spoken to with a real HTTP client. The clock of the servers stands at the
//! spec's T, so every stored score is the score as of T.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;
use leadscore_server::Settings;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A bad request's answer, and the status, code and field it must have.
type Case = ((StatusCode, Value), u16, &'static str, Option<&'static str>);

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The worked example of the spec, over HTTP: stored score, score as of T
/// and as of another moment, breakdown and history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worked_example_over_http() {
    for srv in servers().await {
        srv.activate_spec_model().await;
        let (s, lead) = srv.post("/leads", spec_lead("L1")).await;
        assert_eq!(s, StatusCode::CREATED, "{lead}");
        assert_eq!(lead["id"], "L1");
        assert_eq!(lead["employees"], 120);
        // Created with no events: fit only.
        assert_eq!(lead["score"]["fit"], 23.0);
        assert_eq!(lead["score"]["engagement"], 0.0);

        let (s, b) = srv.post("/events/batch", json!(spec_events("L1", "e"))).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["accepted"], 6, "{b}");

        let (s, lead) = srv.get("/leads/L1").await;
        assert_eq!(s, StatusCode::OK);
        let sc = &lead["score"];
        assert_eq!(num(&sc["score"]), 45.75, "{sc}");
        assert_eq!(num(&sc["fit"]), 23.0);
        assert_eq!(num(&sc["engagement"]), 22.75);
        assert_eq!(sc["band"], "warm");
        assert_eq!(sc["grade"], "B");
        assert_eq!(sc["mql"], false);
        assert_eq!(sc["model"], "b2b-default");
        assert_eq!(sc["as_of"], T);
        let points: BTreeMap<String, f64> = sc["breakdown"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["rule"].as_str().unwrap().to_owned(), num(&e["points"])))
            .collect();
        let want: BTreeMap<String, f64> = [
            ("decision_maker", 10.0),
            ("target_industry", 8.0),
            ("corporate_email", 5.0),
            ("demo_or_trial", 15.0),
            ("email_click", 3.75),
            ("pricing_page", 4.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(points, want, "{sc}");

        // The same moment asked explicitly gives the same score.
        let (s, at_t) = srv.get(&format!("/leads/L1/score?as_of={T}")).await;
        assert_eq!(s, StatusCode::OK, "{at_t}");
        assert_eq!(&at_t, sc);
        // Fifteen days earlier: the T-10d view and T-2d demo had not happened;
        // the T-20d demo and T-40d view count, the clicks had decayed less.
        let (s, earlier) = srv
            .get(&format!("/leads/L1/score?as_of={}", before_t(15.0)))
            .await;
        assert_eq!(s, StatusCode::OK, "{earlier}");
        let clicks = 5.0 * (0.5f64.powf(0.5) + 0.5f64.powf(1.5));
        let want = ((23.0 + 15.0 + 4.0 + clicks) * 100.0f64).round() / 100.0;
        assert_eq!(num(&earlier["score"]), want, "{earlier}");
        assert_eq!(earlier["as_of"], before_t(15.0));
        // Before any event: fit only.
        let (_, first) = srv
            .get(&format!("/leads/L1/score?as_of={}", before_t(100.0)))
            .await;
        assert_eq!(num(&first["score"]), 23.0, "{first}");

        // History: created, then the events, each with its cause.
        let (s, h) = srv.get("/leads/L1/history").await;
        assert_eq!(s, StatusCode::OK, "{h}");
        let h = h["history"].as_array().unwrap();
        assert_eq!(h.first().unwrap()["cause"]["kind"], "created", "{h:?}");
        let last = h.last().unwrap();
        assert_eq!(last["cause"]["kind"], "events", "{h:?}");
        assert_eq!(num(&last["score"]), 45.75);
        assert_eq!(last["band"], "warm");
        let caused: BTreeSet<&str> = h
            .iter()
            .filter(|e| e["cause"]["kind"] == "events")
            .flat_map(|e| e["cause"]["events"].as_array().unwrap())
            .map(|e| e.as_str().unwrap())
            .collect();
        assert_eq!(caused.len(), 6, "every event is named as a cause: {h:?}");

        // Its events, in ingest order.
        let (_, ev) = srv.get("/leads/L1/events").await;
        let ids: Vec<&str> = ev["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["e-1", "e-2", "e-3", "e-4", "e-5", "e-6"]);
        assert_eq!(ev["events"][2]["properties"]["path"], "/pricing");
        srv.stop().await.unwrap();
    }
}

/// Who may do what: no token, a wrong token, and each role's limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_matrix() {
    for srv in servers().await {
        srv.activate_spec_model().await;
        let manager = srv.token("manager", None).await;
        let mai = srv.token("rep", Some("mai")).await;
        let tuan = srv.token("rep", Some("tuan")).await;
        let ingest = srv.token("ingest", None).await;
        let mut mine = spec_lead("M1");
        mine["owner"] = json!("mai");
        let mut theirs = spec_lead("T1");
        theirs["owner"] = json!("tuan");
        assert_eq!(srv.post("/leads", mine).await.0, StatusCode::CREATED);
        assert_eq!(srv.post("/leads", theirs).await.0, StatusCode::CREATED);

        // No token, a malformed header, an unknown token: 401 on every API path.
        for (path, method) in [
            ("/leads", Method::GET),
            ("/leads", Method::POST),
            ("/leads/M1", Method::GET),
            ("/events", Method::POST),
            ("/models", Method::GET),
        ] {
            let url = srv.api(path);
            let none = send(srv.client.request(method.clone(), &url).json(&json!({}))).await;
            assert_error(&none, 401, "unauthorized", None);
            let basic = send(
                srv.client
                    .request(method.clone(), &url)
                    .header("authorization", "Basic YTpi"),
            )
            .await;
            assert_error(&basic, 401, "unauthorized", None);
            let wrong = send(srv.req(method.clone(), path, "lsk_0000").json(&json!({}))).await;
            assert_error(&wrong, 401, "unauthorized", None);
        }

        let call = |method: Method, path: &str, token: &str, body: Option<Value>| {
            let mut rb = srv.req(method, path, token);
            if let Some(b) = body {
                rb = rb.json(&b);
            }
            send(rb)
        };
        // A rep sees and edits their own leads only; another rep's lead is "not found".
        let (s, v) = call(Method::GET, "/leads/M1", &mai, None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_error(
            &call(Method::GET, "/leads/T1", &mai, None).await,
            404,
            "not_found",
            None,
        );
        assert_error(
            &call(Method::GET, "/leads/T1/score", &mai, None).await,
            404,
            "not_found",
            None,
        );
        assert_error(
            &call(Method::GET, "/leads/T1/events", &mai, None).await,
            404,
            "not_found",
            None,
        );
        assert_error(
            &call(Method::GET, "/leads/T1/history", &mai, None).await,
            404,
            "not_found",
            None,
        );
        assert_error(
            &call(Method::PATCH, "/leads/T1", &mai, Some(json!({"city": "Hue"}))).await,
            404,
            "not_found",
            None,
        );
        let (s, v) = call(Method::PATCH, "/leads/M1", &mai, Some(json!({"city": "Hue"}))).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["city"], "Hue");
        assert_error(
            &call(Method::PATCH, "/leads/M1", &mai, Some(json!({"owner": "mai2"}))).await,
            403,
            "forbidden",
            Some("owner"),
        );
        let (_, list) = call(Method::GET, "/leads", &mai, None).await;
        let ids: Vec<&str> = list["leads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["M1"]);
        let (_, list) = call(Method::GET, "/leads?owner=tuan", &mai, None).await;
        assert_eq!(list["leads"], json!([]), "a rep cannot list another's leads");
        let (_, list) = call(Method::GET, "/leads", &tuan, None).await;
        assert_eq!(list["leads"].as_array().unwrap().len(), 1);
        assert_eq!(list["leads"][0]["id"], "T1");
        let r = srv
            .req(Method::GET, "/leads/export.csv", &mai)
            .send()
            .await
            .unwrap();
        let csv = r.text().await.unwrap();
        assert!(csv.contains("M1") && !csv.contains("T1"), "{csv}");
        for (method, path, body) in [
            (Method::POST, "/leads", Some(spec_lead("R1"))),
            (Method::DELETE, "/leads/M1", None),
            (Method::GET, "/models", None),
            (Method::GET, "/models/b2b-default", None),
            (Method::POST, "/events", Some(spec_events("M1", "r")[0].clone())),
        ] {
            assert_error(&call(method, path, &mai, body).await, 403, "forbidden", None);
        }

        // Ingest posts leads and events and reads nothing: not even the lead
        // it wrote, nor one an upsert names; and it assigns no owners.
        let (s, v) = call(Method::POST, "/leads", &ingest, Some(spec_lead("I1"))).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v, json!({"id": "I1", "status": "created"}));
        let (s, v) = call(
            Method::POST,
            "/leads?upsert=true",
            &ingest,
            Some(json!({"id": "T1"})),
        )
        .await;
        assert_eq!((s, v), (StatusCode::OK, json!({"id": "T1", "status": "updated"})));
        let grab = call(
            Method::POST,
            "/leads?upsert=true",
            &ingest,
            Some(json!({"id": "T1", "owner": "eve"})),
        )
        .await;
        assert_error(&grab, 403, "forbidden", Some("owner"));
        assert_eq!(srv.get("/leads/T1").await.1["owner"], json!("tuan"));
        let (s, v) = call(
            Method::POST,
            "/events",
            &ingest,
            Some(spec_events("I1", "i")[0].clone()),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let (s, v) = call(
            Method::POST,
            "/events/batch",
            &ingest,
            Some(json!(spec_events("I1", "i")[1..].to_vec())),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        for (method, path, body) in [
            (Method::GET, "/leads", None),
            (Method::GET, "/leads/I1", None),
            (Method::GET, "/leads/I1/score", None),
            (Method::GET, "/leads/I1/history", None),
            (Method::GET, "/leads/I1/events", None),
            (Method::GET, "/leads/export.csv", None),
            (Method::PATCH, "/leads/I1", Some(json!({"city": "Hue"}))),
            (Method::DELETE, "/leads/I1", None),
            (Method::GET, "/models", None),
        ] {
            assert_error(&call(method, path, &ingest, body).await, 403, "forbidden", None);
        }
        let got = send(srv.req(Method::POST, "/models", &ingest).body(SPEC_MODEL)).await;
        assert_error(&got, 403, "forbidden", None);

        // A manager: every lead, reads models, may not store or activate one.
        let (s, list) = call(Method::GET, "/leads", &manager, None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(list["leads"].as_array().unwrap().len(), 3);
        assert_eq!(
            call(Method::GET, "/leads/T1", &manager, None).await.0,
            StatusCode::OK
        );
        assert_eq!(
            call(Method::GET, "/models", &manager, None).await.0,
            StatusCode::OK
        );
        assert_eq!(
            call(Method::GET, "/models/b2b-default", &manager, None).await.0,
            StatusCode::OK
        );
        assert_error(
            &call(Method::POST, "/models/b2b-default/activate", &manager, None).await,
            403,
            "forbidden",
            None,
        );
        let got = send(srv.req(Method::POST, "/models", &manager).body(SPEC_MODEL)).await;
        assert_error(&got, 403, "forbidden", None);
        let (s, _) = call(
            Method::PATCH,
            "/leads/T1",
            &manager,
            Some(json!({"owner": "mai"})),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        // ... and the reassigned lead is now mai's.
        assert_eq!(call(Method::GET, "/leads/T1", &mai, None).await.0, StatusCode::OK);
        assert_eq!(
            call(Method::GET, "/leads/T1", &tuan, None).await.0,
            StatusCode::NOT_FOUND
        );

        // The operations endpoints and the API's description need no token.
        for path in ["/healthz", "/readyz", "/metrics"] {
            let r = srv
                .client
                .get(format!("{}{path}", srv.base))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{path}");
        }
        let r = srv.client.get(srv.api("/openapi.json")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        srv.stop().await.unwrap();
    }
}

/// Every kind of bad input answers a 4xx a person can act on, in the one
/// error shape, naming the field where there is one; and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_changes_nothing() {
    for srv in servers().await {
        srv.activate_spec_model().await;
        assert_eq!(srv.post("/leads", spec_lead("L1")).await.0, StatusCode::CREATED);
        let mut other = spec_lead("L2");
        other["email"] = json!("binh@saigon-soft.vn");
        assert_eq!(srv.post("/leads", other).await.0, StatusCode::CREATED);
        let (s, _) = srv.post("/events/batch", json!(spec_events("L1", "e"))).await;
        assert_eq!(s, StatusCode::OK);
        let before = snapshot(&srv).await;

        let raw = |method: Method, path: &str, body: &str| {
            send(
                srv.req(method, path, &srv.admin)
                    .header("content-type", "application/json")
                    .body(body.to_owned()),
            )
        };
        let event = |patch: Value| {
            let mut e =
                json!({"id": "new-1", "lead": "L1", "type": "email_clicked", "occurred_at": before_t(1.0)});
            for (k, v) in patch.as_object().unwrap() {
                if v.is_null() {
                    e.as_object_mut().unwrap().remove(k);
                } else {
                    e[k] = v.clone();
                }
            }
            e
        };
        // (answer, status, code, field)
        let cases: Vec<Case> = vec![
            // Malformed JSON, an empty body.
            (
                raw(Method::POST, "/leads", r#"{"id": "X1", "#).await,
                400,
                "bad_request",
                None,
            ),
            (raw(Method::POST, "/leads", "").await, 400, "bad_request", None),
            (
                raw(Method::POST, "/events", "{nope}").await,
                400,
                "bad_request",
                None,
            ),
            (
                raw(Method::POST, "/events/batch", "[{]").await,
                400,
                "bad_request",
                None,
            ),
            (
                raw(Method::PATCH, "/leads/L1", "{").await,
                400,
                "bad_request",
                None,
            ),
            // Not an object / not an array.
            (
                raw(Method::POST, "/leads", "[1, 2]").await,
                422,
                "invalid_body",
                None,
            ),
            (
                raw(Method::POST, "/events/batch", r#"{"id": "x"}"#).await,
                422,
                "invalid_body",
                None,
            ),
            (
                raw(Method::PATCH, "/leads/L1", "\"x\"").await,
                422,
                "invalid_body",
                None,
            ),
            // Wrong types.
            (
                srv.post("/leads", json!({"id": "X1", "employees": "many"})).await,
                422,
                "invalid_field",
                Some("employees"),
            ),
            (
                srv.post("/leads", json!({"id": "X1", "company": ["a"]})).await,
                422,
                "invalid_field",
                Some("company"),
            ),
            (
                srv.post("/leads", json!({"id": "X1", "is_customer": "maybe"}))
                    .await,
                422,
                "invalid_field",
                Some("is_customer"),
            ),
            (
                srv.post("/leads", json!({"id": "X1", "owner": 7})).await,
                422,
                "invalid_field",
                Some("owner"),
            ),
            (
                srv.post("/leads", json!({"id": "X1", "attributes": {"plan": {"a": 1}}}))
                    .await,
                422,
                "invalid_field",
                Some("attributes.plan"),
            ),
            (
                srv.admin(Method::PATCH, "/leads/L1", Some(json!({"employees": "lots"})))
                    .await,
                422,
                "invalid_field",
                Some("employees"),
            ),
            (
                srv.post("/events", event(json!({"occurred_at": 5}))).await,
                422,
                "invalid_field",
                Some("occurred_at"),
            ),
            (
                srv.post("/events", event(json!({"occurred_at": "yesterday"})))
                    .await,
                422,
                "invalid_field",
                Some("occurred_at"),
            ),
            (
                srv.post("/events", event(json!({"properties": [1]}))).await,
                422,
                "invalid_field",
                Some("properties"),
            ),
            (
                srv.post("/events", event(json!({"properties": {"path": {"x": 1}}})))
                    .await,
                422,
                "invalid_field",
                Some("properties.path"),
            ),
            // Missing fields.
            (
                srv.post("/events", event(json!({"id": null}))).await,
                422,
                "invalid_field",
                Some("id"),
            ),
            (
                srv.post("/events", event(json!({"lead": null}))).await,
                422,
                "invalid_field",
                Some("lead"),
            ),
            (
                srv.post("/events", event(json!({"type": null}))).await,
                422,
                "invalid_field",
                Some("type"),
            ),
            (
                srv.post("/events", event(json!({"occurred_at": null}))).await,
                422,
                "invalid_field",
                Some("occurred_at"),
            ),
            // Unknown fields.
            (
                srv.post("/leads", json!({"id": "X1", "colour": "red"})).await,
                422,
                "invalid_field",
                Some("colour"),
            ),
            (
                srv.admin(Method::PATCH, "/leads/L1", Some(json!({"colour": "red"})))
                    .await,
                422,
                "invalid_field",
                Some("colour"),
            ),
            (
                srv.post("/events", event(json!({"extra": 1}))).await,
                422,
                "invalid_field",
                Some("extra"),
            ),
            // A lead's id cannot change; an e-mail is one lead's.
            (
                srv.admin(Method::PATCH, "/leads/L1", Some(json!({"id": "L9"})))
                    .await,
                422,
                "invalid_field",
                Some("id"),
            ),
            (
                srv.admin(
                    Method::PATCH,
                    "/leads/L1",
                    Some(json!({"email": "BINH@saigon-soft.vn"})),
                )
                .await,
                409,
                "email_taken",
                Some("email"),
            ),
            // Unknown leads and models.
            (srv.get("/leads/nope").await, 404, "not_found", None),
            (srv.get("/leads/nope/score").await, 404, "not_found", None),
            (srv.get("/leads/nope/history").await, 404, "not_found", None),
            (srv.get("/leads/nope/events").await, 404, "not_found", None),
            (
                srv.admin(Method::PATCH, "/leads/nope", Some(json!({"city": "Hue"})))
                    .await,
                404,
                "not_found",
                None,
            ),
            (
                srv.admin(Method::DELETE, "/leads/nope", None).await,
                404,
                "not_found",
                None,
            ),
            (
                srv.post("/events", event(json!({"lead": "nope"}))).await,
                422,
                "unknown_lead",
                Some("lead"),
            ),
            (srv.get("/models/nope").await, 404, "not_found", None),
            (
                srv.admin(Method::POST, "/models/nope/activate", None).await,
                404,
                "not_found",
                None,
            ),
            (srv.get("/nope").await, 404, "not_found", None),
            // Bad query parameters.
            (
                srv.post("/leads?upsert=maybe", json!({"id": "X1"})).await,
                400,
                "bad_request",
                None,
            ),
            (
                srv.get("/leads?limit=0").await,
                422,
                "invalid_field",
                Some("limit"),
            ),
            (srv.get("/leads?limit=many").await, 400, "bad_request", None),
            (
                srv.get("/leads?cursor=zz").await,
                422,
                "invalid_field",
                Some("cursor"),
            ),
            (
                srv.get("/leads?sort=colour").await,
                422,
                "invalid_field",
                Some("sort"),
            ),
            (srv.get("/leads?mql=perhaps").await, 400, "bad_request", None),
            (srv.get("/leads?colour=red").await, 400, "bad_request", None),
            (
                srv.get("/leads/L1/score?as_of=yesterday").await,
                422,
                "invalid_field",
                Some("as_of"),
            ),
        ];
        for (i, (got, status, code, field)) in cases.iter().enumerate() {
            assert!(got.0.is_client_error(), "case {i}: {} {}", got.0, got.1);
            assert_error(got, *status, code, *field);
        }
        // A batch with only bad events is answered per event and stores none.
        let (s, b) = srv
            .post(
                "/events/batch",
                json!([event(json!({"lead": "nope"})), event(json!({"type": null}))]),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(
            (b["accepted"].clone(), b["rejected"].clone()),
            (json!(0), json!(2)),
            "{b}"
        );
        // A batch of 10,001 events is too large, and none of it is stored.
        let big: Vec<Value> = (0..10_001)
            .map(|i| json!({"id": format!("big-{i}"), "lead": "L1", "type": "email_clicked", "occurred_at": before_t(1.0)}))
            .collect();
        let got = srv.post("/events/batch", json!(big)).await;
        assert_error(&got, 413, "too_large", None);
        assert!(
            got.1["error"]["message"].as_str().unwrap().contains("10000"),
            "{}",
            got.1
        );
        assert_eq!(snapshot(&srv).await, before, "a rejected request changed data");

        // Exactly 10,000 is allowed.
        let (s, b) = srv.post("/events/batch", json!(big[..10_000].to_vec())).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["accepted"], 10_000);
        srv.stop().await.unwrap();
    }
}

/// A body over `max_body_bytes` is refused with 413 on every body-taking
/// route, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_over_the_limit_is_413() {
    let settings = Settings {
        max_body_bytes: 4096,
        ..Settings::default()
    };
    for srv in servers_with(settings).await {
        srv.activate_spec_model().await;
        assert_eq!(srv.post("/leads", spec_lead("L1")).await.0, StatusCode::CREATED);
        let before = snapshot(&srv).await;
        let long = "x".repeat(5000);
        let mut lead = spec_lead("L2");
        lead["attributes"] = json!({"notes": long});
        assert_error(&srv.post("/leads", lead).await, 413, "too_large", None);
        let ev = json!({"id": "e1", "lead": "L1", "type": "x", "occurred_at": before_t(1.0), "properties": {"p": long}});
        assert_error(&srv.post("/events", ev.clone()).await, 413, "too_large", None);
        assert_error(
            &srv.post("/events/batch", json!([ev])).await,
            413,
            "too_large",
            None,
        );
        assert_error(
            &srv.admin(Method::PATCH, "/leads/L1", Some(json!({"city": long})))
                .await,
            413,
            "too_large",
            None,
        );
        let csv = format!("Email,Company Name\n{}@x.vn,X\n", long);
        let got = send(srv.req(Method::POST, "/leads/import", &srv.admin).body(csv)).await;
        assert_error(&got, 413, "too_large", None);
        let model = format!("{SPEC_MODEL}\n# {long}\n").replace("b2b-default", "big");
        assert_error(&srv.post_model(&model).await, 413, "too_large", None);
        assert_eq!(snapshot(&srv).await, before);
        // Under the limit is fine.
        let (s, _) = srv.post("/leads", spec_lead("L3")).await;
        assert_eq!(s, StatusCode::CREATED);
        srv.stop().await.unwrap();
    }
}

/// POST /leads with an existing id or e-mail: 409 naming the lead, unless
/// `?upsert=true`, which updates that lead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflict_then_upsert() {
    for srv in servers().await {
        srv.activate_spec_model().await;
        let (s, _) = srv.post("/leads", spec_lead("L1")).await;
        assert_eq!(s, StatusCode::CREATED);
        let before = snapshot(&srv).await;
        // The same e-mail in other case and spacing is the same e-mail.
        let got = srv
            .post(
                "/leads",
                json!({"email": "  L1@Lotus-Travel.VN ", "company": "Other"}),
            )
            .await;
        assert_error(&got, 409, "lead_exists", Some("email"));
        assert_eq!(got.1["error"]["existing_id"], "L1", "{}", got.1);
        let got = srv.post("/leads", json!({"id": "L1", "company": "Other"})).await;
        assert_error(&got, 409, "lead_exists", Some("id"));
        assert_eq!(got.1["error"]["existing_id"], "L1");
        assert_eq!(snapshot(&srv).await, before);

        let (s, v) = srv
            .post(
                "/leads?upsert=true",
                json!({"email": "l1@lotus-travel.vn", "employees": 800, "owner": "mai"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["id"], "L1");
        assert_eq!(v["employees"], 800);
        assert_eq!(v["owner"], "mai");
        assert_eq!(v["company"], "Lotus Travel", "upsert keeps the fields not given");
        // large_company now holds: 23 + 7.
        assert_eq!(num(&v["score"]["fit"]), 30.0, "{v}");
        assert_eq!(v["score"]["grade"], "A");
        assert_eq!(srv.all_leads().await.len(), 1);
        let (_, h) = srv.get("/leads/L1/history").await;
        assert_eq!(
            h["history"].as_array().unwrap().last().unwrap()["cause"]["kind"],
            "lead_edited",
            "{h}"
        );
        // A new lead with upsert is created.
        let (s, v) = srv.post("/leads?upsert=true", spec_lead("L2")).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        // A lead without an id gets one.
        let (s, v) = srv.post("/leads", json!({"company": "Nameless"})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert!(v["id"].as_str().is_some_and(|id| !id.is_empty()), "{v}");
        srv.stop().await.unwrap();
    }
}

/// Events are idempotent on their id; a batch answers per event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_batches_answer_per_event() {
    for srv in servers().await {
        srv.activate_spec_model().await;
        srv.post("/leads", spec_lead("L1")).await;
        srv.post("/leads", spec_lead("L2")).await;
        let ev = |id: &str, lead: &str| json!({"id": id, "lead": lead, "type": "email_clicked", "occurred_at": before_t(1.0)});
        let (s, v) = srv.post("/events", ev("e0", "L1")).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v, json!({"id": "e0", "status": "accepted"}));
        let after_one = lead_data(&srv, "L1").await;
        let (s, v) = srv.post("/events", ev("e0", "L1")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["status"], "duplicate");
        assert_eq!(
            lead_data(&srv, "L1").await,
            after_one,
            "a duplicate changes nothing"
        );

        let batch = json!([
            ev("e1", "L1"),
            ev("e2", "L2"),
            ev("e1", "L1"),
            ev("e3", "nope"),
            {"id": "e4", "lead": "L1", "occurred_at": before_t(1.0)},
            ev("e0", "L1"),
            "not an event",
            ev("e5", "L2"),
        ]);
        let (s, b) = srv.post("/events/batch", batch).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let statuses: Vec<&str> = b["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].as_str().unwrap())
            .collect();
        assert_eq!(
            statuses,
            [
                "accepted",
                "accepted",
                "duplicate",
                "rejected",
                "rejected",
                "duplicate",
                "rejected",
                "accepted"
            ],
            "{b}"
        );
        assert_eq!(
            (
                b["accepted"].clone(),
                b["duplicate"].clone(),
                b["rejected"].clone()
            ),
            (json!(3), json!(2), json!(3))
        );
        let r = &b["results"];
        assert_eq!(r[0]["id"], "e1");
        assert!(r[3]["reason"].as_str().unwrap().contains("nope"), "{b}");
        assert!(r[4]["reason"].as_str().unwrap().contains("type"), "{b}");
        assert!(r[6]["reason"].as_str().is_some(), "{b}");

        let ids = |v: Value| -> Vec<String> {
            v["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(ids(srv.get("/leads/L1/events").await.1), ["e0", "e1"]);
        assert_eq!(ids(srv.get("/leads/L2/events").await.1), ["e2", "e5"]);
        // Two clicks a day old: 2 * 5 * 0.5^(1/30), stored and served.
        let (_, l1) = srv.get("/leads/L1").await;
        let want = ((23.0 + 10.0 * 0.5f64.powf(1.0 / 30.0)) * 100.0f64).round() / 100.0;
        assert_eq!(num(&l1["score"]["score"]), want, "{l1}");
        // An empty batch is fine and does nothing.
        let (s, b) = srv.post("/events/batch", json!([])).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(b["accepted"], 0);
        srv.stop().await.unwrap();
    }
}

/// A varied set of leads: owners, scores, bands, grades, MQLs.
async fn seed_leads(srv: &Server) -> usize {
    let titles = ["Founder & CEO", "Engineer", "Head of Sales", "Intern", ""];
    let industries = ["Travel", "Retail", "Software", "Farming"];
    let mut n = 0;
    for i in 0..23usize {
        let first = ["An", "Binh", "Chi", "Dung"][i % 4];
        let last = ["Nguyen", "Tran", "Le"][i % 3];
        let company = ["Lotus Travel", "Mekong Soft", "Saigon Rice"][i % 3];
        let email = if i % 5 == 0 {
            format!("p{i}@gmail.com")
        } else {
            format!("p{i}@company{i}.vn")
        };
        let owner = [json!("mai"), json!("tuan"), Value::Null][i % 3].clone();
        let employees = [10, 120, 600, 5000][i % 4];
        let mut l = json!({
            "id": format!("P{i:02}"),
            "first_name": first,
            "last_name": last,
            "company": company,
            "email": email,
            "job_title": titles[i % titles.len()],
            "industry": industries[i % industries.len()],
            "employees": employees,
            "owner": owner,
        });
        if i % 2 == 0 {
            l["phone"] = json!("+84 912 345 678");
        }
        let (s, v) = srv.post("/leads", l).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        n += 1;
        // Some engagement, more for some leads.
        let mut evs = Vec::new();
        if i % 3 != 2 {
            evs.push(json!({"id": format!("d{i}"), "lead": format!("P{i:02}"), "type": "demo_requested", "occurred_at": before_t(1.0)}));
        }
        for k in 0..(i % 4) {
            evs.push(json!({"id": format!("c{i}-{k}"), "lead": format!("P{i:02}"), "type": "email_clicked", "occurred_at": before_t(k as f64)}));
            evs.push(json!({"id": format!("v{i}-{k}"), "lead": format!("P{i:02}"), "type": "page_viewed", "occurred_at": before_t(k as f64 + 0.5), "properties": {"path": "/pricing"}}));
        }
        if !evs.is_empty() {
            let (s, b) = srv.post("/events/batch", json!(evs)).await;
            assert_eq!(s, StatusCode::OK, "{b}");
            assert_eq!(b["rejected"], 0, "{b}");
        }
    }
    n
}

/// Follows `next_cursor` from `first` until the last page.
async fn pages(srv: &Server, token: &str, first: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut url = first.to_owned();
    for _ in 0..200 {
        let (s, v) = send(srv.req(Method::GET, &url, token)).await;
        assert_eq!(s, StatusCode::OK, "{url}: {v}");
        let page = v["leads"].as_array().unwrap();
        assert!(page.len() <= 2, "{url}: more than the limit");
        out.extend(page.iter().cloned());
        match v["next_cursor"].as_str() {
            Some(c) => {
                assert!(!page.is_empty(), "a page with a next cursor holds leads");
                let sep = if first.contains('?') { '&' } else { '?' };
                url = format!("{first}{sep}cursor={c}");
            }
            None => return out,
        }
    }
    panic!("more than 200 pages");
}

fn ids_of(leads: &[Value]) -> Vec<String> {
    leads
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Listing: best first, a page at a time with the cursor, and each filter
/// returning exactly the leads it names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_and_filters() {
    for srv in servers().await {
        srv.activate_spec_model().await;
        let n = seed_leads(&srv).await;
        let all = srv.all_leads().await;
        assert_eq!(all.len(), n);
        // Best first, ties by id.
        for w in all.windows(2) {
            let (a, b) = (num(&w[0]["score"]["score"]), num(&w[1]["score"]["score"]));
            assert!(
                a > b || (a == b && w[0]["id"].as_str() < w[1]["id"].as_str()),
                "{} before {}",
                w[0]["id"],
                w[1]["id"]
            );
        }
        let paged = pages(&srv, &srv.admin, "/leads?limit=2").await;
        assert_eq!(
            ids_of(&paged),
            ids_of(&all),
            "pages give every lead once, in order"
        );
        // Newest first with sort=created.
        let by_created = pages(&srv, &srv.admin, "/leads?limit=2&sort=created").await;
        let mut want = ids_of(&all);
        want.sort_by(|a, b| {
            let ca = &all.iter().find(|l| l["id"] == *a.as_str()).unwrap()["created_at"];
            let cb = &all.iter().find(|l| l["id"] == *b.as_str()).unwrap()["created_at"];
            cb.as_str().cmp(&ca.as_str()).then(a.cmp(b))
        });
        assert_eq!(ids_of(&by_created), want);

        type Pred = Box<dyn Fn(&Value) -> bool>;
        let lc = |v: &Value| v.as_str().unwrap_or("").to_lowercase();
        let filters: Vec<(String, Pred)> = vec![
            (
                "band=warm".into(),
                Box::new(|l: &Value| l["score"]["band"] == "warm"),
            ),
            (
                "band=hot".into(),
                Box::new(|l: &Value| l["score"]["band"] == "hot"),
            ),
            ("grade=A".into(), Box::new(|l: &Value| l["score"]["grade"] == "A")),
            ("grade=D".into(), Box::new(|l: &Value| l["score"]["grade"] == "D")),
            ("mql=true".into(), Box::new(|l: &Value| l["score"]["mql"] == true)),
            (
                "mql=false".into(),
                Box::new(|l: &Value| l["score"]["mql"] == false),
            ),
            ("owner=mai".into(), Box::new(|l: &Value| l["owner"] == "mai")),
            (
                "q=mekong".into(),
                Box::new(move |l: &Value| lc(&l["company"]).contains("mekong")),
            ),
            (
                "q=GMAIL".into(),
                Box::new(move |l: &Value| lc(&l["email"]).contains("gmail")),
            ),
            (
                "q=binh".into(),
                Box::new(move |l: &Value| {
                    lc(&l["first_name"]).contains("binh") || lc(&l["last_name"]).contains("binh")
                }),
            ),
            (
                "owner=tuan&mql=true&grade=A".into(),
                Box::new(|l: &Value| {
                    l["owner"] == "tuan" && l["score"]["mql"] == true && l["score"]["grade"] == "A"
                }),
            ),
        ];
        for (q, pred) in &filters {
            let want: Vec<String> = ids_of(&all.iter().filter(|l| pred(l)).cloned().collect::<Vec<_>>());
            // Each single filter used here selects some leads and leaves some out.
            if !q.contains('&') {
                assert!(
                    !want.is_empty() && want.len() < all.len(),
                    "{q}: the seed does not exercise it ({})",
                    want.len()
                );
            }
            let got = pages(&srv, &srv.admin, &format!("/leads?{q}&limit=2")).await;
            assert_eq!(ids_of(&got), want, "{q}");
        }
        // `q` is text, not a pattern: LIKE wildcards match only themselves.
        for q in ["%25", "_", "%5C"] {
            let (s, v) = srv.get(&format!("/leads?q={q}")).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            assert_eq!(v["leads"], json!([]), "q={q}");
        }
        // A rep's pages are their own leads only.
        let mai = srv.token("rep", Some("mai")).await;
        let got = pages(&srv, &mai, "/leads?limit=2").await;
        let want: Vec<String> = ids_of(
            &all.iter()
                .filter(|l| l["owner"] == "mai")
                .cloned()
                .collect::<Vec<_>>(),
        );
        assert_eq!(ids_of(&got), want);
        srv.stop().await.unwrap();
    }
}

/// Erasing a lead erases its events and history too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_erases_everything() {
    for srv in servers().await {
        srv.activate_spec_model().await;
        srv.post("/leads", spec_lead("L1")).await;
        srv.post("/leads", spec_lead("L2")).await;
        srv.post("/events/batch", json!(spec_events("L1", "a"))).await;
        srv.post("/events/batch", json!(spec_events("L2", "b"))).await;
        let l2_before = lead_data(&srv, "L2").await;
        assert_eq!(srv.store.counts().await.unwrap(), (2, 12));

        let (s, v) = srv.admin(Method::DELETE, "/leads/L1", None).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
        assert_error(&srv.get("/leads/L1").await, 404, "not_found", None);
        assert_error(&srv.get("/leads/L1/events").await, 404, "not_found", None);
        assert_error(&srv.get("/leads/L1/history").await, 404, "not_found", None);
        assert_eq!(srv.store.counts().await.unwrap(), (1, 6));
        assert!(srv.store.lead_events("L1").await.unwrap().is_empty());
        assert!(srv.store.history("L1").await.unwrap().is_empty());
        assert_error(
            &srv.admin(Method::DELETE, "/leads/L1", None).await,
            404,
            "not_found",
            None,
        );
        assert_eq!(
            lead_data(&srv, "L2").await,
            l2_before,
            "other leads are untouched"
        );
        // A manager may erase too; the erased lead leaves no trace: the same
        // id and event ids start afresh.
        let manager = srv.token("manager", None).await;
        let (s, _) = send(srv.req(Method::DELETE, "/leads/L2", &manager)).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _) = srv.post("/leads", spec_lead("L1")).await;
        assert_eq!(s, StatusCode::CREATED);
        let (_, ev) = srv.get("/leads/L1/events").await;
        assert_eq!(ev["events"], json!([]));
        let (_, h) = srv.get("/leads/L1/history").await;
        assert_eq!(h["history"].as_array().unwrap().len(), 1, "{h}");
        let (_, b) = srv.post("/events/batch", json!(spec_events("L1", "a"))).await;
        assert_eq!(b["accepted"], 6, "{b}");
        srv.stop().await.unwrap();
    }
}

/// Models: an invalid one is refused with the check's message, a taken name
/// is a conflict, activation rescoring runs in the background with progress,
/// and afterwards every lead carries the new model's score.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_validate_conflict_activate_rescore() {
    for srv in servers().await {
        // Before any model: leads are stored unscored; score asks for a model.
        srv.post("/leads", spec_lead("L0")).await;
        let (_, l0) = srv.get("/leads/L0").await;
        assert!(l0["score"].is_null(), "{l0}");
        assert_error(&srv.get("/leads/L0/score").await, 409, "no_active_model", None);

        // Invalid: a regex that does not compile, in rule decision_maker.
        let bad = SPEC_MODEL.replace(r"(?i)\\b(ceo", r"(?i)\\b((ceo");
        assert_ne!(bad, SPEC_MODEL);
        let got = srv.post_model(&bad).await;
        assert_error(&got, 422, "invalid_model", Some("decision_maker"));
        let msg = got.1["error"]["message"].as_str().unwrap();
        // The rule's line: the `[[fit]]` header above its id.
        let id_line = SPEC_MODEL
            .lines()
            .position(|l| l.contains("id = \"decision_maker\""))
            .unwrap();
        assert!(
            SPEC_MODEL
                .lines()
                .nth(id_line - 1)
                .unwrap()
                .starts_with("[[fit]]")
        );
        let line = id_line;
        assert!(
            msg.contains("decision_maker") && msg.contains(&format!(":{line}")),
            "{msg} (rule at line {line})"
        );
        // Invalid TOML: the line is named.
        let got = srv.post_model("name = \"x\"\n[score\n").await;
        assert_error(&got, 422, "invalid_model", None);
        assert!(
            got.1["error"]["message"].as_str().unwrap().contains(":2"),
            "{}",
            got.1
        );
        let (_, models) = srv.get("/models").await;
        assert_eq!(models["models"], json!([]), "refused models are not stored");

        let (s, m) = srv.post_model(SPEC_MODEL).await;
        assert_eq!(s, StatusCode::CREATED, "{m}");
        assert_eq!(m["name"], "b2b-default");
        assert_eq!(m["active"], false);
        let (s, _) = srv.post_model(SPEC_MODEL).await;
        assert_eq!(s, StatusCode::OK, "the same model again is no change");
        let changed = SPEC_MODEL.replace("points = 10", "points = 11");
        assert_error(&srv.post_model(&changed).await, 409, "model_exists", Some("name"));
        let (_, m) = srv.get("/models/b2b-default").await;
        assert_eq!(m["toml"], SPEC_MODEL, "the stored model is unchanged");

        srv.activate("b2b-default").await;
        for i in 0..40 {
            let mut l = spec_lead(&format!("L{}", i + 1));
            if i % 2 == 0 {
                l["employees"] = json!(900);
            }
            assert_eq!(srv.post("/leads", l).await.0, StatusCode::CREATED);
        }
        srv.post("/events/batch", json!(spec_events("L1", "e"))).await;

        // A second model: fit matters more, demos less, a higher MQL bar.
        let v2 = SPEC_MODEL
            .replace("name = \"b2b-default\"", "name = \"v2\"")
            .replace("points = 10", "points = 20")
            .replace("points = 15", "points = 9")
            .replace("threshold = 50", "threshold = 60");
        let (s, _) = srv.post_model(&v2).await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, a) = srv.admin(Method::POST, "/models/v2/activate", None).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{a}");
        assert_eq!(a["rescoring"], "/api/v1/models/v2");
        let m = srv.wait_rescored("v2").await;
        assert_eq!(m["active"], true);
        assert_eq!(m["rescore"]["done"], 41, "{m}");
        assert_eq!(m["rescore"]["total"], 41, "{m}");
        let (_, old) = srv.get("/models/b2b-default").await;
        assert_eq!(old["active"], false);

        let leads = srv.all_leads().await;
        assert_eq!(leads.len(), 41);
        for l in &leads {
            let id = l["id"].as_str().unwrap();
            let sc = &l["score"];
            assert_eq!(sc["model"], "v2", "{id}: {sc}");
            let (s, fresh) = srv
                .get(&format!(
                    "/leads/{id}/score?as_of={}",
                    sc["as_of"].as_str().unwrap()
                ))
                .await;
            assert_eq!(s, StatusCode::OK);
            assert_eq!(&fresh, sc, "{id}: the stored score is the new model's");
            let (_, h) = srv.get(&format!("/leads/{id}/history")).await;
            let last = h["history"].as_array().unwrap().last().unwrap().clone();
            assert_eq!(last["model"], "v2", "{id}: {h}");
            assert_eq!(
                last["cause"],
                json!({"kind": "model_activated", "model": "v2"}),
                "{id}: {h}"
            );
        }
        let (_, l1) = srv.get("/leads/L1").await;
        // fit 20 + 8 + 5 + 7 (900 employees) = 40; demo 9 + 3.75 + 4.
        assert_eq!(num(&l1["score"]["score"]), 56.75, "{l1}");
        assert_eq!(l1["score"]["mql"], false);

        // Back to the first model: the stored (unchanged) model is reused.
        srv.activate("b2b-default").await;
        let (_, l1) = srv.get("/leads/L1").await;
        assert_eq!(num(&l1["score"]["score"]), 52.75, "{l1}");
        srv.stop().await.unwrap();
    }
}

/// CSV import with HubSpot and Salesforce headers: a per-row report with
/// each bad row's line and reason; export gives the leads back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_and_export_csv() {
    for srv in servers().await {
        srv.activate_spec_model().await;
        let hubspot = "First Name,Last Name,Email,Phone Number,Company Name,Job Title,Industry,Number of Employees,Contact owner,Lifecycle Stage\n\
            An,Nguyen,an@lotus-travel.vn,+84 912 345 678,Lotus Travel,Founder & CEO,Travel,120,mai,lead\n\
            Binh,Tran,binh@mekong.vn,,Mekong Soft,Engineer,Software,\"1,200\",,subscriber\n\
            Chi,Le,chi@rice.vn,,Saigon Rice,Owner,Farming,lots,,lead\n\
            Dung,Pham,dung@short.vn\n\
            Em,Vo,AN@lotus-travel.vn,,Dup Co,,,,,lead\n";
        let import = |csv: &str, q: &str| {
            send(
                srv.req(Method::POST, &format!("/leads/import{q}"), &srv.admin)
                    .header("content-type", "text/csv")
                    .body(csv.to_owned()),
            )
        };
        let (s, r) = import(hubspot, "").await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert_eq!(
            (r["created"].clone(), r["updated"].clone(), r["rejected"].clone()),
            (json!(2), json!(0), json!(3)),
            "{r}"
        );
        let rows = r["rows"].as_array().unwrap();
        let lines: Vec<u64> = rows.iter().map(|r| r["line"].as_u64().unwrap()).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6]);
        let status: Vec<&str> = rows.iter().map(|r| r["status"].as_str().unwrap()).collect();
        assert_eq!(status, ["created", "created", "rejected", "rejected", "rejected"]);
        assert!(rows[2]["reason"].as_str().unwrap().contains("employees"), "{r}");
        assert!(rows[3]["reason"].as_str().unwrap().contains("fields"), "{r}");
        assert!(
            rows[4]["reason"].as_str().unwrap().contains("already exists"),
            "{r}"
        );
        let an = rows[0]["id"].as_str().unwrap();
        assert_eq!(rows[4]["id"], an);
        let (_, lead) = srv.get(&format!("/leads/{an}")).await;
        assert_eq!(lead["first_name"], "An");
        assert_eq!(lead["phone"], "+84 912 345 678");
        assert_eq!(lead["owner"], "mai");
        assert_eq!(lead["attributes"]["Lifecycle Stage"], "lead");
        assert_eq!(num(&lead["score"]["fit"]), 23.0, "{lead}");
        let binh = rows[1]["id"].as_str().unwrap();
        let (_, lead) = srv.get(&format!("/leads/{binh}")).await;
        assert_eq!(lead["employees"], 1200);
        assert_eq!(srv.all_leads().await.len(), 2);

        // Salesforce headers, with upsert: an update and a new lead.
        let salesforce = "FirstName,LastName,Email,Title,Company,NumberOfEmployees,LeadSource\n\
            An,Nguyen,an@lotus-travel.vn,Founder & CEO,Lotus Travel,700,Web\n\
            Giang,Ho,giang@hanoi-air.vn,VP Sales,Hanoi Air,50,Event\n";
        let (s, r) = import(salesforce, "?upsert=true").await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert_eq!(
            (r["created"].clone(), r["updated"].clone(), r["rejected"].clone()),
            (json!(1), json!(1), json!(0)),
            "{r}"
        );
        let (_, lead) = srv.get(&format!("/leads/{an}")).await;
        assert_eq!(lead["employees"], 700);
        assert_eq!(lead["source"], "Web");

        // A header that names one field twice is refused whole.
        let before = snapshot(&srv).await;
        let got = import("First Name,FirstName\nA,B\n", "").await;
        assert_error(&got, 422, "invalid_csv", None);
        assert!(got.1["error"]["message"].as_str().unwrap().contains("line 1"));
        assert_eq!(snapshot(&srv).await, before);

        // Export: a header, then every lead with its score.
        let r = srv
            .req(Method::GET, "/leads/export.csv", &srv.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        let csv = r.text().await.unwrap();
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(header[0], "id");
        let col = |name: &str| {
            header
                .iter()
                .position(|h| *h == name)
                .unwrap_or_else(|| panic!("no {name} column"))
        };
        let body: Vec<Vec<String>> = lines.map(|l| l.split(',').map(str::to_owned).collect()).collect();
        assert_eq!(body.len(), 3, "{csv}");
        let all = srv.all_leads().await;
        for l in &all {
            let row = body
                .iter()
                .find(|r| r[0] == l["id"].as_str().unwrap())
                .unwrap_or_else(|| panic!("{} not exported: {csv}", l["id"]));
            assert_eq!(row[col("email")], l["email"].as_str().unwrap());
            assert_eq!(
                row[col("score")].parse::<f64>().unwrap(),
                num(&l["score"]["score"])
            );
            assert_eq!(row[col("band")], l["score"]["band"].as_str().unwrap());
        }
        assert!(
            header.contains(&"Lifecycle Stage"),
            "attributes are columns: {header:?}"
        );
        srv.stop().await.unwrap();
    }
}

/// The paths of `api()` in routes/mod.rs with their methods, read from the source.
fn routed() -> BTreeMap<String, BTreeSet<String>> {
    let src = include_str!("../src/routes/mod.rs");
    let start = src.find("pub fn api()").expect("routes/mod.rs has api()");
    let end = src[start..].find("\n}").map_or(src.len(), |e| start + e);
    let api = &src[start..end];
    let mut out = BTreeMap::new();
    let parts: Vec<&str> = api.split(".route(").skip(1).collect();
    assert!(!parts.is_empty(), "no .route( calls found in api()");
    for part in parts {
        let part = part.split(".fallback(").next().unwrap();
        let q1 = part.find('"').expect("a route path");
        let q2 = q1 + 1 + part[q1 + 1..].find('"').unwrap();
        let path = part[q1 + 1..q2].to_owned();
        let rest = &part[q2..];
        let mut methods = BTreeSet::new();
        for m in ["get", "post", "put", "patch", "delete"] {
            let needle = format!("{m}(");
            let mut from = 0;
            while let Some(i) = rest[from..].find(&needle) {
                let at = from + i;
                let prev = rest[..at].chars().next_back();
                if !prev.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    methods.insert(m.to_owned());
                }
                from = at + needle.len();
            }
        }
        assert!(!methods.is_empty(), "no methods found for {path}");
        out.insert(path, methods);
    }
    out
}

fn documented() -> BTreeMap<String, BTreeSet<String>> {
    let doc = leadscore_server::openapi::document();
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(p, ops)| {
            let methods = ops
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| {
                    matches!(
                        k.as_str(),
                        "get" | "post" | "put" | "patch" | "delete" | "head" | "options"
                    )
                })
                .cloned()
                .collect();
            (p.clone(), methods)
        })
        .collect()
}

/// The OpenAPI document and the router stay in step: every documented
/// operation is served, every route is documented with the same methods,
/// and other methods on those paths are 405.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_matches_the_router() {
    let routed = routed();
    let documented = documented();
    assert!(routed.len() >= 10, "{routed:?}");
    assert_eq!(routed, documented, "routes/mod.rs and openapi::document() differ");

    let srv = servers().await.into_iter().next().unwrap();
    let (s, served) = srv.get("/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(served, leadscore_server::openapi::document());
    assert_eq!(served["openapi"], "3.1.0");
    for (path, methods) in &documented {
        let concrete = path
            .replace("{id}", "no-such-lead")
            .replace("{name}", "no-such-model");
        for m in ["get", "post", "put", "patch", "delete"] {
            let method = Method::from_bytes(m.to_uppercase().as_bytes()).unwrap();
            let (s, v) = send(
                srv.req(method, &concrete, &srv.admin)
                    .header("content-type", "application/json")
                    .body("{}"),
            )
            .await;
            if methods.contains(m) {
                assert_ne!(s, StatusCode::METHOD_NOT_ALLOWED, "{m} {path}");
                let fallback = s == StatusCode::NOT_FOUND
                    && v["error"]["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("this API path"));
                assert!(!fallback, "{m} {path} is documented but not routed: {v}");
                assert!(!s.is_server_error(), "{m} {path}: {s} {v}");
            } else {
                assert_eq!(
                    s,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{m} {path} is not documented but answers {s}"
                );
            }
        }
    }
    // An unknown API path is the fallback's 404 in the error shape.
    let got = srv.get("/no/such/path").await;
    assert_error(&got, 404, "not_found", None);
    srv.stop().await.unwrap();
}

fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            (k == name_and_labels).then(|| v.parse::<f64>().unwrap())
        })
        .unwrap_or(0.0)
}

/// `/healthz`, `/readyz` and `/metrics`: counters move with traffic, and no
/// e-mail or name of a lead shows up in the metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics() {
    for srv in servers().await {
        let get = |path: &str| srv.client.get(format!("{}{path}", srv.base)).send();
        let r = get("/healthz").await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let r = get("/readyz").await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        // While the store warms up after a start (`leadscore serve`), not ready.
        srv.state.warming.store(true, std::sync::atomic::Ordering::SeqCst);
        let r = get("/readyz").await.unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.text().await.unwrap(), "warming up");
        srv.state
            .warming
            .store(false, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(get("/readyz").await.unwrap().status(), StatusCode::OK);
        srv.activate_spec_model().await;
        srv.post("/leads", spec_lead("Secret1")).await;
        let text0 = get("/metrics").await.unwrap().text().await.unwrap();
        let accepted = "leadscore_events_ingested_total{status=\"accepted\"}";
        let duplicate = "leadscore_events_ingested_total{status=\"duplicate\"}";
        let rejected = "leadscore_events_ingested_total{status=\"rejected\"}";
        let created =
            "leadscore_http_requests_total{method=\"POST\",route=\"/api/v1/events\",status=\"201\"}";
        let batch =
            "leadscore_http_requests_total{method=\"POST\",route=\"/api/v1/events/batch\",status=\"200\"}";
        let lead_get =
            "leadscore_http_requests_total{method=\"GET\",route=\"/api/v1/leads/{id}\",status=\"404\"}";
        let evs = spec_events("Secret1", "m");
        srv.post("/events", evs[0].clone()).await;
        srv.post("/events", evs[0].clone()).await;
        let mut b = evs[1..].to_vec();
        b.push(json!({"id": "bad", "lead": "nobody@example.com", "type": "x", "occurred_at": before_t(1.0)}));
        srv.post("/events/batch", json!(b)).await;
        srv.get("/leads/someone@private.example").await;
        let text = get("/metrics").await.unwrap().text().await.unwrap();
        assert_eq!(metric(&text, accepted) - metric(&text0, accepted), 6.0, "{text}");
        assert_eq!(
            metric(&text, duplicate) - metric(&text0, duplicate),
            1.0,
            "{text}"
        );
        assert_eq!(metric(&text, rejected) - metric(&text0, rejected), 1.0, "{text}");
        assert_eq!(metric(&text, created) - metric(&text0, created), 1.0, "{text}");
        assert_eq!(metric(&text, batch) - metric(&text0, batch), 1.0, "{text}");
        assert_eq!(
            metric(&text, lead_get) - metric(&text0, lead_get),
            1.0,
            "routes are counted by template: {text}"
        );
        assert!(text.contains("leadscore_http_request_duration_seconds"), "{text}");
        for secret in [
            "secret1",
            "lotus-travel",
            "Nguyen",
            "nobody@example.com",
            "private.example",
        ] {
            assert!(
                !text.to_lowercase().contains(&secret.to_lowercase()),
                "`{secret}` is in the metrics"
            );
        }
        srv.stop().await.unwrap();
    }
}

/// Graceful shutdown: a request in flight when shutdown is signalled is
/// answered (and its event stored); then the server stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_requests_in_flight() {
    let mut srv = servers().await.into_iter().next().unwrap();
    srv.activate_spec_model().await;
    srv.post("/leads", spec_lead("L1")).await;
    let body = serde_json::to_vec(&spec_events("L1", "g")[0]).unwrap();
    let addr = srv.base.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        srv.admin,
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    // The server answers "100 Continue" once the handler reads the body:
    // from here the request is in flight.
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(30), conn.read(&mut buf))
        .await
        .expect("100 Continue within 30 s")
        .unwrap();
    let interim = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");

    srv.signal_shutdown();
    // Wait until the server has taken the signal (it is no longer ready).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while srv.state.ready.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(tokio::time::Instant::now() < deadline, "shutdown was not taken");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Now send the body: the request completes.
    conn.write_all(&body).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), conn.read_to_end(&mut answer))
        .await
        .expect("the answer within 30 s")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).to_string();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(answer.contains("\"accepted\""), "{answer}");
    assert_eq!(
        srv.store.lead_events("L1").await.unwrap().len(),
        1,
        "the event answered during shutdown is stored"
    );
    let store = srv.store.clone();
    let base = srv.base.clone();
    srv.stop()
        .await
        .expect("serve returns Ok after a graceful shutdown");
    // Stopped: no new connections are taken.
    let r = common::client().get(format!("{base}/healthz")).send().await;
    assert!(r.is_err(), "the server still answers after shutdown");
    assert_eq!(store.counts().await.unwrap(), (1, 1));
}

/// An activation rescores every lead in the background, as of the moment of
/// the activation. A lead that events reached after that moment (already
/// scored with the new model, later) must not be set back by the rescoring
/// to an older score that leaves those events out. The interleaving the
/// background task can meet is forced here through the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescoring_does_not_set_back_newer_scores() {
    for srv in servers().await {
        srv.activate_spec_model().await;
        assert_eq!(srv.post("/leads", spec_lead("L1")).await.0, StatusCode::CREATED);
        let v2 = SPEC_MODEL.replace("name = \"b2b-default\"", "name = \"v2\"");
        assert_eq!(srv.post_model(&v2).await.0, StatusCode::CREATED);
        let t1 = t();
        let t2 = leadscore_core::Timestamp::from_micros(t1.as_micros() + 3_600_000_000);
        srv.store.activate_model("v2", t1, false).await.unwrap();
        // A demo request made just after the activation, ingested before the
        // background rescoring reaches the lead.
        let demo = leadscore_core::Event {
            id: "late-demo".into(),
            lead: "L1".into(),
            kind: "demo_requested".into(),
            occurred_at: leadscore_core::Timestamp::from_micros(t1.as_micros() + 1_800_000_000),
            properties: Default::default(),
        };
        let st = srv.store.ingest(vec![demo], t2).await.unwrap();
        assert_eq!(st, [leadscore_store::IngestStatus::Accepted]);
        let (_, before) = srv.get("/leads/L1").await;
        assert_eq!(num(&before["score"]["engagement"]), 15.0, "{before}");
        srv.store
            .rescore_all(t1, std::sync::Arc::new(|_, _| {}))
            .await
            .unwrap();
        let (_, after) = srv.get("/leads/L1").await;
        assert_eq!(after["score"]["model"], "v2");
        assert_eq!(
            num(&after["score"]["engagement"]),
            15.0,
            "the rescoring dropped an accepted event from the score: {after}"
        );
        assert_eq!(after["score"], before["score"]);
        srv.stop().await.unwrap();
    }
}

/// An activation whose rescoring was cut off (a stop, a failure) is finished
/// at the next start, and a finished one is left alone.
#[tokio::test]
async fn an_interrupted_rescoring_resumes_at_start() {
    for srv in servers().await {
        for i in 0..5 {
            assert_eq!(
                srv.post("/leads", spec_lead(&format!("R{i}"))).await.0,
                StatusCode::CREATED
            );
        }
        // Activated through the store alone: no rescoring ran, as after a crash.
        srv.store.put_model("b2b-default", SPEC_MODEL, t()).await.unwrap();
        srv.store.activate_model("b2b-default", t(), false).await.unwrap();
        assert!(
            srv.all_leads().await.iter().all(|l| l["score"].is_null()),
            "{}",
            srv.backend
        );
        assert!(leadscore_server::resume_rescore(&srv.state).await.unwrap());
        let m = srv.wait_rescored("b2b-default").await;
        assert_eq!(m["rescore"]["done"], json!(5), "{}", srv.backend);
        for l in srv.all_leads().await {
            assert_eq!(l["score"]["score"], json!(23.0), "{}: {l}", srv.backend);
        }
        assert!(!leadscore_server::resume_rescore(&srv.state).await.unwrap());
    }
}

/// Two server instances on one PostgreSQL database, each taking events for
/// the same leads at the same time: every accepted event is stored once and
/// every lead's stored score is the engine's answer for its stored events.
#[tokio::test]
async fn two_instances_on_one_postgres_database_keep_every_score_right() {
    let Ok(base) = std::env::var("DATABASE_URL") else {
        eprintln!("two-instance PostgreSQL test SKIPPED: DATABASE_URL is not set");
        return;
    };
    let url = fresh_schema(&base).await;
    let a = start_on(
        leadscore_store::open(&url).await.unwrap(),
        Settings::default(),
        None,
    )
    .await;
    let b = start_on(
        leadscore_store::open(&url).await.unwrap(),
        Settings::default(),
        None,
    )
    .await;
    a.activate_spec_model().await;
    let leads: Vec<String> = (0..8).map(|i| format!("P{i}")).collect();
    for id in &leads {
        assert_eq!(a.post("/leads", spec_lead(id)).await.0, StatusCode::CREATED);
    }
    // Each of 8 tasks sends 10 batches alternately to A and B; every batch
    // holds events for every lead, and half the ids are sent twice (once per
    // instance), so the two instances race on the same leads and ids.
    let mut tasks = Vec::new();
    for task in 0..8u32 {
        let (ca, cb) = (a.client.clone(), b.client.clone());
        let (ua, ub) = (a.api("/events/batch"), b.api("/events/batch"));
        let (ta, tb) = (a.admin.clone(), b.admin.clone());
        let leads = leads.clone();
        tasks.push(tokio::spawn(async move {
            let mut accepted = Vec::new();
            for round in 0..10u32 {
                let batch: Vec<Value> = leads
                    .iter()
                    .enumerate()
                    .map(|(i, lead)| {
                        let shared = (round + i as u32).is_multiple_of(2);
                        let id = if shared { format!("s-{round}-{i}") } else { format!("t{task}-{round}-{i}") };
                        let kind = ["email_clicked", "page_viewed", "demo_requested"][(i + round as usize) % 3];
                        json!({"id": id, "lead": lead, "type": kind, "occurred_at": before_t(f64::from(round + task)),
                               "properties": {"path": "/pricing"}})
                    })
                    .collect();
                let (client, url, token) = if (task + round).is_multiple_of(2) { (&ca, &ua, &ta) } else { (&cb, &ub, &tb) };
                let (s, v) = send(client.post(url).bearer_auth(token).json(&batch)).await;
                assert_eq!(s, StatusCode::OK, "{v}");
                for r in v["results"].as_array().unwrap() {
                    if r["status"] == "accepted" {
                        accepted.push(r["id"].as_str().unwrap().to_owned());
                    }
                }
            }
            accepted
        }));
    }
    let mut accepted = Vec::new();
    for t in tasks {
        accepted.extend(t.await.unwrap());
    }
    let unique: BTreeSet<&String> = accepted.iter().collect();
    assert_eq!(unique.len(), accepted.len(), "an event id was accepted twice");
    let mut stored = 0;
    for id in &leads {
        let (_, ev) = a.get(&format!("/leads/{id}/events")).await;
        stored += ev["events"].as_array().unwrap().len();
        let (_, la) = a.get(&format!("/leads/{id}")).await;
        let (_, lb) = b.get(&format!("/leads/{id}")).await;
        assert_eq!(
            la["score"], lb["score"],
            "{id}: both instances read the same score"
        );
        let as_of = la["score"]["as_of"].as_str().unwrap().to_owned();
        let (_, fresh) = a.get(&format!("/leads/{id}/score?as_of={as_of}")).await;
        for k in ["score", "fit", "engagement", "band", "grade", "mql", "breakdown"] {
            assert_eq!(
                la["score"][k], fresh[k],
                "{id}: stored `{k}` differs from a recomputation"
            );
        }
    }
    assert_eq!(stored, accepted.len(), "every accepted event is stored once");
}
