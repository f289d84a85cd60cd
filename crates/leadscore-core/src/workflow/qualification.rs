//! Qualification frameworks (BANT by default, seed 000): criteria with their
//! discovery questions and facts, a rep's answers, and the derived status.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::parse_day_or_time;

/// A framework: the criteria a lead must meet to be qualified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Framework {
    pub name: String,
    pub criteria: Vec<Criterion>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    pub key: String,
    pub label: String,
    #[serde(default)]
    pub questions: Vec<String>,
    #[serde(default)]
    pub facts: Vec<FactSpec>,
}

/// A fact that belongs to a criterion (the budget amount, the decision maker).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactSpec {
    pub key: String,
    pub label: String,
    pub kind: FactKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactKind {
    /// Free text.
    Text,
    Number,
    /// `{"amount": 12000, "currency": "USD"}`.
    Money,
    /// `YYYY-MM-DD` or RFC 3339.
    Date,
    /// `{"name": "...", "role": "..."}`.
    Person,
}

/// A rep's answer to one criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    #[default]
    Unknown,
    No,
    Partial,
    Yes,
}

/// What a rep has found out for one criterion.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CriterionState {
    #[serde(default)]
    pub answer: Answer,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub facts: BTreeMap<String, FactValue>,
}

/// A fact's value; its shape follows the fact's kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FactValue {
    Number(f64),
    Text(String),
    Money(Money),
    Person(Person),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Money {
    pub amount: f64,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// A lead's qualification under one framework.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualificationState {
    pub framework: String,
    #[serde(default)]
    pub criteria: BTreeMap<String, CriterionState>,
}

/// `qualified` (every criterion yes), `unqualified` (any no), else `in_progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QualificationStatus {
    Qualified,
    InProgress,
    Unqualified,
}

impl QualificationStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            QualificationStatus::Qualified => "qualified",
            QualificationStatus::InProgress => "in_progress",
            QualificationStatus::Unqualified => "unqualified",
        }
    }
}

impl Framework {
    /// The frameworks every deployment has: BANT (the default; seed 000's
    /// discovery questions), CHAMP, ANUM and MEDDIC.
    pub fn built_in() -> Vec<Framework> {
        vec![bant(), champ(), anum(), meddic()]
    }

    /// Checks a framework declared in configuration.
    pub fn validate(&self) -> Result<(), String> {
        let name = &self.name;
        if name.trim().is_empty() {
            return Err("a qualification framework needs a name".into());
        }
        if self.criteria.is_empty() {
            return Err(format!("framework `{name}` has no criteria"));
        }
        let mut keys = std::collections::HashSet::new();
        for c in &self.criteria {
            if !is_key(&c.key) {
                return Err(format!(
                    "framework `{name}`: criterion key `{}` must be lower-case letters, digits and _",
                    c.key
                ));
            }
            if !keys.insert(&c.key) {
                return Err(format!(
                    "framework `{name}`: criterion `{}` is declared twice",
                    c.key
                ));
            }
            let mut facts = std::collections::HashSet::new();
            for f in &c.facts {
                if !is_key(&f.key) || !facts.insert(&f.key) {
                    return Err(format!(
                        "framework `{name}`, criterion `{}`: fact key `{}` is malformed or repeated",
                        c.key, f.key
                    ));
                }
            }
        }
        Ok(())
    }

    /// A state for this framework with every criterion unknown.
    pub fn empty_state(&self) -> QualificationState {
        QualificationState {
            framework: self.name.clone(),
            criteria: self
                .criteria
                .iter()
                .map(|c| (c.key.clone(), CriterionState::default()))
                .collect(),
        }
    }

    /// Checks a state sent by a rep against this framework: known criteria
    /// and facts, values of the right shape. Criteria left out are unknown.
    /// The error names the place (`criteria.budget.facts.amount`) and what is wrong.
    pub fn check(&self, state: &QualificationState) -> Result<QualificationState, (String, String)> {
        if state.framework != self.name {
            return Err((
                "framework".into(),
                format!(
                    "this deployment qualifies with `{}`, not `{}`",
                    self.name, state.framework
                ),
            ));
        }
        let mut out = self.empty_state();
        for (key, given) in &state.criteria {
            let Some(c) = self.criteria.iter().find(|c| &c.key == key) else {
                let known: Vec<&str> = self.criteria.iter().map(|c| c.key.as_str()).collect();
                return Err((
                    format!("criteria.{key}"),
                    format!(
                        "`{key}` is not a criterion of {}; its criteria: {}",
                        self.name,
                        known.join(", ")
                    ),
                ));
            };
            let mut clean = CriterionState {
                answer: given.answer,
                notes: given
                    .notes
                    .as_deref()
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned),
                facts: BTreeMap::new(),
            };
            for (fk, fv) in &given.facts {
                let place = format!("criteria.{key}.facts.{fk}");
                let Some(spec) = c.facts.iter().find(|f| &f.key == fk) else {
                    let known: Vec<&str> = c.facts.iter().map(|f| f.key.as_str()).collect();
                    return Err((
                        place,
                        format!("`{fk}` is not a fact of `{key}`; its facts: {}", known.join(", ")),
                    ));
                };
                clean
                    .facts
                    .insert(fk.clone(), check_fact(spec.kind, fv).map_err(|m| (place, m))?);
            }
            out.criteria.insert(key.clone(), clean);
        }
        Ok(out)
    }

    /// The derived status of a state under this framework.
    pub fn status(&self, state: &QualificationState) -> QualificationStatus {
        let answer = |c: &Criterion| state.criteria.get(&c.key).map(|s| s.answer).unwrap_or_default();
        if self.criteria.iter().any(|c| answer(c) == Answer::No) {
            QualificationStatus::Unqualified
        } else if self.criteria.iter().all(|c| answer(c) == Answer::Yes) {
            QualificationStatus::Qualified
        } else {
            QualificationStatus::InProgress
        }
    }
}

fn is_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 64
        && k.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn check_fact(kind: FactKind, v: &FactValue) -> Result<FactValue, String> {
    let money_ok = |m: &Money| {
        m.amount.is_finite()
            && m.amount >= 0.0
            && m.currency.len() == 3
            && m.currency.bytes().all(|b| b.is_ascii_alphabetic())
    };
    match (kind, v) {
        (FactKind::Text, FactValue::Text(t)) if t.chars().count() <= 2000 => {
            Ok(FactValue::Text(t.trim().to_owned()))
        }
        (FactKind::Number, FactValue::Number(n)) if n.is_finite() => Ok(v.clone()),
        (FactKind::Money, FactValue::Money(m)) if money_ok(m) => Ok(FactValue::Money(Money {
            amount: m.amount,
            currency: m.currency.to_ascii_uppercase(),
        })),
        (FactKind::Date, FactValue::Text(t)) => parse_day_or_time(t)
            .map(|ts| FactValue::Text(ts.to_string()))
            .ok_or_else(|| format!("`{t}` is not a date (YYYY-MM-DD) or an RFC 3339 time")),
        (FactKind::Person, FactValue::Person(p)) if !p.name.trim().is_empty() => Ok(v.clone()),
        (kind, _) => Err(match kind {
            FactKind::Text => "expected text (at most 2000 characters)".into(),
            FactKind::Number => "expected a number".into(),
            FactKind::Money => {
                "expected {\"amount\": a number of 0 or more, \"currency\": a three-letter code}".into()
            }
            FactKind::Date => "expected a date (YYYY-MM-DD) or an RFC 3339 time".into(),
            FactKind::Person => "expected {\"name\": ..., \"role\": ...} with a name".into(),
        }),
    }
}

fn criterion(key: &str, label: &str, questions: &[&str], facts: &[(&str, &str, FactKind)]) -> Criterion {
    Criterion {
        key: key.into(),
        label: label.into(),
        questions: questions.iter().map(|q| (*q).to_owned()).collect(),
        facts: facts
            .iter()
            .map(|(k, l, kind)| FactSpec {
                key: (*k).into(),
                label: (*l).into(),
                kind: *kind,
            })
            .collect(),
    }
}

fn budget() -> Criterion {
    criterion(
        "budget",
        "Budget: can they pay? (confirmed by asking, never assumed)",
        &[
            "Do you have a budget set aside for this kind of purchase?",
            "If you don't mind sharing, what is it?",
            "How much would you spend to solve your current problems?",
            "What would our solution need to deliver to be a sound financial investment for you?",
        ],
        &[("amount", "Budget amount", FactKind::Money)],
    )
}

fn authority() -> Criterion {
    criterion(
        "authority",
        "Authority: does this person decide, or reach who does?",
        &[
            "How does your organisation decide on purchases of products like ours?",
            "Besides yourself, who else is involved in this decision?",
            "Should they be brought into this conversation?",
            "How do you think they would feel about buying our product?",
        ],
        &[(
            "decision_maker",
            "The decision maker (name and role)",
            FactKind::Person,
        )],
    )
}

fn need() -> Criterion {
    criterion(
        "need",
        "Need: a pain our product solves",
        &[
            "Can you walk me through your current process?",
            "What problems do you run into?",
            "How long does it take to resolve them?",
            "What do those problems cost the business?",
        ],
        &[("statement", "The need in the lead's words", FactKind::Text)],
    )
}

fn timeline() -> Criterion {
    criterion(
        "timeline",
        "Timeline: how urgent, and by when",
        &[
            "How important is it for you to solve this problem?",
            "When do you want it solved?",
            "What would move this problem up your priority list?",
        ],
        &[("solve_by", "When they want it solved", FactKind::Date)],
    )
}

fn bant() -> Framework {
    Framework {
        name: "bant".into(),
        criteria: vec![budget(), authority(), need(), timeline()],
    }
}

fn champ() -> Framework {
    let mut challenges = need();
    challenges.key = "challenges".into();
    challenges.label = "Challenges: the problems they need solved".into();
    Framework {
        name: "champ".into(),
        criteria: vec![challenges, authority(), budget_as("money"), prioritization()],
    }
}

fn budget_as(key: &str) -> Criterion {
    let mut b = budget();
    b.key = key.into();
    b
}

fn prioritization() -> Criterion {
    let mut p = timeline();
    p.key = "prioritization".into();
    p.label = "Prioritization: how high the problem ranks, and by when".into();
    p
}

fn anum() -> Framework {
    Framework {
        name: "anum".into(),
        criteria: vec![
            authority(),
            need(),
            prioritization_as("urgency"),
            budget_as("money"),
        ],
    }
}

fn prioritization_as(key: &str) -> Criterion {
    let mut p = timeline();
    p.key = key.into();
    p.label = "Urgency: how soon they must act".into();
    p
}

fn meddic() -> Framework {
    Framework {
        name: "meddic".into(),
        criteria: vec![
            criterion(
                "metrics",
                "Metrics: the measurable gain they expect",
                &["What would success look like in numbers?"],
                &[("target", "The metric and its target", FactKind::Text)],
            ),
            criterion(
                "economic_buyer",
                "Economic buyer: who signs",
                &["Who has the final say on the budget?"],
                &[("person", "The economic buyer", FactKind::Person)],
            ),
            criterion(
                "decision_criteria",
                "Decision criteria: how they will compare offers",
                &["What will you compare solutions on?"],
                &[("criteria", "Their criteria", FactKind::Text)],
            ),
            criterion(
                "decision_process",
                "Decision process: the steps to a signature",
                &["What are the steps between now and a signed contract?"],
                &[("decide_by", "When they will decide", FactKind::Date)],
            ),
            criterion(
                "identify_pain",
                "Identified pain",
                &["What happens if nothing changes?"],
                &[("pain", "The pain in their words", FactKind::Text)],
            ),
            criterion(
                "champion",
                "Champion: who sells for us inside",
                &["Who inside would push for this?"],
                &[("person", "The champion", FactKind::Person)],
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(state: &mut QualificationState, key: &str, a: Answer) {
        state.criteria.entry(key.into()).or_default().answer = a;
    }

    #[test]
    fn status_follows_the_answers() {
        let f = bant();
        let mut s = f.empty_state();
        assert_eq!(f.status(&s), QualificationStatus::InProgress);
        for k in ["budget", "authority", "need", "timeline"] {
            answer(&mut s, k, Answer::Yes);
        }
        assert_eq!(f.status(&s), QualificationStatus::Qualified);
        answer(&mut s, "timeline", Answer::Partial);
        assert_eq!(f.status(&s), QualificationStatus::InProgress);
        answer(&mut s, "budget", Answer::No);
        assert_eq!(f.status(&s), QualificationStatus::Unqualified);
    }

    #[test]
    fn built_ins_are_valid_and_bant_asks_seed_000s_questions() {
        for f in Framework::built_in() {
            f.validate().unwrap();
        }
        let b = bant();
        assert_eq!(b.criteria.len(), 4);
        assert!(b.criteria[1].questions[1].contains("who else"));
    }

    #[test]
    fn facts_are_checked_by_kind() {
        let f = bant();
        let parse = |json: &str| -> QualificationState { serde_json::from_str(json).unwrap() };
        let ok = parse(
            r#"{"framework":"bant","criteria":{"budget":{"answer":"yes","facts":{"amount":{"amount":12000,"currency":"usd"}}},
               "authority":{"answer":"partial","facts":{"decision_maker":{"name":"Lan","role":"CFO"}}},
               "timeline":{"answer":"yes","facts":{"solve_by":"2027-03-01"}}}}"#,
        );
        let clean = f.check(&ok).unwrap();
        assert_eq!(
            clean.criteria["budget"].facts["amount"],
            FactValue::Money(Money {
                amount: 12000.0,
                currency: "USD".into()
            })
        );
        assert_eq!(clean.criteria["need"].answer, Answer::Unknown);
        assert_eq!(
            clean.criteria["timeline"].facts["solve_by"],
            FactValue::Text("2027-03-01T00:00:00Z".into())
        );
        let bad = parse(r#"{"framework":"bant","criteria":{"budget":{"facts":{"amount":"lots"}}}}"#);
        assert_eq!(f.check(&bad).unwrap_err().0, "criteria.budget.facts.amount");
        let unknown = parse(r#"{"framework":"bant","criteria":{"champion":{}}}"#);
        assert_eq!(f.check(&unknown).unwrap_err().0, "criteria.champion");
        let other = parse(r#"{"framework":"meddic"}"#);
        assert_eq!(f.check(&other).unwrap_err().0, "framework");
    }
}
