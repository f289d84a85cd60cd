//! `[automation]` settings: reps and routing, triggers and their actions,
//! nurture, working hours and webhook delivery. Checked once at start
//! ([`AutomationSettings::compile`]); a bad trigger is refused with its id
//! and what is wrong.

use leadscore_core::calendar::WorkingCalendar;
use leadscore_core::fit::{Condition, Operand};
use leadscore_core::{FieldRef, FitRule, model::condition_rule};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AutomationSettings {
    /// Run triggers, routing, aging, nurture and webhook delivery.
    pub enabled: bool,
    /// How often due leads, due tasks and due deliveries are looked for.
    pub poll_millis: u64,
    /// How far ahead a lead's next band or MQL change is looked for.
    pub horizon_days: u32,
    /// When "working hours" run (SLA timers, task due dates).
    pub working_hours: WorkingHours,
    /// Who `notify = "manager"` and escalations reach.
    pub manager: Option<String>,
    /// The owner of leads no rep matches (a queue for a manager to sort).
    pub fallback_owner: String,
    /// Bands that `senior_for_hot` sends to senior reps only.
    pub senior_bands: Vec<String>,
    pub reps: Vec<Rep>,
    pub triggers: Vec<TriggerSpec>,
    pub nurture: NurtureSettings,
    pub webhooks: WebhookSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkingHours {
    /// `mon-fri`, or a list such as `mon,tue,thu`.
    pub days: String,
    /// `09:00-17:00`.
    pub hours: String,
    /// The team's offset from UTC: `+07:00`, `-05:00`, `Z`.
    pub utc_offset: String,
}

impl Default for WorkingHours {
    fn default() -> Self {
        WorkingHours {
            days: "mon-fri".into(),
            hours: "09:00-17:00".into(),
            utc_offset: "+00:00".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rep {
    /// The user name (as in `token create --user`).
    pub name: String,
    /// Countries served (as leads spell them, e.g. `VN` or `Vietnam`); empty: all.
    #[serde(default)]
    pub countries: Vec<String>,
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default)]
    pub industries: Vec<String>,
    /// Languages spoken (`en`, `vi`, `uk`, ...); empty: any.
    #[serde(default)]
    pub languages: Vec<String>,
    #[serde(default)]
    pub seniority: Seniority,
    /// Open leads at most.
    pub capacity: u32,
    /// False while away: gets no new leads.
    #[serde(default = "yes")]
    pub available: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Seniority {
    #[default]
    Junior,
    Senior,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    pub id: String,
    #[serde(default)]
    pub label: Option<String>,
    /// Conditions that must all hold, each in the fit-rule syntax over the
    /// lead's fields and `score`, `fit`, `engagement`, `band`, `grade`,
    /// `mql`, `rating`, `status`, `owner`.
    pub when: Vec<toml::Table>,
    /// `enter` (the conditions start to hold) or `leave` (they stop).
    #[serde(default)]
    pub on: Edge,
    /// Fire only once the conditions have held this long with no contact
    /// logged (a call, meeting or e-mail) since they began to.
    #[serde(default)]
    pub untouched_hours: Option<f64>,
    /// Count `untouched_hours` in working hours.
    #[serde(default)]
    pub working_hours: bool,
    pub actions: Vec<ActionSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Edge {
    #[default]
    Enter,
    Leave,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionSpec {
    /// Give the lead an owner by a routing strategy. A lead that has a rep
    /// keeps it unless `reassign` (an escalation: another rep takes it).
    Assign {
        strategy: Strategy,
        #[serde(default)]
        reassign: bool,
    },
    /// A follow-up task for the owner, due this many hours after the trigger.
    Task {
        title: String,
        due_hours: f64,
        #[serde(default)]
        working_hours: bool,
    },
    /// A message to `owner`, `manager` or a user by name.
    Notify {
        to: String,
        #[serde(default)]
        message: Option<String>,
    },
    /// A happening of this type for the webhook subscriptions to it.
    Webhook { event: String },
    /// Put the lead on (`add = true`) or take it off the nurture list.
    Nurture { add: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The matching rep who got a lead least recently.
    RoundRobin,
    /// The matching rep with the fewest open leads.
    LeastLoaded,
    /// Leads in `senior_bands` to senior reps only (round-robin); the rest
    /// to junior reps first.
    SeniorForHot,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NurtureSettings {
    /// A lead that stops being MQL goes on the nurture list.
    pub on_leaving_mql: bool,
    /// A lead in one of these bands for `cold_days` goes on the list.
    pub cold_bands: Vec<String>,
    pub cold_days: u32,
}

impl Default for NurtureSettings {
    fn default() -> Self {
        NurtureSettings {
            on_leaving_mql: true,
            cold_bands: vec!["cold".into()],
            cold_days: 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// Deliveries in flight at once.
    pub concurrency: usize,
    pub timeout_millis: u64,
    /// The first retry waits this long; each next one twice as long...
    pub first_retry_seconds: u64,
    /// ...up to this.
    pub max_retry_seconds: u64,
    /// Tries before a delivery is marked failed (it can still be sent again by hand).
    pub max_attempts: u32,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            concurrency: 64,
            timeout_millis: 10_000,
            first_retry_seconds: 5,
            max_retry_seconds: 900,
            max_attempts: 30,
        }
    }
}

impl Default for AutomationSettings {
    fn default() -> Self {
        AutomationSettings {
            enabled: true,
            poll_millis: 1000,
            horizon_days: 400,
            working_hours: WorkingHours::default(),
            manager: None,
            fallback_owner: "queue:unassigned".into(),
            senior_bands: vec!["hot".into(), "very_hot".into()],
            reps: Vec::new(),
            triggers: Vec::new(),
            nurture: NurtureSettings::default(),
            webhooks: WebhookSettings::default(),
        }
    }
}

/// A trigger ready to evaluate.
#[derive(Debug, Clone)]
pub struct Trigger {
    pub spec: TriggerSpec,
    pub when: Vec<FitRule>,
}

/// The settings, checked and compiled.
#[derive(Debug, Clone)]
pub struct Rules {
    pub settings: AutomationSettings,
    pub calendar: WorkingCalendar,
    pub triggers: Vec<Trigger>,
    /// The bounds of trigger conditions on `score`: aging watches the
    /// total cross them as well as band and MQL changes.
    pub score_thresholds: Vec<f64>,
    /// A fingerprint of the settings: when it changes, every lead is looked at again.
    pub fingerprint: i64,
}

impl AutomationSettings {
    /// Checks everything and parses the conditions; the message names the
    /// setting at fault.
    pub fn compile(&self) -> Result<Rules, String> {
        let wh = &self.working_hours;
        let calendar = WorkingCalendar::parse(&wh.days, &wh.hours, &wh.utc_offset)
            .map_err(|e| format!("automation.working_hours: {e}"))?;
        if self.poll_millis == 0 {
            return Err("automation.poll_millis: must be at least 1".into());
        }
        let mut names = std::collections::HashSet::new();
        for (i, r) in self.reps.iter().enumerate() {
            if r.name.trim().is_empty() {
                return Err(format!("automation.reps[{i}]: `name` is empty"));
            }
            if !names.insert(r.name.as_str()) {
                return Err(format!("automation.reps: `{}` is declared twice", r.name));
            }
        }
        let w = &self.webhooks;
        if w.concurrency == 0 || w.max_attempts == 0 || w.first_retry_seconds == 0 {
            return Err(
                "automation.webhooks: concurrency, max_attempts and first_retry_seconds must be at least 1"
                    .into(),
            );
        }
        let mut ids = std::collections::HashSet::new();
        let mut triggers = Vec::new();
        for t in &self.triggers {
            let at = |m: String| format!("automation.triggers `{}`: {m}", t.id);
            if t.id.trim().is_empty() {
                return Err("automation.triggers: a trigger has an empty `id`".into());
            }
            if !ids.insert(t.id.as_str()) {
                return Err(at("the id is used twice".into()));
            }
            if t.when.is_empty() {
                return Err(at("`when` lists no condition".into()));
            }
            if t.actions.is_empty() {
                return Err(at("`actions` is empty".into()));
            }
            if let Some(h) = t.untouched_hours
                && !(h.is_finite() && h > 0.0)
            {
                return Err(at("`untouched_hours` must be a positive number".into()));
            }
            if t.untouched_hours.is_some() && t.on == Edge::Leave {
                return Err(at("`untouched_hours` goes with `on = \"enter\"` only".into()));
            }
            let when = t
                .when
                .iter()
                .enumerate()
                .map(|(i, c)| condition_rule(c.clone(), &t.id).map_err(|e| at(format!("when[{i}]: {e}"))))
                .collect::<Result<Vec<_>, _>>()?;
            for a in &t.actions {
                match a {
                    ActionSpec::Task { title, due_hours, .. } => {
                        if title.trim().is_empty() {
                            return Err(at("a task action has an empty `title`".into()));
                        }
                        if !(due_hours.is_finite() && *due_hours >= 0.0) {
                            return Err(at("a task's `due_hours` must be 0 or more".into()));
                        }
                    }
                    ActionSpec::Notify { to, .. } => {
                        if to.trim().is_empty() {
                            return Err(at("a notify action has an empty `to`".into()));
                        }
                        if to == "manager" && self.manager.is_none() {
                            return Err(at(
                                "notifies the manager, but `automation.manager` is not set".into()
                            ));
                        }
                    }
                    ActionSpec::Webhook { event } if !valid_event_name(event) => {
                        return Err(at(format!(
                            "`{event}` is not an event name (letters, digits, `.`, `_`, `-`)"
                        )));
                    }
                    ActionSpec::Assign { .. } if self.reps.is_empty() => {
                        return Err(at(
                            "assigns leads, but no rep is declared in `[[automation.reps]]`".into(),
                        ));
                    }
                    _ => {}
                }
            }
            triggers.push(Trigger {
                spec: t.clone(),
                when,
            });
        }
        let mut score_thresholds: Vec<f64> = triggers
            .iter()
            .flat_map(|t| &t.when)
            .filter(|c| matches!(&c.field, FieldRef::Custom(f) if f == "score"))
            .flat_map(|c| match &c.condition {
                Condition::Range { lower, upper } => {
                    [lower.as_ref().map(|b| b.value), upper.as_ref().map(|b| b.value)]
                }
                Condition::Equals(Operand::Number(n)) => [Some(*n), None],
                _ => [None, None],
            })
            .flatten()
            .collect();
        score_thresholds.sort_by(f64::total_cmp);
        score_thresholds.dedup();
        let fingerprint = {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(toml::to_string(self).unwrap_or_default().as_bytes());
            i64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
        };
        Ok(Rules {
            settings: self.clone(),
            calendar,
            triggers,
            score_thresholds,
            fingerprint,
        })
    }
}

/// A happening type a subscription may name.
pub fn valid_event_name(e: &str) -> bool {
    !e.is_empty()
        && e.len() <= 100
        && e.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Rules, String> {
        #[derive(Deserialize)]
        struct W {
            automation: AutomationSettings,
        }
        let w: W = toml::from_str(text).map_err(|e| e.to_string())?;
        w.automation.compile()
    }

    #[test]
    fn a_trigger_with_conditions_and_actions() {
        let r = parse(
            r#"
[automation]
manager = "maria"
[[automation.reps]]
name = "an"
countries = ["VN"]
seniority = "senior"
capacity = 10
[[automation.triggers]]
id = "hot"
when = [{ field = "band", in = ["hot", "very_hot"] }, { field = "status", equals = "new" }]
actions = [{ do = "assign", strategy = "senior_for_hot" }, { do = "notify", to = "owner" }]
[[automation.triggers]]
id = "hot-untouched"
when = [{ field = "band", in = ["hot", "very_hot"] }]
untouched_hours = 4
working_hours = true
actions = [{ do = "notify", to = "manager" }, { do = "assign", strategy = "least_loaded", reassign = true }]
"#,
        )
        .unwrap();
        assert_eq!(r.triggers.len(), 2);
        assert_eq!(r.triggers[0].when.len(), 2);
    }

    #[test]
    fn bad_triggers_are_named() {
        let e = parse(
            "[automation]\n[[automation.triggers]]\nid = \"x\"\nwhen = [{ field = \"band\" }]\nactions = [{ do = \"webhook\", event = \"lead.x\" }]",
        )
        .unwrap_err();
        assert!(e.contains("`x`") && e.contains("no operator"), "{e}");
        let e = parse(
            "[automation]\n[[automation.triggers]]\nid = \"y\"\nwhen = [{ field = \"mql\", equals = true }]\nactions = [{ do = \"assign\", strategy = \"round_robin\" }]",
        )
        .unwrap_err();
        assert!(e.contains("no rep"), "{e}");
        let e = parse(
            "[automation]\n[[automation.triggers]]\nid = \"z\"\nwhen = [{ field = \"mql\", equals = true }]\nactions = [{ do = \"shout\" }]",
        )
        .unwrap_err();
        assert!(e.contains("shout"), "{e}");
        let e = parse("[automation.working_hours]\nhours = \"9-5\"").unwrap_err();
        assert!(e.contains("working_hours"), "{e}");
    }
}
