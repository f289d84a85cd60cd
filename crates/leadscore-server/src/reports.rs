//! The model report (issue 5): how well a model's scores match the real
//! outcomes of leads, computed by `leadscore_core::report` over the leads
//! whose outcome is known, each scored just before its outcome. Shared by
//! `GET /api/v1/reports/model` and `leadscore report`.

use std::fmt::Write as _;
use std::sync::Arc;

use leadscore_core::ScoringModel;
use leadscore_core::report::{Case, Report};
use leadscore_store::{LeadOrder, LeadQuery, Store, StoreError};

/// Every lead with a known outcome (converted, lost or disqualified), with its events.
pub async fn cases(store: &Arc<dyn Store>) -> Result<Vec<Case>, StoreError> {
    let mut out = Vec::new();
    let mut q = LeadQuery {
        order: LeadOrder::Created,
        limit: 1000,
        ..LeadQuery::default()
    };
    loop {
        let (page, next) = store.list_leads(&q).await?;
        let ids: Vec<String> = page.iter().map(|l| l.id().to_owned()).collect();
        let workflows = store.workflows(&ids).await?;
        for lead in page {
            let Some((won, decided_at)) = workflows.get(lead.id()).and_then(|w| w.workflow.status.outcome())
            else {
                continue;
            };
            let events = store.lead_events(lead.id()).await?;
            out.push(Case {
                lead: lead.lead,
                events,
                won,
                decided_at,
                created_at: lead.created_at,
            });
        }
        match next {
            Some(c) => q.after = Some(c),
            None => return Ok(out),
        }
    }
}

/// The model to report on: a stored model by name, or the active one (the
/// first of several).
pub async fn model(store: &Arc<dyn Store>, name: Option<&str>) -> Result<ScoringModel, StoreError> {
    match name {
        Some(n) => {
            let record = store
                .get_model(n)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("model `{n}`")))?;
            ScoringModel::from_toml(&record.toml, &format!("model `{n}`"))
                .map_err(|e| StoreError::Corrupt(e.to_string()))
        }
        None => store
            .active_model()
            .await?
            .and_then(|set| set.members.into_iter().next())
            .map(|m| (*m.model).clone())
            .ok_or_else(|| StoreError::Invalid("no model is active: name one with `model`".into())),
    }
}

fn pct(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{:.1}%", v * 100.0))
}

/// The report for a terminal.
pub fn text(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Model `{}` against {} leads with a known outcome ({} converted, base rate {})",
        r.model,
        r.leads,
        r.conversions,
        pct(Some(r.base_rate))
    );
    for w in &r.warnings {
        let _ = writeln!(s, "WARNING: {w}");
    }
    let _ = writeln!(s, "ROC AUC: {}", r.auc.map_or("-".into(), |a| format!("{a:.3}")));
    for (title, groups) in [
        ("\nConversion by band:", &r.by_band),
        ("Conversion by grade:", &r.by_grade),
    ] {
        let _ = writeln!(s, "{title}");
        for g in groups {
            let _ = writeln!(
                s,
                "  {:<12} {:>6} leads  {:>6} converted  {:>7}",
                g.name,
                g.leads,
                g.conversions,
                pct(g.rate)
            );
        }
    }
    let _ = writeln!(s, "\nCalibration (score deciles, lowest first):");
    for d in &r.calibration {
        let _ = writeln!(
            s,
            "  {:>2}  scores {:>6.2}..{:<6.2}  mean {:>6.2}  {:>5} leads  converted {:>7}",
            d.decile,
            d.min_score,
            d.max_score,
            d.mean_score,
            d.leads,
            pct(Some(d.rate))
        );
    }
    let _ = writeln!(s, "\nGains:");
    for g in &r.gains {
        let _ = writeln!(
            s,
            "  top {:>2}%: {:>5} leads, converted {:>7}, lift {}, {} of all conversions",
            g.top_percent,
            g.leads,
            pct(Some(g.rate)),
            g.lift.map_or("-".into(), |l| format!("{l:.2}x")),
            pct(g.captured)
        );
    }
    let _ = writeln!(s, "\nRules (fires = leads it gave points to):");
    for rule in &r.rules {
        let _ = writeln!(
            s,
            "  {:<24} {:<8} {:>7} pts  fires {:>6}  converted {:>7} vs {:>7}  suggested {:>7}  {}",
            rule.rule,
            rule.kind,
            rule.points,
            rule.fires,
            pct(rule.rate_when_fires),
            pct(rule.rate_when_not),
            rule.suggested_points.map_or("-".into(), |p| format!("{p}")),
            rule.flag.unwrap_or("")
        );
    }
    if let Some(a) = &r.mql_advice {
        let _ = writeln!(
            s,
            "\nMQL threshold for {} leads a week (about {:.1} leads arrive a week): {} gives {:.1} MQLs a week, \
             expected conversion {}",
            a.weekly_capacity,
            a.leads_per_week,
            a.threshold,
            a.mqls_per_week,
            pct(a.expected_conversion)
        );
        if let (Some(t), Some(m)) = (a.current_threshold, a.current_mqls_per_week) {
            let _ = writeln!(s, "  (the model's threshold {t} gives {m:.1} MQLs a week)");
        }
    }
    s
}

fn esc(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A line chart of `points` (x, y in 0..1) against the diagonal, as SVG.
fn svg_chart(title: &str, x_label: &str, y_label: &str, points: &[(f64, f64)], diagonal: bool) -> String {
    let (w, h, m) = (360.0, 260.0, 40.0);
    let px = |x: f64| m + x.clamp(0.0, 1.0) * (w - 2.0 * m);
    let py = |y: f64| h - m - y.clamp(0.0, 1.0) * (h - 2.0 * m);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{t}\">\
         <text x=\"{m}\" y=\"20\" font-size=\"14\">{t}</text>\
         <line x1=\"{m}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#333\"/>\
         <line x1=\"{m}\" y1=\"{m}\" x2=\"{m}\" y2=\"{b}\" stroke=\"#333\"/>\
         <text x=\"{cx}\" y=\"{xl}\" font-size=\"11\" text-anchor=\"middle\">{xlab}</text>\
         <text x=\"12\" y=\"{cy}\" font-size=\"11\" transform=\"rotate(-90 12 {cy})\" text-anchor=\"middle\">{ylab}</text>",
        t = esc(title),
        b = h - m,
        r = w - m,
        cx = w / 2.0,
        xl = h - 8.0,
        cy = h / 2.0,
        xlab = esc(x_label),
        ylab = esc(y_label),
    );
    if diagonal {
        let _ = write!(
            s,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#bbb\" stroke-dasharray=\"4\"/>",
            px(0.0),
            py(0.0),
            px(1.0),
            py(1.0)
        );
    }
    let path: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
        .collect();
    let _ = write!(
        s,
        "<polyline fill=\"none\" stroke=\"#1f6feb\" stroke-width=\"2\" points=\"{}\"/>",
        path.join(" ")
    );
    for (x, y) in points {
        let _ = write!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#1f6feb\"/>",
            px(*x),
            py(*y)
        );
    }
    s.push_str("</svg>");
    s
}

/// The report as one HTML page with its charts (calibration, gains) as SVG.
pub fn html(r: &Report, score_max: f64) -> String {
    let calibration: Vec<(f64, f64)> = r
        .calibration
        .iter()
        .map(|d| (d.mean_score / score_max.max(1e-9), d.rate))
        .collect();
    let mut gains = vec![(0.0, 0.0)];
    gains.extend(
        r.gains
            .iter()
            .filter_map(|g| g.captured.map(|c| (f64::from(g.top_percent) / 100.0, c))),
    );
    let mut body = String::new();
    let _ = write!(
        body,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>leadscore report: {m}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:right}}th{{background:#f4f4f4}}\
         td:first-child,th:first-child{{text-align:left}}.warn{{color:#a40}}</style></head><body>\
         <h1>Model <code>{m}</code></h1><p>{n} leads with a known outcome, {c} converted (base rate {b}). ROC AUC {auc}.</p>",
        m = esc(&r.model),
        n = r.leads,
        c = r.conversions,
        b = pct(Some(r.base_rate)),
        auc = r.auc.map_or("-".into(), |a| format!("{a:.3}")),
    );
    for w in &r.warnings {
        let _ = write!(body, "<p class=\"warn\">{}</p>", esc(w));
    }
    body.push_str(&svg_chart(
        "Calibration",
        "mean score of the decile (share of max)",
        "observed conversion",
        &calibration,
        false,
    ));
    body.push_str(&svg_chart(
        "Gains",
        "top share of leads by score",
        "share of conversions",
        &gains,
        true,
    ));
    let _ = write!(
        body,
        "<h2>Conversion by band</h2><table><tr><th>band</th><th>leads</th><th>converted</th><th>rate</th></tr>"
    );
    for g in r.by_band.iter().chain(&r.by_grade) {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&g.name),
            g.leads,
            g.conversions,
            pct(g.rate)
        );
    }
    body.push_str("</table><h2>Rules</h2><table><tr><th>rule</th><th>kind</th><th>points</th><th>fires</th><th>converted when it fires</th><th>when not</th><th>suggested points</th><th>flag</th></tr>");
    for rule in &r.rules {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&rule.rule),
            rule.kind,
            rule.points,
            rule.fires,
            pct(rule.rate_when_fires),
            pct(rule.rate_when_not),
            rule.suggested_points.map_or("-".into(), |p| p.to_string()),
            rule.flag.unwrap_or("")
        );
    }
    body.push_str("</table>");
    if let Some(a) = &r.mql_advice {
        let _ = write!(
            body,
            "<h2>MQL threshold</h2><p>For {} leads a week: threshold {} gives {:.1} MQLs a week, expected conversion {}.</p>",
            a.weekly_capacity,
            a.threshold,
            a.mqls_per_week,
            pct(a.expected_conversion)
        );
    }
    body.push_str("</body></html>\n");
    body
}
