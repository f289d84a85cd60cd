//! The qualification workflow end to end (issue 4), over HTTP on SQLite and
//! PostgreSQL: first evaluation and proposed rating, the rep's rating and
//! disagreement flags, BANT, status transitions with their follow-up tasks,
//! logged activities, and who may do what. The servers' clock stands at T
//! (2026-11-01T00:00:00Z).

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The sample model shipped in `examples/` (it scores meetings held and missed).
const SAMPLE_MODEL: &str = include_str!("../../../examples/model.toml");

/// Seed 003's example lead: a trial sign-up with a full name, a full mobile
/// number, a company e-mail, a travel company of 100 staff in Vietnam.
fn seed_003_lead(owner: &str) -> Value {
    json!({
        "id": "giang",
        "first_name": "Võ Dương",
        "last_name": "Giang",
        "phone": "0912 345 678",
        "email": "giang@saigontravel.vn",
        "company": "Saigon Travel",
        "industry": "Travel",
        "employees": 100,
        "country": "VN",
        "source": "trial_signup",
        "owner": owner,
    })
}

async fn with_sample_model(srv: &Server) {
    let (s, v) = srv.post_model(SAMPLE_MODEL).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    srv.activate("b2b-saas-sample").await;
}

async fn call(
    srv: &Server,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut rb = srv.req(method, path, token);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    send(rb).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_evaluation_rating_and_disagreement_flags() {
    for srv in servers().await {
        with_sample_model(&srv).await;
        let (s, v) = srv.post("/leads", seed_003_lead("ann")).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let signals = &v["evaluation"]["signals"];
        assert_eq!(signals["full_name"], true, "{v}");
        assert_eq!(signals["phone"], "mobile");
        assert_eq!(signals["email"], "corporate");
        assert_eq!(signals["company"], true);
        assert_eq!(signals["industry_fit"], true);
        assert_eq!(signals["size_fit"], true);
        assert_eq!(signals["location_fit"], true);
        assert_eq!(v["proposed_rating"], "high", "{}", v["evaluation"]);
        assert_eq!(v["rating"], Value::Null);
        assert_eq!(v["status"], "new");
        assert_eq!(v["qualification"]["framework"], "bant");
        assert_eq!(v["qualification"]["status"], "in_progress");
        assert_eq!(v["flags"], json!([]));
        assert_eq!(
            v["first_evaluation"]["proposed_rating"], "high",
            "kept from arrival: {v}"
        );
        assert_eq!(v["first_evaluation"]["at"], T);
        assert_eq!(v["first_evaluation"]["signals"], v["evaluation"]["signals"]);
        let band = v["score"]["band"].as_str().unwrap().to_owned();
        let score_before = v["score"].clone();

        // A thin, throwaway sign-up is proposed as not potential.
        let (_, thin) = srv
            .post(
                "/leads",
                json!({"id": "thin", "email": "x@mailinator.com", "employees": 2, "owner": "ann"}),
            )
            .await;
        assert_eq!(thin["proposed_rating"], "not_potential", "{}", thin["evaluation"]);

        let ann = srv.token("rep", Some("ann")).await;
        let bob = srv.token("rep", Some("bob")).await;
        // The rep rates by hand; the proposal stays beside it; the score is untouched.
        let (s, v) = call(
            &srv,
            &ann,
            Method::PATCH,
            "/leads/giang",
            Some(json!({"rating": "not_potential", "rating_note": "only browsing"})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["rating"], "not_potential");
        assert_eq!(v["rating_set"]["by"], "ann");
        assert_eq!(v["rating_set"]["note"], "only browsing");
        assert_eq!(v["rating_set"]["at"], T);
        assert_eq!(v["proposed_rating"], "high");
        assert_eq!(v["score"], score_before);
        // A high rating on a lead in the lowest band strongly disagrees.
        assert_eq!(band, "cold", "the lead has no events yet");
        let (_, v) = call(
            &srv,
            &ann,
            Method::PATCH,
            "/leads/giang",
            Some(json!({"rating": "high"})),
        )
        .await;
        assert_eq!(v["flags"], json!(["rating_disagrees_with_score"]), "{v}");
        let ids = |v: &Value| -> Vec<String> {
            v["leads"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["id"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(ids(&srv.get("/leads?flagged=true").await.1), ["giang"]);
        assert_eq!(ids(&srv.get("/leads?rating=high").await.1), ["giang"]);
        assert!(ids(&srv.get("/leads?rating=low").await.1).is_empty());
        assert_eq!(
            ids(&srv.get("/leads?status=new&sort=created").await.1),
            ["giang", "thin"]
        );
        assert_error(
            &srv.get("/leads?rating=great").await,
            422,
            "invalid_field",
            Some("rating"),
        );
        assert_error(
            &call(
                &srv,
                &ann,
                Method::PATCH,
                "/leads/giang",
                Some(json!({"rating": "superb"})),
            )
            .await,
            422,
            "invalid_field",
            Some("rating"),
        );
        // Another rep's lead is not found; an ingest token may not rate.
        assert_error(
            &call(
                &srv,
                &bob,
                Method::PATCH,
                "/leads/giang",
                Some(json!({"rating": "low"})),
            )
            .await,
            404,
            "not_found",
            None,
        );
        // The current evaluation follows the data; the first one stays as it was.
        let (_, edited) = srv
            .admin(
                Method::PATCH,
                "/leads/giang",
                Some(json!({"email": "giang@gmail.com"})),
            )
            .await;
        assert_eq!(edited["evaluation"]["signals"]["email"], "free", "{edited}");
        assert_eq!(edited["first_evaluation"]["signals"]["email"], "corporate");
        // Imported leads are evaluated on arrival too.
        let csv = "id,first_name,last_name,email,company,industry,employees,country,owner\n\
                   imp1,Lan,Pham,lan@hanoi-tours.vn,Hanoi Tours,travel,60,VN,ann\n";
        let (s, r) = send(
            srv.req(Method::POST, "/leads/import", &srv.admin)
                .header("content-type", "text/csv")
                .body(csv),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        let (_, imp) = srv.get("/leads/imp1").await;
        assert_eq!(imp["first_evaluation"]["signals"]["industry_fit"], true, "{imp}");
        assert_eq!(imp["first_evaluation"]["proposed_rating"], imp["proposed_rating"]);
        let ingest = srv.token("ingest", None).await;
        assert_error(
            &call(
                &srv,
                &ingest,
                Method::PATCH,
                "/leads/giang",
                Some(json!({"rating": "low"})),
            )
            .await,
            403,
            "forbidden",
            None,
        );
        // Clearing the rating.
        let (_, v) = call(
            &srv,
            &ann,
            Method::PATCH,
            "/leads/giang",
            Some(json!({"rating": null})),
        )
        .await;
        assert_eq!(v["rating"], Value::Null);
        assert_eq!(v["flags"], json!([]));
        let (_, log) = srv.get("/leads/giang/log").await;
        let kinds: Vec<&str> = log["log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["rating", "rating", "rating"], "{log}");
        assert_eq!(log["log"][0]["actor"], "ann");
        assert_eq!(log["log"][0]["detail"]["to"], "not_potential");
        srv.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_transitions_and_follow_up_tasks() {
    for srv in servers().await {
        with_sample_model(&srv).await;
        srv.post("/leads", seed_003_lead("ann")).await;
        let ann = srv.token("rep", Some("ann")).await;
        let bob = srv.token("rep", Some("bob")).await;
        let manager = srv.token("manager", Some("mia")).await;
        let ingest = srv.token("ingest", None).await;
        let status = |token: &str, body: Value| {
            let rb = srv.req(Method::POST, "/leads/giang/status", token).json(&body);
            send(rb)
        };

        let refused = status(&ann, json!({"status": "qualified"})).await;
        assert_error(&refused, 409, "transition_not_allowed", Some("status"));
        assert_eq!(
            refused.1["error"]["allowed"],
            json!(["attempting_contact", "contacted", "contact_later", "disqualified"])
        );
        assert_error(
            &status(&ann, json!({"status": "contact_later"})).await,
            422,
            "invalid_field",
            Some("date"),
        );
        assert_error(
            &status(&ann, json!({"status": "contacted", "colour": 1})).await,
            422,
            "invalid_field",
            Some("colour"),
        );
        assert_error(
            &status(&bob, json!({"status": "contacted"})).await,
            404,
            "not_found",
            None,
        );
        assert_error(
            &status(&ingest, json!({"status": "contacted"})).await,
            403,
            "forbidden",
            None,
        );
        let (_, lead) = srv.get("/leads/giang").await;
        assert_eq!(lead["status"], "new", "refused changes change nothing");

        let (s, v) = status(
            &ann,
            json!({"status": "contact_later", "date": "2026-11-20", "note": "back from holiday"}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["status"], "contact_later");
        assert_eq!(v["status_detail"]["date"], "2026-11-20T00:00:00Z");
        assert_eq!(v["status_detail"]["by"], "ann");

        let (s, tasks) = call(&srv, &ann, Method::GET, "/tasks?owner=me", None).await;
        assert_eq!(s, StatusCode::OK, "{tasks}");
        let task = tasks["tasks"][0].clone();
        assert_eq!(tasks["tasks"].as_array().unwrap().len(), 1, "{tasks}");
        assert_eq!(task["kind"], "contact_later");
        assert_eq!(task["due"], "2026-11-20T00:00:00Z");
        assert_eq!(task["owner"], "ann");
        let task_id = task["id"].as_str().unwrap().to_owned();
        let due = |q: &str| {
            let rb = srv.req(Method::GET, &format!("/tasks?owner=me&due_before={q}"), &ann);
            async move { send(rb).await.1["tasks"].as_array().unwrap().len() }
        };
        assert_eq!(due("2026-11-15").await, 0);
        assert_eq!(due("2026-11-21").await, 1);
        // Reps see and work on their own tasks only.
        assert_error(
            &call(&srv, &bob, Method::GET, "/tasks?owner=ann", None).await,
            403,
            "forbidden",
            Some("owner"),
        );
        assert_eq!(
            call(&srv, &bob, Method::GET, "/tasks", None).await.1["tasks"],
            json!([])
        );
        let act = |token: &str, action: &str, body: Option<Value>| {
            let mut rb = srv.req(Method::POST, &format!("/tasks/{task_id}/{action}"), token);
            if let Some(b) = body {
                rb = rb.json(&b);
            }
            send(rb)
        };
        assert_error(&act(&bob, "complete", None).await, 404, "not_found", None);
        assert_error(
            &act(&ann, "snooze", Some(json!({"until": "2026-10-01"}))).await,
            422,
            "invalid_field",
            Some("until"),
        );
        let (s, t) = act(
            &ann,
            "snooze",
            Some(json!({"until": "2026-11-25", "note": "asked for next week"})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{t}");
        assert_eq!(t["due"], "2026-11-25T00:00:00Z");
        assert_error(
            &act(&ann, "reassign", Some(json!({"owner": "bob"}))).await,
            403,
            "forbidden",
            None,
        );
        let (s, t) = act(&manager, "reassign", Some(json!({"owner": "bob"}))).await;
        assert_eq!(s, StatusCode::OK, "{t}");
        assert_eq!(t["owner"], "bob");
        assert_eq!(
            call(&srv, &bob, Method::GET, "/tasks", None).await.1["tasks"][0]["id"],
            task_id.as_str()
        );
        let (s, t) = act(&bob, "complete", Some(json!({"note": "called, interested"}))).await;
        assert_eq!(s, StatusCode::OK, "{t}");
        assert_eq!(t["state"], "done");
        assert_eq!(t["done_at"], T);
        assert_eq!(t["actions"].as_array().unwrap().len(), 3, "{t}");
        assert_error(&act(&bob, "complete", None).await, 409, "task_done", None);
        assert_eq!(
            call(&srv, &bob, Method::GET, "/tasks", None).await.1["tasks"],
            json!([])
        );
        let (_, all) = call(&srv, &bob, Method::GET, "/tasks?state=all", None).await;
        assert_eq!(
            all["tasks"][0]["state"], "done",
            "a done task is kept, not dropped"
        );

        // On through the process; a competitor's contract gets a follow-up
        // 60 days before it ends.
        for step in ["contacted", "verified"] {
            let (s, v) = status(&ann, json!({"status": step})).await;
            assert_eq!(s, StatusCode::OK, "{step}: {v}");
        }
        assert_error(
            &status(
                &ann,
                json!({"status": "disqualified", "reason": "under_contract"}),
            )
            .await,
            422,
            "invalid_field",
            Some("date"),
        );
        assert_error(
            &status(&ann, json!({"status": "disqualified", "reason": "bored"})).await,
            422,
            "invalid_field",
            Some("reason"),
        );
        let (s, v) = status(
            &ann,
            json!({"status": "disqualified", "reason": "under_contract", "date": "2027-06-30"}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["status_detail"]["reason"], "under_contract");
        let (_, t) = call(&srv, &ann, Method::GET, "/tasks?owner=me", None).await;
        assert_eq!(t["tasks"][0]["kind"], "contract_ending", "{t}");
        assert_eq!(t["tasks"][0]["due"], "2027-05-01T00:00:00Z");
        // Closed leads reopen; a converted lead carries its opportunity.
        for step in [json!({"status": "contacted"}), json!({"status": "qualified"})] {
            let (s, v) = status(&ann, step).await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
        assert_error(
            &status(&ann, json!({"status": "converted", "date": "2027-01-15"})).await,
            422,
            "invalid_field",
            Some("expected_value"),
        );
        let (s, v) = status(
            &ann,
            json!({"status": "converted", "date": "2027-01-15", "expected_value": 24000, "currency": "usd"}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["status_detail"]["expected_value"], 24000.0);
        assert_eq!(v["status_detail"]["currency"], "USD");
        let refused = status(&ann, json!({"status": "contacted"})).await;
        assert_eq!(refused.1["error"]["allowed"], json!(["lost"]));
        assert_eq!(
            srv.get("/leads?status=converted").await.1["leads"][0]["id"],
            "giang"
        );

        let (_, log) = srv.get("/leads/giang/log").await;
        let kinds: Vec<&str> = log["log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "status",
                "task_created",
                "task_snoozed",
                "task_reassigned",
                "task_completed",
                "status",
                "status",
                "status",
                "task_created",
                "status",
                "status",
                "status",
                "task_completed"
            ],
            "{log}"
        );
        assert_eq!(log["log"][3]["actor"], "mia");
        // Erasing the lead erases its tasks and log.
        let (s, _) = srv.admin(Method::DELETE, "/leads/giang", None).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert_eq!(srv.get("/tasks?state=all").await.1["tasks"], json!([]));
        srv.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bant_qualification_is_shown_beside_the_score() {
    for srv in servers().await {
        with_sample_model(&srv).await;
        srv.post("/leads", seed_003_lead("ann")).await;
        let ann = srv.token("rep", Some("ann")).await;
        let bob = srv.token("rep", Some("bob")).await;
        let (s, q) = call(&srv, &ann, Method::GET, "/leads/giang/qualification", None).await;
        assert_eq!(s, StatusCode::OK, "{q}");
        assert_eq!(q["framework"], "bant");
        assert_eq!(q["status"], "in_progress");
        let keys: Vec<&str> = q["criteria"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["key"].as_str().unwrap())
            .collect();
        assert_eq!(keys, ["budget", "authority", "need", "timeline"]);
        assert!(
            q["criteria"][1]["questions"][1]
                .as_str()
                .unwrap()
                .contains("who else"),
            "{q}"
        );

        let (_, before) = srv.get("/leads/giang").await;
        let put = |token: &str, body: Value| {
            let rb = srv
                .req(Method::PUT, "/leads/giang/qualification", token)
                .json(&body);
            send(rb)
        };
        let all_yes = json!({"framework": "bant", "criteria": {
            "budget": {"answer": "yes", "notes": "approved for Q1", "facts": {"amount": {"amount": 12000, "currency": "usd"}}},
            "authority": {"answer": "yes", "facts": {"decision_maker": {"name": "Lan", "role": "CFO"}}},
            "need": {"answer": "yes", "facts": {"statement": "bookings are tracked in spreadsheets"}},
            "timeline": {"answer": "yes", "facts": {"solve_by": "2027-03-01"}}}});
        let (s, q) = put(&ann, all_yes.clone()).await;
        assert_eq!(s, StatusCode::OK, "{q}");
        assert_eq!(q["status"], "qualified");
        assert_eq!(
            q["criteria"][0]["facts"]["amount"],
            json!({"amount": 12000.0, "currency": "USD"})
        );
        let (_, after) = srv.get("/leads/giang").await;
        assert_eq!(after["qualification"]["status"], "qualified");
        assert_eq!(
            after["score"], before["score"],
            "qualification never changes the score"
        );

        // Bad answers are refused with the place and change nothing.
        let bad = [
            (
                json!({"framework": "bant", "criteria": {"champion": {"answer": "yes"}}}),
                "criteria.champion",
            ),
            (
                json!({"framework": "bant", "criteria": {"budget": {"facts": {"amount": "lots"}}}}),
                "criteria.budget.facts.amount",
            ),
            (json!({"framework": "meddic", "criteria": {}}), "framework"),
            (
                json!({"framework": "bant", "criteria": {"need": {"answer": "maybe"}}}),
                "criteria.need.answer",
            ),
        ];
        for (body, field) in bad {
            assert_error(&put(&ann, body).await, 422, "invalid_field", Some(field));
        }
        assert_error(&put(&bob, all_yes.clone()).await, 404, "not_found", None);
        assert_eq!(
            srv.get("/leads/giang/qualification").await.1["status"],
            "qualified"
        );

        let mut one_no = all_yes.clone();
        one_no["criteria"]["budget"]["answer"] = json!("no");
        let (_, q) = put(&ann, one_no).await;
        assert_eq!(q["status"], "unqualified");
        let (_, q) = put(
            &ann,
            json!({"framework": "bant", "criteria": {"need": {"answer": "partial"}}}),
        )
        .await;
        assert_eq!(q["status"], "in_progress");
        assert_eq!(
            q["criteria"][0]["answer"], "unknown",
            "criteria left out are unknown"
        );
        srv.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_framework_from_the_settings() {
    let settings = leadscore_server::Settings::load(
        Some((
            "team.toml",
            r#"
[qualification]
framework = "fit2"
contract_follow_up_days = 30
[[qualification.frameworks]]
name = "fit2"
[[qualification.frameworks.criteria]]
key = "pain"
label = "A pain we solve"
[[qualification.frameworks.criteria]]
key = "sponsor"
label = "An executive sponsor"
facts = [{ key = "who", label = "The sponsor", kind = "person" }]
"#,
        )),
        |_| None,
    )
    .unwrap();
    for srv in servers_with(settings.clone()).await {
        srv.post("/leads", seed_003_lead("ann")).await;
        let (_, q) = srv.get("/leads/giang/qualification").await;
        assert_eq!(q["framework"], "fit2", "{q}");
        let (s, q) = srv
            .admin(Method::PUT, "/leads/giang/qualification", Some(json!({"framework": "fit2", "criteria": {
                "pain": {"answer": "yes"}, "sponsor": {"answer": "yes", "facts": {"who": {"name": "Lan"}}}}})))
            .await;
        assert_eq!(s, StatusCode::OK, "{q}");
        assert_eq!(q["status"], "qualified");
        let (s, v) = srv
            .post(
                "/leads/giang/status",
                json!({"status": "disqualified", "reason": "under_contract", "date": "2027-06-30"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (_, t) = srv.get("/tasks").await;
        assert_eq!(
            t["tasks"][0]["due"], "2027-05-31T00:00:00Z",
            "30 days before, as configured"
        );
        srv.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activities_feed_the_score_and_name_the_rep() {
    for srv in servers().await {
        with_sample_model(&srv).await;
        srv.post("/leads", seed_003_lead("ann")).await;
        let ann = srv.token("rep", Some("ann")).await;
        let bob = srv.token("rep", Some("bob")).await;
        let (_, before) = srv.get("/leads/giang").await;
        let log_activity = |token: &str, body: Value| {
            let rb = srv
                .req(Method::POST, "/leads/giang/activities", token)
                .json(&body);
            send(rb)
        };
        let (s, v) = log_activity(
            &ann,
            json!({"type": "meeting_held", "id": "m1", "occurred_at": T, "note": "demo went well"}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["status"], "accepted");
        let gained = v["lead"]["score"]["engagement"].as_f64().unwrap()
            - before["score"]["engagement"].as_f64().unwrap();
        assert!(
            (gained - 8.0).abs() < 1e-9,
            "a meeting held is worth 8 in the sample model: {v}"
        );
        // The same activity sent again is stored once.
        let (s, v) = log_activity(
            &ann,
            json!({"type": "meeting_held", "id": "m1", "occurred_at": T}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["status"], "duplicate");
        let (s, v) = log_activity(
            &ann,
            json!({"type": "meeting_missed", "id": "m2", "occurred_at": before_t(0.5)}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_error(
            &log_activity(&ann, json!({"type": "coffee"})).await,
            422,
            "invalid_field",
            Some("type"),
        );
        assert_error(
            &log_activity(&bob, json!({"type": "call_held"})).await,
            404,
            "not_found",
            None,
        );

        let (_, h) = srv.get("/leads/giang/history").await;
        let last = h["history"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["cause"]["events"], json!(["act:giang:m2"]), "{h}");
        assert_eq!(last["cause"]["by"], json!(["ann"]), "{h}");
        // A call the model gives no points for still shows in the history,
        // with the rep, at the score it left.
        let (s, v) = log_activity(&ann, json!({"type": "call_held", "id": "c1"})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let (_, h) = srv.get("/leads/giang/history").await;
        let entries = h["history"].as_array().unwrap();
        let call = entries.last().unwrap();
        assert_eq!(
            call["cause"],
            json!({"kind": "activity", "events": ["act:giang:c1"], "type": "call_held", "by": ["ann"]}),
            "{h}"
        );
        assert_eq!(call["score"], entries[entries.len() - 2]["score"]);
        let (_, log) = srv.get("/leads/giang/log").await;
        let entries = log["log"].as_array().unwrap();
        assert_eq!(entries.len(), 3, "{log}");
        assert_eq!(entries[0]["kind"], "activity");
        assert_eq!(entries[0]["actor"], "ann");
        assert_eq!(entries[0]["detail"]["note"], "demo went well");
        // Only activities carry the rep's name: an event that claims one is refused.
        let forged = json!({"id": "f1", "lead": "giang", "type": "meeting_held", "occurred_at": before_t(1.0),
            "properties": {"logged_by": "bob"}});
        assert_error(
            &srv.post("/events", forged).await,
            422,
            "invalid_field",
            Some("properties.logged_by"),
        );
        srv.stop().await.unwrap();
    }
}

/// An upsell model for existing customers, active beside the spec's model
/// for prospects.
const UPSELL_MODEL: &str = r#"
name = "upsell"
applies_to = { field = "is_customer", equals = true }
[[band]]
name = "quiet"
from = 0
[[band]]
name = "expanding"
from = 30
[[fit]]
id = "big_account"
field = "employees"
gte = 100
points = 20
[[behavior]]
id = "heavy_use"
events = ["feature_used"]
points = 5
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_and_prospects_are_scored_by_their_own_models() {
    for srv in servers().await {
        srv.activate_spec_model().await;
        let mut customer = spec_lead("C1");
        customer["is_customer"] = json!(true);
        srv.post("/leads", customer).await;
        srv.post("/leads", spec_lead("P1")).await;
        assert_eq!(srv.get("/leads/C1").await.1["score"]["model"], "b2b-default");

        let (s, v) = srv.post_model(UPSELL_MODEL).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let (s, v) = srv
            .admin(Method::POST, "/models/upsell/activate?alongside=true", None)
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        assert_eq!(
            v["active_models"],
            json!(["upsell", "b2b-default"]),
            "models with applies_to are tried first"
        );
        srv.wait_rescored("upsell").await;
        let (_, c1) = srv.get("/leads/C1").await;
        assert_eq!(c1["score"]["model"], "upsell", "{c1}");
        assert_eq!(c1["score"]["band"], "quiet");
        assert_eq!(c1["score"]["fit"], 20.0);
        let (_, p1) = srv.get("/leads/P1").await;
        assert_eq!(p1["score"]["model"], "b2b-default", "{p1}");
        let (_, h) = srv.get("/leads/C1/history").await;
        assert_eq!(
            h["history"].as_array().unwrap().last().unwrap()["cause"],
            json!({"kind": "model_activated", "model": "upsell"})
        );
        let (_, models) = srv.get("/models").await;
        let active: Vec<&str> = models["models"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["active"] == true)
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        assert_eq!(active.len(), 2, "{models}");

        // Events score with the lead's own model; a prospect who becomes a
        // customer moves to the upsell model.
        let (_, b) = srv
            .post(
                "/events/batch",
                json!([
            {"id": "u1", "lead": "C1", "type": "feature_used", "occurred_at": before_t(1.0)},
            {"id": "u2", "lead": "P1", "type": "feature_used", "occurred_at": before_t(1.0)}]),
            )
            .await;
        assert_eq!(b["accepted"], 2, "{b}");
        assert_eq!(srv.get("/leads/C1").await.1["score"]["engagement"], 5.0);
        let p1_before = srv.get("/leads/P1").await.1["score"].clone();
        assert_eq!(
            p1_before["engagement"], 0.0,
            "the prospect model does not count feature use"
        );
        let (_, p1) = srv
            .admin(Method::PATCH, "/leads/P1", Some(json!({"is_customer": true})))
            .await;
        assert_eq!(p1["score"]["model"], "upsell", "{p1}");
        assert_eq!(p1["score"]["engagement"], 5.0);
        let (_, as_of) = srv.get(&format!("/leads/P1/score?as_of={}", before_t(2.0))).await;
        assert_eq!(as_of["model"], "upsell");
        assert_eq!(as_of["engagement"], 0.0);

        // The upsell model alone: prospects are left unscored.
        srv.activate("upsell").await;
        let mut prospect = spec_lead("P2");
        prospect["email"] = json!("p2@elsewhere.vn");
        let (_, p2) = srv.post("/leads", prospect).await;
        assert_eq!(p2["score"], Value::Null, "{p2}");
        assert_error(
            &srv.get("/leads/P2/score").await,
            409,
            "no_applicable_model",
            None,
        );
        // One model again, for everyone.
        srv.activate("b2b-default").await;
        assert_eq!(srv.get("/leads/C1").await.1["score"]["model"], "b2b-default");
        assert_eq!(srv.get("/leads/P2").await.1["score"]["model"], "b2b-default");
        srv.stop().await.unwrap();
    }
}

/// When a manager gives a lead to another rep, its open tasks go along; a
/// closed lead's tasks are completed with a note, not dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_follow_their_lead() {
    for srv in servers().await {
        srv.post("/leads", seed_003_lead("ann")).await;
        let ann = srv.token("rep", Some("ann")).await;
        let carol = srv.token("rep", Some("carol")).await;
        let (s, v) = srv
            .post(
                "/leads/giang/status",
                json!({"status": "contact_later", "date": "2026-12-01"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            call(&srv, &ann, Method::GET, "/tasks", None).await.1["tasks"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        let (s, v) = srv
            .admin(Method::PATCH, "/leads/giang", Some(json!({"owner": "carol"})))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            call(&srv, &ann, Method::GET, "/tasks", None).await.1["tasks"],
            json!([]),
            "the old owner's task moved"
        );
        let (_, t) = call(&srv, &carol, Method::GET, "/tasks", None).await;
        assert_eq!(t["tasks"][0]["owner"], "carol", "{t}");
        assert_eq!(t["tasks"][0]["actions"][0]["note"], "the lead was reassigned");
        // Closing the lead completes the call-back, with the reason.
        let (s, v) = call(
            &srv,
            &carol,
            Method::POST,
            "/leads/giang/status",
            Some(json!({"status": "disqualified", "reason": "not_interested"})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (_, t) = call(&srv, &carol, Method::GET, "/tasks?state=all", None).await;
        assert_eq!(t["tasks"][0]["state"], "done", "{t}");
        assert_eq!(
            t["tasks"][0]["actions"][1]["note"],
            "closed with the lead (disqualified)"
        );
        srv.stop().await.unwrap();
    }
}
