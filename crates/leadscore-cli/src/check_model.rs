//! `leadscore check-model`: validate a model and summarise it for a marketer.

use std::fmt::Write as _;

use leadscore_core::fit::{Condition, Operand};
use leadscore_core::{BehaviorRule, FitRule, ScoringModel};

use crate::output::num;

fn signed(x: f64) -> String {
    if x > 0.0 { format!("+{}", num(x)) } else { num(x) }
}

fn operand(op: &Operand) -> String {
    match op {
        Operand::Text(t) => format!("\"{t}\""),
        Operand::Number(n) => num(*n),
        Operand::Bool(b) => b.to_string(),
    }
}

fn describe_fit(r: &FitRule) -> String {
    let field = r.field.name();
    let cond = match &r.condition {
        Condition::Equals(op) => format!("{field} is {}", operand(op)),
        Condition::In(ops) => format!(
            "{field} is one of {}",
            ops.iter().map(operand).collect::<Vec<_>>().join(", ")
        ),
        Condition::Matches(re) => format!("{field} matches /{}/", re.as_str()),
        Condition::Range { lower, upper } => {
            let mut parts = Vec::new();
            if let Some(b) = lower {
                parts.push(format!(
                    "{} {}",
                    if b.inclusive { ">=" } else { ">" },
                    num(b.value)
                ));
            }
            if let Some(b) = upper {
                parts.push(format!(
                    "{} {}",
                    if b.inclusive { "<=" } else { "<" },
                    num(b.value)
                ));
            }
            format!("{field} {}", parts.join(" and "))
        }
        Condition::Exists => format!("{field} is given"),
        Condition::Is(check) => format!("{field} is {}", check.name().replace('_', " ")),
    };
    if r.negate { format!("NOT ({cond})") } else { cond }
}

fn describe_behavior(r: &BehaviorRule) -> String {
    let mut d = format!("each {}", r.events.join(" or "));
    if !r.filter.is_empty() {
        let f: Vec<String> = r.filter.iter().map(|(k, v)| format!("{k} = \"{v}\"")).collect();
        let _ = write!(d, " where {}", f.join(", "));
    }
    if let Some(w) = r.window_days {
        let _ = write!(d, "; last {} days only", num(w));
    }
    if let Some(n) = r.max_events {
        let _ = write!(d, "; the {} most recent only", n);
    }
    if let Some(h) = r.half_life_days {
        let _ = write!(d, "; halves every {} days", num(h));
    }
    if let Some(c) = r.cap {
        let _ = write!(d, "; at most {} in all", num(c));
    }
    d
}

pub fn summary(model: &ScoringModel, source: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{source}: model `{}` is valid", model.name);
    if let Some(d) = &model.description {
        let _ = writeln!(s, "  {d}");
    }
    match &model.applies_to {
        Some(c) => {
            let _ = writeln!(
                s,
                "\nScores the leads where {} (when several models are active)",
                describe_fit(c)
            );
        }
        None => s.push_str("\nScores every lead (no `applies_to`)\n"),
    }
    let _ = writeln!(s, "Score range: {} to {}", num(model.min), num(model.max));
    let bands: Vec<String> = model
        .bands
        .iter()
        .map(|b| format!("{} from {}", b.name, num(b.from)))
        .collect();
    let _ = writeln!(s, "Bands: {}", bands.join(", "));
    match &model.grades {
        Some(g) => {
            let _ = writeln!(
                s,
                "Grades (fit score): A from {}, B from {}, C from {}, else D",
                num(g.a),
                num(g.b),
                num(g.c)
            );
        }
        None => s.push_str("Grades: none declared, every lead is graded D\n"),
    }
    match &model.mql {
        Some(m) => {
            let grade = m
                .min_grade
                .map(|g| format!(" and grade {g} or better"))
                .unwrap_or_default();
            let _ = writeln!(s, "MQL: total score {} or more{grade}", num(m.threshold));
        }
        None => s.push_str("MQL: none declared, no lead becomes MQL\n"),
    }

    let id_width = model
        .fit
        .iter()
        .map(|r| r.id.len())
        .chain(model.behavior.iter().map(|r| r.id.len()))
        .max()
        .unwrap_or(0);
    let _ = writeln!(
        s,
        "\nFit rules ({}): the highest fit a lead can reach is {}",
        model.fit.len(),
        num(model.max_fit())
    );
    for r in &model.fit {
        let label = r.label.as_deref().map(|l| format!("  ({l})")).unwrap_or_default();
        let _ = writeln!(
            s,
            "  {:<id_width$}  {:>6}  {}{label}",
            r.id,
            signed(r.points),
            describe_fit(r)
        );
    }
    let max_eng = model.max_engagement();
    let ceiling = match max_eng {
        Some(e) => format!("the highest engagement a lead can reach is {}", num(e)),
        None => "engagement has no ceiling (a positive rule has neither cap nor max_events)".to_owned(),
    };
    let _ = writeln!(s, "Behavior rules ({}): {ceiling}", model.behavior.len());
    for r in &model.behavior {
        let label = r.label.as_deref().map(|l| format!("  ({l})")).unwrap_or_default();
        let _ = writeln!(
            s,
            "  {:<id_width$}  {:>6}  {}{label}",
            r.id,
            signed(r.points),
            describe_behavior(r)
        );
    }

    let best = max_eng.map(|e| (model.max_fit() + e).min(model.max));
    if let (Some(best), Some(m)) = (best, &model.mql)
        && best < m.threshold
    {
        let _ = writeln!(
            s,
            "\nWarning: no lead can reach the MQL threshold {} (the best possible total is {})",
            num(m.threshold),
            num(best)
        );
    }
    s
}
