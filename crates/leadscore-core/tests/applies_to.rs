//! `applies_to`: which leads a model scores when several models are active
//! (an extension of the spec, see `docs/scoring-model-extensions.md`).

use leadscore_core::{Lead, ScoringModel, StdField};

const BASE: &str = "name = \"upsell\"\n[[band]]\nname = \"cold\"\nfrom = 0\n\
                    [[fit]]\nid = \"big\"\nfield = \"employees\"\ngte = 100\npoints = 10\n";

fn model(extra: &str) -> Result<ScoringModel, leadscore_core::ModelError> {
    ScoringModel::from_toml(&format!("{BASE}{extra}"), "upsell.toml")
}

#[test]
fn a_model_without_applies_to_takes_every_lead() {
    let m = model("").unwrap();
    assert!(m.applies_to.is_none());
    assert!(m.applies_to_lead(&Lead::new("x")));
}

#[test]
fn the_condition_uses_the_fit_rule_syntax() {
    let m = model("[applies_to]\nfield = \"is_customer\"\nequals = true\n").unwrap();
    let customer = Lead::new("c").with(StdField::IsCustomer, "yes");
    let prospect = Lead::new("p").with(StdField::IsCustomer, "false");
    assert!(m.applies_to_lead(&customer));
    assert!(!m.applies_to_lead(&prospect));
    assert!(
        !m.applies_to_lead(&Lead::new("blank")),
        "a blank field holds no condition"
    );
    let negated = model("[applies_to]\nfield = \"is_customer\"\nequals = true\nnegate = true\n").unwrap();
    assert!(negated.applies_to_lead(&prospect));
    assert!(negated.applies_to_lead(&Lead::new("blank")));
    // Scoring itself ignores the condition: the caller picks the model.
    let s = m.score(&prospect, &[], leadscore_core::Timestamp::from_micros(0));
    assert_eq!(s.score, 0.0);
}

#[test]
fn a_bad_condition_is_refused_with_its_place() {
    for (extra, fragment) in [
        ("[applies_to]\nfield = \"is_customer\"\n", "no operator"),
        (
            "[applies_to]\nfield = \"industry\"\nequals = \"x\"\nin = [\"y\"]\n",
            "two operators",
        ),
        (
            "[applies_to]\nfield = \"industry\"\nequals = \"x\"\npoints = 3\n",
            "`points` does not belong",
        ),
        (
            "[applies_to]\nfield = \"industry\"\nmatches = \"(\"\n",
            "applies_to",
        ),
    ] {
        let e = model(extra).unwrap_err();
        let shown = e.to_string();
        assert!(shown.starts_with("upsell.toml"), "{shown}");
        assert_eq!(e.rule.as_deref(), Some("applies_to"), "{shown}");
        assert!(shown.contains(fragment), "{fragment}: {shown}");
    }
}
