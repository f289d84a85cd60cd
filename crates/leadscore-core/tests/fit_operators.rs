//! Every fit operator of `shared/spec/scoring-model.md` ("Fit conditions"), table-driven:
//! one model per case with a single fit rule, checked through `evaluate_fit` and `score`.

mod common;

use common::*;
use leadscore_core::{Lead, LeadData, StdField};

/// A lead with the given standard fields set.
fn lead(fields: &[(StdField, &str)]) -> Lead {
    fields.iter().fold(Lead::new("L1"), |l, (f, v)| l.with(*f, *v))
}

/// Builds a model with one fit rule (`rule` holds its field and operator lines,
/// and possibly `negate`) and checks whether it holds for `lead`.
#[track_caller]
fn check(rule: &str, lead: &Lead, expected: bool) {
    let model = model_with(&format!("[[fit]]\nid = \"r\"\npoints = 10\n{rule}\n"));
    let held = !model.evaluate_fit(lead).held.is_empty();
    assert_eq!(held, expected, "rule:\n{rule}\nlead: {lead:?}");
    // The score agrees with evaluate_fit.
    let score = model.score(lead, &[], t0());
    assert_eq!(
        score.fit,
        if expected { 10.0 } else { 0.0 },
        "fit of rule:\n{rule}\nlead: {lead:?}"
    );
}

/// Checks the rule and its negation: `negate = true` inverts every outcome.
#[track_caller]
fn check_both(rule: &str, lead: &Lead, expected: bool) {
    check(rule, lead, expected);
    check(&format!("{rule}\nnegate = true"), lead, !expected);
}

/// A table of (rule, field, value, expected) on standard fields, checked with and without negate.
#[track_caller]
fn table(cases: &[(&str, StdField, &str, bool)]) {
    for (rule, field, value, expected) in cases {
        check_both(rule, &lead(&[(*field, *value)]), *expected);
    }
}

// ---------------------------------------------------------------- equals

#[test]
fn equals_string_is_case_insensitive_and_trimmed() {
    let r = "field = \"industry\"\nequals = \"Software\"";
    let r_padded = "field = \"industry\"\nequals = \"  SOFTWARE \"";
    table(&[
        (r, StdField::Industry, "Software", true),
        (r, StdField::Industry, "software", true),
        (r, StdField::Industry, "SOFTWARE", true),
        (r, StdField::Industry, "  software  ", true),
        (r, StdField::Industry, "\tSoftware\n", true),
        (r, StdField::Industry, "Software Services", false),
        (r, StdField::Industry, "soft ware", false),
        (r, StdField::Industry, "Hardware", false),
        (r_padded, StdField::Industry, "software", true),
        (r_padded, StdField::Industry, " Software ", true),
    ]);
}

#[test]
fn equals_string_folds_non_ascii_case() {
    let r = "field = \"city\"\nequals = \"Đà Nẵng\"";
    table(&[
        (r, StdField::City, "Đà Nẵng", true),
        (r, StdField::City, "đà nẵng", true),
        (r, StdField::City, "ĐÀ NẴNG", true),
        (r, StdField::City, "Da Nang", false),
    ]);
}

#[test]
fn equals_number_compares_numerically() {
    let r = "field = \"employees\"\nequals = 500";
    let rf = "field = \"annual_revenue\"\nequals = 1.5";
    table(&[
        (r, StdField::Employees, "500", true),
        (r, StdField::Employees, " 500 ", true),
        (r, StdField::Employees, "500.0", true),
        (r, StdField::Employees, "0500", true),
        (r, StdField::Employees, "501", false),
        (r, StdField::Employees, "499.99", false),
        (r, StdField::Employees, "500+", false),
        (r, StdField::Employees, "five hundred", false),
        (r, StdField::Employees, "5,00", false),
        (rf, StdField::AnnualRevenue, "1.5", true),
        (rf, StdField::AnnualRevenue, "1.50", true),
        (rf, StdField::AnnualRevenue, "1.5M", false),
    ]);
}

#[test]
fn equals_boolean_reads_yes_no_flags() {
    let t = "field = \"is_customer\"\nequals = true";
    let f = "field = \"is_customer\"\nequals = false";
    table(&[
        (t, StdField::IsCustomer, "true", true),
        (t, StdField::IsCustomer, "TRUE", true),
        (t, StdField::IsCustomer, "yes", true),
        (t, StdField::IsCustomer, "Yes", true),
        (t, StdField::IsCustomer, " 1 ", true),
        (t, StdField::IsCustomer, "no", false),
        (t, StdField::IsCustomer, "0", false),
        (t, StdField::IsCustomer, "false", false),
        (t, StdField::IsCustomer, "maybe", false),
        (t, StdField::IsCustomer, "2", false),
        (f, StdField::IsCustomer, "no", true),
        (f, StdField::IsCustomer, "NO", true),
        (f, StdField::IsCustomer, "0", true),
        (f, StdField::IsCustomer, "false", true),
        (f, StdField::IsCustomer, "yes", false),
        (f, StdField::IsCustomer, "1", false),
        (f, StdField::IsCustomer, "true", false),
        (f, StdField::IsCustomer, "maybe", false),
    ]);
}

// ---------------------------------------------------------------- in

#[test]
fn in_strings_uses_the_equals_comparison() {
    let r = "field = \"industry\"\nin = [\"software\", \"Telecom\", \" travel \"]";
    table(&[
        (r, StdField::Industry, "Software", true),
        (r, StdField::Industry, "TELECOM", true),
        (r, StdField::Industry, "telecom", true),
        (r, StdField::Industry, " Travel ", true),
        (r, StdField::Industry, "travel", true),
        (r, StdField::Industry, "Retail", false),
        (r, StdField::Industry, "software, telecom", false),
        (r, StdField::Industry, "soft", false),
    ]);
}

#[test]
fn in_numbers_compares_numerically() {
    let r = "field = \"employees\"\nin = [10, 50, 250.5]";
    table(&[
        (r, StdField::Employees, "10", true),
        (r, StdField::Employees, "50.0", true),
        (r, StdField::Employees, " 250.5 ", true),
        (r, StdField::Employees, "11", false),
        (r, StdField::Employees, "250", false),
        (r, StdField::Employees, "50+", false),
        (r, StdField::Employees, "ten", false),
    ]);
}

#[test]
fn in_single_element_list() {
    let r = "field = \"country\"\nin = [\"VN\"]";
    table(&[
        (r, StdField::Country, "vn", true),
        (r, StdField::Country, "VNM", false),
    ]);
}

// ---------------------------------------------------------------- matches

#[test]
fn matches_uses_rust_regex_semantics() {
    let dm = "field = \"job_title\"\nmatches = \"(?i)\\\\b(ceo|cto|founder|director|vp|head)\\\\b\"";
    let anchored = "field = \"job_title\"\nmatches = \"^VP\"";
    let literal_case = "field = \"job_title\"\nmatches = \"CEO\"";
    table(&[
        (dm, StdField::JobTitle, "Founder & CEO", true),
        (dm, StdField::JobTitle, "ceo", true),
        (dm, StdField::JobTitle, "Head of Sales", true),
        (dm, StdField::JobTitle, "VP Engineering", true),
        (dm, StdField::JobTitle, "Sales Director, APAC", true),
        (dm, StdField::JobTitle, "Headhunter", false), // word boundary
        (dm, StdField::JobTitle, "Directory clerk", false),
        (dm, StdField::JobTitle, "Engineer", false),
        (anchored, StdField::JobTitle, "VP Sales", true),
        (anchored, StdField::JobTitle, "Senior VP", false),
        (anchored, StdField::JobTitle, "vp sales", false), // no (?i): case matters
        (literal_case, StdField::JobTitle, "Deputy CEO", true), // unanchored: a substring is enough
        (literal_case, StdField::JobTitle, "ceo", false),
    ]);
}

#[test]
fn matches_on_numbers_and_emails_sees_the_text() {
    let digits = "field = \"employees\"\nmatches = \"^[0-9]+\\\\+$\"";
    let domain = "field = \"email\"\nmatches = \"@acme\\\\.com$\"";
    table(&[
        (digits, StdField::Employees, "500+", true),
        (digits, StdField::Employees, "500", false),
        (domain, StdField::Email, "lan@acme.com", true),
        (domain, StdField::Email, "lan@acme.com.vn", false),
    ]);
}

#[test]
fn matches_an_everything_regex_is_still_false_on_a_missing_field() {
    let r = "field = \"job_title\"\nmatches = \".*\"";
    check_both(r, &lead(&[(StdField::JobTitle, "x")]), true);
    check_both(r, &Lead::new("L1"), false);
    check_both(r, &lead(&[(StdField::JobTitle, "   ")]), false);
}

// ---------------------------------------------------------------- gte / lte / gt / lt

#[test]
fn single_numeric_bounds_with_their_edges() {
    let gte = "field = \"employees\"\ngte = 500";
    let gt = "field = \"employees\"\ngt = 500";
    let lte = "field = \"employees\"\nlte = 500";
    let lt = "field = \"employees\"\nlt = 500";
    table(&[
        (gte, StdField::Employees, "500", true),
        (gte, StdField::Employees, "500.0", true),
        (gte, StdField::Employees, "500.01", true),
        (gte, StdField::Employees, "499.99", false),
        (gte, StdField::Employees, "10000", true),
        (gte, StdField::Employees, "-500", false),
        (gt, StdField::Employees, "500", false),
        (gt, StdField::Employees, "500.001", true),
        (gt, StdField::Employees, "499", false),
        (lte, StdField::Employees, "500", true),
        (lte, StdField::Employees, "500.01", false),
        (lte, StdField::Employees, "0", true),
        (lte, StdField::Employees, "-3", true),
        (lt, StdField::Employees, "500", false),
        (lt, StdField::Employees, "499.999", true),
        (lt, StdField::Employees, "501", false),
    ]);
}

#[test]
fn combined_ranges_with_inclusive_and_exclusive_edges() {
    let closed = "field = \"employees\"\ngte = 50\nlte = 200";
    let open = "field = \"employees\"\ngt = 50\nlt = 200";
    let half_open = "field = \"employees\"\ngte = 50\nlt = 200";
    let other_half = "field = \"employees\"\ngt = 50\nlte = 200";
    let point = "field = \"employees\"\ngte = 50\nlte = 50";
    let fractional = "field = \"annual_revenue\"\ngte = 0.5\nlt = 2.5";
    table(&[
        (closed, StdField::Employees, "49", false),
        (closed, StdField::Employees, "50", true),
        (closed, StdField::Employees, "120", true),
        (closed, StdField::Employees, "200", true),
        (closed, StdField::Employees, "200.5", false),
        (open, StdField::Employees, "50", false),
        (open, StdField::Employees, "50.5", true),
        (open, StdField::Employees, "199.5", true),
        (open, StdField::Employees, "200", false),
        (half_open, StdField::Employees, "50", true),
        (half_open, StdField::Employees, "200", false),
        (other_half, StdField::Employees, "50", false),
        (other_half, StdField::Employees, "200", true),
        (point, StdField::Employees, "50", true),
        (point, StdField::Employees, "50.0", true),
        (point, StdField::Employees, "51", false),
        (fractional, StdField::AnnualRevenue, "0.5", true),
        (fractional, StdField::AnnualRevenue, "0.49", false),
        (fractional, StdField::AnnualRevenue, "2.49", true),
        (fractional, StdField::AnnualRevenue, "2.5", false),
    ]);
}

#[test]
fn negative_bounds() {
    let r = "field = \"score_delta\"\ngt = -10\nlte = 0";
    for (value, expected) in [
        ("-10", false),
        ("-9.5", true),
        ("0", true),
        ("-0", true),
        ("0.1", false),
    ] {
        check_both(r, &Lead::new("L1").with_attribute("score_delta", value), expected);
    }
}

#[test]
fn numeric_operators_are_false_on_non_numbers() {
    let ops = [
        "gte = 0",
        "lte = 1000000",
        "gt = -1000000",
        "lt = 1000000",
        "gte = 0\nlte = 1000000",
        "equals = 500",
        "in = [500, 1000]",
    ];
    let values = [
        "500+", "abc", "1,000", "1 000", "500-1000", "~500", "$500", "500k", "NaN", "inf", "-inf",
        "infinity", "0x10", "", "   ",
    ];
    for op in ops {
        let rule = format!("field = \"employees\"\n{op}");
        for value in values {
            check_both(&rule, &lead(&[(StdField::Employees, value)]), false);
        }
    }
}

#[test]
fn numbers_with_surrounding_space_or_sign_are_numbers() {
    let r = "field = \"employees\"\ngte = 500";
    table(&[
        (r, StdField::Employees, " 500 ", true),
        (r, StdField::Employees, "+500", true),
        (r, StdField::Employees, "\t1000\n", true),
    ]);
}

// ---------------------------------------------------------------- exists

#[test]
fn exists_is_present_and_not_blank() {
    let r = "field = \"phone\"\nexists = true";
    table(&[
        (r, StdField::Phone, "+84 912 345 678", true),
        (r, StdField::Phone, "n/a", true), // any non-blank text exists
        (r, StdField::Phone, "0", true),
        (r, StdField::Phone, "", false),
        (r, StdField::Phone, "   ", false),
        (r, StdField::Phone, "\t\n", false),
    ]);
    check_both(r, &Lead::new("L1"), false);
    // Another field being set does not make this one exist.
    check_both(r, &lead(&[(StdField::Email, "a@acme.com")]), false);
}

// ---------------------------------------------------------------- is = e-mail kinds

#[test]
fn is_corporate() {
    let r = "field = \"email\"\nis = \"corporate\"";
    table(&[
        (r, StdField::Email, "lan@vietravel-corp.com", true),
        (r, StdField::Email, "  Olena.K@Acme-Corp.COM ", true),
        (r, StdField::Email, "a.b+tag@globex.io", true),
        (r, StdField::Email, "lan.nguyen@vietravel.com.vn", true),
        (r, StdField::Email, "someone@gmail.com", false),
        (r, StdField::Email, "someone@GMAIL.COM", false),
        (r, StdField::Email, "someone@yahoo.com", false),
        (r, StdField::Email, "someone@mailinator.com", false),
        (r, StdField::Email, "someone@eu.mailinator.com", false),
        (r, StdField::Email, "not an email", false),
        (r, StdField::Email, "a@acme", false),
        (r, StdField::Email, "@acme.com", false),
    ]);
}

#[test]
fn is_free_email() {
    let r = "field = \"email\"\nis = \"free_email\"";
    table(&[
        (r, StdField::Email, "someone@gmail.com", true),
        (r, StdField::Email, " Someone@Hotmail.com ", true),
        (r, StdField::Email, "someone@yahoo.com", true),
        (r, StdField::Email, "someone@outlook.com", true),
        (r, StdField::Email, "lan@acme.com", false),
        (r, StdField::Email, "someone@mailinator.com", false), // disposable, not free
        (r, StdField::Email, "gmail.com", false),
    ]);
}

#[test]
fn is_disposable_email() {
    let r = "field = \"email\"\nis = \"disposable_email\"";
    table(&[
        (r, StdField::Email, "someone@mailinator.com", true),
        (r, StdField::Email, "x@eu.mailinator.com", true),
        (r, StdField::Email, "someone@yopmail.com", true),
        (r, StdField::Email, "someone@guerrillamail.com", true),
        (r, StdField::Email, "someone@gmail.com", false),
        (r, StdField::Email, "lan@acme.com", false),
        (r, StdField::Email, "mailinator.com", false),
    ]);
}

#[test]
fn email_checks_on_a_custom_field() {
    let r = "field = \"billing_email\"\nis = \"corporate\"";
    check_both(
        r,
        &Lead::new("L1").with_attribute("billing_email", "ap@acme.com"),
        true,
    );
    check_both(
        r,
        &Lead::new("L1").with_attribute("billing_email", "ap@gmail.com"),
        false,
    );
    // The standard email is not consulted for a custom field.
    check_both(r, &lead(&[(StdField::Email, "ap@acme.com")]), false);
}

// ---------------------------------------------------------------- is = valid_phone

#[track_caller]
fn phone(value: &str, country: Option<&str>, expected: bool) {
    let r = "field = \"phone\"\nis = \"valid_phone\"";
    let mut l = lead(&[(StdField::Phone, value)]);
    if let Some(c) = country {
        l.set(StdField::Country, c);
    }
    check_both(r, &l, expected);
}

#[test]
fn is_valid_phone_international_numbers() {
    phone("+84 912 345 678", None, true);
    phone("+84912345678", None, true);
    phone("+1 650-253-0000", None, true);
    phone("+49 30 901820", None, true);
    phone("+380 44 123 4567", None, true);
    // A leading + ignores the lead's country.
    phone("+84 912 345 678", Some("US"), true);
    phone("+84 912 345 678", Some("Atlantis"), true);
    phone("+84 12", None, false);
    phone("12345", Some("US"), false);
    phone("call me", Some("US"), false);
    phone("n/a", None, false);
}

#[test]
fn is_valid_phone_reads_national_numbers_in_the_leads_country() {
    phone("0912 345 678", Some("VN"), true);
    phone("0912 345 678", Some("vn"), true);
    phone("0912 345 678", Some("VNM"), true);
    phone("0912 345 678", Some("Vietnam"), true);
    phone("0912 345 678", Some(" Vietnam "), true);
    phone("030 901820", Some("DEU"), true);
    phone("030 901820", Some("Germany"), true);
    phone("(650) 253-0000", Some("US"), true);
    phone("(650) 253-0000", Some("United States"), true);
    // Without a country (or with an unknown one) a national number cannot be read.
    phone("0912 345 678", None, false);
    phone("0912 345 678", Some("Atlantis"), false);
    phone("0912 345 678", Some("   "), false);
    // Read in the wrong country it is not valid.
    phone("0912 345 678", Some("US"), false);
}

#[test]
fn is_valid_phone_is_false_when_the_phone_is_missing() {
    let r = "field = \"phone\"\nis = \"valid_phone\"";
    check_both(r, &lead(&[(StdField::Country, "VN")]), false);
    check_both(
        r,
        &lead(&[(StdField::Country, "VN"), (StdField::Phone, "   ")]),
        false,
    );
}

// ---------------------------------------------------------------- is = full_name

#[test]
fn is_full_name() {
    let r = "field = \"first_name\"\nis = \"full_name\"";
    let cases: [(Option<&str>, Option<&str>, bool); 10] = [
        (Some("Lan"), Some("Nguyen"), true),
        (Some("Nguyễn Thị Lan"), None, true),
        (Some("Lan Nguyen"), None, true),
        (Some("  Lan   Nguyen  "), None, true),
        (Some("Lan"), None, false),
        (Some(" Lan "), None, false),
        (Some("Lan"), Some("   "), false),
        (None, Some("Nguyen"), false),
        (Some("   "), Some("Nguyen"), false),
        (None, None, false),
    ];
    for (first, last, expected) in cases {
        let mut l = Lead::new("L1");
        if let Some(f) = first {
            l.set(StdField::FirstName, f);
        }
        if let Some(v) = last {
            l.set(StdField::LastName, v);
        }
        check_both(r, &l, expected);
    }
}

// ---------------------------------------------------------------- blank and missing values

#[test]
fn blank_or_missing_fields_make_every_operator_false() {
    let rules = [
        "field = \"industry\"\nequals = \"software\"",
        "field = \"industry\"\nequals = \"\"",
        "field = \"employees\"\nequals = 0",
        "field = \"is_customer\"\nequals = false",
        "field = \"industry\"\nin = [\"software\", \"\"]",
        "field = \"industry\"\nmatches = \"\"",
        "field = \"industry\"\nmatches = \"^\\\\s*$\"",
        "field = \"employees\"\ngte = -1000",
        "field = \"employees\"\nlte = 1000",
        "field = \"employees\"\ngt = -1000\nlt = 1000",
        "field = \"industry\"\nexists = true",
        "field = \"email\"\nis = \"corporate\"",
        "field = \"email\"\nis = \"free_email\"",
        "field = \"email\"\nis = \"disposable_email\"",
        "field = \"phone\"\nis = \"valid_phone\"",
        "field = \"first_name\"\nis = \"full_name\"",
        "field = \"plan\"\nexists = true",
        "field = \"plan\"\nequals = \"\"",
    ];
    for rule in rules {
        // Re-point the rule at each blank spelling of its own field.
        for blank in ["", " ", "   ", "\t", "\n", " \t\r\n "] {
            let field = rule.split('"').nth(1).unwrap();
            let l = match leadscore_core::FieldRef::parse(field) {
                leadscore_core::FieldRef::Std(f) => lead(&[
                    (f, blank),
                    (StdField::Country, "VN"),
                    (StdField::LastName, "Nguyen"),
                ]),
                leadscore_core::FieldRef::Custom(name) => Lead::new("L1").with_attribute(name, blank),
            };
            check_both(rule, &l, false);
        }
        check_both(rule, &Lead::new("L1"), false);
    }
}

#[test]
fn a_blank_value_clears_a_previously_set_field() {
    let r = "field = \"industry\"\nexists = true";
    let mut l = lead(&[(StdField::Industry, "software")]);
    check_both(r, &l, true);
    l.set(StdField::Industry, "  ");
    check_both(r, &l, false);

    let r = "field = \"plan\"\nexists = true";
    let mut l = Lead::new("L1").with_attribute("plan", "pro");
    check_both(r, &l, true);
    l.set_attribute("plan", " ");
    check_both(r, &l, false);
}

// ---------------------------------------------------------------- custom attributes

#[test]
fn custom_attributes_with_every_operator() {
    let l = Lead::new("L1")
        .with_attribute("plan", " Enterprise ")
        .with_attribute("seats", "250")
        .with_attribute("trial", "yes")
        .with_attribute("utm_source", "linkedin-ads");
    let cases = [
        ("field = \"plan\"\nequals = \"enterprise\"", true),
        ("field = \"plan\"\nequals = \"pro\"", false),
        ("field = \"plan\"\nin = [\"pro\", \"ENTERPRISE\"]", true),
        ("field = \"plan\"\nin = [\"pro\", \"team\"]", false),
        ("field = \"utm_source\"\nmatches = \"^linkedin\"", true),
        ("field = \"utm_source\"\nmatches = \"^google\"", false),
        ("field = \"seats\"\ngte = 250", true),
        ("field = \"seats\"\ngt = 250", false),
        ("field = \"seats\"\ngte = 100\nlte = 500", true),
        ("field = \"seats\"\nequals = 250", true),
        ("field = \"seats\"\nin = [100, 250]", true),
        ("field = \"trial\"\nequals = true", true),
        ("field = \"trial\"\nequals = false", false),
        ("field = \"plan\"\nexists = true", true),
        ("field = \"missing_attr\"\nexists = true", false),
        ("field = \"missing_attr\"\nequals = \"x\"", false),
        ("field = \"missing_attr\"\ngte = 0", false),
        // A custom field is a custom attribute, not a standard column.
        ("field = \"employees\"\ngte = 1", false),
    ];
    for (rule, expected) in cases {
        check_both(rule, &l, expected);
    }
}

#[test]
fn standard_field_names_are_case_insensitive_in_rules() {
    check_both(
        "field = \"Industry\"\nequals = \"software\"",
        &lead(&[(StdField::Industry, "Software")]),
        true,
    );
    check_both(
        "field = \" JOB_TITLE \"\nmatches = \"CEO\"",
        &lead(&[(StdField::JobTitle, "CEO")]),
        true,
    );
}

// ---------------------------------------------------------------- negate and points

#[test]
fn negate_on_every_operator() {
    let l = lead(&[
        (StdField::Industry, "Software"),
        (StdField::Employees, "120"),
        (StdField::Email, "lan@gmail.com"),
        (StdField::Phone, "0912 345 678"),
        (StdField::Country, "VN"),
        (StdField::FirstName, "Lan"),
        (StdField::JobTitle, "CEO"),
    ]);
    let cases = [
        ("field = \"industry\"\nequals = \"software\"", true),
        ("field = \"industry\"\nin = [\"retail\"]", false),
        ("field = \"job_title\"\nmatches = \"CEO\"", true),
        ("field = \"employees\"\ngte = 500", false),
        ("field = \"employees\"\nlt = 500", true),
        ("field = \"employees\"\ngt = 100\nlte = 200", true),
        ("field = \"company\"\nexists = true", false),
        ("field = \"email\"\nis = \"corporate\"", false),
        ("field = \"email\"\nis = \"free_email\"", true),
        ("field = \"email\"\nis = \"disposable_email\"", false),
        ("field = \"phone\"\nis = \"valid_phone\"", true),
        ("field = \"first_name\"\nis = \"full_name\"", false),
    ];
    for (rule, expected) in cases {
        check_both(rule, &l, expected);
    }
    // `negate = false` is the same as no negate.
    check(
        "field = \"industry\"\nequals = \"software\"\nnegate = false",
        &l,
        true,
    );
}

#[test]
fn negative_fit_points_count_when_the_rule_holds() {
    let model = model_with(
        "[[fit]]\nid = \"free\"\nfield = \"email\"\nis = \"free_email\"\npoints = -4.5\n\
         [[fit]]\nid = \"no_phone\"\nfield = \"phone\"\nexists = true\nnegate = true\npoints = -3\n",
    );
    let s = model.score(&lead(&[(StdField::Email, "x@gmail.com")]), &[], t0());
    assert_eq!(s.fit, -7.5);
    assert_eq!(s.score, 0.0); // clamped to score.min
    assert_eq!(
        model
            .evaluate_fit(&lead(&[(StdField::Email, "x@gmail.com")]))
            .held,
        vec![0, 1]
    );
    let s = model.score(
        &lead(&[(StdField::Email, "x@acme.com"), (StdField::Phone, "1")]),
        &[],
        t0(),
    );
    assert_eq!(s.fit, 0.0);
}

#[test]
fn each_fit_rule_counts_once() {
    // Several rules on the same field are independent; each holds at most once.
    let model = model_with(
        "[[fit]]\nid = \"a\"\nfield = \"industry\"\nin = [\"software\", \"SOFTWARE\", \"Software\"]\npoints = 3\n\
         [[fit]]\nid = \"b\"\nfield = \"industry\"\nmatches = \"(?i)soft\"\npoints = 2\n\
         [[fit]]\nid = \"c\"\nfield = \"industry\"\nexists = true\npoints = 1\n",
    );
    let l = lead(&[(StdField::Industry, "Software")]);
    assert_eq!(model.evaluate_fit(&l).held, vec![0, 1, 2]);
    assert_eq!(model.score(&l, &[], t0()).fit, 6.0);
}

// ---------------------------------------------------------------- other holders of lead data

/// Lead data held as raw (field, value) pairs, as a CSV row might; `blank_is_none`
/// decides whether it honours `LeadData`'s "blank values are None".
struct Row {
    cells: Vec<(&'static str, &'static str)>,
    blank_is_none: bool,
}

impl Row {
    fn cell(&self, name: &str) -> Option<&str> {
        let v = self.cells.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)?;
        (!self.blank_is_none || !v.trim().is_empty()).then_some(v)
    }
}

impl LeadData for Row {
    fn get(&self, field: StdField) -> Option<&str> {
        self.cell(field.name())
    }

    fn attribute(&self, name: &str) -> Option<&str> {
        self.cell(name)
    }
}

const ROW_RULES: &str = "[[fit]]\nid = \"title\"\nfield = \"job_title\"\nmatches = \"(?i)ceo\"\npoints = 1\n\
     [[fit]]\nid = \"industry\"\nfield = \"industry\"\nin = [\"software\", \"travel\"]\npoints = 2\n\
     [[fit]]\nid = \"size\"\nfield = \"employees\"\ngte = 100\nlt = 1000\npoints = 4\n\
     [[fit]]\nid = \"email\"\nfield = \"email\"\nis = \"corporate\"\npoints = 8\n\
     [[fit]]\nid = \"phone\"\nfield = \"phone\"\nis = \"valid_phone\"\npoints = 16\n\
     [[fit]]\nid = \"name\"\nfield = \"first_name\"\nis = \"full_name\"\npoints = 32\n\
     [[fit]]\nid = \"plan\"\nfield = \"plan\"\nexists = true\nnegate = true\npoints = 64\n\
     [[fit]]\nid = \"anything\"\nfield = \"city\"\nmatches = \".*\"\npoints = 128\n\
     [[fit]]\nid = \"no_city\"\nfield = \"city\"\nequals = \"\"\npoints = 256\n";

fn row_cells() -> Vec<(&'static str, &'static str)> {
    vec![
        ("job_title", "Founder & CEO"),
        ("industry", " Travel "),
        ("employees", "120"),
        ("email", "lan@vietravel-corp.com"),
        ("phone", "0912 345 678"),
        ("country", "Vietnam"),
        ("first_name", "Lan"),
        ("last_name", "  "),
        ("plan", ""),
        ("city", " "),
    ]
}

#[test]
fn any_lead_data_holder_is_evaluated_like_a_lead() {
    let model = model_with(ROW_RULES);
    let row = Row {
        cells: row_cells(),
        blank_is_none: true,
    };
    let lead = row_cells()
        .into_iter()
        .fold(Lead::new("L1"), |l, (k, v)| match StdField::from_name(k) {
            Some(f) => l.with(f, v),
            None => l.with_attribute(k, v),
        });
    let from_row = model.evaluate_fit(&row);
    assert_eq!(from_row, model.evaluate_fit(&lead));
    // title, industry, size, email, phone hold; name (blank last name), plan (negated, blank) too.
    assert_eq!(from_row.held, vec![0, 1, 2, 3, 4, 6]);
}

#[test]
fn a_blank_value_from_any_holder_makes_every_operator_false() {
    let model = model_with(ROW_RULES);
    let row = Row {
        cells: row_cells(),
        blank_is_none: false,
    };
    let held = model.evaluate_fit(&row).held;
    assert_eq!(
        held,
        vec![0, 1, 2, 3, 4, 6],
        "the blank city and plan must count as missing"
    );
}

/// Two models whose fit rules test the same (in the same order) give every
/// lead the same fit outcome, so a service keeps its leads' outcomes across
/// such an activation: other points, ids or labels do not matter, another
/// field, condition, pattern, negation or order does.
#[test]
fn fit_rules_that_test_the_same_are_told_apart_from_those_that_do_not() {
    let spec = include_str!("fixtures/spec-model.toml");
    let base = leadscore_core::ScoringModel::from_toml(spec, "spec").unwrap();
    let variant = |from: &str, to: &str| {
        assert!(spec.contains(from), "{from}");
        leadscore_core::ScoringModel::from_toml(&spec.replacen(from, to, 1), "variant").unwrap()
    };
    let same = [
        variant("points = 10", "points = 12"),
        variant("id = \"decision_maker\"", "id = \"boss\""),
        variant("label = \"C-level, owner or director\"", "label = \"Boss\""),
        variant("points = 15", "points = 16"),
    ];
    for m in &same {
        assert!(base.same_fit_tests(m) && m.same_fit_tests(&base));
    }
    let different = [
        variant("field = \"job_title\"", "field = \"company\""),
        variant("(?i)\\\\b(ceo|", "(?i)\\\\b(chief|ceo|"),
        variant(
            "in = [\"software\", \"telecom\", \"travel\"]",
            "in = [\"software\", \"telecom\"]",
        ),
        variant("gte = 500", "gte = 501"),
        variant("gte = 500", "gt = 500"),
        variant("points = 10\n", "points = 10\nnegate = true\n"),
    ];
    for m in &different {
        assert!(!base.same_fit_tests(m) && !m.same_fit_tests(&base));
    }
    // The same rules in another order test differently (outcomes are by position).
    let i = spec.find("[[fit]]\nid = \"target_industry\"").unwrap();
    let j = spec.find("[[fit]]\nid = \"large_company\"").unwrap();
    let k = j + spec[j + 1..].find("[[fit]]").unwrap() + 1;
    let swapped = format!("{}{}{}{}", &spec[..i], &spec[j..k], &spec[i..j], &spec[k..]);
    let swapped = leadscore_core::ScoringModel::from_toml(&swapped, "swapped").unwrap();
    assert_eq!(swapped.fit.len(), base.fit.len());
    assert!(!base.same_fit_tests(&swapped));
}
