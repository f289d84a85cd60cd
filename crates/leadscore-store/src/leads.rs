//! Lead-level rules both adapters share: merging, patching, the search text
//! and the sort key.

use leadscore_core::{Lead, StdField};

use crate::records::{LeadPatch, StoredScore};

/// Copies every value `new` has (standard fields other than the id, and
/// attributes) onto `existing`; values `new` lacks are kept. True if anything changed.
pub fn merge(existing: &mut Lead, new: &Lead) -> bool {
    let mut changed = false;
    for f in StdField::ALL.into_iter().skip(1) {
        if let Some(v) = new.get(f)
            && existing.get(f) != Some(v)
        {
            existing.set(f, v);
            changed = true;
        }
    }
    for (k, v) in new.attributes() {
        if existing.attribute(k) != Some(v) {
            existing.set_attribute(k, v);
            changed = true;
        }
    }
    changed
}

/// Applies a patch to a lead and its owner. True if anything changed.
pub fn apply_patch(lead: &mut Lead, owner: &mut Option<String>, patch: &LeadPatch) -> bool {
    let before = (lead.clone(), owner.clone());
    for (f, v) in &patch.fields {
        lead.set(*f, v.clone().unwrap_or_default());
    }
    for (k, v) in &patch.attributes {
        lead.set_attribute(k.clone(), v.clone().unwrap_or_default());
    }
    if let Some(o) = &patch.owner {
        *owner = o.clone().filter(|o| !o.trim().is_empty());
    }
    before != (lead.clone(), owner.clone())
}

/// What the text search looks in: name, company and e-mail, lower-cased.
pub fn search_text(lead: &Lead) -> String {
    [
        StdField::FirstName,
        StdField::LastName,
        StdField::Company,
        StdField::Email,
    ]
    .into_iter()
    .filter_map(|f| lead.get(f))
    .collect::<Vec<_>>()
    .join(" ")
    .to_lowercase()
}

/// The sort key of "best score first": the score, or below every score when
/// the lead has none yet.
pub fn rank(score: Option<&StoredScore>) -> f64 {
    score.map_or(UNSCORED_RANK, |s| s.score)
}

pub const UNSCORED_RANK: f64 = -1e300;

/// The attributes as stored: a JSON object, or `None` when there are none.
pub fn attributes_json(lead: &Lead) -> Option<String> {
    let map: serde_json::Map<String, serde_json::Value> = lead
        .attributes()
        .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v.to_owned())))
        .collect();
    (!map.is_empty()).then(|| serde_json::Value::Object(map).to_string())
}

/// Sets a lead's attributes from their stored JSON form.
pub fn set_attributes_json(lead: &mut Lead, json: Option<&str>) {
    let Some(json) = json else { return };
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str(json) {
        for (k, v) in map {
            if let serde_json::Value::String(v) = v {
                lead.set_attribute(k, v);
            }
        }
    }
}

/// The text search pattern for SQL `LIKE`: lower-cased, wildcards escaped.
pub fn like_pattern(text: &str) -> String {
    let mut p = String::from("%");
    for c in text.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_what_the_new_values_lack() {
        let mut a = Lead::new("L1")
            .with(StdField::Company, "Acme")
            .with(StdField::Industry, "Travel");
        let b = Lead::new("other")
            .with(StdField::Industry, "Software")
            .with_attribute("plan", "pro");
        assert!(merge(&mut a, &b));
        assert_eq!(a.id(), "L1");
        assert_eq!(a.get(StdField::Company), Some("Acme"));
        assert_eq!(a.get(StdField::Industry), Some("Software"));
        assert_eq!(a.attribute("plan"), Some("pro"));
        assert!(!merge(&mut a, &b));
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern(" Ac%me "), "%ac\\%me%");
    }
}
