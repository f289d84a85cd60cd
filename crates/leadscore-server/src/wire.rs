//! The JSON the API speaks: leads in and out, events in. Bodies are read as
//! JSON values and checked field by field, so every error names its field.

use std::collections::BTreeMap;

use leadscore_core::{Event, Lead, StdField, Timestamp};
use leadscore_store::{LeadPatch, LeadRecord, NewLead};
use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// Standard fields whose values must be numbers.
const NUMERIC: [StdField; 2] = [StdField::Employees, StdField::AnnualRevenue];

/// A standard field's value from JSON: strings as given, numbers and booleans
/// in their JSON spelling, null as blank. Checks numbers and booleans.
fn field_value(field: StdField, v: &Value) -> Result<Option<String>, ApiError> {
    let name = field.name();
    let text = match v {
        Value::Null => return Ok(None),
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(_) | Value::Object(_) => {
            return Err(ApiError::invalid(
                name,
                format!("`{name}` must be a string or a number"),
            ));
        }
    };
    if text.is_empty() {
        return Ok(None);
    }
    check_std_text(field, &text)?;
    Ok(Some(text))
}

/// Checks a standard field's (non-blank) text, however it arrived (JSON or
/// CSV): no control characters, numbers where numbers belong, a boolean for
/// `is_customer`, at most 1,000 characters.
pub fn check_std_text(field: StdField, text: &str) -> Result<(), ApiError> {
    let name = field.name();
    no_control(name, text)?;
    if NUMERIC.contains(&field) && leadscore_core::fit::parse_number(text).is_none() {
        return Err(ApiError::invalid(name, format!("`{name}` must be a number")));
    }
    if field == StdField::IsCustomer && leadscore_core::fit::parse_bool(text).is_none() {
        return Err(ApiError::invalid(name, format!("`{name}` must be true or false")));
    }
    if text.len() > 1000 {
        return Err(ApiError::invalid(
            name,
            format!("`{name}` is longer than 1,000 characters"),
        ));
    }
    Ok(())
}

/// Checks a rep's free text (a note, a reason): no control characters but
/// tabs and line ends, at most 10,000 characters.
pub fn check_note(field: &str, text: &str) -> Result<(), ApiError> {
    no_control(field, text)?;
    if text.chars().count() > 10_000 {
        return Err(ApiError::invalid(
            field,
            format!("`{field}` is longer than 10,000 characters"),
        ));
    }
    Ok(())
}

/// Control characters (NUL above all, which PostgreSQL cannot store) are
/// refused in every text a lead or event carries; tabs and line ends are fine.
pub fn no_control(field: &str, text: &str) -> Result<(), ApiError> {
    match text
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        Some(c) => Err(ApiError::invalid(
            field,
            format!("`{field}` holds the control character U+{:04X}", u32::from(c)),
        )),
        None => Ok(()),
    }
}

fn attribute_value(name: &str, v: &Value) -> Result<Option<String>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => {
            no_control(&format!("attributes.{name}"), s)?;
            Ok(Some(s.clone()))
        }
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        _ => Err(ApiError::invalid(
            format!("attributes.{name}"),
            format!("attribute `{name}` must be a string, number or boolean"),
        )),
    }
}

fn object<'a>(body: &'a Value, what: &str) -> Result<&'a Map<String, Value>, ApiError> {
    body.as_object().ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("{what} must be a JSON object"),
        )
    })
}

fn owner_value(v: &Value) -> Result<Option<String>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => {
            no_control("owner", s)?;
            Ok(Some(s.trim().to_owned()))
        }
        _ => Err(ApiError::invalid(
            "owner",
            "`owner` must be a user name (a string) or null",
        )),
    }
}

fn unknown(key: &str) -> ApiError {
    ApiError::invalid(
        key,
        format!(
            "unknown field `{key}`; the standard fields are {}, custom fields go in `attributes`",
            std_names()
        ),
    )
}

fn std_names() -> String {
    StdField::ALL
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `POST /leads` body.
pub fn new_lead(body: &Value) -> Result<NewLead, ApiError> {
    let map = object(body, "a lead")?;
    let mut lead = Lead::default();
    let mut owner = None;
    for (k, v) in map {
        if let Some(f) = StdField::from_name(k).filter(|_| k == k.trim()) {
            if let Some(text) = field_value(f, v)? {
                if f == StdField::Id && text.len() > 200 {
                    return Err(ApiError::invalid("id", "`id` is longer than 200 characters"));
                }
                lead.set(f, text);
            }
        } else if k == "attributes" {
            for (name, value) in attributes(v)? {
                if let Some(value) = value {
                    lead.set_attribute(name, value);
                }
            }
        } else if k == "owner" {
            owner = owner_value(v)?;
        } else {
            return Err(unknown(k));
        }
    }
    Ok(NewLead { lead, owner })
}

fn attributes(v: &Value) -> Result<Vec<(String, Option<String>)>, ApiError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Object(m) => m
            .iter()
            .map(|(name, value)| Ok((name.clone(), attribute_value(name, value)?)))
            .collect(),
        _ => Err(ApiError::invalid(
            "attributes",
            "`attributes` must be an object of custom fields",
        )),
    }
}

/// A `PATCH /leads/{id}` body: fields given are set (null clears them).
pub fn lead_patch(body: &Value) -> Result<LeadPatch, ApiError> {
    let map = object(body, "a lead patch")?;
    let mut patch = LeadPatch::default();
    for (k, v) in map {
        match StdField::from_name(k) {
            Some(StdField::Id) => return Err(ApiError::invalid("id", "a lead's `id` cannot be changed")),
            Some(f) => patch.fields.push((f, field_value(f, v)?)),
            None if k == "attributes" => patch.attributes = attributes(v)?,
            None if k == "owner" => patch.owner = Some(owner_value(v)?),
            None => return Err(unknown(k)),
        }
    }
    Ok(patch)
}

/// A lead as the API shows it.
pub fn lead_json(r: &LeadRecord) -> Value {
    let mut m = Map::new();
    for f in StdField::ALL {
        let v = match r.lead.get(f) {
            None => Value::Null,
            Some(text) if NUMERIC.contains(&f) => number_or_text(text),
            Some(text) if f == StdField::IsCustomer => leadscore_core::fit::parse_bool(text)
                .map(Value::Bool)
                .unwrap_or_else(|| Value::String(text.to_owned())),
            Some(text) => Value::String(text.to_owned()),
        };
        m.insert(f.name().to_owned(), v);
    }
    let attrs: Map<String, Value> = r
        .lead
        .attributes()
        .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
        .collect();
    m.insert("attributes".into(), Value::Object(attrs));
    m.insert("owner".into(), json!(r.owner));
    m.insert("created_at".into(), json!(r.created_at.to_string()));
    m.insert("updated_at".into(), json!(r.updated_at.to_string()));
    m.insert("score".into(), json!(r.score));
    Value::Object(m)
}

fn number_or_text(text: &str) -> Value {
    if let Ok(i) = text.parse::<i64>() {
        return json!(i);
    }
    match leadscore_core::fit::parse_number(text).and_then(serde_json::Number::from_f64) {
        Some(n) => Value::Number(n),
        None => Value::String(text.to_owned()),
    }
}

/// The event property naming the rep who logged an activity; only the
/// activities endpoint sets it.
pub const LOGGED_BY: &str = "logged_by";

/// One event from JSON, or why it is not one (with the field at fault).
pub fn event(v: &Value) -> Result<Event, ApiError> {
    let map = object(v, "an event")?;
    let text = |key: &str| -> Result<String, ApiError> {
        match map.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => {
                no_control(key, s)?;
                if s.len() > 200 {
                    Err(ApiError::invalid(
                        key,
                        format!("`{key}` is longer than 200 characters"),
                    ))
                } else {
                    Ok(s.clone())
                }
            }
            Some(Value::Number(n)) if key != "occurred_at" => Ok(n.to_string()),
            None | Some(Value::Null) => Err(ApiError::invalid(key, format!("`{key}` is missing"))),
            Some(_) => Err(ApiError::invalid(key, format!("`{key}` must be a string"))),
        }
    };
    for k in map.keys() {
        if !matches!(k.as_str(), "id" | "lead" | "type" | "occurred_at" | "properties") {
            return Err(ApiError::invalid(
                k,
                format!("unknown field `{k}`; an event has id, lead, type, occurred_at and properties"),
            ));
        }
    }
    let (id, lead, kind) = (text("id")?, text("lead")?, text("type")?);
    let at = text("occurred_at")?;
    let occurred_at = Timestamp::parse(&at).map_err(|e| ApiError::invalid("occurred_at", e.to_string()))?;
    let mut properties = BTreeMap::new();
    match map.get("properties") {
        None | Some(Value::Null) => {}
        Some(Value::Object(p)) => {
            for (k, v) in p {
                if k == LOGGED_BY {
                    return Err(ApiError::invalid(
                        format!("properties.{k}"),
                        format!(
                            "`{k}` is set by leadscore on activities reps log (POST /leads/{{id}}/activities)"
                        ),
                    ));
                }
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => continue,
                    Value::Number(_) | Value::Bool(_) => v.to_string(),
                    _ => {
                        return Err(ApiError::invalid(
                            format!("properties.{k}"),
                            format!("property `{k}` must be a string, number or boolean"),
                        ));
                    }
                };
                properties.insert(k.clone(), v);
            }
        }
        Some(_) => return Err(ApiError::invalid("properties", "`properties` must be an object")),
    }
    Ok(Event {
        id,
        lead,
        kind,
        occurred_at,
        properties,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_field(r: Result<impl std::fmt::Debug, ApiError>) -> Option<String> {
        r.unwrap_err().field
    }

    #[test]
    fn leads_are_checked_field_by_field() {
        let ok = new_lead(&json!({"id": "L1", "employees": 120, "is_customer": false, "attributes": {"plan": "pro"}, "owner": "mai"})).unwrap();
        assert_eq!(ok.lead.get(StdField::Employees), Some("120"));
        assert_eq!(ok.lead.attribute("plan"), Some("pro"));
        assert_eq!(ok.owner.as_deref(), Some("mai"));
        assert_eq!(
            err_field(new_lead(&json!({"employees": "many"}))).as_deref(),
            Some("employees")
        );
        assert_eq!(
            err_field(new_lead(&json!({"is_customer": "maybe"}))).as_deref(),
            Some("is_customer")
        );
        assert_eq!(
            err_field(new_lead(&json!({"colour": "red"}))).as_deref(),
            Some("colour")
        );
        assert_eq!(
            err_field(new_lead(&json!({"company": ["a"]}))).as_deref(),
            Some("company")
        );
        assert_eq!(
            err_field(new_lead(&json!({"attributes": {"x": {"y": 1}}}))).as_deref(),
            Some("attributes.x")
        );
        assert!(new_lead(&json!([1])).is_err());
        assert_eq!(
            err_field(new_lead(&json!({"first_name": "a\0b"}))).as_deref(),
            Some("first_name")
        );
        assert_eq!(
            err_field(new_lead(&json!({"owner": "m\0"}))).as_deref(),
            Some("owner")
        );
        let nul_id = json!({"id": "e\0", "lead": "L1", "type": "x", "occurred_at": "2026-10-01T00:00:00Z"});
        assert_eq!(err_field(event(&nul_id)).as_deref(), Some("id"));
    }

    #[test]
    fn events_are_checked_field_by_field() {
        let e = event(&json!({"id": "e1", "lead": "L1", "type": "page_viewed", "occurred_at": "2026-10-01T00:00:00Z", "properties": {"path": "/pricing", "n": 2}})).unwrap();
        assert_eq!(e.properties.get("n").map(String::as_str), Some("2"));
        let bad = |v: Value| err_field(event(&v)).unwrap();
        assert_eq!(
            bad(json!({"lead": "L1", "type": "x", "occurred_at": "2026-10-01T00:00:00Z"})),
            "id"
        );
        assert_eq!(
            bad(json!({"id": "e", "lead": "L1", "type": "x", "occurred_at": "yesterday"})),
            "occurred_at"
        );
        assert_eq!(
            bad(
                json!({"id": "e", "lead": "L1", "type": "x", "occurred_at": "2026-10-01T00:00:00Z", "extra": 1})
            ),
            "extra"
        );
        assert_eq!(
            bad(
                json!({"id": "e", "lead": "L1", "type": 5, "occurred_at": "2026-10-01T00:00:00Z", "properties": []})
            ),
            "properties"
        );
    }
}
