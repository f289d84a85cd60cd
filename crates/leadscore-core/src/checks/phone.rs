//! Phone numbers, checked against libphonenumber's metadata (the `phonenumber` crate).

use std::cell::RefCell;
use std::collections::HashMap;
use std::str::FromStr;

use phonenumber::country::Id;
use phonenumber::{PhoneNumber, Type};

/// What a phone value is, for the lead's country.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneKind {
    Invalid,
    Mobile,
    Landline,
    /// Valid, but the metadata cannot tell mobile from landline (or it is another type).
    Other,
}

impl PhoneKind {
    pub const fn is_valid(self) -> bool {
        !matches!(self, PhoneKind::Invalid)
    }
}

/// The phonenumber region for a country given as ISO code (`VN`, `UKR`) or
/// English name (`Vietnam`, `United States`); `None` when unknown.
pub fn region_for_country(country: &str) -> Option<Id> {
    let key: String = country
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect::<String>()
        .to_lowercase();
    let key = match key.as_str() {
        "uk" | "england" | "greatbritain" => "gb",
        "vietnam" | "việtnam" => "vn",
        k => k,
    };
    let alpha2 = celes::Country::from_str(key).ok()?.alpha2;
    Id::from_str(alpha2).ok()
}

fn classify_uncached(phone: &str, country: Option<&str>) -> PhoneKind {
    let region = country.and_then(region_for_country);
    let number: PhoneNumber = match phonenumber::parse(region, phone.trim()) {
        Ok(n) => n,
        Err(_) => return PhoneKind::Invalid,
    };
    if !phonenumber::is_valid(&number) {
        return PhoneKind::Invalid;
    }
    match number.number_type(&phonenumber::metadata::DATABASE) {
        Type::Mobile => PhoneKind::Mobile,
        Type::FixedLine => PhoneKind::Landline,
        _ => PhoneKind::Other,
    }
}

const MEMO_LIMIT: usize = 16_384;

thread_local! {
    // Parsing with libphonenumber's metadata costs microseconds; lists of leads
    // repeat numbers (switchboards, placeholders), so remember recent answers.
    // Keyed by "country NUL phone", built in a reused buffer.
    static MEMO: RefCell<(HashMap<String, PhoneKind>, String)> = RefCell::new((HashMap::new(), String::new()));
}

/// Classifies a phone number. Numbers without a leading `+` are read in the
/// lead's country (when given and known).
pub fn classify_phone(phone: &str, country: Option<&str>) -> PhoneKind {
    let country = country.unwrap_or("");
    MEMO.with_borrow_mut(|(memo, key)| {
        key.clear();
        key.push_str(country);
        key.push('\0');
        key.push_str(phone);
        if let Some(kind) = memo.get(key.as_str()) {
            return *kind;
        }
        let kind = classify_uncached(phone, (!country.is_empty()).then_some(country));
        if memo.len() >= MEMO_LIMIT {
            memo.clear();
        }
        memo.insert(key.clone(), kind);
        kind
    })
}

pub fn is_valid_phone(phone: &str, country: Option<&str>) -> bool {
    classify_phone(phone, country).is_valid()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(phone: &str, country: Option<&str>, expected: PhoneKind) {
        assert_eq!(classify_phone(phone, country), expected, "{phone} in {country:?}");
    }

    #[test]
    fn table() {
        check("+84 912 345 678", None, PhoneKind::Mobile);
        check("0912 345 678", Some("VN"), PhoneKind::Mobile);
        check("0912 345 678", Some("Vietnam"), PhoneKind::Mobile);
        check("0912 345 678", None, PhoneKind::Invalid);
        check("+1 650-253-0000", None, PhoneKind::Other);
        check("+49 30 901820", None, PhoneKind::Landline);
        check("030 901820", Some("DEU"), PhoneKind::Landline);
        check("+380 44 123 4567", None, PhoneKind::Landline);
        check("12345", Some("US"), PhoneKind::Invalid);
        check("call me", Some("US"), PhoneKind::Invalid);
        check("", Some("US"), PhoneKind::Invalid);
    }

    #[test]
    fn country_names_and_codes() {
        assert_eq!(region_for_country("VN"), Some(Id::VN));
        assert_eq!(region_for_country("vnm"), Some(Id::VN));
        assert_eq!(region_for_country("Ukraine"), Some(Id::UA));
        assert_eq!(region_for_country("United States"), Some(Id::US));
        assert_eq!(region_for_country("Atlantis"), None);
    }
}
