//! E-mail addresses: syntax, and whether the domain is a free-mail or disposable provider.
//!
//! Disposable domains come from the `mailchecker` crate (FGRibreau's maintained
//! list); free-mail domains from the `free-email-domains` list (npm, MIT),
//! vendored in `data/` and refreshed by `scripts/update-email-domains.sh`.

use std::collections::HashSet;
use std::sync::LazyLock;

type DomainSet = HashSet<&'static str, foldhash::fast::RandomState>;

/// What kind of address an e-mail value is. The kinds exclude each other:
/// a disposable provider (mailinator.com) is `Disposable`, not `Free`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailKind {
    Invalid,
    Disposable,
    Free,
    Corporate,
}

impl EmailKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            EmailKind::Invalid => "invalid",
            EmailKind::Disposable => "disposable",
            EmailKind::Free => "free",
            EmailKind::Corporate => "corporate",
        }
    }
}

static FREE: LazyLock<DomainSet> = LazyLock::new(|| {
    include_str!("../../data/free-email-domains.txt")
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
});

static DISPOSABLE: LazyLock<DomainSet> = LazyLock::new(|| mailchecker::blacklist().into_iter().collect());

/// Classifies an address. Surrounding white space is ignored; case does not matter.
pub fn classify_email(value: &str) -> EmailKind {
    let Some(domain) = domain_of(value.trim()) else {
        return EmailKind::Invalid;
    };
    let domain = if domain.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(domain.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(domain)
    };
    if listed(&DISPOSABLE, &domain) {
        EmailKind::Disposable
    } else if listed(&FREE, &domain) {
        EmailKind::Free
    } else {
        EmailKind::Corporate
    }
}

/// The domain or any parent of it (`eu.mailinator.com` -> `mailinator.com`) is listed.
fn listed(set: &DomainSet, domain: &str) -> bool {
    let mut d = domain;
    loop {
        if set.contains(d) {
            return true;
        }
        match d.split_once('.') {
            Some((_, rest)) if rest.contains('.') => d = rest,
            _ => return false,
        }
    }
}

/// The domain of a syntactically plausible address: one `@`, a local part of
/// printable characters, a domain of at least two dot-separated labels of
/// letters, digits and hyphens, ending in a letter-only top-level label.
/// Characters allowed unquoted in the local part (RFC 5322 atext, dots, and
/// any non-ASCII letter for internationalised addresses).
fn local_char(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                '!' | '#'
                    | '$'
                    | '%'
                    | '&'
                    | '\''
                    | '*'
                    | '+'
                    | '-'
                    | '/'
                    | '='
                    | '?'
                    | '^'
                    | '_'
                    | '`'
                    | '{'
                    | '|'
                    | '}'
                    | '~'
                    | '.'
            )
    } else {
        c.is_alphanumeric()
    }
}

fn domain_of(addr: &str) -> Option<&str> {
    let (local, domain) = addr.split_once('@')?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(local_char);
    if !local_ok || domain.len() > 253 {
        return None;
    }
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| {
                if c.is_ascii() {
                    c.is_ascii_alphanumeric() || c == '-'
                } else {
                    c.is_alphanumeric()
                }
            })
    };
    let tld = domain.rsplit('.').next().unwrap_or("");
    let tld_ok = tld.len() >= 2 && tld.chars().all(char::is_alphabetic);
    (domain.contains('.') && domain.split('.').all(|l| label_ok(&l)) && tld_ok).then_some(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: EmailKind) {
        assert_eq!(classify_email(input), expected, "{input}");
    }

    #[test]
    fn big_free_providers_are_free() {
        for d in [
            "gmail.com",
            "yahoo.com",
            "hotmail.com",
            "outlook.com",
            "icloud.com",
            "aol.com",
            "mail.ru",
            "yandex.ru",
            "gmx.de",
            "protonmail.com",
        ] {
            check(&format!("someone@{d}"), EmailKind::Free);
        }
    }

    #[test]
    fn disposable_services_are_disposable() {
        for d in [
            "mailinator.com",
            "guerrillamail.com",
            "10minutemail.com",
            "yopmail.com",
        ] {
            check(&format!("someone@{d}"), EmailKind::Disposable);
        }
        check("x@eu.mailinator.com", EmailKind::Disposable);
    }

    #[test]
    fn company_domains_are_corporate() {
        check("lan.nguyen@vietravel.com.vn", EmailKind::Corporate);
        check("  Olena.K@Acme-Corp.COM ", EmailKind::Corporate);
        check("a.b+tag@globex.io", EmailKind::Corporate);
        check("GMAIL-user@GMAIL.COM", EmailKind::Free);
    }

    #[test]
    fn malformed_addresses_are_invalid() {
        for bad in [
            "",
            "plain",
            "@acme.com",
            "a@",
            "a@acme",
            "a@@acme.com",
            "a b@acme.com",
            "a@acme..com",
            "a@-acme.com",
            "a@acme.c0m",
            ".a@acme.com",
        ] {
            check(bad, EmailKind::Invalid);
        }
    }
}
