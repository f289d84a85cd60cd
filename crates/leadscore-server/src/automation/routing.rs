//! Which rep gets a lead: the reps whose territory, industries and languages
//! match it, who are available and under capacity, chosen by a strategy.
//! The choice is only a proposal: the assignment's transaction takes the
//! slot with a conditional increment, and a rep found full by then is left
//! out and the choice made again (see `Automation::save`).

use std::collections::{HashMap, HashSet};

use leadscore_core::{Lead, StdField};
use leadscore_store::automation::RepLoad;

use super::config::{AutomationSettings, Rep, Seniority, Strategy};

/// The language a lead speaks: its `language` attribute, else the main
/// language of its country (for the countries our users sell in most).
pub fn lead_language(lead: &Lead) -> Option<String> {
    if let Some(l) = lead.attribute("language") {
        return Some(l.trim().to_lowercase());
    }
    let country = lead.get(StdField::Country)?.trim().to_lowercase();
    let lang = match country.as_str() {
        "vn" | "vnm" | "vietnam" | "viet nam" => "vi",
        "ua" | "ukr" | "ukraine" => "uk",
        "us" | "usa" | "united states" | "gb" | "uk" | "united kingdom" | "ie" | "ireland" | "au"
        | "australia" | "nz" | "new zealand" | "ca" | "canada" | "in" | "india" | "sg" | "singapore" => "en",
        "de" | "germany" | "at" | "austria" => "de",
        "fr" | "france" => "fr",
        "es" | "spain" | "mx" | "mexico" => "es",
        "pl" | "poland" => "pl",
        _ => return None,
    };
    Some(lang.to_owned())
}

fn listed(list: &[String], value: Option<&str>) -> bool {
    list.is_empty()
        || value.is_some_and(|v| {
            let v = v.trim();
            list.iter().any(|x| x.trim().eq_ignore_ascii_case(v))
        })
}

/// Does the rep serve this lead (territory, industry, language)?
pub fn serves(rep: &Rep, lead: &Lead) -> bool {
    listed(&rep.countries, lead.get(StdField::Country))
        && listed(&rep.regions, lead.get(StdField::Region))
        && listed(&rep.industries, lead.get(StdField::Industry))
        && (rep.languages.is_empty() || lead_language(lead).is_none_or(|l| listed(&rep.languages, Some(&l))))
}

/// The rep to give the lead to, or `None` when no rep matches with room.
pub fn choose<'a>(
    settings: &'a AutomationSettings,
    lead: &Lead,
    band: Option<&str>,
    strategy: Strategy,
    loads: &HashMap<String, RepLoad>,
    exclude: &HashSet<String>,
) -> Option<&'a Rep> {
    let load = |r: &Rep| {
        loads
            .get(&r.name)
            .map_or((0, 0), |l| (l.open_leads, l.last_assigned))
    };
    let candidates: Vec<&Rep> = settings
        .reps
        .iter()
        .filter(|r| r.available && !exclude.contains(&r.name))
        .filter(|r| load(r).0 < i64::from(r.capacity))
        .filter(|r| serves(r, lead))
        .collect();
    let round_robin = |pool: &[&'a Rep]| pool.iter().copied().min_by_key(|r| (load(r).1, &r.name));
    match strategy {
        Strategy::RoundRobin => round_robin(&candidates),
        Strategy::LeastLoaded => candidates
            .iter()
            .copied()
            .min_by_key(|r| (load(r).0, load(r).1, &r.name)),
        Strategy::SeniorForHot => {
            let hot = band.is_some_and(|b| settings.senior_bands.iter().any(|s| s == b));
            let (senior, junior): (Vec<&Rep>, Vec<&Rep>) =
                candidates.iter().partition(|r| r.seniority == Seniority::Senior);
            if hot {
                round_robin(&senior)
            } else {
                round_robin(&junior).or_else(|| round_robin(&senior))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep(name: &str, countries: &[&str], seniority: Seniority, capacity: u32) -> Rep {
        Rep {
            name: name.into(),
            countries: countries.iter().map(|c| c.to_string()).collect(),
            regions: vec![],
            industries: vec![],
            languages: vec![],
            seniority,
            capacity,
            available: true,
        }
    }

    fn lead(country: &str) -> Lead {
        let mut l = Lead::default();
        l.set(StdField::Country, country);
        l
    }

    fn loads(items: &[(&str, i64, i64)]) -> HashMap<String, RepLoad> {
        items
            .iter()
            .map(|(r, open, last)| {
                (
                    r.to_string(),
                    RepLoad {
                        rep: r.to_string(),
                        open_leads: *open,
                        assigned: 0,
                        last_assigned: *last,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn strategies_pick_as_documented() {
        let s = AutomationSettings {
            reps: vec![
                rep("an", &["VN"], Seniority::Senior, 2),
                rep("binh", &["VN"], Seniority::Junior, 5),
                rep("olena", &["UA"], Seniority::Senior, 5),
            ],
            ..AutomationSettings::default()
        };
        let none = HashSet::new();
        let l = loads(&[("an", 1, 3), ("binh", 0, 5), ("olena", 0, 1)]);
        let vn = lead("VN");
        // Round-robin: the rep who got a lead least recently.
        assert_eq!(
            choose(&s, &vn, None, Strategy::RoundRobin, &l, &none)
                .unwrap()
                .name,
            "an"
        );
        assert_eq!(
            choose(&s, &vn, None, Strategy::LeastLoaded, &l, &none)
                .unwrap()
                .name,
            "binh"
        );
        // Hot leads go to seniors only; others to juniors first.
        assert_eq!(
            choose(&s, &vn, Some("hot"), Strategy::SeniorForHot, &l, &none)
                .unwrap()
                .name,
            "an"
        );
        assert_eq!(
            choose(&s, &vn, Some("warm"), Strategy::SeniorForHot, &l, &none)
                .unwrap()
                .name,
            "binh"
        );
        // Capacity: an is full at 2.
        let full = loads(&[("an", 2, 0), ("binh", 0, 5)]);
        assert!(choose(&s, &vn, Some("hot"), Strategy::SeniorForHot, &full, &none).is_none());
        // Territory: nobody serves Japan.
        assert!(choose(&s, &lead("JP"), None, Strategy::RoundRobin, &l, &none).is_none());
        assert_eq!(
            choose(&s, &lead("ua"), None, Strategy::RoundRobin, &l, &none)
                .unwrap()
                .name,
            "olena"
        );
        // Excluded (the current owner, on escalation).
        let ex: HashSet<String> = ["an".to_string()].into();
        assert_eq!(
            choose(&s, &vn, None, Strategy::RoundRobin, &l, &ex).unwrap().name,
            "binh"
        );
    }

    #[test]
    fn languages_follow_the_country_unless_given() {
        let mut r = rep("an", &[], Seniority::Junior, 1);
        r.languages = vec!["vi".into()];
        assert!(serves(&r, &lead("Vietnam")));
        assert!(!serves(&r, &lead("Ukraine")));
        let mut l = lead("Ukraine");
        l.set_attribute("language", "vi");
        assert!(serves(&r, &l));
        // Unknown language: not held against the rep.
        assert!(serves(&r, &lead("Narnia")));
    }
}
