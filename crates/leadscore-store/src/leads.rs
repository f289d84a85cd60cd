//! Lead-level rules both adapters share: merging, patching, the search text
//! and the sort key.

use leadscore_core::{Lead, StdField};

use crate::records::{
    ConflictKey, Cursor, LeadOrder, LeadPatch, LeadQuery, LeadRecord, NewLead, StoredScore,
};

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

/// Merges a new lead's values and owner into an existing lead (upsert).
/// True if anything changed.
pub fn merge_new(lead: &mut Lead, owner: &mut Option<String>, new: &NewLead) -> bool {
    let mut changed = merge(lead, &new.lead);
    if new.owner.is_some() && new.owner != *owner {
        owner.clone_from(&new.owner);
        changed = true;
    }
    changed
}

/// Where a new lead goes, given the existing leads its id and its e-mail name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Neither is taken: a new lead.
    New,
    /// One existing lead (found by `by`).
    Existing { id: String, by: ConflictKey },
    /// The id and the e-mail belong to two different leads: a conflict on
    /// the e-mail's lead, whatever the conflict policy.
    Clash { existing: String },
}

impl Target {
    pub fn of(by_id: Option<String>, by_email: Option<String>) -> Target {
        match (by_id, by_email) {
            (None, None) => Target::New,
            (Some(a), Some(b)) if a != b => Target::Clash { existing: b },
            (Some(id), _) => Target::Existing {
                id,
                by: ConflictKey::Id,
            },
            (None, Some(id)) => Target::Existing {
                id,
                by: ConflictKey::Email,
            },
        }
    }
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

/// A lead from its stored columns: the standard fields in `StdField::ALL`
/// order, and the attributes' JSON.
pub fn lead_from_columns(values: [Option<String>; 15], attributes: Option<&str>) -> Lead {
    let mut lead = Lead::default();
    for (f, v) in StdField::ALL.into_iter().zip(values) {
        if let Some(v) = v {
            lead.set(f, v);
        }
    }
    set_attributes_json(&mut lead, attributes);
    lead
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

/// A value bound to a lead listing query.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Text(String),
    Int(i64),
    Real(f64),
    Bool(bool),
}

/// A lead listing as SQL over the `leads` table (same columns in both
/// adapters): filters, keyset cursor, order and the page size. Rows are read
/// with `LIMIT limit + 1` so [`ListSql::page`] can tell whether a next page exists.
#[derive(Debug, Clone, PartialEq)]
pub struct ListSql {
    /// `WHERE ...`, or empty.
    pub filter: String,
    /// The values of placeholders 1, 2, ... in order.
    pub args: Vec<SqlValue>,
    pub order: &'static str,
    pub limit: usize,
}

impl ListSql {
    /// `mark` is the placeholder sign: `?` (SQLite) or `$` (PostgreSQL).
    pub fn new(q: &LeadQuery, mark: char) -> ListSql {
        let mut conds: Vec<String> = Vec::new();
        let mut args: Vec<SqlValue> = Vec::new();
        let mut arg = |v: SqlValue| {
            args.push(v);
            format!("{mark}{}", args.len())
        };
        if let Some(b) = &q.band {
            conds.push(format!("band = {}", arg(SqlValue::Text(b.clone()))));
        }
        if let Some(g) = &q.grade {
            conds.push(format!("grade = {}", arg(SqlValue::Text(g.clone()))));
        }
        if let Some(m) = q.mql {
            conds.push(format!("mql = {}", arg(SqlValue::Bool(m))));
        }
        if let Some(o) = &q.owner {
            conds.push(format!("owner = {}", arg(SqlValue::Text(o.clone()))));
        }
        if let Some(r) = &q.rating {
            conds.push(format!(
                "id IN (SELECT lead FROM workflow WHERE rating = {})",
                arg(SqlValue::Text(r.clone()))
            ));
        }
        if let Some(st) = &q.status {
            let a = arg(SqlValue::Text(st.clone()));
            conds.push(format!(
                "COALESCE((SELECT w.status FROM workflow w WHERE w.lead = leads.id), 'new') = {a}"
            ));
        }
        if let Some(pairs) = &q.flagged {
            let mut alts = Vec::new();
            for (rating, band, mql) in pairs {
                let (r, b) = (
                    arg(SqlValue::Text(rating.clone())),
                    arg(SqlValue::Text(band.clone())),
                );
                let m = arg(SqlValue::Bool(*mql));
                alts.push(format!(
                    "(w.rating = {r} AND leads.band = {b} AND COALESCE(leads.mql, {m}) = {m})"
                ));
            }
            if alts.is_empty() {
                conds.push("1 = 0".into());
            } else {
                conds.push(format!(
                    "EXISTS (SELECT 1 FROM workflow w WHERE w.lead = leads.id AND ({}))",
                    alts.join(" OR ")
                ));
            }
        }
        if let Some(t) = q.text.as_deref().filter(|t| !t.trim().is_empty()) {
            conds.push(format!(
                "search LIKE {} ESCAPE '\\'",
                arg(SqlValue::Text(like_pattern(t)))
            ));
        }
        let order = match q.order {
            LeadOrder::Score => {
                if let Some(Cursor::Score { score, id }) = &q.after {
                    let r = arg(SqlValue::Real(score.unwrap_or(UNSCORED_RANK)));
                    let i = arg(SqlValue::Text(id.clone()));
                    conds.push(format!("(rank < {r} OR (rank = {r} AND id > {i}))"));
                }
                "rank DESC, id"
            }
            LeadOrder::Created => {
                if let Some(Cursor::Created { at, id }) = &q.after {
                    let a = arg(SqlValue::Int(*at));
                    let i = arg(SqlValue::Text(id.clone()));
                    conds.push(format!("(created_at < {a} OR (created_at = {a} AND id > {i}))"));
                }
                "created_at DESC, id"
            }
        };
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        ListSql {
            filter,
            args,
            order,
            limit: q.limit.clamp(1, 1000),
        }
    }

    /// The query, selecting `columns`.
    pub fn sql(&self, columns: &str) -> String {
        format!(
            "SELECT {columns} FROM leads {} ORDER BY {} LIMIT {}",
            self.filter,
            self.order,
            self.limit + 1
        )
    }

    /// The page out of the rows read, and the cursor of the next page.
    pub fn page(&self, mut leads: Vec<LeadRecord>, order: LeadOrder) -> (Vec<LeadRecord>, Option<Cursor>) {
        let next = if leads.len() > self.limit {
            leads.truncate(self.limit);
            leads.last().map(|l| Cursor::after(order, l))
        } else {
            None
        };
        (leads, next)
    }
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
