//! Fit rules: one condition on one lead field (the explicit data).

use regex::Regex;

use crate::checks::{EmailKind, classify_email, is_full_name, is_valid_phone};
use crate::lead::{FieldRef, LeadData, StdField};

/// A literal a field is compared with. Text is kept trimmed and lower-cased.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Text(String),
    Number(f64),
    Bool(bool),
}

/// A built-in check (`is = "..."`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Corporate,
    FreeEmail,
    DisposableEmail,
    ValidPhone,
    FullName,
}

impl Check {
    pub const NAMES: [&'static str; 5] = [
        "corporate",
        "free_email",
        "disposable_email",
        "valid_phone",
        "full_name",
    ];

    pub fn parse(name: &str) -> Option<Check> {
        Some(match name {
            "corporate" => Check::Corporate,
            "free_email" => Check::FreeEmail,
            "disposable_email" => Check::DisposableEmail,
            "valid_phone" => Check::ValidPhone,
            "full_name" => Check::FullName,
            _ => return None,
        })
    }

    pub const fn name(self) -> &'static str {
        Check::NAMES[self as usize]
    }
}

/// One end of a numeric range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    pub value: f64,
    pub inclusive: bool,
}

/// What must hold of the field value.
#[derive(Debug, Clone)]
pub enum Condition {
    Equals(Operand),
    In(Vec<Operand>),
    Matches(Regex),
    Range {
        lower: Option<Bound>,
        upper: Option<Bound>,
    },
    Exists,
    Is(Check),
}

#[derive(Debug, Clone)]
pub struct FitRule {
    pub id: String,
    pub label: Option<String>,
    pub field: FieldRef,
    pub condition: Condition,
    pub negate: bool,
    pub points: f64,
}

impl PartialEq for Condition {
    /// The same test of a value (patterns compared as written).
    fn eq(&self, other: &Condition) -> bool {
        use Condition::*;
        match (self, other) {
            (Equals(a), Equals(b)) => a == b,
            (In(a), In(b)) => a == b,
            (Matches(a), Matches(b)) => a.as_str() == b.as_str(),
            (Range { lower: a, upper: b }, Range { lower: c, upper: d }) => a == c && b == d,
            (Exists, Exists) => true,
            (Is(a), Is(b)) => a == b,
            _ => false,
        }
    }
}

impl FitRule {
    /// Does this rule hold for exactly the leads `other` holds for? (The
    /// same field, condition and negation; its id, label and points may
    /// differ.)
    pub fn same_test(&self, other: &FitRule) -> bool {
        self.field == other.field && self.negate == other.negate && self.condition == other.condition
    }

    /// Does the rule hold for this lead? A missing or blank field makes every
    /// condition false (and so a negated rule true).
    pub fn holds(&self, lead: &(impl LeadData + ?Sized)) -> bool {
        let held = lead
            .value(&self.field)
            .is_some_and(|v| !v.trim().is_empty() && self.condition.holds(v, lead));
        held != self.negate
    }
}

impl Condition {
    fn holds(&self, value: &str, lead: &(impl LeadData + ?Sized)) -> bool {
        match self {
            Condition::Equals(op) => op.matches(value),
            Condition::In(ops) => ops.iter().any(|op| op.matches(value)),
            Condition::Matches(re) => re.is_match(value),
            Condition::Range { lower, upper } => parse_number(value).is_some_and(|n| {
                lower.is_none_or(|b| if b.inclusive { n >= b.value } else { n > b.value })
                    && upper.is_none_or(|b| if b.inclusive { n <= b.value } else { n < b.value })
            }),
            Condition::Exists => !value.trim().is_empty(),
            Condition::Is(check) => match check {
                Check::Corporate => classify_email(value) == EmailKind::Corporate,
                Check::FreeEmail => classify_email(value) == EmailKind::Free,
                Check::DisposableEmail => classify_email(value) == EmailKind::Disposable,
                Check::ValidPhone => is_valid_phone(value, lead.get(StdField::Country)),
                Check::FullName => is_full_name(Some(value), lead.get(StdField::LastName)),
            },
        }
    }
}

impl Operand {
    fn matches(&self, value: &str) -> bool {
        match self {
            Operand::Text(t) => eq_folded(value.trim(), t),
            Operand::Number(n) => parse_number(value) == Some(*n),
            Operand::Bool(b) => parse_bool(value) == Some(*b),
        }
    }
}

/// Case-insensitive equality against an already lower-cased operand.
fn eq_folded(value: &str, lower: &str) -> bool {
    if value.is_ascii() {
        value.eq_ignore_ascii_case(lower)
    } else {
        value.to_lowercase() == lower
    }
}

/// A field value read as a number: trimmed, finite, plain decimal notation.
pub fn parse_number(value: &str) -> Option<f64> {
    value.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

/// A field value read as a yes/no flag (`true/false`, `yes/no`, `1/0`, `y/n`).
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "1" => Some(true),
        "false" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}
