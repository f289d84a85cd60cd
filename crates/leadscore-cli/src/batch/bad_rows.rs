//! Rows that were skipped, and how they are reported: the first 20 with file
//! and line, then a count per kind.

use std::collections::BTreeMap;
use std::fmt;

/// Why a row was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BadKind {
    NotJson,
    MissingField,
    WrongType,
    UnknownField,
    BadTimestamp,
    UnknownLead,
    WrongFieldCount,
    MissingLeadId,
    RepeatedLeadId,
    NotUtf8,
}

impl BadKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            BadKind::NotJson => "not JSON",
            BadKind::MissingField => "missing field",
            BadKind::WrongType => "wrong type",
            BadKind::UnknownField => "unknown field",
            BadKind::BadTimestamp => "bad timestamp",
            BadKind::UnknownLead => "unknown lead",
            BadKind::WrongFieldCount => "wrong number of fields",
            BadKind::MissingLeadId => "missing lead id",
            BadKind::RepeatedLeadId => "repeated lead id",
            BadKind::NotUtf8 => "not UTF-8",
        }
    }
}

/// One skipped row. Details never quote personal data (names, e-mails, phones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    pub file: String,
    pub line: u64,
    pub kind: BadKind,
    pub detail: String,
}

impl BadRow {
    pub fn new(file: &str, line: u64, kind: BadKind, detail: impl Into<String>) -> Self {
        BadRow {
            file: file.to_owned(),
            line,
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for BadRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file,
            self.line,
            self.kind.as_str(),
            self.detail
        )
    }
}

/// Collects skipped rows in file order, keeping the first few whole.
#[derive(Debug, Default)]
pub struct BadRows {
    shown: Vec<BadRow>,
    counts: BTreeMap<BadKind, u64>,
}

impl BadRows {
    pub const SHOWN: usize = 20;

    pub fn push(&mut self, row: BadRow) {
        *self.counts.entry(row.kind).or_default() += 1;
        if self.shown.len() < Self::SHOWN {
            self.shown.push(row);
        }
    }

    /// Appends another file's skipped rows after these.
    pub fn append(&mut self, other: BadRows) {
        for (kind, n) in other.counts {
            *self.counts.entry(kind).or_default() += n;
        }
        let room = Self::SHOWN.saturating_sub(self.shown.len());
        self.shown.extend(other.shown.into_iter().take(room));
    }

    /// The rows shown in full, for callers that complete their messages.
    pub fn shown_mut(&mut self) -> &mut [BadRow] {
        &mut self.shown
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The report for stderr, or `None` when nothing was skipped.
    pub fn report(&self) -> Option<String> {
        if self.shown.is_empty() {
            return None;
        }
        let mut out = String::new();
        for row in &self.shown {
            out.push_str(&format!("skipped {row}\n"));
        }
        let total = self.total();
        if total > self.shown.len() as u64 {
            out.push_str(&format!("... and {} more\n", total - self.shown.len() as u64));
        }
        let per_kind: Vec<String> = self
            .counts
            .iter()
            .map(|(k, n)| format!("{n} {}", k.as_str()))
            .collect();
        out.push_str(&format!("skipped {total} rows in all: {}\n", per_kind.join(", ")));
        Some(out)
    }
}
