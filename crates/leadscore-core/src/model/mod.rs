//! The scoring model: bands, grades, MQL rule, fit and behavior rules.
//! Built only through [`ScoringModel::from_toml`], so a model value is always valid.

mod parse;

pub use parse::condition_rule;

use std::collections::HashMap;
use std::fmt;

use crate::behavior::{BehaviorRule, PropertyLookup};
use crate::fit::FitRule;

/// A named bucket of the total score; `from` is its inclusive lower bound.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    pub name: String,
    pub from: f64,
}

/// The letter from the fit score alone. `A` is the best.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grade {
    A,
    B,
    C,
    D,
}

impl Grade {
    pub fn parse(s: &str) -> Option<Grade> {
        Some(match s.trim() {
            "A" | "a" => Grade::A,
            "B" | "b" => Grade::B,
            "C" | "c" => Grade::C,
            "D" | "d" => Grade::D,
            _ => return None,
        })
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Grade::A => "A",
            Grade::B => "B",
            Grade::C => "C",
            Grade::D => "D",
        }
    }
}

impl fmt::Display for Grade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lower bounds on the fit score for grades A, B and C (strictly descending).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradeBounds {
    pub a: f64,
    pub b: f64,
    pub c: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MqlRule {
    pub threshold: f64,
    pub min_grade: Option<Grade>,
}

/// A model that was refused, and why: the file, the rule (where there is one) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ModelError {
    pub source_name: String,
    /// The line the problem is on (of the rule, where the problem is inside one).
    pub line: Option<usize>,
    /// The column, for errors in the TOML itself.
    pub column: Option<usize>,
    pub rule: Option<String>,
    pub message: String,
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source_name)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if let Some(rule) = &self.rule {
            write!(f, ": rule `{rule}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Event type -> the behavior rules listing it. Models list a handful of
/// types, and the batch reader asks once per event line, so a short list is
/// scanned (comparing lengths first) rather than hashed.
#[derive(Debug, Clone, Default)]
struct EventIndex {
    types: Vec<(String, Vec<u16>)>,
    map: HashMap<String, usize, foldhash::fast::RandomState>,
}

impl EventIndex {
    const SCAN: usize = 16;

    fn add(&mut self, event_type: &str, rule: u16) {
        let slot = match self.map.get(event_type) {
            Some(&i) => i,
            None => {
                self.types.push((event_type.to_owned(), Vec::new()));
                self.map.insert(event_type.to_owned(), self.types.len() - 1);
                self.types.len() - 1
            }
        };
        let rules = &mut self.types[slot].1;
        if !rules.contains(&rule) {
            rules.push(rule);
        }
    }

    fn get(&self, event_type: &str) -> &[u16] {
        let slot = if self.types.len() <= Self::SCAN {
            self.types
                .iter()
                .position(|(t, _)| same_short_text(t.as_bytes(), event_type.as_bytes()))
        } else {
            self.map.get(event_type).copied()
        };
        slot.map_or(&[], |i| &self.types[i].1)
    }
}

/// `a == b` for short texts, compared eight bytes at a time inline (a call
/// to `memcmp` costs more than comparing an event type).
fn same_short_text(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut x, mut y) = (a.chunks_exact(8), b.chunks_exact(8));
    let word = |w: &[u8]| u64::from_le_bytes(w.try_into().expect("eight bytes"));
    for (p, q) in (&mut x).zip(&mut y) {
        if word(p) != word(q) {
            return false;
        }
    }
    x.remainder()
        .iter()
        .zip(y.remainder())
        .fold(true, |same, (p, q)| same & (p == q))
}

#[derive(Debug, Clone)]
pub struct ScoringModel {
    pub name: String,
    pub description: Option<String>,
    pub min: f64,
    pub max: f64,
    pub bands: Vec<Band>,
    pub mql: Option<MqlRule>,
    pub grades: Option<GradeBounds>,
    pub fit: Vec<FitRule>,
    pub behavior: Vec<BehaviorRule>,
    /// Which leads this model scores when several models are active (a
    /// condition in the fit-rule syntax); `None`: every lead.
    pub applies_to: Option<FitRule>,
    /// Event type -> indices of the behavior rules that list it.
    by_event_type: EventIndex,
}

impl ScoringModel {
    /// Parses and validates a model; `source_name` (usually the file path) is
    /// named in every error.
    pub fn from_toml(text: &str, source_name: &str) -> Result<ScoringModel, ModelError> {
        parse::parse(text, source_name)
    }

    /// The band a (rounded) total belongs to: the highest whose `from` it reaches.
    /// Does this model score `lead` (its `applies_to` holds, or it has none)?
    pub fn applies_to_lead(&self, lead: &(impl crate::LeadData + ?Sized)) -> bool {
        self.applies_to.as_ref().is_none_or(|c| c.holds(lead))
    }

    pub fn band_for(&self, total: f64) -> &Band {
        self.bands
            .iter()
            .rev()
            .find(|b| total >= b.from)
            .unwrap_or(&self.bands[0])
    }

    /// The grade of a (rounded) fit score.
    pub fn grade_for(&self, fit: f64) -> Grade {
        match self.grades {
            Some(g) if fit >= g.a => Grade::A,
            Some(g) if fit >= g.b => Grade::B,
            Some(g) if fit >= g.c => Grade::C,
            _ => Grade::D,
        }
    }

    pub fn is_mql(&self, total: f64, grade: Grade) -> bool {
        self.mql
            .is_some_and(|m| total >= m.threshold && m.min_grade.is_none_or(|min| grade <= min))
    }

    /// Indices of the behavior rules an event of this type and these properties counts for.
    pub fn rules_for_event<'a>(
        &'a self,
        event_type: &str,
        properties: &'a dyn PropertyLookup,
    ) -> impl Iterator<Item = u16> + 'a {
        self.rules_listing(event_type)
            .iter()
            .copied()
            .filter(move |&i| self.behavior[usize::from(i)].matches_properties(properties))
    }

    /// True when some behavior rule lists this event type (events of other types
    /// can never change a score under this model).
    pub fn cares_about(&self, event_type: &str) -> bool {
        !self.by_event_type.get(event_type).is_empty()
    }

    /// Indices of the rules listing this event type, before any `where` filter.
    pub fn rules_listing(&self, event_type: &str) -> &[u16] {
        self.by_event_type.get(event_type)
    }

    /// Does some fit rule check phone numbers (so the phone metadata is needed)?
    pub fn checks_phones(&self) -> bool {
        self.fit.iter().any(|r| {
            matches!(
                r.condition,
                crate::fit::Condition::Is(crate::fit::Check::ValidPhone)
            )
        })
    }

    /// The highest fit score a lead can reach: every positive fit rule holds.
    pub fn max_fit(&self) -> f64 {
        self.fit.iter().map(|r| r.points.max(0.0)).sum()
    }

    /// The highest engagement a lead can reach, or `None` when some positive
    /// rule has neither `cap` nor `max_events` (no ceiling).
    pub fn max_engagement(&self) -> Option<f64> {
        self.behavior
            .iter()
            .filter(|r| r.points > 0.0)
            .map(|r| match (r.cap, r.max_events) {
                (Some(cap), Some(n)) => Some(cap.min(r.points * f64::from(n))),
                (Some(cap), None) => Some(cap),
                (None, Some(n)) => Some(r.points * f64::from(n)),
                (None, None) => None,
            })
            .sum()
    }
}
