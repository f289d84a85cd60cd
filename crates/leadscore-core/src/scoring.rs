//! Totals, rounding, band, grade, MQL and the explanation: one lead scored as of a moment.

use std::collections::BTreeMap;

use crate::behavior::Hit;
use crate::event::Event;
use crate::lead::{Lead, LeadData};
use crate::model::{Grade, ScoringModel};
use crate::time::Timestamp;

/// Which kind of rule a contribution comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleKind {
    Fit,
    Behavior,
}

impl RuleKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            RuleKind::Fit => "fit",
            RuleKind::Behavior => "behavior",
        }
    }
}

/// One line of the explanation: a rule and the (rounded, non-zero) points it gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    pub kind: RuleKind,
    /// Index of the rule in `model.fit` or `model.behavior`.
    pub index: usize,
    pub points: f64,
    /// For behavior rules: how many events counted (after window and max_events).
    pub events: Option<u32>,
}

impl Contribution {
    pub fn rule_id<'m>(&self, model: &'m ScoringModel) -> &'m str {
        match self.kind {
            RuleKind::Fit => &model.fit[self.index].id,
            RuleKind::Behavior => &model.behavior[self.index].id,
        }
    }

    /// The rule's label, or its id in words when it has none
    /// (`demo_or_trial` -> "Demo or trial").
    /// (Borrowed from the model when the rule has a label.)
    pub fn label<'m>(&self, model: &'m ScoringModel) -> std::borrow::Cow<'m, str> {
        model.rule_label(self.kind, self.index)
    }
}

impl ScoringModel {
    /// A rule's label, or its id in words when it has none (see
    /// [`Contribution::label`]); `index` is its place in `fit` or `behavior`.
    pub fn rule_label(&self, kind: RuleKind, index: usize) -> std::borrow::Cow<'_, str> {
        let (id, label) = match kind {
            RuleKind::Fit => (&self.fit[index].id, self.fit[index].label.as_deref()),
            RuleKind::Behavior => (&self.behavior[index].id, self.behavior[index].label.as_deref()),
        };
        match label {
            Some(l) => std::borrow::Cow::Borrowed(l),
            None => {
                let words = id.replace(['_', '-'], " ");
                let mut chars = words.chars();
                std::borrow::Cow::Owned(
                    chars
                        .next()
                        .map(|c| c.to_uppercase().chain(chars).collect())
                        .unwrap_or_default(),
                )
            }
        }
    }
}

/// A lead's score. Every number is rounded to 2 decimals, and band, grade and
/// MQL are decided on those rounded numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub score: f64,
    pub fit: f64,
    pub engagement: f64,
    /// Index into `model.bands`.
    pub band: usize,
    pub grade: Grade,
    pub mql: bool,
    /// Largest contributions first (by absolute points), then fit before
    /// behavior, then model order.
    pub breakdown: Vec<Contribution>,
}

impl Score {
    pub fn band_name<'m>(&self, model: &'m ScoringModel) -> &'m str {
        &model.bands[self.band].name
    }
}

/// The fit part of a score: which fit rules hold. Depends on the lead alone,
/// so callers that rescore often can keep it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FitOutcome {
    pub held: Vec<u16>,
}

/// Rounds to 2 decimals, half away from zero, as the decimal a person reads:
/// 2.675 (stored as 2.67499999...) rounds to 2.68.
pub fn round2(x: f64) -> f64 {
    let scaled = x * 100.0;
    let frac = (scaled - scaled.trunc()).abs();
    if (frac - 0.5).abs() > 1e-6 {
        return normalize_zero(scaled.round() / 100.0);
    }
    // Close to a half: decide on the shortest decimal spelling of `x`.
    let text = format!("{}", x.abs());
    let (int, dec) = text.split_once('.').unwrap_or((&text, ""));
    let digits: Vec<u8> = dec.bytes().collect();
    let kept = format!(
        "{int}.{}",
        String::from_utf8_lossy(&digits[..digits.len().min(2)])
    );
    let mut v: f64 = kept.parse().unwrap_or(x.abs());
    if digits.get(2).is_some_and(|d| *d >= b'5') {
        v += 0.01;
    }
    let v = (v * 100.0).round() / 100.0;
    normalize_zero(if x < 0.0 { -v } else { v })
}

fn normalize_zero(x: f64) -> f64 {
    if x == 0.0 { 0.0 } else { x }
}

impl ScoringModel {
    /// Does every lead get the same [`FitOutcome`] from this model and from
    /// `other`? True when their fit rules test the same, in the same order
    /// (points, ids and labels aside), so that an outcome evaluated under
    /// one serves the other: a model that only changes points or behavior
    /// rules keeps its leads' fit outcomes.
    pub fn same_fit_tests(&self, other: &ScoringModel) -> bool {
        self.fit.len() == other.fit.len() && self.fit.iter().zip(&other.fit).all(|(a, b)| a.same_test(b))
    }

    /// Which fit rules hold for this lead.
    pub fn evaluate_fit(&self, lead: &(impl LeadData + ?Sized)) -> FitOutcome {
        let held = (0..self.fit.len())
            .filter(|&i| self.fit[i].holds(lead))
            .map(|i| i as u16)
            .collect();
        FitOutcome { held }
    }

    /// Scores a lead from its fit outcome and its hits, as of `as_of`.
    /// `hits` are reordered (sorted by rule, newest first); hits after `as_of`
    /// count nothing. Duplicate events must already be removed.
    pub fn score_hits(&self, fit: &FitOutcome, hits: &mut [Hit], as_of: Timestamp) -> Score {
        // Sized once: at most one entry per fit rule held and per behavior rule.
        let mut breakdown = Vec::with_capacity(fit.held.len() + self.behavior.len().min(hits.len()));
        let mut fit_sum = 0.0;
        for &i in &fit.held {
            let points = self.fit[usize::from(i)].points;
            fit_sum += points;
            let rounded = round2(points);
            if rounded != 0.0 {
                breakdown.push(Contribution {
                    kind: RuleKind::Fit,
                    index: usize::from(i),
                    points: rounded,
                    events: None,
                });
            }
        }

        hits.sort_unstable_by(|a, b| a.rule.cmp(&b.rule).then(b.at.cmp(&a.at)).then(b.seq.cmp(&a.seq)));
        let mut engagement = 0.0;
        for group in hits.chunk_by(|a, b| a.rule == b.rule) {
            let index = usize::from(group[0].rule);
            let result = self.behavior[index].evaluate(group, as_of);
            engagement += result.points;
            let rounded = round2(result.points);
            if rounded != 0.0 {
                breakdown.push(Contribution {
                    kind: RuleKind::Behavior,
                    index,
                    points: rounded,
                    events: Some(result.events),
                });
            }
        }
        breakdown.sort_by(|a, b| {
            b.points
                .abs()
                .total_cmp(&a.points.abs())
                .then((a.kind as u8).cmp(&(b.kind as u8)))
                .then(a.index.cmp(&b.index))
        });

        let total = round2((fit_sum + engagement).clamp(self.min, self.max));
        let fit_r = round2(fit_sum);
        let grade = self.grade_for(fit_r);
        let band = self.bands.iter().rposition(|b| total >= b.from).unwrap_or(0);
        Score {
            score: total,
            fit: fit_r,
            engagement: round2(engagement),
            band,
            grade,
            mql: self.is_mql(total, grade),
            breakdown,
        }
    }

    /// Scores a lead from whole events (the convenient form). Events with the
    /// same id count once (the first one given wins); the slice order is the
    /// ingest order.
    pub fn score(&self, lead: &Lead, events: &[Event], as_of: Timestamp) -> Score {
        let mut hits = self.hits_for_events(events);
        self.score_hits(&self.evaluate_fit(lead), &mut hits, as_of)
    }
}

/// Convenience for tests and small callers: properties from pairs.
pub fn properties<const N: usize>(pairs: [(&str, &str); N]) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}
