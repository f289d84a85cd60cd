//! `task.due`: each open task announced once, when its due moment comes.
//! A watermark (the due time announced up to) moves in the same transaction
//! as the deliveries, so two instances never announce a task twice and a
//! stop loses none.

use std::time::Duration;

use leadscore_core::Timestamp;
use leadscore_store::automation::Happening;
use serde_json::json;

use crate::AppState;

const KEY: &str = "task_due";

pub async fn due_tasks_loop(state: AppState) {
    let poll = Duration::from_millis(state.automation.rules.settings.poll_millis);
    loop {
        if let Err(e) = announce(&state).await {
            tracing::warn!(error = %e, "could not announce due tasks; tried again shortly");
        }
        tokio::time::sleep(poll).await;
    }
}

async fn announce(state: &AppState) -> Result<(), leadscore_store::StoreError> {
    let automation = state.store.automation();
    let now = state.now();
    let Some(from) = automation.watermark(KEY).await? else {
        // First start: tasks already overdue are not news.
        automation
            .emit(&[], KEY, now.as_micros(), now.as_micros())
            .await?;
        return Ok(());
    };
    if now.as_micros() <= from {
        return Ok(());
    }
    const BATCH: usize = 500;
    let mut tasks = automation
        .due_tasks(Timestamp::from_micros(from), now, BATCH)
        .await?;
    // A full batch ends at its last due time, with every task due then
    // (many tasks share a due time: 4 working hours after a night).
    let to = match tasks.last() {
        Some(last) if tasks.len() == BATCH => {
            let at = last.due;
            let before = Timestamp::from_micros(at.as_micros() - 1);
            tasks.retain(|t| t.due < at);
            tasks.extend(automation.due_tasks(before, at, usize::MAX).await?);
            at.as_micros()
        }
        _ => now.as_micros(),
    };
    let mut happenings = Vec::with_capacity(tasks.len());
    for t in &tasks {
        let lead = state.store.get_lead(&t.lead).await?;
        let occurred = t.due;
        happenings.push(Happening {
            id: format!("td_{}", t.id),
            kind: "task.due".into(),
            lead: Some(t.lead.clone()),
            occurred_at: occurred,
            payload: json!({
                "type": "task.due",
                "occurred_at": occurred.to_string(),
                "task": {"id": t.id, "title": t.title, "owner": t.owner, "due": t.due.to_string()},
                "lead": lead.as_ref().map(crate::wire::lead_json),
            }),
        });
    }
    if automation.emit(&happenings, KEY, from, to).await? && !happenings.is_empty() {
        state.automation.outbox.notify_one();
    }
    Ok(())
}
