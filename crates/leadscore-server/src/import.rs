//! CSV import and export of leads. Imports understand leadscore's standard
//! columns and the export headers of common CRMs (HubSpot, Salesforce); any
//! other column becomes a custom attribute. Shared by the API and the CLI.

use std::sync::Arc;

use leadscore_core::{Lead, StdField};
use leadscore_store::{LeadOrder, LeadQuery, LeadRecord, LeadWrite, NewLead, OnConflict, Store};
use serde::Serialize;

use crate::wire::{check_std_text, no_control};

/// Where an imported column goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    Std(StdField),
    Owner,
    /// Historical outcomes: `outcome` (won / lost), `outcome_date`,
    /// `outcome_value`, `outcome_reason`.
    Outcome(OutcomeColumn),
    Attribute(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeColumn {
    Result,
    Date,
    Value,
    Reason,
}

/// A historical outcome read from an import row.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedOutcome {
    pub won: bool,
    /// `None`: the time of the import.
    pub at: Option<leadscore_core::Timestamp>,
    pub value: Option<f64>,
    pub reason: Option<String>,
}

/// The column a CSV header names: case, spaces and punctuation are ignored,
/// so `First Name` (HubSpot), `FirstName` (Salesforce) and `first_name` agree.
pub fn column_for(header: &str) -> Column {
    let key: String = header
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    let std = match key.as_str() {
        "id" | "leadid" | "recordid" => StdField::Id,
        "firstname" => StdField::FirstName,
        "lastname" => StdField::LastName,
        "email" | "emailaddress" => StdField::Email,
        "phone" | "phonenumber" => StdField::Phone,
        "company" | "companyname" => StdField::Company,
        "jobtitle" | "title" => StdField::JobTitle,
        "industry" => StdField::Industry,
        "employees" | "numberofemployees" => StdField::Employees,
        "annualrevenue" => StdField::AnnualRevenue,
        "country" | "countryregion" => StdField::Country,
        "region" | "state" | "stateregion" | "province" => StdField::Region,
        "city" => StdField::City,
        "source" | "leadsource" | "originalsource" => StdField::Source,
        "iscustomer" => StdField::IsCustomer,
        "owner" | "leadowner" | "contactowner" => return Column::Owner,
        "outcome" => return Column::Outcome(OutcomeColumn::Result),
        "outcomedate" => return Column::Outcome(OutcomeColumn::Date),
        "outcomevalue" => return Column::Outcome(OutcomeColumn::Value),
        "outcomereason" => return Column::Outcome(OutcomeColumn::Reason),
        _ => return Column::Attribute(header.trim().to_owned()),
    };
    Column::Std(std)
}

/// One data row of an import: its line in the file and the lead, or why not.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub line: u64,
    pub lead: Result<NewLead, String>,
    pub outcome: Option<ImportedOutcome>,
}

/// Reads a CSV of leads. A file whose header cannot be read is an error;
/// bad rows are rows with a reason, and the rest go on.
pub fn read_csv(text: &str) -> Result<Vec<Row>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| format!("line 1: the header row cannot be read: {e}"))?
        .clone();
    if headers.iter().all(str::is_empty) {
        return Err("line 1: the header row is empty".into());
    }
    let columns: Vec<Column> = headers.iter().map(column_for).collect();
    let mut seen = Vec::new();
    for (c, h) in columns.iter().zip(headers.iter()) {
        if !matches!(c, Column::Attribute(_)) {
            if seen.contains(c) {
                return Err(format!("line 1: two columns mean the same field (`{h}`)"));
            }
            seen.push(c.clone());
        }
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let (line, read) = match record {
            Err(e) => (
                e.position().map_or(0, |p| p.line()),
                Err(format!("the row cannot be read: {e}")),
            ),
            Ok(r) => {
                let line = r.position().map_or(0, |p| p.line());
                if r.len() != headers.len() {
                    (
                        line,
                        Err(format!(
                            "{} fields where the header has {}",
                            r.len(),
                            headers.len()
                        )),
                    )
                } else {
                    (line, lead_from(&columns, &r))
                }
            }
        };
        let (lead, outcome) = match read {
            Ok((lead, outcome)) => (Ok(lead), outcome),
            Err(e) => (Err(e), None),
        };
        rows.push(Row { line, lead, outcome });
    }
    Ok(rows)
}

fn lead_from(
    columns: &[Column],
    r: &csv::StringRecord,
) -> Result<(NewLead, Option<ImportedOutcome>), String> {
    let mut lead = Lead::default();
    let mut owner = None;
    let (mut result, mut at, mut value, mut reason) = (None, None, None, None);
    for (c, v) in columns.iter().zip(r.iter()) {
        if v.is_empty() {
            continue;
        }
        match c {
            Column::Std(f) => {
                // Spreadsheets write amounts as "1,200" or "$ 4500000".
                let value: String = if matches!(f, StdField::Employees | StdField::AnnualRevenue) {
                    v.chars().filter(|c| !matches!(c, ',' | ' ' | '$')).collect()
                } else {
                    v.to_owned()
                };
                check_std_text(*f, &value).map_err(|e| e.message)?;
                lead.set(*f, value);
            }
            Column::Owner => {
                no_control("owner", v).map_err(|e| e.message)?;
                owner = Some(v.to_owned());
            }
            Column::Attribute(name) => {
                no_control(name, v).map_err(|e| e.message)?;
                lead.set_attribute(name.clone(), v);
            }
            Column::Outcome(OutcomeColumn::Result) => {
                result = Some(match v.to_ascii_lowercase().as_str() {
                    "won" | "converted" | "1" | "true" | "yes" => true,
                    "lost" | "disqualified" | "0" | "false" | "no" => false,
                    _ => {
                        return Err(format!(
                            "`outcome` is won or lost (also 1/0, true/false), not `{v}`"
                        ));
                    }
                });
            }
            Column::Outcome(OutcomeColumn::Date) => {
                at = Some(leadscore_core::workflow::parse_day_or_time(v).ok_or_else(|| {
                    format!("`outcome_date` is a date (YYYY-MM-DD) or an RFC 3339 time, not `{v}`")
                })?);
            }
            Column::Outcome(OutcomeColumn::Value) => {
                let n = leadscore_core::fit::parse_number(v)
                    .filter(|n| *n >= 0.0)
                    .ok_or_else(|| format!("`outcome_value` is an amount of 0 or more, not `{v}`"))?;
                value = Some(n);
            }
            Column::Outcome(OutcomeColumn::Reason) => {
                crate::wire::check_note("outcome_reason", v).map_err(|e| e.message)?;
                reason = Some(v.to_owned());
            }
        }
    }
    let outcome = match result {
        Some(won) => Some(ImportedOutcome {
            won,
            at,
            value,
            reason,
        }),
        None if at.is_some() || value.is_some() || reason.is_some() => {
            return Err(
                "outcome_date, outcome_value and outcome_reason need an `outcome` (won or lost)".into(),
            );
        }
        None => None,
    };
    if lead.get(StdField::Id).is_none()
        && lead.get(StdField::Email).is_none()
        && lead.get(StdField::Company).is_none()
    {
        return Err("the row has no id, e-mail or company: nothing to identify the lead by".into());
    }
    Ok((NewLead { lead, owner }, outcome))
}

/// The outcome of importing one row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowReport {
    pub line: u64,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImportReport {
    pub created: u64,
    pub updated: u64,
    pub rejected: u64,
    pub rows: Vec<RowReport>,
}

/// Rows written per store call by the command line import: big enough for
/// speed, small enough to show progress and not hold the writer for long.
pub const IMPORT_CHUNK: usize = 1000;

/// Writes the rows to the store, `per_transaction` rows a transaction (`usize::MAX`:
/// all or nothing, as the API does), calling `progress` with the rows done.
pub async fn import(
    store: &Arc<dyn Store>,
    rows: Vec<Row>,
    upsert: bool,
    now: leadscore_core::Timestamp,
    per_transaction: usize,
    policy: &leadscore_core::workflow::RatingPolicy,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ImportReport, leadscore_store::StoreError> {
    let mode = if upsert {
        OnConflict::Update
    } else {
        OnConflict::Refuse
    };
    let mut report = ImportReport::default();
    let mut done = 0u64;
    for chunk in rows.chunks(per_transaction.max(1)) {
        let mut leads = Vec::new();
        let mut lines = Vec::new();
        let mut outcomes = Vec::new();
        for row in chunk {
            match &row.lead {
                Ok(l) => {
                    leads.push(l.clone());
                    lines.push(row.line);
                    outcomes.push(row.outcome.clone());
                }
                Err(reason) => {
                    report.rejected += 1;
                    report.rows.push(RowReport {
                        line: row.line,
                        status: "rejected",
                        id: None,
                        reason: Some(reason.clone()),
                    });
                }
            }
        }
        if !leads.is_empty() {
            let data: Vec<leadscore_core::Lead> = leads.iter().map(|l| l.lead.clone()).collect();
            let written = store.write_leads(leads, mode, now).await?;
            let mut created = Vec::new();
            let mut updated_outcomes = Vec::new();
            for (((w, line), lead), outcome) in written.into_iter().zip(lines).zip(data).zip(outcomes) {
                let status = outcome.map(|o| {
                    leadscore_core::workflow::StatusState::imported_outcome(
                        o.won,
                        o.at.unwrap_or(now),
                        o.value,
                        o.reason,
                    )
                });
                if let (LeadWrite::Updated(id), Some(st)) = (&w, &status) {
                    updated_outcomes.push((id.clone(), st.clone()));
                }
                report.rows.push(match w {
                    LeadWrite::Created(id) => {
                        report.created += 1;
                        created.push((id.clone(), lead, status));
                        RowReport { line, status: "created", id: Some(id), reason: None }
                    }
                    LeadWrite::Updated(id) => {
                        report.updated += 1;
                        RowReport { line, status: "updated", id: Some(id), reason: None }
                    }
                    LeadWrite::Conflict { existing, by } => {
                        report.rejected += 1;
                        RowReport {
                            line,
                            status: "rejected",
                            id: Some(existing.clone()),
                            reason: Some(format!(
                                "a lead with this {} already exists: `{existing}` (import with upsert to update it)",
                                by.as_str()
                            )),
                        }
                    }
                });
            }
            crate::view::record_first_evaluations(store, policy, created, now).await?;
            set_outcomes(store, updated_outcomes, now).await?;
        }
        done += chunk.len() as u64;
        progress(done);
    }
    report.rows.sort_by_key(|r| r.line);
    Ok(report)
}

/// Records imported outcomes on leads that existed (an upsert): their status
/// becomes converted or lost, as of the outcome's date, with a log line.
async fn set_outcomes(
    store: &Arc<dyn Store>,
    items: Vec<(String, leadscore_core::workflow::StatusState)>,
    now: leadscore_core::Timestamp,
) -> Result<(), leadscore_store::StoreError> {
    for (id, status) in items {
        let saved = crate::view::save_workflow_retrying(store, &id, |current| {
            let mut next = current.clone();
            next.status = status.clone();
            let entry = leadscore_store::LogEntry {
                at: now,
                actor: "import".into(),
                kind: "status".into(),
                detail: serde_json::json!({"from": current.status.status, "to": status.status,
                    "reason": status.reason, "date": status.since, "source": "import",
                    "previous": current.status}),
            };
            let save = leadscore_store::WorkflowSave {
                log: vec![entry],
                new_tasks: Vec::new(),
            };
            Ok::<_, leadscore_store::StoreError>((next, save))
        })
        .await?;
        if !saved {
            return Err(leadscore_store::StoreError::Invalid(format!(
                "lead `{id}` kept changing while its outcome was imported; import it again"
            )));
        }
    }
    Ok(())
}

/// Every lead as CSV: the standard columns, owner, the score, then one column
/// per custom attribute. Read in pages, oldest first.
pub async fn export(
    store: &Arc<dyn Store>,
    owner: Option<String>,
) -> Result<String, leadscore_store::StoreError> {
    let mut attrs = std::collections::BTreeSet::new();
    let mut all: Vec<LeadRecord> = Vec::new();
    let mut q = LeadQuery {
        order: LeadOrder::Created,
        limit: 1000,
        owner,
        ..LeadQuery::default()
    };
    loop {
        let (page, next) = store.list_leads(&q).await?;
        for l in &page {
            attrs.extend(l.lead.attributes().map(|(k, _)| k.to_owned()));
        }
        all.extend(page);
        match next {
            Some(c) => q.after = Some(c),
            None => break,
        }
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = StdField::ALL.iter().map(|f| f.name().to_owned()).collect();
    header.extend(["owner", "score", "fit", "engagement", "band", "grade", "mql"].map(String::from));
    header.extend(attrs.iter().cloned());
    let csv_err = |e: csv::Error| leadscore_store::StoreError::Invalid(e.to_string());
    w.write_record(&header).map_err(csv_err)?;
    for l in &all {
        let mut row: Vec<String> = StdField::ALL
            .iter()
            .map(|f| l.lead.get(*f).unwrap_or("").to_owned())
            .collect();
        row.push(l.owner.clone().unwrap_or_default());
        match &l.score {
            Some(s) => row.extend([
                s.score.to_string(),
                s.fit.to_string(),
                s.engagement.to_string(),
                s.band.clone(),
                s.grade.clone(),
                s.mql.to_string(),
            ]),
            None => row.extend(std::iter::repeat_n(String::new(), 6)),
        }
        row.extend(attrs.iter().map(|a| l.lead.attribute(a).unwrap_or("").to_owned()));
        w.write_record(&row).map_err(csv_err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| leadscore_store::StoreError::Invalid(e.to_string()))?;
    Ok(String::from_utf8(bytes).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crm_headers_map_to_standard_fields() {
        for (h, f) in [
            ("First Name", StdField::FirstName),
            ("FirstName", StdField::FirstName),
            ("Phone Number", StdField::Phone),
            ("Company Name", StdField::Company),
            ("Title", StdField::JobTitle),
            ("Number of Employees", StdField::Employees),
            ("NumberOfEmployees", StdField::Employees),
            ("Annual Revenue", StdField::AnnualRevenue),
            ("Country/Region", StdField::Country),
            ("LeadSource", StdField::Source),
            ("job_title", StdField::JobTitle),
        ] {
            assert_eq!(column_for(h), Column::Std(f), "{h}");
        }
        assert_eq!(
            column_for("Plan Interest"),
            Column::Attribute("Plan Interest".into())
        );
    }

    #[test]
    fn bad_rows_are_reported_with_their_line() {
        let csv = "Email,Company Name,Number of Employees\na@x.vn,X,12\nb@y.vn,Y\nc@z.vn,Z,lots\n,,\n";
        let rows = read_csv(csv).unwrap();
        assert_eq!(rows.len(), 4);
        assert!(rows[0].lead.is_ok());
        assert_eq!(rows[1].line, 3);
        assert!(rows[1].lead.as_ref().unwrap_err().contains("2 fields"));
        assert!(rows[2].lead.as_ref().unwrap_err().contains("employees"));
        assert!(rows[3].lead.is_err());
        assert!(read_csv("First Name,FirstName\nA,B\n").is_err());
    }
}
