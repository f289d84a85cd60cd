//! The care process of seed 003 as a state machine, with the follow-ups
//! that seed 001 asks for (call back later; contact a lead that is under
//! contract with a competitor before the contract ends).

use serde::{Deserialize, Serialize};

use super::parse_day_or_time;
use crate::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    New,
    AttemptingContact,
    Contacted,
    Verified,
    /// Call back on a date.
    ContactLater,
    Qualified,
    /// Became an opportunity: expected value and close date.
    Converted,
    /// Closed, with a reason (see [`DISQUALIFY_REASONS`]).
    Disqualified,
    /// Closed: the deal was lost, with a reason in words.
    Lost,
}

/// Why a lead is disqualified.
pub const DISQUALIFY_REASONS: [&str; 5] = [
    "not_interested",
    "no_opportunity",
    "not_a_fit",
    "bad_data",
    "under_contract",
];

impl Status {
    pub const ALL: [Status; 9] = [
        Status::New,
        Status::AttemptingContact,
        Status::Contacted,
        Status::Verified,
        Status::ContactLater,
        Status::Qualified,
        Status::Converted,
        Status::Disqualified,
        Status::Lost,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::AttemptingContact => "attempting_contact",
            Status::Contacted => "contacted",
            Status::Verified => "verified",
            Status::ContactLater => "contact_later",
            Status::Qualified => "qualified",
            Status::Converted => "converted",
            Status::Disqualified => "disqualified",
            Status::Lost => "lost",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The states this one may move to. Closed leads can be reopened (a lead
    /// under contract is contacted again when the contract nears its end);
    /// a converted lead is done here: it lives on as an opportunity.
    pub const fn next(self) -> &'static [Status] {
        use Status::*;
        match self {
            New => &[AttemptingContact, Contacted, ContactLater, Disqualified],
            AttemptingContact => &[Contacted, ContactLater, Disqualified],
            Contacted => &[Verified, ContactLater, Qualified, Disqualified, Lost],
            Verified => &[Qualified, ContactLater, Disqualified, Lost],
            ContactLater => &[AttemptingContact, Contacted, Verified, Disqualified],
            Qualified => &[Converted, ContactLater, Disqualified, Lost],
            Converted => &[Lost],
            Disqualified => &[AttemptingContact, Contacted],
            Lost => &[AttemptingContact, Contacted],
        }
    }

    pub const fn is_closed(self) -> bool {
        matches!(self, Status::Disqualified | Status::Lost)
    }
}

/// A lead's current status and what came with it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusState {
    pub status: Status,
    /// Who set it and when (RFC 3339); `None` for a new lead never touched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// The disqualification reason (one of [`DISQUALIFY_REASONS`]) or, for
    /// `lost`, the reason in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `contact_later`: when; `under_contract`: when the contract ends;
    /// `converted`: the expected close date. RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A requested change of status, as a rep sends it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub date: Option<String>,
    #[serde(default)]
    pub expected_value: Option<f64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

/// A follow-up task a status change asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUp {
    /// `contact_later` or `contract_ending`.
    pub kind: &'static str,
    pub due: Timestamp,
    pub title: String,
}

/// Why a status change was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TransitionError {
    /// The move is not allowed from the current status.
    #[error("a lead cannot go from `{from}` to `{to}`; allowed next: {}", allowed_list(.allowed))]
    NotAllowed {
        from: Status,
        to: Status,
        allowed: Vec<Status>,
    },
    /// The request itself is wrong (a field missing or malformed).
    #[error("{message}")]
    Invalid { field: &'static str, message: String },
}

fn allowed_list(a: &[Status]) -> String {
    if a.is_empty() {
        return "none".into();
    }
    a.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> TransitionError {
    TransitionError::Invalid {
        field,
        message: message.into(),
    }
}

impl StatusState {
    /// The lead's outcome, once known: won when it converted, lost when it
    /// was lost or disqualified; with the moment it became known.
    pub fn outcome(&self) -> Option<(bool, Timestamp)> {
        let won = match self.status {
            Status::Converted => true,
            Status::Lost | Status::Disqualified => false,
            _ => return None,
        };
        let at = Timestamp::parse(self.since.as_deref()?).ok()?;
        Some((won, at))
    }

    /// The state an imported historical outcome sets: converted (won, with
    /// its value) or lost (with its reason), as of `at`.
    pub fn imported_outcome(
        won: bool,
        at: Timestamp,
        value: Option<f64>,
        reason: Option<String>,
    ) -> StatusState {
        let (reason, note) = if won {
            (None, reason)
        } else {
            (Some(reason.unwrap_or_else(|| "imported as lost".into())), None)
        };
        StatusState {
            status: if won { Status::Converted } else { Status::Lost },
            by: Some("import".into()),
            since: Some(at.to_string()),
            reason,
            expected_value: if won { value } else { None },
            note,
            ..StatusState::default()
        }
    }

    /// Applies a change requested by `by` at `now`. `contract_lead_days` is
    /// how long before a competitor's contract ends the lead is to be
    /// contacted again. Returns the new state and the follow-ups to create.
    pub fn change(
        &self,
        req: &StatusChange,
        by: &str,
        now: Timestamp,
        contract_lead_days: u32,
    ) -> Result<(StatusState, Vec<FollowUp>), TransitionError> {
        let to = Status::parse(req.status.trim()).ok_or_else(|| {
            invalid(
                "status",
                format!(
                    "unknown status `{}`; one of: {}",
                    req.status,
                    allowed_list(&Status::ALL)
                ),
            )
        })?;
        let from = self.status;
        if !from.next().contains(&to) {
            return Err(TransitionError::NotAllowed {
                from,
                to,
                allowed: from.next().to_vec(),
            });
        }
        let text = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let date = match req.date.as_deref() {
            None => None,
            Some(d) => Some(parse_day_or_time(d).ok_or_else(|| {
                invalid(
                    "date",
                    format!("`{d}` is not a date (YYYY-MM-DD) or an RFC 3339 time"),
                )
            })?),
        };
        let mut next = StatusState {
            status: to,
            by: Some(by.to_owned()),
            since: Some(now.to_string()),
            note: text(&req.note),
            ..StatusState::default()
        };
        let mut follow_ups = Vec::new();
        let refuse_extra = |field: &'static str, present: bool| {
            if present {
                Err(invalid(
                    field,
                    format!("`{field}` does not apply to status `{to}`"),
                ))
            } else {
                Ok(())
            }
        };
        match to {
            Status::ContactLater => {
                let due =
                    date.ok_or_else(|| invalid("date", "`contact_later` needs the `date` to call back"))?;
                if due <= now {
                    return Err(invalid("date", "the call-back date must be in the future"));
                }
                refuse_extra("reason", req.reason.is_some())?;
                next.date = Some(due.to_string());
                follow_ups.push(FollowUp {
                    kind: "contact_later",
                    due,
                    title: "Call back: the lead asked to be contacted later".into(),
                });
            }
            Status::Converted => {
                let value = req.expected_value.ok_or_else(|| {
                    invalid(
                        "expected_value",
                        "`converted` needs the opportunity's `expected_value`",
                    )
                })?;
                if !value.is_finite() || value < 0.0 {
                    return Err(invalid(
                        "expected_value",
                        "`expected_value` must be a number of 0 or more",
                    ));
                }
                let close =
                    date.ok_or_else(|| invalid("date", "`converted` needs the expected close `date`"))?;
                next.expected_value = Some(value);
                next.currency = text(&req.currency).map(|c| c.to_ascii_uppercase());
                if let Some(c) = &next.currency
                    && (c.len() != 3 || !c.bytes().all(|b| b.is_ascii_alphabetic()))
                {
                    return Err(invalid(
                        "currency",
                        "`currency` is a three-letter code such as USD",
                    ));
                }
                next.date = Some(close.to_string());
            }
            Status::Disqualified => {
                let reason = text(&req.reason).ok_or_else(|| {
                    invalid(
                        "reason",
                        format!(
                            "`disqualified` needs a `reason`: one of {}",
                            DISQUALIFY_REASONS.join(", ")
                        ),
                    )
                })?;
                if !DISQUALIFY_REASONS.contains(&reason.as_str()) {
                    return Err(invalid(
                        "reason",
                        format!(
                            "unknown reason `{reason}`; one of {}",
                            DISQUALIFY_REASONS.join(", ")
                        ),
                    ));
                }
                if reason == "under_contract" {
                    let ends = date.ok_or_else(|| {
                        invalid(
                            "date",
                            "`under_contract` needs the `date` the competitor's contract ends",
                        )
                    })?;
                    let due = ends.minus_days(f64::from(contract_lead_days));
                    next.date = Some(ends.to_string());
                    follow_ups.push(FollowUp {
                        kind: "contract_ending",
                        due: if due > now { due } else { now },
                        title: format!(
                            "Contact again: the competitor's contract ends {}",
                            &ends.to_string()[..10]
                        ),
                    });
                } else {
                    refuse_extra("date", date.is_some())?;
                }
                next.reason = Some(reason);
            }
            Status::Lost => {
                let reason = text(&req.reason).ok_or_else(|| {
                    invalid("reason", "`lost` needs the `reason` the deal was lost, in words")
                })?;
                refuse_extra("date", date.is_some())?;
                next.reason = Some(reason);
            }
            _ => {
                refuse_extra("reason", req.reason.is_some())?;
                refuse_extra("date", date.is_some())?;
            }
        }
        if to != Status::Converted {
            refuse_extra("expected_value", req.expected_value.is_some())?;
            refuse_extra("currency", req.currency.is_some())?;
        }
        Ok((next, follow_ups))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn req(status: &str) -> StatusChange {
        StatusChange {
            status: status.into(),
            ..StatusChange::default()
        }
    }

    /// Every pair of states: allowed exactly when listed, refused with the
    /// list of allowed next states otherwise.
    #[test]
    fn every_transition_is_allowed_or_refused_as_listed() {
        let now = at("2026-11-01T00:00:00Z");
        for from in Status::ALL {
            for to in Status::ALL {
                let state = StatusState {
                    status: from,
                    ..StatusState::default()
                };
                let mut r = req(to.as_str());
                match to {
                    Status::ContactLater => r.date = Some("2026-12-01".into()),
                    Status::Converted => {
                        r.date = Some("2027-01-15".into());
                        r.expected_value = Some(12_000.0);
                    }
                    Status::Disqualified => r.reason = Some("not_a_fit".into()),
                    Status::Lost => r.reason = Some("chose a competitor".into()),
                    _ => {}
                }
                let out = state.change(&r, "ann", now, 60);
                if from.next().contains(&to) {
                    let (next, _) = out.unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
                    assert_eq!(next.status, to);
                    assert_eq!(next.by.as_deref(), Some("ann"));
                } else {
                    match out {
                        Err(TransitionError::NotAllowed { allowed, .. }) => assert_eq!(allowed, from.next()),
                        other => panic!("{from} -> {to} should be refused, got {other:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn follow_ups_fall_on_their_dates() {
        let now = at("2026-11-01T00:00:00Z");
        let new = StatusState::default();
        let mut r = req("contact_later");
        r.date = Some("2026-11-20".into());
        let (s, f) = new.change(&r, "ann", now, 60).unwrap();
        assert_eq!(s.date.as_deref(), Some("2026-11-20T00:00:00Z"));
        assert_eq!(f[0].kind, "contact_later");
        assert_eq!(f[0].due, at("2026-11-20T00:00:00Z"));

        let mut r = req("disqualified");
        r.reason = Some("under_contract".into());
        r.date = Some("2027-06-30".into());
        let (s, f) = new.change(&r, "ann", now, 60).unwrap();
        assert_eq!(s.reason.as_deref(), Some("under_contract"));
        assert_eq!(f[0].kind, "contract_ending");
        assert_eq!(f[0].due, at("2027-05-01T00:00:00Z"));
        // A contract ending sooner than the lead time: contact now.
        r.date = Some("2026-11-10".into());
        let (_, f) = new.change(&r, "ann", now, 60).unwrap();
        assert_eq!(f[0].due, now);
    }

    #[test]
    fn incomplete_requests_say_what_is_missing() {
        let now = at("2026-11-01T00:00:00Z");
        let new = StatusState::default();
        let field = |r: StatusChange, s: &StatusState| match s.change(&r, "a", now, 60) {
            Err(TransitionError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(req("contact_later"), &new), "date");
        let mut past = req("contact_later");
        past.date = Some("2026-10-01".into());
        assert_eq!(field(past, &new), "date");
        assert_eq!(field(req("disqualified"), &new), "reason");
        let mut odd = req("disqualified");
        odd.reason = Some("bored".into());
        assert_eq!(field(odd, &new), "reason");
        let mut uc = req("disqualified");
        uc.reason = Some("under_contract".into());
        assert_eq!(field(uc, &new), "date");
        assert_eq!(field(req("flying"), &new), "status");
        let qualified = StatusState {
            status: Status::Qualified,
            ..StatusState::default()
        };
        assert_eq!(field(req("converted"), &qualified), "expected_value");
        let mut extra = req("contacted");
        extra.reason = Some("x".into());
        assert_eq!(field(extra, &new), "reason");
    }
}
