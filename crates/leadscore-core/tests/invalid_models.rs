//! Refused models (`shared/spec/scoring-model.md`, "Invalid models"): every refusal
//! names the file, the rule id where there is one, and what is wrong.

use leadscore_core::{ModelError, ScoringModel};

const SOURCE: &str = "models/broken-model.toml";

/// A valid header: name, score range, bands, mql and grade.
const HEADER: &str = "name = \"m\"\n\
                      [score]\nmin = 0\nmax = 100\n\
                      [[band]]\nname = \"cold\"\nfrom = 0\n\
                      [[band]]\nname = \"warm\"\nfrom = 25\n\
                      [[band]]\nname = \"hot\"\nfrom = 50\n\
                      [mql]\nthreshold = 50\nmin_grade = \"C\"\n\
                      [grade]\nA = 25\nB = 15\nC = 8\n";

/// A fit rule and a behavior rule that are both fine.
const GOOD_RULES: &str = "[[fit]]\nid = \"ok_fit\"\nfield = \"industry\"\nequals = \"software\"\npoints = 5\n\
                          [[behavior]]\nid = \"ok_behavior\"\nevents = [\"email_clicked\"]\npoints = 5\n";

#[track_caller]
fn refused(text: &str) -> ModelError {
    match ScoringModel::from_toml(text, SOURCE) {
        Ok(m) => panic!("model accepted, expected a refusal:\n{text}\n=> {m:?}"),
        Err(e) => e,
    }
}

/// Asserts the model is refused naming the source, `rule`, and every one of `fragments`.
#[track_caller]
fn check(text: &str, rule: Option<&str>, fragments: &[&str]) {
    let e = refused(text);
    let shown = e.to_string();
    assert_eq!(e.source_name, SOURCE, "{shown}");
    assert_eq!(e.rule.as_deref(), rule, "{shown}");
    assert!(
        shown.starts_with(SOURCE),
        "the message starts with the file: {shown}"
    );
    if let Some(rule) = rule {
        assert!(
            shown.contains(&format!("`{rule}`")),
            "the message names rule `{rule}`: {shown}"
        );
    }
    for f in fragments {
        assert!(
            shown.to_lowercase().contains(&f.to_lowercase()),
            "expected {f:?} in: {shown}"
        );
    }
    assert!(!e.message.trim().is_empty());
}

/// A model made of the valid header, the good rules and `rules`.
fn with(rules: &str) -> String {
    format!("{HEADER}{GOOD_RULES}{rules}")
}

/// A fit rule with id `bad` and the given body.
fn fit(body: &str) -> String {
    with(&format!("[[fit]]\nid = \"bad\"\npoints = 3\n{body}\n"))
}

/// A behavior rule with id `bad` and the given body.
fn behavior(body: &str) -> String {
    with(&format!("[[behavior]]\nid = \"bad\"\n{body}\n"))
}

#[test]
fn the_header_and_good_rules_are_valid() {
    let m = ScoringModel::from_toml(&with(""), SOURCE).unwrap();
    assert_eq!((m.fit.len(), m.behavior.len(), m.bands.len()), (1, 1, 3));
}

// ---------------------------------------------------------------- fit operators

#[test]
fn unknown_operator_or_key_on_a_fit_rule() {
    check(
        &fit("field = \"job_title\"\nmatchs = \"CEO\""),
        Some("bad"),
        &["matchs"],
    );
    check(
        &fit("field = \"job_title\"\nequal = \"CEO\""),
        Some("bad"),
        &["equal"],
    );
    check(
        &fit("field = \"employees\"\ngreater_than = 5"),
        Some("bad"),
        &["greater_than"],
    );
    check(
        &fit("field = \"employees\"\ngte = 5\nweight = 2"),
        Some("bad"),
        &["weight"],
    );
    check(
        &fit("field = \"employees\"\ngte = 5\nnegated = true"),
        Some("bad"),
        &["negated"],
    );
}

#[test]
fn two_operators_on_one_rule() {
    check(
        &fit("field = \"industry\"\nequals = \"a\"\nin = [\"b\"]"),
        Some("bad"),
        &["two operators", "equals", "in"],
    );
    check(
        &fit("field = \"industry\"\nequals = \"a\"\nmatches = \"a\""),
        Some("bad"),
        &["two operators"],
    );
    check(
        &fit("field = \"employees\"\ngte = 5\nexists = true"),
        Some("bad"),
        &["two operators"],
    );
    check(
        &fit("field = \"email\"\nis = \"corporate\"\nmatches = \"@\""),
        Some("bad"),
        &["two operators"],
    );
    check(
        &fit("field = \"employees\"\nlt = 5\nequals = 3"),
        Some("bad"),
        &["two operators"],
    );
    check(
        &fit("field = \"email\"\nis = \"corporate\"\nexists = true\nin = [\"x\"]"),
        Some("bad"),
        &["two operators"],
    );
}

#[test]
fn two_lower_or_two_upper_bounds() {
    check(
        &fit("field = \"employees\"\ngte = 5\ngt = 6"),
        Some("bad"),
        &["lower bound"],
    );
    check(
        &fit("field = \"employees\"\nlte = 5\nlt = 6"),
        Some("bad"),
        &["upper bound"],
    );
}

#[test]
fn an_empty_range() {
    check(
        &fit("field = \"employees\"\ngte = 10\nlte = 5"),
        Some("bad"),
        &["range is empty"],
    );
    check(
        &fit("field = \"employees\"\ngt = 5\nlt = 5"),
        Some("bad"),
        &["range is empty"],
    );
    check(
        &fit("field = \"employees\"\ngte = 5\nlt = 5"),
        Some("bad"),
        &["range is empty"],
    );
}

#[test]
fn no_operator() {
    check(&fit("field = \"industry\""), Some("bad"), &["no operator"]);
    check(
        &fit("field = \"industry\"\nnegate = true"),
        Some("bad"),
        &["no operator"],
    );
}

#[test]
fn regex_that_does_not_compile() {
    check(
        &fit("field = \"job_title\"\nmatches = \"(ceo|cto\""),
        Some("bad"),
        &["regular expression"],
    );
    check(
        &fit("field = \"job_title\"\nmatches = \"[a-\""),
        Some("bad"),
        &["regular expression"],
    );
    check(
        &fit("field = \"job_title\"\nmatches = \"*ceo\""),
        Some("bad"),
        &["regular expression"],
    );
    // Look-around is not Rust `regex` syntax.
    check(
        &fit("field = \"job_title\"\nmatches = \"(?=ceo)\""),
        Some("bad"),
        &["regular expression"],
    );
}

#[test]
fn unknown_is_check() {
    check(
        &fit("field = \"email\"\nis = \"business_email\""),
        Some("bad"),
        &["business_email", "corporate"],
    );
    check(
        &fit("field = \"phone\"\nis = \"phone\""),
        Some("bad"),
        &["not a built-in check"],
    );
    check(
        &fit("field = \"email\"\nis = \"Corporate\""),
        Some("bad"),
        &["not a built-in check"],
    );
    check(
        &fit("field = \"email\"\nis = \"\""),
        Some("bad"),
        &["not a built-in check"],
    );
}

#[test]
fn full_name_only_on_first_name() {
    check(
        &fit("field = \"last_name\"\nis = \"full_name\""),
        Some("bad"),
        &["full_name", "first_name"],
    );
    check(
        &fit("field = \"name\"\nis = \"full_name\""),
        Some("bad"),
        &["full_name", "first_name"],
    );
    assert!(ScoringModel::from_toml(&fit("field = \"first_name\"\nis = \"full_name\""), SOURCE).is_ok());
}

#[test]
fn exists_false_is_refused() {
    check(
        &fit("field = \"phone\"\nexists = false"),
        Some("bad"),
        &["exists"],
    );
}

#[test]
fn operand_types() {
    check(&fit("field = \"industry\"\nin = []"), Some("bad"), &["empty"]);
    check(
        &fit("field = \"industry\"\nequals = [\"a\"]"),
        Some("bad"),
        &["cannot compare"],
    );
    check(
        &fit("field = \"industry\"\nin = [\"a\", [\"b\"]]"),
        Some("bad"),
        &["cannot compare"],
    );
    check(
        &fit("field = \"industry\"\nequals = { a = 1 }"),
        Some("bad"),
        &["cannot compare"],
    );
    check(
        &fit("field = \"employees\"\ngte = \"500\""),
        Some("bad"),
        &["string"],
    );
    check(&fit("field = \"employees\"\ngte = nan"), Some("bad"), &["finite"]);
    check(&fit("field = \"employees\"\nlte = inf"), Some("bad"), &["finite"]);
    check(
        &fit("field = \"job_title\"\nmatches = 5"),
        Some("bad"),
        &["string"],
    );
    check(&fit("field = \"email\"\nis = true"), Some("bad"), &["string"]);
}

#[test]
fn fit_rule_without_field_or_points() {
    check(
        &with("[[fit]]\nid = \"bad\"\nequals = \"x\"\npoints = 1\n"),
        Some("bad"),
        &["field"],
    );
    check(
        &with("[[fit]]\nid = \"bad\"\nfield = \"  \"\nequals = \"x\"\npoints = 1\n"),
        Some("bad"),
        &["field"],
    );
    check(
        &with("[[fit]]\nid = \"bad\"\nfield = \"industry\"\nequals = \"x\"\n"),
        Some("bad"),
        &["points"],
    );
    check(
        &with("[[fit]]\nid = \"bad\"\nfield = \"industry\"\nequals = \"x\"\npoints = \"5\"\n"),
        Some("bad"),
        &["string"],
    );
    check(
        &with("[[fit]]\nid = \"bad\"\nfield = \"industry\"\nequals = \"x\"\npoints = nan\n"),
        Some("bad"),
        &["points", "finite"],
    );
    check(
        &with("[[fit]]\nid = \"bad\"\nfield = \"industry\"\nequals = \"x\"\npoints = inf\n"),
        Some("bad"),
        &["points", "finite"],
    );
}

// ---------------------------------------------------------------- behavior options

#[test]
fn unknown_key_on_a_behavior_rule() {
    check(
        &behavior("events = [\"x\"]\npoints = 1\nwindow = 30"),
        Some("bad"),
        &["window"],
    );
    check(
        &behavior("events = [\"x\"]\npoints = 1\nhalflife_days = 30"),
        Some("bad"),
        &["halflife_days"],
    );
    check(&behavior("event = [\"x\"]\npoints = 1"), Some("bad"), &["event"]);
    check(
        &behavior("events = [\"x\"]\npoints = 1\nfield = \"email\""),
        Some("bad"),
        &["field"],
    );
}

#[test]
fn half_life_must_be_positive() {
    check(
        &behavior("events = [\"x\"]\npoints = 1\nhalf_life_days = -30"),
        Some("bad"),
        &["half_life_days", "-30"],
    );
    check(
        &behavior("events = [\"x\"]\npoints = 1\nhalf_life_days = 0"),
        Some("bad"),
        &["half_life_days"],
    );
    check(
        &behavior("events = [\"x\"]\npoints = 1\nhalf_life_days = -0.5"),
        Some("bad"),
        &["half_life_days"],
    );
    check(
        &behavior("events = [\"x\"]\npoints = 1\nhalf_life_days = nan"),
        Some("bad"),
        &["half_life_days"],
    );
    check(
        &behavior("events = [\"x\"]\npoints = 1\nhalf_life_days = inf"),
        Some("bad"),
        &["half_life_days"],
    );
}

#[test]
fn window_must_be_positive() {
    check(
        &behavior("events = [\"x\"]\npoints = 1\nwindow_days = 0"),
        Some("bad"),
        &["window_days"],
    );
    check(
        &behavior("events = [\"x\"]\npoints = 1\nwindow_days = -7"),
        Some("bad"),
        &["window_days"],
    );
}

#[test]
fn cap_must_not_be_negative() {
    check(
        &behavior("events = [\"x\"]\npoints = 1\ncap = -15"),
        Some("bad"),
        &["cap", "-15"],
    );
    check(
        &behavior("events = [\"x\"]\npoints = 1\ncap = -0.01"),
        Some("bad"),
        &["cap"],
    );
    check(
        &behavior("events = [\"x\"]\npoints = 1\ncap = nan"),
        Some("bad"),
        &["cap"],
    );
}

#[test]
fn max_events_must_be_a_whole_number_of_at_least_one() {
    check(
        &behavior("events = [\"x\"]\npoints = 1\nmax_events = 0"),
        Some("bad"),
        &["max_events", "0"],
    );
    check(
        &behavior("events = [\"x\"]\npoints = 1\nmax_events = -1"),
        Some("bad"),
        &["max_events"],
    );
    check(
        &behavior("events = [\"x\"]\npoints = 1\nmax_events = 1.5"),
        Some("bad"),
        &["float"],
    );
    check(
        &behavior("events = [\"x\"]\npoints = 1\nmax_events = \"1\""),
        Some("bad"),
        &["string"],
    );
}

#[test]
fn events_must_list_at_least_one_type() {
    check(&behavior("events = []\npoints = 1"), Some("bad"), &["events"]);
    check(&behavior("events = [\"\"]\npoints = 1"), Some("bad"), &["events"]);
    check(
        &behavior("events = [\"x\", \"  \"]\npoints = 1"),
        Some("bad"),
        &["events"],
    );
    check(&behavior("points = 1"), Some("bad"), &["events"]);
    check(&behavior("events = \"x\"\npoints = 1"), Some("bad"), &["string"]);
}

#[test]
fn behavior_points_must_be_a_finite_number() {
    check(&behavior("events = [\"x\"]"), Some("bad"), &["points"]);
    check(
        &behavior("events = [\"x\"]\npoints = nan"),
        Some("bad"),
        &["points", "finite"],
    );
    check(
        &behavior("events = [\"x\"]\npoints = -inf"),
        Some("bad"),
        &["points", "finite"],
    );
}

#[test]
fn where_values_must_be_scalars() {
    check(
        &behavior("events = [\"x\"]\npoints = 1\nwhere = { path = [\"/a\"] }"),
        Some("bad"),
        &["where.path"],
    );
    check(
        &behavior("events = [\"x\"]\npoints = 1\nwhere = { a = { b = 1 } }"),
        Some("bad"),
        &["where.a"],
    );
    check(
        &behavior("events = [\"x\"]\npoints = 1\nwhere = \"/pricing\""),
        Some("bad"),
        &["string"],
    );
}

// ---------------------------------------------------------------- rule ids

#[test]
fn duplicate_rule_ids() {
    check(
        &with("[[fit]]\nid = \"ok_fit\"\nfield = \"employees\"\ngte = 5\npoints = 1\n"),
        Some("ok_fit"),
        &["duplicate"],
    );
    check(
        &with("[[behavior]]\nid = \"ok_behavior\"\nevents = [\"x\"]\npoints = 1\n"),
        Some("ok_behavior"),
        &["duplicate"],
    );
    // Across fit and behavior, in either direction.
    check(
        &with("[[behavior]]\nid = \"ok_fit\"\nevents = [\"x\"]\npoints = 1\n"),
        Some("ok_fit"),
        &["duplicate"],
    );
    check(
        &format!(
            "{HEADER}[[behavior]]\nid = \"same\"\nevents = [\"x\"]\npoints = 1\n[[fit]]\nid = \"same\"\nfield = \"a\"\nexists = true\npoints = 1\n"
        ),
        Some("same"),
        &["duplicate"],
    );
}

#[test]
fn missing_or_empty_rule_id() {
    // Without an id the rule is named by its position.
    check(
        &with("[[fit]]\nfield = \"industry\"\nexists = true\npoints = 1\n"),
        Some("fit #2"),
        &["id"],
    );
    check(
        &with("[[behavior]]\nevents = [\"x\"]\npoints = 1\n"),
        Some("behavior #2"),
        &["id"],
    );
    let e = refused(&with(
        "[[fit]]\nid = \"  \"\nfield = \"industry\"\nexists = true\npoints = 1\n",
    ));
    assert!(e.to_string().contains("empty `id`"), "{e}");
}

#[test]
fn the_first_broken_rule_is_named_not_its_neighbours() {
    let text = with(
        "[[fit]]\nid = \"fine_1\"\nfield = \"employees\"\ngte = 5\npoints = 1\n\
         [[fit]]\nid = \"broken\"\nfield = \"employees\"\ngte = 5\nlte = 1\npoints = 1\n\
         [[fit]]\nid = \"fine_2\"\nfield = \"employees\"\nlt = 5\npoints = 1\n",
    );
    check(&text, Some("broken"), &["range"]);
}

// ---------------------------------------------------------------- bands

fn with_bands(score: &str, bands: &[(&str, &str)]) -> String {
    let bands: String = bands
        .iter()
        .map(|(n, f)| format!("[[band]]\nname = \"{n}\"\nfrom = {f}\n"))
        .collect();
    format!("name = \"m\"\n{score}{bands}{GOOD_RULES}")
}

#[test]
fn bands_not_ascending() {
    check(
        &with_bands("", &[("cold", "0"), ("hot", "50"), ("warm", "25")]),
        None,
        &["ascending", "warm", "hot"],
    );
    check(
        &with_bands("", &[("cold", "0"), ("warm", "25"), ("hot", "25")]),
        None,
        &["ascending"],
    );
    check(
        &with_bands("", &[("cold", "0"), ("cold2", "0")]),
        None,
        &["ascending"],
    );
}

#[test]
fn first_band_not_at_min() {
    check(
        &with_bands("", &[("cold", "10"), ("hot", "50")]),
        None,
        &["cold", "score.min"],
    );
    check(
        &with_bands("[score]\nmin = -20\nmax = 20\n", &[("cold", "0"), ("hot", "10")]),
        None,
        &["score.min", "-20"],
    );
    check(
        &with_bands("[score]\nmin = 10\n", &[("cold", "0"), ("hot", "50")]),
        None,
        &["score.min"],
    );
    assert!(
        ScoringModel::from_toml(
            &with_bands("[score]\nmin = -20\nmax = 20\n", &[("neg", "-20"), ("pos", "0")]),
            SOURCE
        )
        .is_ok()
    );
}

#[test]
fn no_bands() {
    check(&with_bands("", &[]), None, &["band"]);
}

#[test]
fn duplicate_band_names() {
    check(
        &with_bands("", &[("cold", "0"), ("warm", "25"), ("cold", "50")]),
        None,
        &["cold", "twice"],
    );
}

#[test]
fn band_names_must_not_be_blank() {
    check(&with_bands("", &[("cold", "0"), ("  ", "25")]), None, &["name"]);
}

#[test]
fn band_above_max() {
    check(
        &with_bands("[score]\nmax = 40\n", &[("cold", "0"), ("hot", "50")]),
        None,
        &["hot", "score.max"],
    );
}

#[test]

fn band_from_must_be_a_number() {
    check(
        &with_bands("", &[("cold", "0"), ("ghost", "nan"), ("hot", "50")]),
        None,
        &["ghost"],
    );
    check(
        &with_bands("", &[("cold", "0"), ("ghost", "nan")]),
        None,
        &["ghost"],
    );
}

#[test]
fn band_from_must_be_finite() {
    check(
        &with_bands("", &[("cold", "nan"), ("hot", "50")]),
        None,
        &["score.min"],
    );
    check(&with_bands("", &[("cold", "0"), ("hot", "inf")]), None, &["hot"]);
    check(&with_bands("", &[("cold", "0"), ("hot", "-inf")]), None, &["hot"]);
}

#[test]
fn band_table_shape() {
    check(&with_bands("", &[("cold", "\"0\"")]), None, &["string"]);
    check(
        &format!("name = \"m\"\n[[band]]\nname = \"cold\"\n{GOOD_RULES}"),
        None,
        &["from"],
    );
    check(
        "name = \"m\"\n[[band]]\nname = \"cold\"\nfrom = 0\ncolor = \"blue\"\n",
        None,
        &["color"],
    );
}

// ---------------------------------------------------------------- score, grade, mql

#[test]
fn score_range_must_be_a_range() {
    check(
        &with_bands("[score]\nmin = 100\nmax = 0\n", &[("cold", "100")]),
        None,
        &["min", "max"],
    );
    check(
        &with_bands("[score]\nmin = 5\nmax = 5\n", &[("cold", "5")]),
        None,
        &["min", "max"],
    );
    check(
        &with_bands("[score]\nmin = 0\nmax = 100\nmiddle = 50\n", &[("cold", "0")]),
        None,
        &["middle"],
    );
}

fn with_tables(tables: &str) -> String {
    format!(
        "name = \"m\"\n[[band]]\nname = \"cold\"\nfrom = 0\n[[band]]\nname = \"hot\"\nfrom = 50\n{tables}{GOOD_RULES}"
    )
}

#[test]
fn grade_bounds_not_descending() {
    check(
        &with_tables("[grade]\nA = 10\nB = 15\nC = 5\n"),
        None,
        &["[grade]", "descend"],
    );
    check(
        &with_tables("[grade]\nA = 25\nB = 15\nC = 15\n"),
        None,
        &["[grade]"],
    );
    check(
        &with_tables("[grade]\nA = 5\nB = 10\nC = 15\n"),
        None,
        &["[grade]"],
    );
    check(&with_tables("[grade]\nA = 25\nB = 15\n"), None, &["C"]);
    check(
        &with_tables("[grade]\nA = 25\nB = 15\nC = 8\nD = 0\n"),
        None,
        &["D"],
    );
    check(&with_tables("[grade]\na = 25\nb = 15\nc = 8\n"), None, &["a"]);
}

#[test]
fn mql_threshold_outside_the_score_range() {
    check(
        &with_tables("[mql]\nthreshold = 150\n"),
        None,
        &["[mql]", "threshold", "150"],
    );
    check(
        &with_tables("[mql]\nthreshold = -1\n"),
        None,
        &["[mql]", "threshold"],
    );
    check(
        &with_tables("[score]\nmin = 0\nmax = 20\n[mql]\nthreshold = 50\n").replace("from = 50", "from = 10"),
        None,
        &["threshold"],
    );
    check(&with_tables("[mql]\nmin_grade = \"B\"\n"), None, &["threshold"]);
    check(
        &with_tables("[mql]\nthreshold = 50\nmin_score = 3\n"),
        None,
        &["min_score"],
    );
    // The range's ends are allowed.
    assert!(ScoringModel::from_toml(&with_tables("[mql]\nthreshold = 100\n"), SOURCE).is_ok());
    assert!(ScoringModel::from_toml(&with_tables("[mql]\nthreshold = 0\n"), SOURCE).is_ok());
}

#[test]
fn unknown_min_grade() {
    check(
        &with_tables("[mql]\nthreshold = 50\nmin_grade = \"E\"\n"),
        None,
        &["min_grade", "E"],
    );
    check(
        &with_tables("[mql]\nthreshold = 50\nmin_grade = \"A+\"\n"),
        None,
        &["min_grade"],
    );
    check(
        &with_tables("[mql]\nthreshold = 50\nmin_grade = \"\"\n"),
        None,
        &["min_grade"],
    );
    check(
        &with_tables("[mql]\nthreshold = 50\nmin_grade = 1\n"),
        None,
        &[":10:13: ", "string"],
    );
}

// ---------------------------------------------------------------- the file as a whole

#[test]
fn missing_name() {
    let no_name = with("").replacen("name = \"m\"\n", "", 1);
    check(&no_name, None, &["name"]);
    check(
        &with("").replacen("name = \"m\"", "name = \"   \"", 1),
        None,
        &["name"],
    );
    // A wrongly typed value is pointed at by line and column.
    check(
        &with("").replacen("name = \"m\"", "name = 5", 1),
        None,
        &[":1:8: ", "string"],
    );
}

#[test]
fn unknown_top_level_key() {
    // A misspelt `name`: the unknown key is named, with the keys that are known.
    check(
        &with("").replacen("name = \"m\"", "nme = \"m\"", 1),
        None,
        &["nme", "name"],
    );
    check(
        &format!("colour = \"red\"\n{}", with("")),
        None,
        &["colour", ":1:1: "],
    );
    // An unknown key inside [grade] (it follows the table header).
    check(&format!("{HEADER}colour = \"red\"\n"), None, &["colour"]);
    check(&with("[[rule]]\nid = \"x\"\n"), None, &["rule"]);
    check(&with("").replacen("[[band]]", "[[bands]]", 1), None, &["bands"]);
}

#[test]
fn toml_syntax_error_names_line_and_column() {
    let e = refused("name = \"m\"\n[score]\nmin = = 0\n");
    assert_eq!(e.rule, None);
    let shown = e.to_string();
    assert!(shown.starts_with(SOURCE), "{shown}");
    assert!(shown.contains(":3:7: "), "{shown}");

    let e = refused("name = \"m\nmax = 3\n");
    assert!(e.to_string().starts_with(&format!("{SOURCE}:1:")), "{e}");

    let e = refused(&format!(
        "{HEADER}[[fit]]\nid = \"x\"\nfield = \"a\"\nmatches = \"unterminated\npoints = 1\n"
    ));
    let shown = e.to_string();
    let line = HEADER.lines().count() + 4;
    assert!(shown.contains(&format!(":{line}:")), "{shown}");

    // Duplicate keys are a TOML error too.
    let e = refused("name = \"m\"\nname = \"n\"\n");
    assert!(e.to_string().contains(":2:1: "), "{e}");
}

#[test]
fn empty_file() {
    check("", None, &["name"]);
}

#[test]
fn the_error_names_the_source_it_was_given() {
    let e = ScoringModel::from_toml("name = \"m\"\n", "/etc/leadscore/models/other.toml").unwrap_err();
    assert_eq!(e.source_name, "/etc/leadscore/models/other.toml");
    assert!(
        e.to_string().starts_with("/etc/leadscore/models/other.toml: "),
        "{e}"
    );
    let e = ScoringModel::from_toml(&fit("field = \"a\""), "x.toml").unwrap_err();
    let line = e.line.expect("a rule's errors carry its line");
    assert_eq!(e.to_string(), format!("x.toml:{line}: rule `bad`: {}", e.message));
}
