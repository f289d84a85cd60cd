//! Is a person's full name given? (Seed 003: a full name suggests a serious lead.)

/// True when both names are given, or the first name alone holds two or more words.
pub fn is_full_name(first_name: Option<&str>, last_name: Option<&str>) -> bool {
    let given = |s: Option<&str>| s.is_some_and(|s| !s.trim().is_empty());
    match (given(first_name), given(last_name)) {
        (true, true) => true,
        (true, false) => first_name.is_some_and(|f| f.split_whitespace().count() >= 2),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_full_name;

    #[test]
    fn table() {
        let cases = [
            (Some("Lan"), Some("Nguyen"), true),
            (Some("Nguyễn Thị Lan"), None, true),
            (Some("Lan"), None, false),
            (Some("Lan"), Some("  "), false),
            (None, Some("Nguyen"), false),
            (Some("  "), Some("Nguyen"), false),
            (None, None, false),
        ];
        for (first, last, expected) in cases {
            assert_eq!(is_full_name(first, last), expected, "{first:?} {last:?}");
        }
    }
}
