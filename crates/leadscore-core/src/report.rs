//! How good a scoring model is, measured on leads whose outcome is known
//! (seed 002's last step: compare the scores with what really happened).
//!
//! Each lead is scored as of the moment just before its outcome was known,
//! so a model can be judged before it is activated (a backtest). Pure
//! functions of the cases given: the store and the server gather them.

use serde::Serialize;

use crate::{Event, Lead, RuleKind, ScoringModel, Timestamp};

/// One lead with a known outcome.
#[derive(Debug, Clone)]
pub struct Case {
    pub lead: Lead,
    pub events: Vec<Event>,
    pub won: bool,
    /// When the outcome became known; the lead is scored just before.
    pub decided_at: Timestamp,
    /// When the lead arrived (for leads-per-week figures).
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub model: String,
    pub leads: usize,
    pub conversions: usize,
    pub base_rate: f64,
    /// ROC AUC of the score against the outcome (`null` without both outcomes).
    pub auc: Option<f64>,
    pub by_band: Vec<Group>,
    pub by_grade: Vec<Group>,
    /// Score deciles, lowest first: mean score and observed conversion.
    pub calibration: Vec<Decile>,
    /// Conversion among the top 10, 20 and 30 % by score, and the lift over the base rate.
    pub gains: Vec<Gain>,
    pub rules: Vec<RuleStat>,
    pub mql_advice: Option<MqlAdvice>,
    /// Plain-language warnings (too few outcomes, no conversions, ...).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub name: String,
    pub leads: usize,
    pub conversions: usize,
    pub rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decile {
    pub decile: usize,
    pub leads: usize,
    pub min_score: f64,
    pub max_score: f64,
    pub mean_score: f64,
    pub conversions: usize,
    pub rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gain {
    pub top_percent: u32,
    pub leads: usize,
    pub conversions: usize,
    pub rate: f64,
    pub lift: Option<f64>,
    /// Share of all conversions found in this top slice.
    pub captured: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleStat {
    pub rule: String,
    pub kind: &'static str,
    pub points: f64,
    /// Leads the rule added (or took) points for.
    pub fires: usize,
    pub rate_when_fires: Option<f64>,
    pub rate_when_not: Option<f64>,
    /// ln(odds when it fires / odds when not), smoothed.
    pub log_odds: Option<f64>,
    /// The points the data suggests: the log-odds on the model's own scale.
    pub suggested_points: Option<f64>,
    /// `no_difference`, `wrong_sign`, `never_fires`, `always_fires`, or `null`.
    pub flag: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MqlAdvice {
    pub weekly_capacity: f64,
    pub leads_per_week: f64,
    /// The lowest threshold at which MQLs a week stay within the capacity.
    pub threshold: f64,
    pub mqls_per_week: f64,
    pub expected_conversion: Option<f64>,
    /// The model's own threshold and what it gives, for comparison.
    pub current_threshold: Option<f64>,
    pub current_mqls_per_week: Option<f64>,
}

/// Fewer outcomes than this, or fewer conversions than [`MIN_CONVERSIONS`],
/// and the figures are flagged as too thin to trust.
pub const MIN_OUTCOMES: usize = 200;
pub const MIN_CONVERSIONS: usize = 30;

/// Builds the report of `model` over `cases`. `weekly_capacity`: how many
/// leads a week the sales team can work (for the MQL advice).
pub fn report(model: &ScoringModel, cases: &[Case], weekly_capacity: Option<f64>) -> Report {
    // A model with `applies_to` is judged on the leads it would score.
    let cases: Vec<&Case> = cases.iter().filter(|c| model.applies_to_lead(&c.lead)).collect();
    let scored: Vec<(crate::Score, crate::FitOutcome, bool)> = cases
        .iter()
        .map(|c| {
            let as_of = Timestamp::from_micros(c.decided_at.as_micros() - 1);
            (
                model.score(&c.lead, &c.events, as_of),
                model.evaluate_fit(&c.lead),
                c.won,
            )
        })
        .collect();
    let n = scored.len();
    let conversions = scored.iter().filter(|s| s.2).count();
    let base_rate = if n > 0 { conversions as f64 / n as f64 } else { 0.0 };
    let mut warnings = Vec::new();
    if n < MIN_OUTCOMES || conversions < MIN_CONVERSIONS {
        warnings.push(format!(
            "only {n} leads with a known outcome ({conversions} conversions): at least {MIN_OUTCOMES} and \
             {MIN_CONVERSIONS} conversions are needed before these figures mean much"
        ));
    }
    if n > 0 && (conversions == 0 || conversions == n) {
        warnings.push("every outcome is the same: nothing can be compared".into());
    }
    let pairs: Vec<(f64, bool)> = scored.iter().map(|(s, _, w)| (s.score, *w)).collect();

    let group = |name: String, members: Vec<bool>| {
        let conv = members.iter().filter(|w| **w).count();
        Group {
            name,
            leads: members.len(),
            conversions: conv,
            rate: (!members.is_empty()).then(|| conv as f64 / members.len() as f64),
        }
    };
    let by_band = model
        .bands
        .iter()
        .enumerate()
        .map(|(i, b)| {
            group(
                b.name.clone(),
                scored.iter().filter(|s| s.0.band == i).map(|s| s.2).collect(),
            )
        })
        .collect();
    let by_grade = ["A", "B", "C", "D"]
        .iter()
        .map(|g| {
            group(
                (*g).to_owned(),
                scored
                    .iter()
                    .filter(|s| s.0.grade.as_str() == *g)
                    .map(|s| s.2)
                    .collect(),
            )
        })
        .collect();

    let rules = rule_stats(model, &scored);
    let mql_advice = weekly_capacity.and_then(|cap| mql_advice(model, &cases, &pairs, cap));
    Report {
        model: model.name.clone(),
        leads: n,
        conversions,
        base_rate,
        auc: auc(&pairs),
        by_band,
        by_grade,
        calibration: deciles(&pairs),
        gains: gains(&pairs, base_rate, conversions),
        rules,
        mql_advice,
        warnings,
    }
}

/// ROC AUC: the chance a converted lead outscores one that did not (ties count half).
pub fn auc(pairs: &[(f64, bool)]) -> Option<f64> {
    let pos = pairs.iter().filter(|p| p.1).count();
    let neg = pairs.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let mut sorted: Vec<(f64, bool)> = pairs.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Mann-Whitney U with average ranks for ties.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1].0 == sorted[i].0 {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += avg_rank * sorted[i..=j].iter().filter(|p| p.1).count() as f64;
        i = j + 1;
    }
    let (pos, neg) = (pos as f64, neg as f64);
    Some((rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg))
}

/// The leads ordered best first (ties: as given).
fn best_first(pairs: &[(f64, bool)]) -> Vec<(f64, bool)> {
    let mut v = pairs.to_vec();
    v.sort_by(|a, b| b.0.total_cmp(&a.0));
    v
}

fn deciles(pairs: &[(f64, bool)]) -> Vec<Decile> {
    let mut v = pairs.to_vec();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = v.len();
    (0..10)
        .filter_map(|d| {
            let part = &v[n * d / 10..n * (d + 1) / 10];
            if part.is_empty() {
                return None;
            }
            let conv = part.iter().filter(|p| p.1).count();
            Some(Decile {
                decile: d + 1,
                leads: part.len(),
                min_score: part[0].0,
                max_score: part[part.len() - 1].0,
                mean_score: part.iter().map(|p| p.0).sum::<f64>() / part.len() as f64,
                conversions: conv,
                rate: conv as f64 / part.len() as f64,
            })
        })
        .collect()
}

fn gains(pairs: &[(f64, bool)], base_rate: f64, conversions: usize) -> Vec<Gain> {
    let v = best_first(pairs);
    [10u32, 20, 30]
        .into_iter()
        .filter_map(|p| {
            let k = (v.len() * p as usize).div_ceil(100);
            if k == 0 {
                return None;
            }
            let conv = v[..k].iter().filter(|x| x.1).count();
            let rate = conv as f64 / k as f64;
            Some(Gain {
                top_percent: p,
                leads: k,
                conversions: conv,
                rate,
                lift: (base_rate > 0.0).then(|| rate / base_rate),
                captured: (conversions > 0).then(|| conv as f64 / conversions as f64),
            })
        })
        .collect()
}

fn rule_stats(model: &ScoringModel, scored: &[(crate::Score, crate::FitOutcome, bool)]) -> Vec<RuleStat> {
    let mut out = Vec::new();
    let fired = |kind: RuleKind, index: usize, s: &(crate::Score, crate::FitOutcome, bool)| match kind {
        RuleKind::Fit => s.1.held.contains(&(index as u16)),
        RuleKind::Behavior => {
            s.0.breakdown
                .iter()
                .any(|c| c.kind == RuleKind::Behavior && c.index == index)
        }
    };
    let rules = model
        .fit
        .iter()
        .enumerate()
        .map(|(i, r)| (RuleKind::Fit, i, r.id.clone(), r.points))
        .chain(
            model
                .behavior
                .iter()
                .enumerate()
                .map(|(i, r)| (RuleKind::Behavior, i, r.id.clone(), r.points)),
        );
    for (kind, index, id, points) in rules {
        let (mut f_n, mut f_c, mut o_n, mut o_c) = (0usize, 0usize, 0usize, 0usize);
        for s in scored {
            if fired(kind, index, s) {
                f_n += 1;
                f_c += usize::from(s.2);
            } else {
                o_n += 1;
                o_c += usize::from(s.2);
            }
        }
        let rate = |c: usize, n: usize| (n > 0).then(|| c as f64 / n as f64);
        // Log-odds ratio with half a count added to each cell (Haldane).
        let log_odds = (f_n > 0 && o_n > 0).then(|| {
            let (a, b) = (f_c as f64 + 0.5, (f_n - f_c) as f64 + 0.5);
            let (c, d) = (o_c as f64 + 0.5, (o_n - o_c) as f64 + 0.5);
            ((a / b) / (c / d)).ln()
        });
        // Its standard error, to tell a real effect from noise.
        let se = (f_n > 0 && o_n > 0).then(|| {
            let cells = [f_c, f_n - f_c, o_c, o_n - o_c];
            cells.iter().map(|&x| 1.0 / (x as f64 + 0.5)).sum::<f64>().sqrt()
        });
        let flag = match (log_odds, se) {
            _ if f_n == 0 => Some("never_fires"),
            _ if o_n == 0 => Some("always_fires"),
            (Some(l), Some(se)) if (l / se).abs() < 1.96 => Some("no_difference"),
            (Some(l), Some(_)) if (l > 0.0) != (points > 0.0) && points != 0.0 => Some("wrong_sign"),
            _ => None,
        };
        out.push(RuleStat {
            rule: id,
            kind: kind.as_str(),
            points,
            fires: f_n,
            rate_when_fires: rate(f_c, f_n),
            rate_when_not: rate(o_c, o_n),
            log_odds,
            suggested_points: None,
            flag,
        });
    }
    // The model's scale: points per unit of log-odds, matched on the rules
    // whose effect is clear (so the suggestions read in the model's own units).
    let clear: Vec<(f64, f64)> = out
        .iter()
        .filter(|r| r.flag.is_none())
        .filter_map(|r| r.log_odds.map(|l| (r.points.abs(), l.abs())))
        .filter(|(p, l)| *p > 0.0 && *l > 1e-9)
        .collect();
    let scale = if clear.is_empty() {
        None
    } else {
        Some(clear.iter().map(|(p, _)| p).sum::<f64>() / clear.iter().map(|(_, l)| l).sum::<f64>())
    };
    if let Some(k) = scale {
        for r in &mut out {
            r.suggested_points = r.log_odds.map(|l| crate::round2(l * k));
        }
    }
    out
}

fn mql_advice(
    model: &ScoringModel,
    cases: &[&Case],
    pairs: &[(f64, bool)],
    capacity: f64,
) -> Option<MqlAdvice> {
    // Leads a week: over the weeks the leads arrived in, or, for history
    // imported all at once, the weeks their outcomes span.
    let span = |at: &dyn Fn(&&Case) -> Timestamp| {
        let first = cases.iter().map(at).min()?;
        let last = cases.iter().map(at).max()?;
        Some(last.days_since(first) / 7.0)
    };
    let created = span(&|c| c.created_at)?;
    let weeks = if created >= 1.0 {
        created
    } else {
        span(&|c| c.decided_at)?
    }
    .max(1.0);
    let per_week = pairs.len() as f64 / weeks;
    let v = best_first(pairs);
    // The lowest threshold (a score some lead has) at which the leads at or
    // above it, per week, stay within the capacity.
    let mut threshold = None;
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1].0 == v[i].0 {
            j += 1;
        }
        if (j + 1) as f64 / weeks > capacity {
            break;
        }
        threshold = Some((v[i].0, j + 1));
        i = j + 1;
    }
    let (threshold, count) = threshold.unwrap_or((v.first()?.0 + 0.01, 0));
    let above = &v[..count];
    let conv = above.iter().filter(|p| p.1).count();
    let current = model.mql.as_ref().map(|m| m.threshold);
    Some(MqlAdvice {
        weekly_capacity: capacity,
        leads_per_week: per_week,
        threshold,
        mqls_per_week: count as f64 / weeks,
        expected_conversion: (count > 0).then(|| conv as f64 / count as f64),
        current_threshold: current,
        current_mqls_per_week: current.map(|t| v.iter().filter(|p| p.0 >= t).count() as f64 / weeks),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_as_half() {
        assert_eq!(auc(&[(1.0, false), (2.0, true)]), Some(1.0));
        assert_eq!(auc(&[(2.0, false), (1.0, true)]), Some(0.0));
        assert_eq!(auc(&[(1.0, false), (1.0, true)]), Some(0.5));
        assert_eq!(auc(&[(1.0, true)]), None);
        // 3 positives, 2 negatives: 4 of the 6 pairs won, one tied, one lost -> 4.5/6.
        let p = [(5.0, true), (4.0, true), (2.0, true), (3.0, false), (2.0, false)];
        assert!((auc(&p).unwrap() - 4.5 / 6.0).abs() < 1e-12);
    }
}
