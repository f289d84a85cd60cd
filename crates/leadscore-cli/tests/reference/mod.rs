//! A direct, unoptimised implementation of `shared/spec/scoring-model.md` for
//! the spec's own model, to check the binary's numbers against. Fit rules are
//! decided by the test data tables below (each value with whether the rule
//! holds for it); behavior rules are computed from the events.

use serde_json::Value;

/// 2026-11-01T00:00:00Z, the worked example's moment, in seconds.
pub const T_SECS: i64 = 1_793_491_200;

/// Job titles and whether `decision_maker` holds.
pub const TITLES: [(&str, bool); 10] = [
    ("Founder & CEO", true),
    ("Head of Sales", true),
    ("VP Engineering", true),
    ("owner", true),
    ("cto", true),
    ("Software Engineer", false),
    ("Marketing Intern", false),
    ("", false),
    ("Directorate clerk", false),
    ("Chief Technology Officer", false),
];

/// Industries and whether `target_industry` holds.
pub const INDUSTRIES: [(&str, bool); 7] = [
    ("Software", true),
    (" travel ", true),
    ("TELECOM", true),
    ("Retail", false),
    ("", false),
    ("Software Services", false),
    ("telecoms", false),
];

/// Employee counts and whether `large_company` (>= 500) holds.
pub const EMPLOYEES: [(&str, bool); 8] = [
    ("120", false),
    ("500", true),
    ("12000", true),
    ("", false),
    ("lots", false),
    ("499.5", false),
    (" 750 ", true),
    ("500.0", true),
];

/// E-mail addresses and whether `corporate_email` holds.
pub const EMAILS: [(&str, bool); 7] = [
    ("ceo@acme-corp.com", true),
    ("Olena.K@Acme-Corp.COM", true),
    ("someone@gmail.com", false),
    ("sales@yahoo.com", false),
    ("x@mailinator.com", false),
    ("not-an-email", false),
    ("", false),
];

/// (phone, country, valid): `no_phone` holds when the phone is not valid.
pub const PHONES: [(&str, &str, bool); 7] = [
    ("+84 912 345 678", "", true),
    ("0912 345 678", "VN", true),
    ("0912 345 678", "", false),
    ("+1 650-253-0000", "US", true),
    ("+49 30 901820", "", true),
    ("", "VN", false),
    ("12345", "US", false),
];

/// A lead as the spec model's fit rules see it.
#[derive(Debug, Clone)]
pub struct RefLead {
    pub id: String,
    pub decision_maker: bool,
    pub target_industry: bool,
    pub large_company: bool,
    pub corporate_email: bool,
    pub valid_phone: bool,
}

impl RefLead {
    pub fn worked_example() -> RefLead {
        RefLead {
            id: "L1".into(),
            decision_maker: true,
            target_industry: true,
            large_company: false,
            corporate_email: true,
            valid_phone: true,
        }
    }

    /// The fit rules that hold, in model order, with their points.
    fn fit(&self) -> Vec<(&'static str, f64)> {
        [
            ("decision_maker", self.decision_maker, 10.0),
            ("target_industry", self.target_industry, 8.0),
            ("large_company", self.large_company, 7.0),
            ("corporate_email", self.corporate_email, 5.0),
            ("no_phone", !self.valid_phone, -3.0),
        ]
        .into_iter()
        .filter(|(_, holds, _)| *holds)
        .map(|(id, _, p)| (id, p))
        .collect()
    }
}

/// One (valid, first-seen) event of a lead; `seq` is its line in the file.
#[derive(Debug, Clone)]
pub struct RefEvent {
    pub kind: &'static str,
    pub path: Option<&'static str>,
    /// Seconds since the epoch.
    pub at: i64,
    pub seq: u64,
}

pub fn worked_example_events() -> Vec<RefEvent> {
    let ev = |kind, path, days: i64, seq| RefEvent {
        kind,
        path,
        at: T_SECS - days * 86_400,
        seq,
    };
    vec![
        ev("email_clicked", None, 30, 1),
        ev("email_clicked", None, 60, 2),
        ev("page_viewed", Some("/pricing"), 10, 3),
        ev("page_viewed", Some("/pricing"), 40, 4),
        ev("demo_requested", None, 2, 5),
        ev("demo_requested", None, 20, 6),
    ]
}

struct Rule {
    id: &'static str,
    events: &'static [&'static str],
    path: Option<&'static str>,
    points: f64,
    max_events: Option<usize>,
    cap: Option<f64>,
    half_life_days: Option<f64>,
    window_days: Option<i64>,
}

const RULES: [Rule; 4] = [
    Rule {
        id: "demo_or_trial",
        events: &["demo_requested", "trial_started"],
        path: None,
        points: 15.0,
        max_events: Some(1),
        cap: None,
        half_life_days: None,
        window_days: None,
    },
    Rule {
        id: "email_click",
        events: &["email_clicked"],
        path: None,
        points: 5.0,
        max_events: None,
        cap: Some(15.0),
        half_life_days: Some(30.0),
        window_days: None,
    },
    Rule {
        id: "pricing_page",
        events: &["page_viewed"],
        path: Some("/pricing"),
        points: 4.0,
        max_events: None,
        cap: None,
        half_life_days: None,
        window_days: Some(30),
    },
    Rule {
        id: "unsubscribed",
        events: &["unsubscribed"],
        path: None,
        points: -10.0,
        max_events: Some(1),
        cap: None,
        half_life_days: None,
        window_days: None,
    },
];

/// (rule, kind, unrounded points, events) of one breakdown entry.
type Entry = (&'static str, &'static str, f64, Option<u64>);

/// A lead's expected score, unrounded, with its breakdown.
#[derive(Debug)]
pub struct Expected {
    lead: String,
    score: f64,
    fit: f64,
    engagement: f64,
    /// (rule, kind, unrounded points, events), in model order.
    entries: Vec<Entry>,
}

/// Scores one lead as of `t` (seconds) by the spec's steps 1-5.
pub fn expected_score(lead: &RefLead, events: &[&RefEvent], t: i64) -> Expected {
    let mut entries = Vec::new();
    let mut fit = 0.0;
    for (id, points) in lead.fit() {
        fit += points;
        entries.push((id, "fit", points, None));
    }
    let mut engagement = 0.0;
    for rule in &RULES {
        // 1. type, `where`, not after t.
        let mut kept: Vec<&RefEvent> = events
            .iter()
            .copied()
            .filter(|e| rule.events.contains(&e.kind) && rule.path.is_none_or(|p| e.path == Some(p)))
            .filter(|e| e.at <= t)
            .collect();
        if kept.is_empty() {
            continue;
        }
        // 2. the window: drop occurred_at <= t - W days.
        if let Some(w) = rule.window_days {
            kept.retain(|e| e.at > t - w * 86_400);
        }
        // 3. the N most recent, ties to the later ingested.
        kept.sort_by(|a, b| b.at.cmp(&a.at).then(b.seq.cmp(&a.seq)));
        if let Some(n) = rule.max_events {
            kept.truncate(n);
        }
        // 4. decay.
        let mut sum = 0.0;
        for e in &kept {
            let age_days = ((t - e.at) * 1_000_000) as f64 / 86_400_000_000.0;
            sum += match rule.half_life_days {
                Some(h) => rule.points * 0.5f64.powf(age_days / h),
                None => rule.points,
            };
        }
        // 5. cap.
        if let Some(c) = rule.cap {
            sum = sum.clamp(-c, c);
        }
        engagement += sum;
        entries.push((rule.id, "behavior", sum, Some(kept.len() as u64)));
    }
    Expected {
        lead: lead.id.clone(),
        score: (fit + engagement).clamp(0.0, 100.0),
        fit,
        engagement,
        entries,
    }
}

/// Half away from zero, to cents.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `got` is `exact` rounded to cents; either neighbour is accepted when
/// `exact` sits (within float noise) on a half cent.
#[track_caller]
fn assert_rounds_to(got: f64, exact: f64, what: &str) {
    let cents = exact * 100.0;
    let on_half = ((cents - cents.trunc()).abs() - 0.5).abs() < 1e-6;
    let ok = if on_half {
        (got * 100.0 - cents.floor()).abs() < 1e-6 || (got * 100.0 - cents.ceil()).abs() < 1e-6
    } else {
        (got - round2(exact)).abs() < 1e-9
    };
    assert!(ok, "{what}: got {got}, expected {exact} rounded to cents");
}

#[track_caller]
fn number(v: &Value, what: &str) -> f64 {
    v.as_f64()
        .filter(|_| v.is_number())
        .unwrap_or_else(|| panic!("{what}: {v} is not a JSON number"))
}

impl Expected {
    /// Score, fit and engagement match; band, grade and MQL follow from the
    /// rounded numbers as the spec says.
    #[track_caller]
    pub fn check_numbers(&self, row: &Value) {
        let lead = &self.lead;
        assert_eq!(row["lead"], lead.as_str());
        let score = number(&row["score"], lead);
        let fit = number(&row["fit"], lead);
        assert_rounds_to(score, self.score, &format!("{lead} score"));
        assert_rounds_to(fit, self.fit, &format!("{lead} fit"));
        assert_rounds_to(
            number(&row["engagement"], lead),
            self.engagement,
            &format!("{lead} engagement"),
        );
        let band = match score {
            s if s >= 76.0 => "very_hot",
            s if s >= 50.0 => "hot",
            s if s >= 25.0 => "warm",
            _ => "cold",
        };
        let grade = match fit {
            f if f >= 25.0 => "A",
            f if f >= 15.0 => "B",
            f if f >= 8.0 => "C",
            _ => "D",
        };
        assert_eq!(row["band"], band, "{lead} band");
        assert_eq!(row["grade"], grade, "{lead} grade");
        assert_eq!(
            row["mql"],
            Value::Bool(score >= 50.0 && grade != "D"),
            "{lead} mql"
        );
    }

    /// Everything, the breakdown included (entries that round to zero left
    /// out; largest first, fit before behavior, then model order).
    #[track_caller]
    pub fn check(&self, row: &Value) {
        self.check_numbers(row);
        let lead = &self.lead;
        let mut want: Vec<(usize, &Entry)> = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| round2(e.2) != 0.0)
            .collect();
        want.sort_by(|(ia, a), (ib, b)| {
            round2(b.2)
                .abs()
                .total_cmp(&round2(a.2).abs())
                .then((a.1 == "behavior").cmp(&(b.1 == "behavior")))
                .then(ia.cmp(ib))
        });
        let got = row["breakdown"].as_array().expect("a breakdown array");
        assert_eq!(got.len(), want.len(), "{lead}: {row}\nexpected {want:?}");
        for (g, (_, (rule, kind, points, events))) in got.iter().zip(&want) {
            assert_eq!(g["rule"], *rule, "{lead}: {row}\nexpected {want:?}");
            assert_eq!(g["kind"], *kind, "{lead} {rule}");
            assert_rounds_to(number(&g["points"], lead), *points, &format!("{lead} {rule}"));
            assert_eq!(
                g.get("events").map(|n| n.as_u64().expect("a whole number")),
                *events,
                "{lead} {rule} events"
            );
        }
    }
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(secs: i64) -> String {
    let (y, m, d, hh, mm, ss) = civil(secs);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
}

/// The same instant written in a `+HH:00` offset.
pub fn rfc3339_offset(secs: i64, hours: i64) -> String {
    let (y, m, d, hh, mm, ss) = civil(secs + hours * 3600);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}+{hours:02}:00")
}

/// Howard Hinnant's civil_from_days, with the time of day.
fn civil(secs: i64) -> (i64, i64, i64, i64, i64, i64) {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}
