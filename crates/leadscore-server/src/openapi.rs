//! The OpenAPI 3 document served at `/api/v1/openapi.json`. A test checks it
//! names exactly the routes the router serves.

use serde_json::{Value, json};

fn op(summary: &str, roles: &str, body: Option<Value>, ok: (&str, Value), errors: &[&str]) -> Value {
    let mut responses = serde_json::Map::new();
    responses.insert(
        ok.0.to_owned(),
        json!({"description": "success", "content": {"application/json": {"schema": ok.1}}}),
    );
    for code in errors.iter().chain(&["401", "403"]) {
        responses.insert(
            (*code).to_owned(),
            json!({"$ref": "#/components/responses/Error"}),
        );
    }
    let mut o = json!({
        "summary": summary,
        "description": format!("Roles: {roles}."),
        "responses": responses,
    });
    if let Some(b) = body {
        o["requestBody"] = json!({"required": true, "content": b});
    }
    o
}

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn json_body(schema: Value) -> Option<Value> {
    Some(json!({"application/json": {"schema": schema}}))
}

fn id_param(name: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
}

fn query(name: &str, ty: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "schema": {"type": ty}, "description": description})
}

/// The paths and schemas of the qualification workflow (issue 4).
fn workflow(doc: &mut Value) {
    let lead_param = [id_param("id")];
    let paths = json!({
        "/leads/{id}/qualification": {
            "parameters": lead_param,
            "get": op("The lead's qualification under the deployment's framework (BANT by default): criteria, questions, answers, facts",
                "admin, manager, rep (own)", None, ("200", r("Qualification")), &["404"]),
            "put": op("Replace the lead's qualification answers; criteria left out are unknown", "admin, manager, rep (own)",
                json_body(r("QualificationInput")), ("200", r("Qualification")), &["400", "404", "422"])
        },
        "/leads/{id}/status": {
            "parameters": lead_param,
            "post": op("Move the lead to a new status; 409 lists the allowed next states. contact_later and under_contract create follow-up tasks",
                "admin, manager, rep (own)", json_body(r("StatusChange")), ("200", r("Lead")), &["400", "404", "409", "422"])
        },
        "/leads/{id}/activities": {
            "parameters": lead_param,
            "post": op("Log a call, meeting, e-mail, quote or missed meeting: stored as an event (it feeds the score) and in the lead's log",
                "admin, manager, rep (own)", json_body(r("Activity")), ("201", json!({"type": "object"})), &["400", "404", "422"])
        },
        "/leads/{id}/log": {
            "parameters": lead_param,
            "get": op("Who changed the lead's rating, status, qualification and tasks, and when", "admin, manager, rep (own)", None,
                ("200", json!({"type": "object", "properties": {"lead": {"type": "string"}, "log": {"type": "array", "items": r("LogEntry")}}})), &["404"])
        },
        "/tasks": {
            "parameters": [query("owner", "string", "`me` or a user (reps: their own only)"),
                query("due_before", "string", "date or RFC 3339"), query("state", "string", "open (default), done or all"),
                query("lead", "string", "one lead's tasks"), query("limit", "integer", "1..1000, default 200")],
            "get": op("Follow-up tasks, soonest due first", "admin, manager, rep (own)", None,
                ("200", json!({"type": "object", "properties": {"tasks": {"type": "array", "items": r("Task")}}})), &["422"])
        },
        "/reports/model": {
            "parameters": [query("model", "string", "a stored model (a backtest before activating it); default: the active one"),
                query("capacity", "number", "leads a week the sales team can work, for the MQL threshold advice")],
            "get": op("How well the model's scores match real outcomes: conversion per band and grade, ROC AUC, calibration, gains, per-rule statistics with suggested points, MQL threshold advice",
                "admin, manager", None, ("200", json!({"type": "object"})), &["404", "422"]),
            "post": op("The same report for a draft model (its TOML in the body), without storing it: a backtest while editing",
                "admin, manager", Some(json!({"application/toml": {"schema": {"type": "string"}}})), ("200", json!({"type": "object"})), &["400", "413", "422"])
        },
        "/predictive": {
            "get": op("The active predictive model and its cross-validated figures", "admin, manager", None,
                ("200", json!({"type": "object"})), &["404"])
        },
        "/predictive/train": {
            "post": op("Train a predictive model from every lead with a known outcome and make it active; 409 when there are too few outcomes (under 200 leads or 30 conversions)",
                "admin", None, ("201", json!({"type": "object"})), &["409"])
        },
        "/tasks/{id}/{action}": {
            "parameters": [id_param("id"), id_param("action")],
            "post": op("`complete`, `snooze` (with `until`) or `reassign` (with `owner`; managers) a task, with an optional `note`",
                "admin, manager, rep (own tasks; not reassign)", json_body(json!({"type": "object", "properties": {
                    "note": {"type": "string"}, "until": {"type": "string"}, "owner": {"type": "string"}}})),
                ("200", r("Task")), &["404", "409", "422"])
        }
    });
    let schemas = json!({
        "Qualification": {"type": "object", "properties": {"framework": {"type": "string"},
            "status": {"type": "string", "enum": ["qualified", "in_progress", "unqualified"]},
            "criteria": {"type": "array", "items": {"type": "object", "properties": {"key": {"type": "string"}, "label": {"type": "string"},
                "questions": {"type": "array", "items": {"type": "string"}}, "facts_asked": {"type": "array"},
                "answer": {"type": "string", "enum": ["unknown", "no", "partial", "yes"]}, "notes": {"type": ["string", "null"]},
                "facts": {"type": "object"}}}}}},
        "QualificationInput": {"type": "object", "required": ["framework"], "properties": {"framework": {"type": "string"},
            "criteria": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                "answer": {"type": "string", "enum": ["unknown", "no", "partial", "yes"]}, "notes": {"type": "string"},
                "facts": {"type": "object"}}}}}},
        "StatusChange": {"type": "object", "required": ["status"], "additionalProperties": false, "properties": {
            "status": {"type": "string", "enum": ["new", "attempting_contact", "contacted", "verified", "contact_later", "qualified",
                "converted", "disqualified", "lost"]},
            "reason": {"type": "string", "description": "disqualified: not_interested, no_opportunity, not_a_fit, bad_data, under_contract; lost: in words"},
            "date": {"type": "string", "description": "contact_later: when; under_contract: when the contract ends; converted: close date"},
            "expected_value": {"type": "number"}, "currency": {"type": "string"}, "note": {"type": "string"}}},
        "Activity": {"type": "object", "required": ["type"], "additionalProperties": false, "properties": {
            "type": {"type": "string", "enum": ["call_held", "meeting_held", "email_sent", "quote_sent", "meeting_missed"]},
            "id": {"type": "string"}, "occurred_at": {"type": "string"}, "note": {"type": "string"}}},
        "LogEntry": {"type": "object", "properties": {"at": {"type": "string"}, "actor": {"type": "string"}, "kind": {"type": "string"}, "detail": {"type": "object"}}},
        "Task": {"type": "object", "properties": {"id": {"type": "string"}, "lead": {"type": "string"}, "owner": {"type": ["string", "null"]},
            "state": {"type": "string", "enum": ["open", "done"]}, "due": {"type": "string"}, "kind": {"type": "string"}, "title": {"type": "string"},
            "created_at": {"type": "string"}, "created_by": {"type": "string"}, "done_at": {"type": ["string", "null"]}, "actions": {"type": "array"}}}
    });
    for (k, v) in paths.as_object().expect("an object") {
        doc["paths"][k] = v.clone();
    }
    for (k, v) in schemas.as_object().expect("an object") {
        doc["components"]["schemas"][k] = v.clone();
    }
    let lead = &mut doc["components"]["schemas"]["Lead"]["properties"];
    let rating = json!({"type": ["string", "null"], "enum": ["unknown", "not_potential", "low", "medium", "high", null]});
    lead["rating"] = rating.clone();
    lead["rating_set"] = json!({"type": ["object", "null"], "properties": {"rating": {"type": "string"},
        "by": {"type": "string"}, "at": {"type": "string"}, "note": {"type": "string"}}});
    lead["proposed_rating"] = json!({"type": "string"});
    lead["evaluation"] = json!({"type": "object", "description": "the lead's signals now and the rating they propose",
        "properties": {"signals": {"type": "object"}, "points": {"type": "integer"}, "reasons": {"type": "array", "items": {"type": "string"}}}});
    lead["first_evaluation"] =
        json!({"type": ["object", "null"], "description": "the evaluation made when the lead arrived"});
    lead["status"] = json!({"type": "string"});
    lead["status_detail"] = json!({"type": "object"});
    lead["qualification"] = json!({"type": "object", "properties": {"framework": {"type": "string"},
        "status": {"type": ["string", "null"], "enum": ["qualified", "in_progress", "unqualified", null]}, "criteria": {"type": "object"}}});
    lead["flags"] =
        json!({"type": "array", "items": {"type": "string", "enum": ["rating_disagrees_with_score"]}});
}

pub fn document() -> Value {
    let mut doc = core_document();
    workflow(&mut doc);
    automation(&mut doc);
    doc
}

/// The paths and schemas of automation (issue 6).
fn automation(doc: &mut Value) {
    let hook = [id_param("id")];
    let delivery = [id_param("id"), id_param("delivery")];
    let list = |name: &str, item: Value| json!({"type": "object", "properties": {name: {"type": "array", "items": item}}});
    let paths = json!({
        "/webhooks": {
            "post": op("Subscribe a URL to happenings (lead.mql, lead.band_changed, lead.assigned, task.due, ... or *). \
                Deliveries are POSTs of {id, type, occurred_at, lead} signed with X-Leadscore-Signature: sha256=<hex HMAC-SHA256 of the body>; \
                the id stays the same on every retry", "admin",
                json_body(r("NewWebhook")), ("201", r("Webhook")), &["400", "422"]),
            "get": op("The subscriptions (secrets are never shown) and the happenings leadscore produces", "admin", None,
                ("200", list("webhooks", r("Webhook"))), &[])
        },
        "/webhooks/{id}": {
            "parameters": hook,
            "delete": op("Delete a subscription and its delivery log", "admin", None, ("204", json!({})), &["404"])
        },
        "/webhooks/{id}/deliveries": {
            "parameters": [id_param("id"), query("state", "string", "pending, delivered or failed"), query("limit", "integer", "1..1000, default 100")],
            "get": op("The subscription's deliveries, newest first", "admin", None, ("200", list("deliveries", r("Delivery"))), &["404", "422"])
        },
        "/webhooks/{id}/deliveries/{delivery}": {
            "parameters": delivery,
            "get": op("One delivery with each try (time, HTTP status, error, duration)", "admin", None, ("200", r("Delivery")), &["404"])
        },
        "/webhooks/{id}/deliveries/{delivery}/redeliver": {
            "parameters": delivery,
            "post": op("Send a delivery again, with the same id", "admin", None, ("202", json!({"type": "object"})), &["404"])
        },
        "/notifications": {
            "parameters": [query("unread", "boolean", "only unread ones"), query("limit", "integer", "1..1000, default 100")],
            "get": op("The caller's notifications from triggers, newest first", "admin, manager, rep", None,
                ("200", list("notifications", r("Notification"))), &["422"])
        },
        "/notifications/{id}/read": {
            "parameters": hook,
            "post": op("Mark a notification read", "admin, manager, rep (own)", None, ("204", json!({})), &["404"])
        },
        "/nurture": {
            "parameters": [query("after", "string", "the last lead id of the previous page"), query("limit", "integer", "1..1000, default 200")],
            "get": op("Leads on the nurture list (they left MQL or stayed cold), in id order", "admin, manager", None,
                ("200", json!({"type": "object", "properties": {"leads": {"type": "array", "items": r("Lead")}, "next_after": {"type": ["string", "null"]}}})), &["422"])
        },
        "/nurture.csv": {
            "get": op("The nurture list as CSV", "admin, manager", None, ("200", json!({"type": "string"})), &[])
        },
        "/stats/overview": {
            "get": op("The manager's overview: leads by band and by rep, MQLs per week (12 weeks), ratings across reps, hot leads nobody has touched",
                "admin, manager", None, ("200", json!({"type": "object"})), &[])
        },
        "/models/check": {
            "post": op("Check a model's TOML (as marketing ops type): what it holds, or the error with its line", "admin, manager",
                Some(json!({"application/toml": {"schema": {"type": "string"}}})), ("200", json!({"type": "object"})), &["400", "413"])
        },
        "/users": {
            "get": op("The users of the web pages", "admin", None, ("200", list("users", json!({"type": "object"}))), &[]),
            "post": op("Make a user of the web pages (or reset one); the password is kept as an Argon2id hash", "admin",
                json_body(json!({"type": "object", "required": ["name", "role", "password"], "additionalProperties": false, "properties": {
                    "name": {"type": "string"}, "role": {"type": "string", "enum": ["admin", "manager", "rep"]},
                    "locale": {"type": "string", "enum": ["en", "vi", "uk"]}, "password": {"type": "string", "minLength": 10}}})),
                ("201", json!({"type": "object"})), &["400", "422"])
        },
        "/reps": {
            "get": op("The declared reps: territory, seniority, capacity and open leads", "admin, manager", None,
                ("200", list("reps", json!({"type": "object"}))), &[])
        }
    });
    let schemas = json!({
        "NewWebhook": {"type": "object", "required": ["url", "events", "secret"], "additionalProperties": false, "properties": {
            "url": {"type": "string", "description": "http:// or https:// URL of the receiver"},
            "events": {"type": "array", "items": {"type": "string"}}, "secret": {"type": "string", "minLength": 16}}},
        "Webhook": {"type": "object", "properties": {"id": {"type": "string"}, "url": {"type": "string"},
            "events": {"type": "array", "items": {"type": "string"}}, "created_at": {"type": "string"},
            "created_by": {"type": ["string", "null"]}, "active": {"type": "boolean"}}},
        "Delivery": {"type": "object", "properties": {"id": {"type": "string"}, "webhook": {"type": "string"},
            "lead": {"type": ["string", "null"]}, "type": {"type": "string"}, "occurred_at": {"type": "string"},
            "state": {"type": "string", "enum": ["pending", "delivered", "failed"]}, "attempts": {"type": "integer"},
            "next_at": {"type": "string"}, "delivered_at": {"type": ["string", "null"]}, "last_status": {"type": ["integer", "null"]},
            "last_error": {"type": ["string", "null"]}, "tries": {"type": "array"}}},
        "Notification": {"type": "object", "properties": {"id": {"type": "string"}, "recipient": {"type": "string"},
            "lead": {"type": ["string", "null"]}, "at": {"type": "string"}, "trigger": {"type": ["string", "null"]},
            "message": {"type": "string"}, "read_at": {"type": ["string", "null"]}}}
    });
    for (k, v) in paths.as_object().expect("an object") {
        doc["paths"][k] = v.clone();
    }
    for (k, v) in schemas.as_object().expect("an object") {
        doc["components"]["schemas"][k] = v.clone();
    }
}

fn core_document() -> Value {
    let lead_props = {
        let mut p = serde_json::Map::new();
        for f in leadscore_core::StdField::ALL {
            let ty = match f.name() {
                "employees" | "annual_revenue" => json!({"type": ["number", "string", "null"]}),
                "is_customer" => json!({"type": ["boolean", "string", "null"]}),
                _ => json!({"type": ["string", "null"]}),
            };
            p.insert(f.name().to_owned(), ty);
        }
        p.insert(
            "attributes".into(),
            json!({"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}}),
        );
        p.insert("owner".into(), json!({"type": ["string", "null"]}));
        Value::Object(p)
    };
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "leadscore API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Lead scoring: leads and events in, current and explained scores out. \
                Every call needs `Authorization: Bearer TOKEN` (`leadscore token create --role ...`)."
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": {
            "/leads": {
                "post": op("Create a lead (409 with `existing_id` when its id or e-mail exists, unless ?upsert=true)",
                    "admin, manager, ingest", json_body(r("LeadInput")), ("201", r("Lead")), &["400", "409", "413", "422"]),
                "get": {
                    "parameters": [
                        query("band", "string", "only this band"), query("grade", "string", "only this grade"),
                        query("mql", "boolean", "only MQLs (or non-MQLs)"), query("owner", "string", "only this owner's"),
                        query("q", "string", "text in name, company or e-mail"),
                        query("rating", "string", "only leads the rep rated so (unknown, not_potential, low, medium, high)"),
                        query("status", "string", "only leads in this status (`new` includes leads nobody worked on)"),
                        query("flagged", "boolean", "only leads whose rep rating strongly disagrees with the score"),
                        query("sort", "string", "`score` (default, best first) or `created` (newest first)"),
                        query("limit", "integer", "1..1000, default 50"), query("cursor", "string", "`next_cursor` of the previous page")
                    ],
                    "summary": "List leads, best first, a page at a time", "description": "Roles: admin, manager, rep (own leads).",
                    "responses": {"200": {"description": "a page", "content": {"application/json": {"schema": {
                        "type": "object", "properties": {"leads": {"type": "array", "items": r("Lead")}, "next_cursor": {"type": ["string", "null"]}}}}}},
                        "400": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Error"}}
                }
            },
            "/leads/import": {
                "post": op("Import leads from CSV (standard columns or HubSpot / Salesforce export headers); ?upsert=true updates existing leads",
                    "admin, manager, ingest", Some(json!({"text/csv": {"schema": {"type": "string"}}})), ("200", r("ImportReport")), &["413", "422"])
            },
            "/leads/export.csv": {
                "get": {"summary": "Every lead as CSV", "description": "Roles: admin, manager, rep (own leads).",
                    "responses": {"200": {"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}}}}
            },
            "/leads/{id}": {
                "parameters": [id_param("id")],
                "get": op("A lead with its current score", "admin, manager, rep (own)", None, ("200", r("Lead")), &["404"]),
                "patch": op("Change a lead's fields (null clears one; it is rescored) and/or set the rep's `rating` (with `rating_note`)",
                    "admin, manager, rep (own; not `owner`)",
                    json_body(r("LeadInput")), ("200", r("Lead")), &["404", "409", "422"]),
                "delete": {"summary": "Erase a lead with its events and history (right to erasure)", "description": "Roles: admin, manager.",
                    "responses": {"204": {"description": "erased"}, "404": {"$ref": "#/components/responses/Error"}}}
            },
            "/leads/{id}/score": {
                "parameters": [id_param("id"), query("as_of", "string", "RFC 3339 moment (default: now)")],
                "get": op("The lead's score as of any moment", "admin, manager, rep (own)", None, ("200", r("Score")), &["404", "409", "422"])
            },
            "/leads/{id}/history": {
                "parameters": [id_param("id")],
                "get": op("Every change of the lead's score, band or MQL, with its cause", "admin, manager, rep (own)", None,
                    ("200", json!({"type": "object", "properties": {"lead": {"type": "string"}, "history": {"type": "array", "items": r("HistoryEntry")}}})), &["404"])
            },
            "/leads/{id}/events": {
                "parameters": [id_param("id")],
                "get": op("The lead's events in ingest order", "admin, manager, rep (own)", None,
                    ("200", json!({"type": "object", "properties": {"lead": {"type": "string"}, "events": {"type": "array", "items": r("Event")}}})), &["404"])
            },
            "/events": {
                "post": op("Record one event (idempotent on `id`); 201 accepted, 200 duplicate", "admin, manager, ingest",
                    json_body(r("Event")), ("201", r("EventResult")), &["400", "413", "422"])
            },
            "/events/batch": {
                "post": op("Record up to 10,000 events; a status per event. A 2xx answer means accepted events are durably stored",
                    "admin, manager, ingest", json_body(json!({"type": "array", "items": r("Event"), "maxItems": 10000})),
                    ("200", r("BatchResult")), &["400", "413", "422"])
            },
            "/models": {
                "post": op("Store a scoring model (TOML body); 422 with the file, line and rule when invalid", "admin",
                    Some(json!({"application/toml": {"schema": {"type": "string"}}})), ("201", r("Model")), &["409", "413", "422"]),
                "get": op("Stored models", "admin, manager", None, ("200", json!({"type": "object", "properties": {"models": {"type": "array", "items": r("Model")}}})), &[])
            },
            "/models/{name}": {
                "parameters": [id_param("name")],
                "get": op("A model, its TOML and its rescoring progress", "admin, manager", None, ("200", r("Model")), &["404"])
            },
            "/models/{name}/activate": {
                "parameters": [id_param("name")],
                "post": op("Make the model active now and rescore every lead in the background", "admin", None,
                    ("202", json!({"type": "object"})), &["404"])
            },
            "/openapi.json": {
                "get": {"summary": "This document", "security": [], "responses": {"200": {"description": "OpenAPI 3"}}}
            }
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {"Error": {"description": "an error", "content": {"application/json": {"schema": r("Error")}}}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": ["string", "null"]},
                        "existing_id": {"type": "string"}}}}},
                "LeadInput": {"type": "object", "additionalProperties": false, "properties": lead_props},
                "Lead": {"type": "object", "properties": {"id": {"type": "string"}, "score": {"oneOf": [r("Score"), {"type": "null"}]},
                    "created_at": {"type": "string"}, "updated_at": {"type": "string"}}, "additionalProperties": true},
                "Score": {"type": "object", "required": ["score", "fit", "engagement", "band", "grade", "mql", "breakdown", "model", "as_of"],
                    "properties": {"score": {"type": "number"}, "fit": {"type": "number"}, "engagement": {"type": "number"},
                        "band": {"type": "string"}, "grade": {"type": "string", "enum": ["A", "B", "C", "D"]}, "mql": {"type": "boolean"},
                        "breakdown": {"type": "array", "items": {"type": "object", "required": ["rule", "kind", "points"], "properties": {
                            "rule": {"type": "string"}, "kind": {"type": "string", "enum": ["fit", "behavior"]}, "label": {"type": "string"},
                            "points": {"type": "number"}, "events": {"type": "integer"}}}},
                        "model": {"type": "string"}, "as_of": {"type": "string", "format": "date-time"}}},
                "Event": {"type": "object", "required": ["id", "lead", "type", "occurred_at"], "additionalProperties": false,
                    "properties": {"id": {"type": "string"}, "lead": {"type": "string"}, "type": {"type": "string"},
                        "occurred_at": {"type": "string", "format": "date-time"},
                        "properties": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}}}},
                "EventResult": {"type": "object", "properties": {"id": {"type": "string"}, "status": {"type": "string", "enum": ["accepted", "duplicate"]}}},
                "BatchResult": {"type": "object", "properties": {"accepted": {"type": "integer"}, "duplicate": {"type": "integer"},
                    "rejected": {"type": "integer"}, "results": {"type": "array", "items": {"type": "object", "properties": {
                        "id": {}, "status": {"type": "string", "enum": ["accepted", "duplicate", "rejected"]}, "reason": {"type": "string"}}}}}},
                "HistoryEntry": {"type": "object", "properties": {"at": {"type": "string"}, "score": {"type": "number"}, "band": {"type": "string"},
                    "mql": {"type": "boolean"}, "model": {"type": "string"}, "cause": {"type": "object", "properties": {
                        "kind": {"type": "string", "enum": ["events", "model_activated", "created", "lead_edited", "time_passed", "activity"]}}}}},
                "Model": {"type": "object", "properties": {"name": {"type": "string"}, "created_at": {"type": "string"}, "active": {"type": "boolean"},
                    "activated_at": {"type": ["string", "null"]}, "toml": {"type": "string"},
                    "rescore": {"type": ["object", "null"], "properties": {"done": {"type": "integer"}, "total": {"type": "integer"}, "finished": {"type": "boolean"}}}}},
                "ImportReport": {"type": "object", "properties": {"created": {"type": "integer"}, "updated": {"type": "integer"},
                    "rejected": {"type": "integer"}, "rows": {"type": "array", "items": {"type": "object", "properties": {
                        "line": {"type": "integer"}, "status": {"type": "string"}, "id": {"type": "string"}, "reason": {"type": "string"}}}}}}
            }
        }
    })
}
