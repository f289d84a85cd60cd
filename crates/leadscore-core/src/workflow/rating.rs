//! The first evaluation of a lead (seed 003): what its data says about how
//! serious it is and how well it fits, the rating this proposes, and when a
//! rep's rating disagrees with the score.

use serde::{Deserialize, Serialize};

use crate::checks::{PhoneKind, classify_email, classify_phone, is_full_name};
use crate::{FieldRef, LeadData, ScoringModel, StdField};

/// How promising a lead is, as a rep judges it (seed 003's scale).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rating {
    Unknown,
    NotPotential,
    Low,
    Medium,
    High,
}

impl Rating {
    pub const ALL: [Rating; 5] = [
        Rating::Unknown,
        Rating::NotPotential,
        Rating::Low,
        Rating::Medium,
        Rating::High,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Rating::Unknown => "unknown",
            Rating::NotPotential => "not_potential",
            Rating::Low => "low",
            Rating::Medium => "medium",
            Rating::High => "high",
        }
    }

    pub fn parse(s: &str) -> Option<Rating> {
        Rating::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Place on a 0..=3 scale (not_potential .. high); `None` for unknown.
    const fn level(self) -> Option<f64> {
        match self {
            Rating::Unknown => None,
            Rating::NotPotential => Some(0.0),
            Rating::Low => Some(1.0),
            Rating::Medium => Some(2.0),
            Rating::High => Some(3.0),
        }
    }
}

/// What the lead's own data says, checked when it arrives or is edited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signals {
    /// A first and a last name (or a full name in one of them).
    pub full_name: bool,
    /// `missing`, `invalid`, `mobile`, `landline` or `valid` (the metadata
    /// cannot tell the line type), for the lead's country.
    pub phone: String,
    /// `missing`, `invalid`, `disposable`, `free` or `corporate`.
    pub email: String,
    pub company: bool,
    /// How the lead fits the ideal customer profile, as the model's fit rules
    /// on each field see it: `true` (a rule that adds points holds), `false`
    /// (there are rules on it and none that adds points holds), `null` (the
    /// model has no rule on it, or the lead leaves it blank).
    pub industry_fit: Option<bool>,
    pub size_fit: Option<bool>,
    pub location_fit: Option<bool>,
}

const SIZE_FIELDS: [StdField; 2] = [StdField::Employees, StdField::AnnualRevenue];
const LOCATION_FIELDS: [StdField; 3] = [StdField::Country, StdField::Region, StdField::City];

impl Signals {
    /// Reads the signals of a lead; `model` (the active one, if any) decides
    /// what fits the ideal customer profile.
    pub fn of(lead: &(impl LeadData + ?Sized), model: Option<&ScoringModel>) -> Signals {
        let given = |f: StdField| lead.get(f).is_some_and(|v| !v.trim().is_empty());
        let full_name = is_full_name(lead.get(StdField::FirstName), lead.get(StdField::LastName));
        let phone: &str = match lead.get(StdField::Phone).filter(|p| !p.trim().is_empty()) {
            None => "missing",
            Some(p) => match classify_phone(p, lead.get(StdField::Country)) {
                PhoneKind::Invalid => "invalid",
                PhoneKind::Mobile => "mobile",
                PhoneKind::Landline => "landline",
                PhoneKind::Other => "valid",
            },
        };
        let email: &str = match lead.get(StdField::Email).filter(|e| !e.trim().is_empty()) {
            None => "missing",
            Some(e) => classify_email(e).as_str(),
        };
        let fit = |fields: &[StdField]| model.and_then(|m| fits(m, lead, fields));
        Signals {
            full_name,
            phone: phone.to_owned(),
            email: email.to_owned(),
            company: given(StdField::Company),
            industry_fit: fit(&[StdField::Industry]),
            size_fit: fit(&SIZE_FIELDS),
            location_fit: fit(&LOCATION_FIELDS),
        }
    }
}

/// Whether a rule on one of `fields` that adds points holds; `None` when the
/// model has no such rule or the lead gives none of those fields.
fn fits(model: &ScoringModel, lead: &(impl LeadData + ?Sized), fields: &[StdField]) -> Option<bool> {
    let on_fields = |r: &&crate::FitRule| matches!(r.field, FieldRef::Std(f) if fields.contains(&f));
    let rules: Vec<&crate::FitRule> = model
        .fit
        .iter()
        .filter(on_fields)
        .filter(|r| r.points > 0.0)
        .collect();
    let blank = fields
        .iter()
        .all(|f| lead.get(*f).is_none_or(|v| v.trim().is_empty()));
    if rules.is_empty() || blank {
        return None;
    }
    Some(rules.iter().any(|r| r.holds(lead)))
}

/// How signals and the grade add up to a proposed rating. Every weight is a
/// setting (`[rating]` in the configuration file); the defaults follow seed
/// 003: a complete, trustworthy sign-up from a company that fits is `high`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RatingPolicy {
    pub full_name: i32,
    pub phone_valid: i32,
    pub phone_invalid: i32,
    pub email_corporate: i32,
    pub email_free: i32,
    pub email_disposable: i32,
    pub email_invalid: i32,
    pub company: i32,
    /// Per profile dimension (industry, size, location) that fits.
    pub profile_fit: i32,
    /// Per profile dimension that does not.
    pub profile_miss: i32,
    pub grade_a: i32,
    pub grade_b: i32,
    pub grade_c: i32,
    pub grade_d: i32,
    /// Lowest total for each rating; below `low` the proposal is `not_potential`.
    pub high: i32,
    pub medium: i32,
    pub low: i32,
    /// How far (on a 0..3 scale: not_potential, low, medium, high against the
    /// lead's band from lowest to highest) a rep's rating and the score must
    /// be apart for the lead to be flagged.
    pub disagreement_gap: f64,
}

impl Default for RatingPolicy {
    fn default() -> Self {
        RatingPolicy {
            full_name: 1,
            phone_valid: 1,
            phone_invalid: -1,
            email_corporate: 1,
            email_free: 0,
            email_disposable: -3,
            email_invalid: -2,
            company: 1,
            profile_fit: 1,
            profile_miss: -1,
            grade_a: 2,
            grade_b: 1,
            grade_c: 0,
            grade_d: -1,
            high: 6,
            medium: 3,
            low: 0,
            disagreement_gap: 3.0,
        }
    }
}

/// A proposed rating with the points behind it, in words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    pub rating: Rating,
    pub points: i32,
    pub reasons: Vec<String>,
}

/// The evaluation of a lead at one moment: its signals and the rating they
/// propose. The first one, made when the lead arrives, is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// RFC 3339.
    pub at: String,
    pub signals: Signals,
    pub proposed_rating: Rating,
    pub points: i32,
    pub reasons: Vec<String>,
}

impl Evaluation {
    pub fn new(at: crate::Timestamp, signals: Signals, proposal: Proposal) -> Evaluation {
        Evaluation {
            at: at.to_string(),
            signals,
            proposed_rating: proposal.rating,
            points: proposal.points,
            reasons: proposal.reasons,
        }
    }
}

impl RatingPolicy {
    /// Checks the thresholds are in order.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.low <= self.medium && self.medium <= self.high) {
            return Err("rating thresholds must satisfy low <= medium <= high".into());
        }
        if !(self.disagreement_gap > 0.0 && self.disagreement_gap <= 3.0) {
            return Err("rating.disagreement_gap must be above 0 and at most 3".into());
        }
        Ok(())
    }

    /// The rating the signals and grade (`A`..`D`, if scored) propose. A lead
    /// with neither an e-mail, a phone nor a company is `unknown`: there is
    /// nothing to judge it by.
    pub fn propose(&self, s: &Signals, grade: Option<&str>) -> Proposal {
        let mut points = 0;
        let mut reasons = Vec::new();
        let mut add = |p: i32, why: &str| {
            if p != 0 {
                points += p;
                reasons.push(format!("{why} ({p:+})"));
            }
        };
        if s.full_name {
            add(self.full_name, "full name given");
        }
        match s.phone.as_str() {
            "missing" => {}
            "invalid" => add(self.phone_invalid, "phone number is not valid"),
            _ => add(self.phone_valid, "valid phone number"),
        }
        match s.email.as_str() {
            "corporate" => add(self.email_corporate, "company e-mail"),
            "free" => add(self.email_free, "free e-mail provider"),
            "disposable" => add(self.email_disposable, "disposable e-mail"),
            "invalid" => add(self.email_invalid, "e-mail address is not valid"),
            _ => {}
        }
        if s.company {
            add(self.company, "company given");
        }
        for (fit, what) in [
            (s.industry_fit, "industry"),
            (s.size_fit, "company size"),
            (s.location_fit, "location"),
        ] {
            match fit {
                Some(true) => add(self.profile_fit, &format!("{what} fits the profile")),
                Some(false) => add(self.profile_miss, &format!("{what} outside the profile")),
                None => {}
            }
        }
        match grade {
            Some("A") => add(self.grade_a, "fit grade A"),
            Some("B") => add(self.grade_b, "fit grade B"),
            Some("C") => add(self.grade_c, "fit grade C"),
            Some("D") => add(self.grade_d, "fit grade D"),
            _ => {}
        }
        let nothing_known = s.phone == "missing" && s.email == "missing" && !s.company;
        let rating = if nothing_known {
            Rating::Unknown
        } else if points >= self.high {
            Rating::High
        } else if points >= self.medium {
            Rating::Medium
        } else if points >= self.low {
            Rating::Low
        } else {
            Rating::NotPotential
        };
        Proposal {
            rating,
            points,
            reasons,
        }
    }

    /// Does a rep's rating strongly disagree with the score? `band` is the
    /// lead's band index among `bands` (lowest first); an MQL counts as at
    /// least the middle of the scale.
    pub fn disagrees(&self, rating: Rating, band: usize, bands: usize, mql: bool) -> bool {
        let Some(level) = rating.level() else {
            return false;
        };
        let mut place = if bands > 1 {
            band as f64 * 3.0 / (bands - 1) as f64
        } else {
            1.5
        };
        if mql {
            place = place.max(1.5);
        }
        (level - place).abs() >= self.disagreement_gap - 1e-9
    }

    /// The (rating, band, MQL) combinations that are flagged, for filtering
    /// lists in SQL.
    pub fn disagreeing_pairs(&self, model: &ScoringModel) -> Vec<(Rating, String, bool)> {
        let n = model.bands.len();
        let mut out = Vec::new();
        for r in Rating::ALL {
            for (i, b) in model.bands.iter().enumerate() {
                for mql in [false, true] {
                    if self.disagrees(r, i, n, mql) {
                        out.push((r, b.name.clone(), mql));
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Lead;

    fn model() -> ScoringModel {
        ScoringModel::from_toml(
            r#"
name = "t"
[[band]]
name = "cold"
from = 0
[[band]]
name = "warm"
from = 25
[[band]]
name = "hot"
from = 50
[[band]]
name = "very_hot"
from = 76
[[fit]]
id = "industry"
field = "industry"
in = ["travel", "software"]
points = 8
[[fit]]
id = "mid"
field = "employees"
gte = 50
points = 3
[[fit]]
id = "tiny"
field = "employees"
lt = 5
points = -4
[[fit]]
id = "where"
field = "country"
in = ["VN"]
points = 2
"#,
            "t.toml",
        )
        .unwrap()
    }

    /// Seed 003's example: Võ Dương Giang signs up for a trial with a full
    /// name, a full mobile number, a company e-mail, a travel company of 100.
    #[test]
    fn seed_003_example_is_high() {
        let lead = Lead::new("giang")
            .with(StdField::FirstName, "Võ Dương")
            .with(StdField::LastName, "Giang")
            .with(StdField::Phone, "0912 345 678")
            .with(StdField::Email, "giang@saigontravel.vn")
            .with(StdField::Company, "Saigon Travel")
            .with(StdField::Industry, "Travel")
            .with(StdField::Employees, "100")
            .with(StdField::Country, "VN");
        let m = model();
        let s = Signals::of(&lead, Some(&m));
        assert!(s.full_name);
        assert_eq!(s.phone, "mobile");
        assert_eq!(s.email, "corporate");
        assert!(s.company);
        assert_eq!(
            (s.industry_fit, s.size_fit, s.location_fit),
            (Some(true), Some(true), Some(true))
        );
        let p = RatingPolicy::default().propose(&s, Some("B"));
        assert_eq!(p.points, 8, "{:?}", p.reasons);
        assert_eq!(p.rating, Rating::High);
    }

    #[test]
    fn thin_or_untrustworthy_leads_rate_low() {
        let m = model();
        let policy = RatingPolicy::default();
        let nothing = Signals::of(&Lead::new("x").with(StdField::FirstName, "Ann"), Some(&m));
        assert_eq!(policy.propose(&nothing, None).rating, Rating::Unknown);
        let throwaway = Lead::new("y")
            .with(StdField::Email, "zz@mailinator.com")
            .with(StdField::Employees, "2");
        let s = Signals::of(&throwaway, Some(&m));
        assert_eq!(s.email, "disposable");
        assert_eq!(s.size_fit, Some(false));
        assert_eq!(policy.propose(&s, Some("D")).rating, Rating::NotPotential);
        let free = Lead::new("z")
            .with(StdField::FirstName, "Ann")
            .with(StdField::LastName, "Lee")
            .with(StdField::Email, "ann@gmail.com");
        let s = Signals::of(&free, Some(&m));
        assert_eq!((s.industry_fit, s.size_fit), (None, None));
        assert_eq!(policy.propose(&s, Some("D")).rating, Rating::Low);
        assert_eq!(policy.propose(&s, Some("A")).rating, Rating::Medium);
    }

    #[test]
    fn strong_disagreements_are_flagged() {
        let p = RatingPolicy::default();
        assert!(p.disagrees(Rating::High, 0, 4, false));
        assert!(!p.disagrees(Rating::High, 1, 4, false));
        assert!(p.disagrees(Rating::NotPotential, 3, 4, true));
        assert!(!p.disagrees(Rating::NotPotential, 2, 4, true));
        assert!(!p.disagrees(Rating::Unknown, 0, 4, false));
        let pairs = p.disagreeing_pairs(&model());
        assert_eq!(
            pairs,
            vec![
                (Rating::NotPotential, "very_hot".to_owned(), false),
                (Rating::NotPotential, "very_hot".to_owned(), true),
                (Rating::High, "cold".to_owned(), false),
            ]
        );
    }
}
