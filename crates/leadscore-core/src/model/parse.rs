//! TOML -> validated [`ScoringModel`]. Every refusal names the file, the rule
//! (where there is one) and what is wrong.

use std::collections::HashSet;

use regex::Regex;
use serde::Deserialize;

use super::{Band, Grade, GradeBounds, ModelError, MqlRule, ScoringModel};
use crate::behavior::BehaviorRule;
use crate::fit::{Bound, Check, Condition, FitRule, Operand};
use crate::lead::{FieldRef, StdField};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    name: Option<String>,
    description: Option<String>,
    score: Option<RawScore>,
    #[serde(default)]
    band: Vec<RawBand>,
    mql: Option<RawMql>,
    grade: Option<RawGrade>,
    #[serde(default)]
    fit: Vec<toml::Spanned<toml::Table>>,
    #[serde(default)]
    behavior: Vec<toml::Spanned<toml::Table>>,
    applies_to: Option<toml::Spanned<toml::Table>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScore {
    min: Option<f64>,
    max: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBand {
    name: String,
    from: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMql {
    threshold: f64,
    min_grade: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrade {
    #[serde(rename = "A")]
    a: f64,
    #[serde(rename = "B")]
    b: f64,
    #[serde(rename = "C")]
    c: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFit {
    id: String,
    label: Option<String>,
    field: String,
    points: f64,
    #[serde(default)]
    negate: bool,
    equals: Option<toml::Value>,
    #[serde(rename = "in")]
    in_: Option<Vec<toml::Value>>,
    matches: Option<String>,
    gte: Option<f64>,
    lte: Option<f64>,
    gt: Option<f64>,
    lt: Option<f64>,
    exists: Option<bool>,
    is: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBehavior {
    id: String,
    label: Option<String>,
    events: Vec<String>,
    #[serde(rename = "where", default)]
    filter: toml::Table,
    points: f64,
    max_events: Option<i64>,
    cap: Option<f64>,
    half_life_days: Option<f64>,
    window_days: Option<f64>,
}

struct Ctx<'a> {
    source: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(&self, rule: Option<&str>, message: impl Into<String>) -> ModelError {
        ModelError {
            source_name: self.source.to_owned(),
            line: None,
            column: None,
            rule: rule.map(str::to_owned),
            message: message.into(),
        }
    }

    /// The 1-based line of a byte offset in the model text.
    fn line_of(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())].matches('\n').count() + 1
    }
}

/// Deserializes a rule table, naming the key a type error is about.
fn rule_from<T: serde::de::DeserializeOwned>(table: toml::Table) -> Result<T, String> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().message().to_owned();
        if path == "." || message.starts_with("unknown field") || message.starts_with("missing field") {
            message
        } else {
            format!("`{path}`: {message}")
        }
    })
}

pub(super) fn parse(text: &str, source: &str) -> Result<ScoringModel, ModelError> {
    let cx = Ctx { source, text };
    let raw: RawModel = toml::from_str(text).map_err(|e| {
        let mut err = cx.err(None, e.message().to_owned());
        if let Some(span) = e.span() {
            let before = &text[..span.start.min(text.len())];
            err.line = Some(cx.line_of(span.start));
            err.column = Some(before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1);
        }
        err
    })?;

    let name = raw.name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    let name = name.ok_or_else(|| cx.err(None, "`name` is required (a unique name for this model)"))?;
    let (min, max) = raw
        .score
        .map_or((0.0, 100.0), |s| (s.min.unwrap_or(0.0), s.max.unwrap_or(100.0)));
    if !(min.is_finite() && max.is_finite() && min < max) {
        return Err(cx.err(None, format!("[score] min ({min}) must be below max ({max})")));
    }

    let bands = bands(&cx, raw.band, min, max)?;
    let grades = match raw.grade {
        None => None,
        Some(g) if g.a > g.b && g.b > g.c => Some(GradeBounds {
            a: g.a,
            b: g.b,
            c: g.c,
        }),
        Some(g) => {
            return Err(cx.err(
                None,
                format!(
                    "[grade] bounds must descend strictly, A > B > C (got A = {}, B = {}, C = {})",
                    g.a, g.b, g.c
                ),
            ));
        }
    };
    let mql = match raw.mql {
        None => None,
        Some(m) => {
            if !(min..=max).contains(&m.threshold) {
                return Err(cx.err(
                    None,
                    format!(
                        "[mql] threshold {} is outside the score range {min}..{max}",
                        m.threshold
                    ),
                ));
            }
            let min_grade = match m.min_grade.as_deref() {
                None => None,
                Some(g) => Some(Grade::parse(g).ok_or_else(|| {
                    cx.err(None, format!("[mql] min_grade `{g}` is not one of A, B, C, D"))
                })?),
            };
            Some(MqlRule {
                threshold: m.threshold,
                min_grade,
            })
        }
    };

    let mut ids = HashSet::new();
    let mut unique = |id: &str| -> Result<(), ModelError> {
        if id.trim().is_empty() {
            return Err(cx.err(None, "a rule has an empty `id`"));
        }
        if !ids.insert(id.to_owned()) {
            return Err(cx.err(
                Some(id),
                "duplicate rule id (ids must be unique across fit and behavior rules)",
            ));
        }
        Ok(())
    };
    let mut fit = Vec::with_capacity(raw.fit.len());
    for (i, table) in raw.fit.into_iter().enumerate() {
        let line = cx.line_of(table.span().start);
        let rule = fit_rule(&cx, table.into_inner(), i).map_err(|e| ModelError {
            line: Some(line),
            ..e
        })?;
        unique(&rule.id)?;
        fit.push(rule);
    }
    let mut behavior = Vec::with_capacity(raw.behavior.len());
    for (i, table) in raw.behavior.into_iter().enumerate() {
        let line = cx.line_of(table.span().start);
        let rule = behavior_rule(&cx, table.into_inner(), i).map_err(|e| ModelError {
            line: Some(line),
            ..e
        })?;
        unique(&rule.id)?;
        behavior.push(rule);
    }
    if behavior.len() > usize::from(u16::MAX) {
        return Err(cx.err(None, "too many behavior rules (at most 65535)"));
    }

    let applies_to = match raw.applies_to {
        None => None,
        Some(table) => {
            let line = cx.line_of(table.span().start);
            let mut table = table.into_inner();
            for key in ["id", "points", "label"] {
                if table.contains_key(key) {
                    return Err(ModelError {
                        line: Some(line),
                        ..cx.err(
                            Some("applies_to"),
                            format!("`{key}` does not belong in [applies_to] (a field and one operator, as in a fit rule)"),
                        )
                    });
                }
            }
            table.insert("id".into(), toml::Value::String("applies_to".into()));
            table.insert("points".into(), toml::Value::Float(0.0));
            Some(fit_rule(&cx, table, 0).map_err(|e| ModelError {
                line: Some(line),
                ..e
            })?)
        }
    };

    let mut by_event_type = super::EventIndex::default();
    for (i, rule) in behavior.iter().enumerate() {
        for ty in &rule.events {
            by_event_type.add(ty, i as u16);
        }
    }

    Ok(ScoringModel {
        name,
        description: raw.description,
        min,
        max,
        bands,
        mql,
        grades,
        fit,
        behavior,
        applies_to,
        by_event_type,
    })
}

fn bands(cx: &Ctx, raw: Vec<RawBand>, min: f64, max: f64) -> Result<Vec<Band>, ModelError> {
    if raw.is_empty() {
        return Err(cx.err(
            None,
            "at least one [[band]] is required, the first one starting at score.min",
        ));
    }
    if raw[0].from != min {
        return Err(cx.err(
            None,
            format!(
                "the first band `{}` starts at {}, but bands must start at score.min ({min})",
                raw[0].name, raw[0].from
            ),
        ));
    }
    let mut names = HashSet::new();
    for (i, b) in raw.iter().enumerate() {
        if b.name.trim().is_empty() {
            return Err(cx.err(None, format!("band #{} has an empty name", i + 1)));
        }
        if !names.insert(b.name.as_str()) {
            return Err(cx.err(None, format!("band `{}` is declared twice", b.name)));
        }
        if !b.from.is_finite() {
            return Err(cx.err(None, format!("band `{}` must start at a finite number", b.name)));
        }
        if b.from > max {
            return Err(cx.err(
                None,
                format!(
                    "band `{}` starts at {}, above score.max ({max}): no lead could reach it",
                    b.name, b.from
                ),
            ));
        }
        if i > 0 && b.from <= raw[i - 1].from {
            return Err(cx.err(
                None,
                format!(
                    "bands must be strictly ascending: `{}` ({}) does not start above `{}` ({})",
                    b.name,
                    b.from,
                    raw[i - 1].name,
                    raw[i - 1].from
                ),
            ));
        }
    }
    Ok(raw
        .into_iter()
        .map(|b| Band {
            name: b.name,
            from: b.from,
        })
        .collect())
}

/// The rule's id as written (for error messages before the rule is parsed).
fn declared_id(table: &toml::Table, kind: &str, index: usize) -> String {
    match table.get("id") {
        Some(toml::Value::String(id)) if !id.trim().is_empty() => id.clone(),
        _ => format!("{kind} #{}", index + 1),
    }
}

fn fit_rule(cx: &Ctx, table: toml::Table, index: usize) -> Result<FitRule, ModelError> {
    let id = declared_id(&table, "fit", index);
    let raw: RawFit = rule_from(table).map_err(|m| cx.err(Some(&id), m))?;
    let e = |msg: String| cx.err(Some(&id), msg);
    if !raw.points.is_finite() {
        return Err(e("`points` must be a finite number".into()));
    }
    if raw.field.trim().is_empty() {
        return Err(e("`field` is empty".into()));
    }
    let field = FieldRef::parse(&raw.field);

    let mut given: Vec<&str> = Vec::new();
    let mut note = |present: bool, name: &'static str| {
        if present {
            given.push(name)
        }
    };
    note(raw.equals.is_some(), "equals");
    note(raw.in_.is_some(), "in");
    note(raw.matches.is_some(), "matches");
    note(
        raw.gte.is_some() || raw.gt.is_some() || raw.lte.is_some() || raw.lt.is_some(),
        "gte/gt/lte/lt",
    );
    note(raw.exists.is_some(), "exists");
    note(raw.is.is_some(), "is");
    let condition = match given.as_slice() {
        [] => {
            return Err(e(
                "no operator: give exactly one of equals, in, matches, gte/gt/lte/lt, exists, is".into(),
            ));
        }
        [_] => condition(&raw, &field).map_err(e)?,
        many => {
            return Err(e(format!(
                "two operators on one rule ({}); give exactly one",
                many.join(", ")
            )));
        }
    };
    Ok(FitRule {
        id: raw.id,
        label: raw.label,
        field,
        condition,
        negate: raw.negate,
        points: raw.points,
    })
}

fn condition(raw: &RawFit, field: &FieldRef) -> Result<Condition, String> {
    if let Some(v) = &raw.equals {
        return Ok(Condition::Equals(operand(v)?));
    }
    if let Some(list) = &raw.in_ {
        if list.is_empty() {
            return Err("`in` is an empty list".into());
        }
        return list
            .iter()
            .map(operand)
            .collect::<Result<_, _>>()
            .map(Condition::In);
    }
    if let Some(re) = &raw.matches {
        return Regex::new(re)
            .map(Condition::Matches)
            .map_err(|err| format!("`matches` is not a valid regular expression: {err}"));
    }
    if let Some(exists) = raw.exists {
        return if exists {
            Ok(Condition::Exists)
        } else {
            Err("`exists = false` is not supported; write `exists = true` with `negate = true`".into())
        };
    }
    if let Some(name) = &raw.is {
        let check = Check::parse(name).ok_or_else(|| {
            format!(
                "`is = \"{name}\"` is not a built-in check (one of: {})",
                Check::NAMES.join(", ")
            )
        })?;
        if check == Check::FullName && *field != FieldRef::Std(StdField::FirstName) {
            return Err("`is = \"full_name\"` works on `field = \"first_name\"`".into());
        }
        return Ok(Condition::Is(check));
    }
    let bound = |v: Option<f64>, inclusive| v.map(|value| Bound { value, inclusive });
    if raw.gte.is_some() && raw.gt.is_some() || raw.lte.is_some() && raw.lt.is_some() {
        return Err("give at most one lower bound (gte or gt) and one upper bound (lte or lt)".into());
    }
    let lower = bound(raw.gte, true).or(bound(raw.gt, false));
    let upper = bound(raw.lte, true).or(bound(raw.lt, false));
    for b in [lower, upper].into_iter().flatten() {
        if !b.value.is_finite() {
            return Err("range bounds must be finite numbers".into());
        }
    }
    if let (Some(l), Some(u)) = (lower, upper)
        && (l.value > u.value || (l.value == u.value && !(l.inclusive && u.inclusive)))
    {
        return Err(format!(
            "the range is empty (lower bound {} is not below upper bound {})",
            l.value, u.value
        ));
    }
    Ok(Condition::Range { lower, upper })
}

fn operand(v: &toml::Value) -> Result<Operand, String> {
    match v {
        toml::Value::String(s) => Ok(Operand::Text(s.trim().to_lowercase())),
        toml::Value::Integer(i) => Ok(Operand::Number(*i as f64)),
        toml::Value::Float(f) if f.is_finite() => Ok(Operand::Number(*f)),
        toml::Value::Boolean(b) => Ok(Operand::Bool(*b)),
        other => Err(format!(
            "cannot compare a field with {} `{other}`; use a string, number or boolean",
            other.type_str()
        )),
    }
}

fn behavior_rule(cx: &Ctx, table: toml::Table, index: usize) -> Result<BehaviorRule, ModelError> {
    let id = declared_id(&table, "behavior", index);
    let raw: RawBehavior = rule_from(table).map_err(|m| cx.err(Some(&id), m))?;
    let e = |msg: &str| cx.err(Some(&id), msg.to_owned());
    if !raw.points.is_finite() {
        return Err(e("`points` must be a finite number"));
    }
    if raw.events.is_empty() || raw.events.iter().any(|t| t.trim().is_empty()) {
        return Err(e("`events` must list at least one event type, none blank"));
    }
    let max_events = match raw.max_events {
        None => None,
        Some(n) if (1..=i64::from(u32::MAX)).contains(&n) => Some(n as u32),
        Some(n) => {
            return Err(cx.err(
                Some(&id),
                format!("`max_events` must be a whole number of at least 1 (got {n})"),
            ));
        }
    };
    let positive = |v: Option<f64>, name: &str| match v {
        Some(x) if !(x.is_finite() && x > 0.0) => Err(cx.err(
            Some(&id),
            format!("`{name}` must be a positive number of days (got {x})"),
        )),
        _ => Ok(v),
    };
    let half_life_days = positive(raw.half_life_days, "half_life_days")?;
    let window_days = positive(raw.window_days, "window_days")?;
    if let Some(cap) = raw.cap
        && !(cap.is_finite() && cap >= 0.0)
    {
        return Err(cx.err(
            Some(&id),
            format!(
                "`cap` must be a number of at least 0 (got {cap}); it bounds the rule total on both sides"
            ),
        ));
    }
    let mut filter = Vec::new();
    for (k, v) in raw.filter {
        let v = match v {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(cx.err(
                    Some(&id),
                    format!(
                        "`where.{k}` must be a string, number or boolean, not {}",
                        other.type_str()
                    ),
                ));
            }
        };
        filter.push((k, v));
    }
    Ok(BehaviorRule {
        id: raw.id,
        label: raw.label,
        events: raw.events.into_iter().map(|t| t.trim().to_owned()).collect(),
        filter,
        points: raw.points,
        max_events,
        cap: raw.cap,
        half_life_days,
        window_days,
    })
}

/// One condition in the fit-rule syntax (a `field`, exactly one operator,
/// optional `negate`), outside a model: e.g. a trigger's condition in the
/// service's settings. `what` names it in messages. The error is the message
/// alone (the caller says where the condition was).
pub fn condition_rule(table: toml::Table, what: &str) -> Result<FitRule, String> {
    for key in ["id", "points", "label"] {
        if table.contains_key(key) {
            return Err(format!(
                "`{key}` does not belong in a condition (a field and one operator, as in a fit rule)"
            ));
        }
    }
    let mut table = table;
    table.insert("id".into(), toml::Value::String(what.to_owned()));
    table.insert("points".into(), toml::Value::Float(0.0));
    let cx = Ctx {
        source: what,
        text: "",
    };
    fit_rule(&cx, table, 0).map_err(|e| e.message)
}
