//! A lead as the API shows it: its data and score (see `wire::lead_json`)
//! with the rep's work beside the score: rating and proposed rating with the
//! signals behind it, status, qualification and flags.

use leadscore_core::ScoringModel;
use leadscore_core::workflow::{Evaluation, Framework, RatingPolicy, Signals};
use leadscore_store::{LeadRecord, WorkflowRecord};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiResult;
use crate::wire;

/// Flag on a lead whose rep rating strongly disagrees with its score.
pub const RATING_DISAGREES: &str = "rating_disagrees_with_score";

/// One lead, with its workflow, as served.
pub async fn lead(state: &AppState, r: &LeadRecord) -> ApiResult<Value> {
    Ok(leads(state, std::slice::from_ref(r))
        .await?
        .pop()
        .expect("one lead in, one out"))
}

/// Several leads (a page), their workflows read in one go.
pub async fn leads(state: &AppState, records: &[LeadRecord]) -> ApiResult<Vec<Value>> {
    let ids: Vec<String> = records.iter().map(|r| r.id().to_owned()).collect();
    let workflows = state.store.workflows(&ids).await?;
    let automation = state.store.automation().states(&ids).await?;
    let last_activity = state.store.automation().last_activity(&ids, state.now()).await?;
    let active = state.store.active_model().await?;
    let framework = state.settings.qualification.framework();
    // With a predictive model active, each lead also carries its probability.
    let predictive = state.predictive.active(&state.store).await?;
    let mut predictions = Vec::with_capacity(records.len());
    for r in records {
        predictions.push(match &predictive {
            Some((name, model)) => {
                let events = state.store.lead_events(r.id()).await?;
                let mut p = crate::predictive::explain(model, &r.lead, &events, state.now());
                p["model"] = json!(name);
                Some(p)
            }
            None => None,
        });
    }
    Ok(records
        .iter()
        .zip(predictions)
        .map(|(r, prediction)| {
            // The model that scores the lead judges its fit (and its band).
            let model = active
                .as_ref()
                .and_then(|set| set.for_lead(&r.lead))
                .map(|m| &*m.model);
            let mut v = render(
                r,
                workflows.get(r.id()),
                model,
                &state.settings.rating,
                &framework,
            );
            let auto = automation.get(r.id());
            v["automation"] = json!({
                "next_check_at": auto.and_then(|a| a.next_at).map(|t| t.to_string()),
                "nurture_since": auto.and_then(|a| a.nurture_since).map(|t| t.to_string()),
                "last_activity_at": last_activity.get(r.id()).map(ToString::to_string),
                "triggers_holding": auto
                    .and_then(|a| a.doc.get("holding"))
                    .and_then(Value::as_object)
                    .map(|m| m.keys().cloned().collect::<Vec<_>>())
                    .unwrap_or_default(),
            });
            if let Some(p) = prediction {
                v["probability"] = p["probability"].clone();
                v["predictive_score"] = p["predictive_score"].clone();
                v["prediction"] = p;
            }
            v
        })
        .collect())
}

/// Reads a lead's workflow, lets `change` make the new one (with its log
/// lines and tasks) and saves it, reading again when someone saved in
/// between. `Ok(false)`: it kept changing (eight tries).
pub async fn save_workflow_retrying<E: From<leadscore_store::StoreError>>(
    store: &std::sync::Arc<dyn leadscore_store::Store>,
    id: &str,
    change: impl Fn(
        &leadscore_core::workflow::Workflow,
    ) -> Result<(leadscore_core::workflow::Workflow, leadscore_store::WorkflowSave), E>,
) -> Result<bool, E> {
    for _ in 0..8 {
        let current = store
            .workflows(&[id.to_owned()])
            .await?
            .remove(id)
            .unwrap_or_default();
        let (next, save) = change(&current.workflow)?;
        if store.save_workflow(id, current.rev, &next, save).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Keeps the first evaluation of leads just created (`(id, data, status)`):
/// their signals and proposed rating on arrival, as the model that scores
/// each one sees it; and a status when the import gave an outcome.
pub async fn record_first_evaluations(
    store: &std::sync::Arc<dyn leadscore_store::Store>,
    policy: &RatingPolicy,
    created: Vec<(
        String,
        leadscore_core::Lead,
        Option<leadscore_core::workflow::StatusState>,
    )>,
    now: leadscore_core::Timestamp,
) -> Result<(), leadscore_store::StoreError> {
    if created.is_empty() {
        return Ok(());
    }
    let active = store.active_model().await?;
    let items = created
        .into_iter()
        .map(|(id, lead, status)| {
            let model = active
                .as_ref()
                .and_then(|set| set.for_lead(&lead))
                .map(|m| &*m.model);
            let signals = Signals::of(&lead, model);
            // The grade depends on the fit alone: no events needed.
            let grade = model.map(|m| m.score(&lead, &[], now).grade.as_str().to_owned());
            let proposal = policy.propose(&signals, grade.as_deref());
            let workflow = leadscore_core::workflow::Workflow {
                first_evaluation: Some(Evaluation::new(now, signals, proposal)),
                status: status.unwrap_or_default(),
                ..Default::default()
            };
            (id, workflow)
        })
        .collect();
    store.init_workflows(items).await
}

pub fn render(
    r: &LeadRecord,
    wf: Option<&WorkflowRecord>,
    model: Option<&ScoringModel>,
    policy: &RatingPolicy,
    framework: &Framework,
) -> Value {
    let mut v = wire::lead_json(r);
    let default = WorkflowRecord::default();
    let wf = &wf.unwrap_or(&default).workflow;
    let signals = Signals::of(&r.lead, model);
    let grade = r.score.as_ref().map(|s| s.grade.as_str());
    let proposal = policy.propose(&signals, grade);
    let mut flags: Vec<&str> = Vec::new();
    if let (Some(set), Some(score), Some(m)) = (&wf.rating, &r.score, model)
        && let Some(band) = m.bands.iter().position(|b| b.name == score.band)
        && policy.disagrees(set.rating, band, m.bands.len(), score.mql)
    {
        flags.push(RATING_DISAGREES);
    }
    let qualification = wf
        .qualification
        .clone()
        .unwrap_or_else(|| framework.empty_state());
    let q_status = if qualification.framework == framework.name {
        Some(framework.status(&qualification).as_str())
    } else {
        None
    };
    let m = v.as_object_mut().expect("a lead is an object");
    m.insert("rating".into(), json!(wf.rating.as_ref().map(|s| s.rating)));
    m.insert("rating_set".into(), json!(wf.rating));
    m.insert("proposed_rating".into(), json!(proposal.rating));
    m.insert(
        "evaluation".into(),
        json!({"signals": signals, "points": proposal.points, "reasons": proposal.reasons}),
    );
    m.insert("first_evaluation".into(), json!(wf.first_evaluation));
    m.insert("status".into(), json!(wf.status.status));
    m.insert("status_detail".into(), json!(wf.status));
    m.insert(
        "qualification".into(),
        json!({"framework": qualification.framework, "status": q_status, "criteria": qualification.criteria}),
    );
    m.insert("flags".into(), json!(flags));
    v
}
