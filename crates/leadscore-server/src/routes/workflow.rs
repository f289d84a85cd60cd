//! The rep's work on a lead: rating, qualification, status with its
//! follow-up tasks, logged activities, and the lead's log.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use leadscore_core::workflow::{
    Framework, QualificationState, Rating, StatusChange, TransitionError, Workflow, parse_day_or_time,
};
use leadscore_core::{Event, Timestamp};
use leadscore_store::{
    IngestStatus, LogEntry, Task, TaskAction, TaskDoc, TaskQuery, WorkflowSave, new_task_id,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::leads::visible;
use super::{JsonBody, OptionalJson};
use crate::AppState;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::{view, wire};

/// The activities reps log; each is stored as an event of that type.
pub const ACTIVITY_TYPES: [&str; 5] = [
    "call_held",
    "meeting_held",
    "email_sent",
    "quote_sent",
    "meeting_missed",
];

const WORKERS: [Role; 3] = [Role::Admin, Role::Manager, Role::Rep];

/// A JSON body as `T`, or a 422 that says what is wrong.
pub(super) fn parse<T: DeserializeOwned>(body: Value, what: &str) -> ApiResult<T> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { what.to_owned() } else { path };
        ApiError::invalid(field, format!("{what}: {}", e.inner()))
    })
}

/// Reads a lead's workflow, lets `change` make the new one (and its log
/// lines and tasks), and saves it; read again and retried when someone
/// saved in between.
async fn update_workflow(
    state: &AppState,
    id: &str,
    change: impl Fn(&Workflow) -> ApiResult<(Workflow, WorkflowSave)>,
) -> ApiResult<()> {
    if view::save_workflow_retrying(&state.store, id, change).await? {
        state.automation.touch([id]);
        return Ok(());
    }
    Err(ApiError::conflict(
        "busy",
        "this lead is being changed by others right now; try again",
    ))
}

/// Saves a task changed by `change`, reading it again when someone saved in between.
async fn update_task(
    state: &AppState,
    id: &str,
    change: impl Fn(&mut Task) -> Option<LogEntry>,
) -> ApiResult<()> {
    for _ in 0..8 {
        let Some(mut task) = state.store.get_task(id).await? else {
            return Ok(());
        };
        let Some(entry) = change(&mut task) else {
            return Ok(());
        };
        if state.store.save_task(&task, entry).await? {
            return Ok(());
        }
    }
    Err(ApiError::conflict(
        "busy",
        "a task is being changed by others right now; try again",
    ))
}

/// A lead's open tasks.
async fn open_tasks(state: &AppState, lead: &str) -> ApiResult<Vec<Task>> {
    Ok(state
        .store
        .list_tasks(&TaskQuery {
            lead: Some(lead.to_owned()),
            open: Some(true),
            limit: 1000,
            ..TaskQuery::default()
        })
        .await?)
}

/// When a lead changes hands, its open tasks held by the old owner go to the new one.
pub async fn move_open_tasks(
    state: &AppState,
    who: &Principal,
    lead: &str,
    from: Option<&str>,
    to: Option<&str>,
) -> ApiResult<()> {
    let now = state.now();
    for t in open_tasks(state, lead)
        .await?
        .iter()
        .filter(|t| t.owner.as_deref() == from)
    {
        update_task(state, &t.id, |task| {
            if !task.open || task.owner.as_deref() != from {
                return None;
            }
            task.owner = to.map(str::to_owned);
            task.doc.actions.push(TaskAction {
                action: "reassign".into(),
                by: who.actor(),
                at: now.to_string(),
                note: Some("the lead was reassigned".into()),
            });
            let detail = json!({"task": task.id, "kind": task.doc.kind, "from": from, "to": to,
                "note": "the lead was reassigned"});
            Some(log(now, who, "task_reassigned", detail))
        })
        .await?;
    }
    Ok(())
}

/// When a lead is closed (converted, lost, disqualified), its open tasks are
/// completed with a note saying so, except the ones just created.
async fn close_open_tasks(
    state: &AppState,
    who: &Principal,
    lead: &str,
    keep: &[String],
    status: &str,
) -> ApiResult<()> {
    let now = state.now();
    let note = format!("closed with the lead ({status})");
    for t in open_tasks(state, lead)
        .await?
        .iter()
        .filter(|t| !keep.contains(&t.id))
    {
        update_task(state, &t.id, |task| {
            if !task.open {
                return None;
            }
            task.open = false;
            task.doc.done_at = Some(now.to_string());
            task.doc.actions.push(TaskAction {
                action: "complete".into(),
                by: who.actor(),
                at: now.to_string(),
                note: Some(note.clone()),
            });
            Some(log(
                now,
                who,
                "task_completed",
                json!({"task": task.id, "kind": task.doc.kind, "note": note}),
            ))
        })
        .await?;
    }
    Ok(())
}

fn log(now: Timestamp, who: &Principal, kind: &str, detail: Value) -> LogEntry {
    LogEntry {
        at: now,
        actor: who.actor(),
        kind: kind.into(),
        detail,
    }
}

/// Takes `rating` and `rating_note` out of a lead patch: `Some(None)` clears
/// the rating.
pub fn take_rating(body: &mut Value) -> ApiResult<Option<(Option<Rating>, Option<String>)>> {
    let Some(map) = body.as_object_mut() else {
        return Ok(None);
    };
    let note = match map.remove("rating_note") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Some(_) => return Err(ApiError::invalid("rating_note", "`rating_note` is text")),
    };
    match map.remove("rating") {
        None if note.is_some() => Err(ApiError::invalid(
            "rating_note",
            "`rating_note` goes with a `rating`",
        )),
        None => Ok(None),
        Some(Value::Null) => Ok(Some((None, note))),
        Some(Value::String(r)) => match Rating::parse(r.trim()) {
            Some(r) => Ok(Some((Some(r), note))),
            None => Err(ApiError::invalid(
                "rating",
                format!(
                    "`{r}` is not a rating; one of {}",
                    Rating::ALL.map(|r| r.as_str()).join(", ")
                ),
            )),
        },
        Some(_) => Err(ApiError::invalid("rating", "`rating` is text, e.g. \"high\"")),
    }
}

/// Sets (or clears) the rep's rating, keeping who, when and the note.
pub async fn set_rating(
    state: &AppState,
    who: &Principal,
    id: &str,
    (rating, note): (Option<Rating>, Option<String>),
) -> ApiResult<()> {
    if let Some(n) = &note {
        wire::check_note("rating_note", n)?;
    }
    let now = state.now();
    update_workflow(state, id, |wf| {
        let mut next = wf.clone();
        next.rating = rating.map(|rating| leadscore_core::workflow::RatingSet {
            rating,
            by: who.actor(),
            at: now.to_string(),
            note: note.clone(),
        });
        let from = wf.rating.as_ref().map(|r| r.rating);
        let entry = log(
            now,
            who,
            "rating",
            json!({"from": from, "to": rating, "note": note}),
        );
        Ok((
            next,
            WorkflowSave {
                log: vec![entry],
                new_tasks: Vec::new(),
            },
        ))
    })
    .await
}

fn framework_json(f: &Framework, state: &QualificationState) -> Value {
    json!({
        "framework": f.name,
        "status": f.status(state).as_str(),
        "criteria": f.criteria.iter().map(|c| {
            let s = state.criteria.get(&c.key).cloned().unwrap_or_default();
            json!({
                "key": c.key,
                "label": c.label,
                "questions": c.questions,
                "facts_asked": c.facts,
                "answer": s.answer,
                "notes": s.notes,
                "facts": s.facts,
            })
        }).collect::<Vec<_>>(),
    })
}

pub async fn get_qualification(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    visible(&state, &who, &id).await?;
    let framework = state.settings.qualification.framework();
    let wf = state
        .store
        .workflows(std::slice::from_ref(&id))
        .await?
        .remove(&id)
        .unwrap_or_default();
    let q = wf
        .workflow
        .qualification
        .filter(|q| q.framework == framework.name)
        .unwrap_or_else(|| framework.empty_state());
    Ok(Json(framework_json(&framework, &q)))
}

pub async fn put_qualification(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    who.require(&WORKERS, "qualify leads")?;
    visible(&state, &who, &id).await?;
    let framework = state.settings.qualification.framework();
    let given: QualificationState = parse(body, "the qualification")?;
    let clean = framework
        .check(&given)
        .map_err(|(field, message)| ApiError::invalid(field, message))?;
    for (key, c) in &clean.criteria {
        if let Some(n) = &c.notes {
            wire::check_note(&format!("criteria.{key}.notes"), n)?;
        }
    }
    let now = state.now();
    let status = framework.status(&clean);
    update_workflow(&state, &id, |wf| {
        let mut next = wf.clone();
        next.qualification = Some(clean.clone());
        let answers: serde_json::Map<String, Value> = clean
            .criteria
            .iter()
            .map(|(k, c)| (k.clone(), json!(c.answer)))
            .collect();
        let entry = log(
            now,
            &who,
            "qualification",
            json!({"framework": framework.name, "status": status.as_str(), "answers": answers}),
        );
        Ok((
            next,
            WorkflowSave {
                log: vec![entry],
                new_tasks: Vec::new(),
            },
        ))
    })
    .await?;
    Ok(Json(framework_json(&framework, &clean)))
}

pub async fn set_status(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    who.require(&WORKERS, "change a lead's status")?;
    let lead = visible(&state, &who, &id).await?;
    let req: StatusChange = parse(body, "the status change")?;
    if let Some(n) = &req.note {
        wire::check_note("note", n)?;
    }
    if let Some(r) = &req.reason {
        wire::check_note("reason", r)?;
    }
    let now = state.now();
    let days = state.settings.qualification.contract_follow_up_days;
    // Follow-ups go to the lead's owner, or to whoever set the status.
    let owner = lead.owner.clone().or_else(|| who.user.clone());
    // What the saved change created, for closing the lead's other tasks after it.
    let created: std::sync::Mutex<(Vec<String>, Option<leadscore_core::workflow::Status>)> =
        Default::default();
    update_workflow(&state, &id, |wf| {
        let (status, follow_ups) = wf
            .status
            .change(&req, &who.actor(), now, days)
            .map_err(|e| match e {
                TransitionError::NotAllowed { ref allowed, .. } => {
                    ApiError::conflict("transition_not_allowed", e.to_string())
                        .with_field("status")
                        .with_allowed(allowed.iter().map(|s| s.as_str().to_owned()).collect())
                }
                TransitionError::Invalid { field, message } => ApiError::invalid(field, message),
            })?;
        let mut log_lines = vec![log(
            now,
            &who,
            "status",
            json!({"from": wf.status.status, "to": status.status, "reason": status.reason,
                   "date": status.date, "note": status.note, "previous": wf.status}),
        )];
        let tasks: Vec<Task> = follow_ups
            .into_iter()
            .map(|f| Task {
                id: new_task_id(),
                lead: id.clone(),
                owner: owner.clone(),
                open: true,
                due: f.due,
                doc: TaskDoc {
                    kind: f.kind.into(),
                    title: f.title,
                    created_at: now.to_string(),
                    created_by: who.actor(),
                    done_at: None,
                    actions: Vec::new(),
                },
                rev: 0,
            })
            .collect();
        for t in &tasks {
            log_lines.push(log(
                now,
                &who,
                "task_created",
                json!({"task": t.id, "kind": t.doc.kind, "due": t.due.to_string(), "owner": t.owner}),
            ));
        }
        *created.lock().unwrap_or_else(|p| p.into_inner()) =
            (tasks.iter().map(|t| t.id.clone()).collect(), Some(status.status));
        let mut next = wf.clone();
        next.status = status;
        Ok((
            next,
            WorkflowSave {
                log: log_lines,
                new_tasks: tasks,
            },
        ))
    })
    .await?;
    let (created, to) = created.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some(to) = to.filter(|s| s.is_closed() || *s == leadscore_core::workflow::Status::Converted) {
        close_open_tasks(&state, &who, &id, &created, to.as_str()).await?;
    }
    let lead = visible(&state, &who, &id).await?;
    Ok(Json(view::lead(&state, &lead).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivityBody {
    #[serde(rename = "type")]
    kind: String,
    /// An id of the caller's, to log the activity once however often it is sent.
    id: Option<String>,
    occurred_at: Option<String>,
    note: Option<String>,
}

pub async fn log_activity(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    who.require(&WORKERS, "log activities")?;
    visible(&state, &who, &id).await?;
    let a: ActivityBody = parse(body, "the activity")?;
    if !ACTIVITY_TYPES.contains(&a.kind.as_str()) {
        return Err(ApiError::invalid(
            "type",
            format!(
                "`{}` is not an activity; one of {}",
                a.kind,
                ACTIVITY_TYPES.join(", ")
            ),
        ));
    }
    if let Some(n) = &a.note {
        wire::check_note("note", n)?;
    }
    let now = state.now();
    let occurred_at = match a.occurred_at.as_deref() {
        None => now,
        Some(t) => Timestamp::parse(t).map_err(|e| ApiError::invalid("occurred_at", e.to_string()))?,
    };
    // A caller's id is scoped to the lead: sending it again logs the activity
    // once, and says nothing about other leads' events.
    let event_id = match a.id {
        Some(i) if !i.trim().is_empty() => {
            wire::check_note("id", &i)?;
            format!("act:{id}:{}", i.trim())
        }
        _ => format!("act_{}", uuid::Uuid::now_v7().simple()),
    };
    let event = Event {
        id: event_id.clone(),
        lead: id.clone(),
        kind: a.kind.clone(),
        occurred_at,
        properties: [(wire::LOGGED_BY.to_owned(), who.actor())].into_iter().collect(),
    };
    let outcome = state.store.ingest(vec![event], now).await?.pop();
    let status = match outcome {
        Some(IngestStatus::Accepted) => {
            update_workflow(&state, &id, |wf| {
                let entry = log(
                    now,
                    &who,
                    "activity",
                    json!({"type": a.kind, "event": event_id, "occurred_at": occurred_at.to_string(), "note": a.note}),
                );
                Ok((
                    wf.clone(),
                    WorkflowSave {
                        log: vec![entry],
                        new_tasks: Vec::new(),
                    },
                ))
            })
            .await?;
            StatusCode::CREATED
        }
        Some(IngestStatus::Duplicate) => StatusCode::OK,
        Some(IngestStatus::Rejected(why)) => return Err(ApiError::invalid("type", why)),
        None => return Err(ApiError::bad_request("the activity was not stored")),
    };
    let lead = visible(&state, &who, &id).await?;
    let word = if status == StatusCode::CREATED {
        "accepted"
    } else {
        "duplicate"
    };
    Ok((
        status,
        Json(json!({"event": event_id, "status": word, "lead": view::lead(&state, &lead).await?})),
    )
        .into_response())
}

pub async fn lead_log(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    visible(&state, &who, &id).await?;
    Ok(Json(json!({"lead": id, "log": state.store.lead_log(&id).await?})))
}

fn task_json(t: &Task) -> Value {
    json!({
        "id": t.id,
        "lead": t.lead,
        "owner": t.owner,
        "state": if t.open { "open" } else { "done" },
        "due": t.due.to_string(),
        "kind": t.doc.kind,
        "title": t.doc.title,
        "created_at": t.doc.created_at,
        "created_by": t.doc.created_by,
        "done_at": t.doc.done_at,
        "actions": t.doc.actions,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskParams {
    owner: Option<String>,
    due_before: Option<String>,
    state: Option<String>,
    lead: Option<String>,
    limit: Option<usize>,
}

pub async fn list_tasks(
    State(state): State<AppState>,
    who: Principal,
    params: Result<Query<TaskParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    who.require(&WORKERS, "read tasks")?;
    let Query(p) = params?;
    let owner = match p.owner.as_deref() {
        Some("me") => Some(
            who.user
                .clone()
                .ok_or_else(|| ApiError::invalid("owner", "`owner=me` needs a token created with --user"))?,
        ),
        other => other.map(str::to_owned),
    };
    let owner = if who.role == Role::Rep {
        let me = who.user.clone().unwrap_or_default();
        if owner.as_ref().is_some_and(|o| *o != me) {
            return Err(ApiError::forbidden("reps see their own tasks only").with_field("owner"));
        }
        Some(me)
    } else {
        owner
    };
    let due_before = match p.due_before.as_deref() {
        None => None,
        Some(d) => Some(parse_day_or_time(d).ok_or_else(|| {
            ApiError::invalid(
                "due_before",
                "`due_before` is a date (YYYY-MM-DD) or an RFC 3339 time",
            )
        })?),
    };
    let open = match p.state.as_deref() {
        None | Some("open") => Some(true),
        Some("done") => Some(false),
        Some("all") => None,
        Some(other) => {
            return Err(ApiError::invalid(
                "state",
                format!("`state` is open, done or all, not `{other}`"),
            ));
        }
    };
    let limit = super::page_limit(p.limit, 200)?;
    let tasks = state
        .store
        .list_tasks(&TaskQuery {
            owner,
            lead: p.lead,
            due_before,
            open,
            limit,
        })
        .await?;
    // A rep's tasks are the ones assigned to them: when a lead changes
    // hands its open tasks go with it (see `move_open_tasks`).
    Ok(Json(
        json!({"tasks": tasks.iter().map(task_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskChange {
    note: Option<String>,
    until: Option<String>,
    owner: Option<String>,
}

/// `POST /tasks/{id}/{action}`: `complete`, `snooze` (`until`) or
/// `reassign` (`owner`; managers and admins).
pub async fn change_task(
    State(state): State<AppState>,
    who: Principal,
    Path((id, action)): Path<(String, String)>,
    OptionalJson(body): OptionalJson,
) -> ApiResult<Json<Value>> {
    who.require(&WORKERS, "work on tasks")?;
    // The body may be left out (completing needs nothing more).
    let change: TaskChange = match body {
        Some(v) => parse(v, "the task change")?,
        None => TaskChange::default(),
    };
    if let Some(n) = &change.note {
        wire::check_note("note", n)?;
    }
    let now = state.now();
    for _ in 0..8 {
        let mut task = state
            .store
            .get_task(&id)
            .await?
            .filter(|t| who.role != Role::Rep || (who.user.is_some() && t.owner == who.user))
            .ok_or_else(|| ApiError::not_found(format!("task `{id}`")))?;
        let mut detail = json!({"task": task.id, "kind": task.doc.kind, "note": change.note});
        let kind = match action.as_str() {
            "complete" => {
                if !task.open {
                    return Err(ApiError::conflict("task_done", "this task is already done"));
                }
                task.open = false;
                task.doc.done_at = Some(now.to_string());
                "task_completed"
            }
            "snooze" => {
                let until = change
                    .until
                    .as_deref()
                    .ok_or_else(|| ApiError::invalid("until", "snoozing needs `until`: the new due date"))?;
                let until = parse_day_or_time(until).ok_or_else(|| {
                    ApiError::invalid("until", "`until` is a date (YYYY-MM-DD) or an RFC 3339 time")
                })?;
                if until <= now {
                    return Err(ApiError::invalid("until", "`until` must be in the future"));
                }
                if !task.open {
                    return Err(ApiError::conflict(
                        "task_done",
                        "a task that is done cannot be snoozed",
                    ));
                }
                detail["from"] = json!(task.due.to_string());
                detail["until"] = json!(until.to_string());
                task.due = until;
                "task_snoozed"
            }
            "reassign" => {
                who.require(&[Role::Admin, Role::Manager], "reassign tasks")?;
                let owner = change
                    .owner
                    .as_deref()
                    .map(str::trim)
                    .filter(|o| !o.is_empty())
                    .ok_or_else(|| ApiError::invalid("owner", "reassigning needs the new `owner`"))?;
                wire::check_note("owner", owner)?;
                detail["from"] = json!(task.owner);
                detail["to"] = json!(owner);
                task.owner = Some(owner.to_owned());
                "task_reassigned"
            }
            other => {
                return Err(ApiError::not_found(format!(
                    "task action `{other}` (complete, snooze or reassign)"
                )));
            }
        };
        task.doc.actions.push(TaskAction {
            action: action.clone(),
            by: who.actor(),
            at: now.to_string(),
            note: change.note.clone(),
        });
        if state.store.save_task(&task, log(now, &who, kind, detail)).await? {
            task.rev += 1;
            return Ok(Json(task_json(&task)));
        }
    }
    Err(ApiError::conflict(
        "busy",
        "this task is being changed by others right now; try again",
    ))
}
