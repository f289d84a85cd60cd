//! One line of EVENTS.jsonl -> its fields, borrowed from the line where possible.
//!
//! Most lines are flat objects without escapes; a narrow hand-written scanner
//! reads those several times faster than serde. Anything it does not
//! recognise (escapes, nesting inside properties, odd spacing of unusual
//! kinds, errors) goes to serde_json, which is also the authority on every
//! error message. A property test checks that both agree.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

/// The fields of one event line. Property values are strings as written in
/// JSON: a string's contents, or the literal text of a number/true/false/null.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventLine<'a> {
    pub id: Cow<'a, str>,
    pub lead: Cow<'a, str>,
    pub kind: Cow<'a, str>,
    pub occurred_at: Cow<'a, str>,
    pub properties: Properties<'a>,
}

impl leadscore_core::PropertyLookup for EventLine<'_> {
    fn property(&self, key: &str) -> Option<Cow<'_, str>> {
        // JSON objects with a repeated key keep the last value.
        self.properties
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| Cow::Borrowed(v.as_ref()))
    }
}

/// An event's properties: most events have none or one, kept inline.
pub type Properties<'a> = smallvec::SmallVec<[(Cow<'a, str>, Cow<'a, str>); 1]>;

/// Why a line is not an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    NotJson(String),
    MissingField(&'static str),
    WrongType(String),
    UnknownField(String),
}

pub fn parse_line(line: &[u8]) -> Result<EventLine<'_>, LineError> {
    // The fast paths take lines with no escapes and no control characters;
    // checking that once per line lets them find string ends with a plain
    // search for '"'.
    if !swar::has_escape_or_control(line)
        && let Ok(text) = simdutf8::basic::from_utf8(line)
        && let Some(ev) = fast::parse(text)
    {
        return Ok(ev);
    }
    slow(line)
}

/// A line in the canonical layout, read in place: no copies, properties
/// split only when a rule asks for one. The caller has checked that the line
/// holds no escapes and no control characters (see [`swar`]).
#[derive(Debug, Clone, Copy)]
pub struct Canonical<'a> {
    pub id: &'a str,
    pub lead: &'a str,
    pub kind: &'a str,
    pub occurred_at: &'a str,
    /// The properties value's text (`{..}` or `null`), or "" when absent.
    properties: &'a str,
}

impl<'a> Canonical<'a> {
    /// `None` unless the line is in the canonical layout (then [`parse_line`]
    /// reads it the same way).
    #[inline]
    pub fn parse(line: &'a str) -> Option<Self> {
        let [id, lead, kind, occurred_at, properties] = fast::canonical_fields(line)?;
        Some(Canonical {
            id,
            lead,
            kind,
            occurred_at,
            properties,
        })
    }

    fn each_property(&self, f: impl FnMut(&'a str, &'a str)) {
        fast::each_property(self.properties, f);
    }
}

impl leadscore_core::PropertyLookup for Canonical<'_> {
    fn property(&self, key: &str) -> Option<Cow<'_, str>> {
        // JSON objects with a repeated key keep the last value.
        let mut found = None;
        self.each_property(|k, v| {
            if k == key {
                found = Some(v);
            }
        });
        found.map(Cow::Borrowed)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SerdeLine<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    lead: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    occurred_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    properties: Option<BTreeMap<Cow<'a, str>, &'a RawValue>>,
}

fn slow(line: &[u8]) -> Result<EventLine<'_>, LineError> {
    let raw: SerdeLine = serde_json::from_slice(line).map_err(|e| {
        let msg = e.to_string();
        match e.classify() {
            serde_json::error::Category::Data if msg.starts_with("unknown field") => {
                LineError::UnknownField(msg)
            }
            serde_json::error::Category::Data => LineError::WrongType(msg),
            _ => LineError::NotJson(msg),
        }
    })?;
    let mut properties = Properties::new();
    for (k, v) in raw.properties.unwrap_or_default() {
        let text = v.get();
        let value = if text.starts_with('"') {
            Cow::Owned(serde_json::from_str::<String>(text).map_err(|e| LineError::NotJson(e.to_string()))?)
        } else {
            Cow::Borrowed(text)
        };
        properties.push((k, value));
    }
    Ok(EventLine {
        id: raw.id.ok_or(LineError::MissingField("id"))?,
        lead: raw.lead.ok_or(LineError::MissingField("lead"))?,
        kind: raw.kind.ok_or(LineError::MissingField("type"))?,
        occurred_at: raw.occurred_at.ok_or(LineError::MissingField("occurred_at"))?,
        properties,
    })
}

/// Byte searches eight bytes at a time ("SIMD within a register"): lines are
/// short, so this beats both a byte loop and a vectorised search's setup.
pub(crate) mod swar {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;

    /// High bit set in each byte of `v` that is zero. Borrows can also flag
    /// bytes above the first zero byte, so only the lowest flag is exact.
    const fn zero_bytes(v: u64) -> u64 {
        v.wrapping_sub(ONES) & !v & HIGHS
    }

    fn word(b: &[u8]) -> u64 {
        u64::from_le_bytes(b.try_into().expect("eight bytes"))
    }

    /// Does the line hold a backslash or a control character (below 0x20)?
    pub fn has_escape_or_control(line: &[u8]) -> bool {
        let mut words = line.chunks_exact(8);
        for w in &mut words {
            let w = word(w);
            if zero_bytes(w ^ (ONES * u64::from(b'\\'))) | (w.wrapping_sub(ONES * 0x20) & !w & HIGHS) != 0 {
                return true;
            }
        }
        words.remainder().iter().any(|&c| c < 0x20 || c == b'\\')
    }

    /// The offset of the first `"`.
    pub fn find_quote(b: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i + 8 <= b.len() {
            let hits = zero_bytes(word(&b[i..i + 8]) ^ (ONES * u64::from(b'"')));
            if hits != 0 {
                return Some(i + (hits.trailing_zeros() / 8) as usize);
            }
            i += 8;
        }
        b[i..].iter().position(|&c| c == b'"').map(|p| i + p)
    }
}

mod fast {
    use std::borrow::Cow;

    use super::EventLine;

    struct Cursor<'a> {
        s: &'a str,
        pos: usize,
    }

    impl<'a> Cursor<'a> {
        fn ws(&mut self) {
            let b = self.s.as_bytes();
            while self.pos < b.len() && matches!(b[self.pos], b' ' | b'\t' | b'\r' | b'\n') {
                self.pos += 1;
            }
        }

        fn eat(&mut self, c: u8) -> Option<()> {
            self.ws();
            (self.s.as_bytes().get(self.pos) == Some(&c)).then(|| self.pos += 1)
        }

        fn peek(&mut self) -> Option<u8> {
            self.ws();
            self.s.as_bytes().get(self.pos).copied()
        }

        /// A string; the caller has checked that the line holds no escapes
        /// and no control characters.
        fn string(&mut self) -> Option<&'a str> {
            self.eat(b'"')?;
            let start = self.pos;
            let end = start + super::swar::find_quote(&self.s.as_bytes()[start..])?;
            self.pos = end + 1;
            Some(&self.s[start..end])
        }

        /// A scalar that is not a string: a JSON number, true, false or null.
        fn literal(&mut self) -> Option<&'a str> {
            self.ws();
            let b = self.s.as_bytes();
            let start = self.pos;
            for word in ["true", "false", "null"] {
                if self.s[start..].starts_with(word) {
                    self.pos += word.len();
                    return Some(word);
                }
            }
            let mut i = start;
            let digits = |i: &mut usize| {
                let from = *i;
                while *i < b.len() && b[*i].is_ascii_digit() {
                    *i += 1;
                }
                *i > from
            };
            if b.get(i) == Some(&b'-') {
                i += 1;
            }
            if b.get(i) == Some(&b'0') {
                i += 1;
            } else if !digits(&mut i) {
                return None;
            }
            if b.get(i) == Some(&b'.') {
                i += 1;
                if !digits(&mut i) {
                    return None;
                }
            }
            if matches!(b.get(i), Some(b'e' | b'E')) {
                i += 1;
                if matches!(b.get(i), Some(b'+' | b'-')) {
                    i += 1;
                }
                if !digits(&mut i) {
                    return None;
                }
            }
            self.pos = i;
            Some(&self.s[start..i])
        }

        /// A properties value (an object of scalars, or `null`), calling `f`
        /// with each (key, value) in order.
        fn each_property(&mut self, mut f: impl FnMut(&'a str, &'a str)) -> Option<()> {
            if self.peek()? == b'n' {
                return (self.literal()? == "null").then_some(());
            }
            self.eat(b'{')?;
            if self.peek()? == b'}' {
                self.pos += 1;
                return Some(());
            }
            loop {
                let key = self.string()?;
                self.eat(b':')?;
                let value = if self.peek()? == b'"' {
                    self.string()?
                } else {
                    self.literal()?
                };
                f(key, value);
                match self.peek()? {
                    b',' => self.pos += 1,
                    b'}' => {
                        self.pos += 1;
                        return Some(());
                    }
                    _ => return None,
                }
            }
        }

        fn properties(&mut self) -> Option<super::Properties<'a>> {
            let mut out = super::Properties::new();
            self.each_property(|k, v| out.push((Cow::Borrowed(k), Cow::Borrowed(v))))?;
            Some(out)
        }
    }

    /// `None` unless the line is a simple, valid event object. The line must
    /// hold no backslash and no control character (see [`super::parse_line`]).
    pub(super) fn parse(s: &str) -> Option<EventLine<'_>> {
        canonical(s).or_else(|| any_order(s))
    }

    /// The layout almost every exporter writes, ours included:
    /// `{"id":"..","lead":"..","type":"..","occurred_at":".."[,"properties":{..}]}`,
    /// compact and in this order.
    fn canonical(s: &str) -> Option<EventLine<'_>> {
        let c = super::Canonical::parse(s)?;
        let mut properties = super::Properties::new();
        c.each_property(|k, v| properties.push((Cow::Borrowed(k), Cow::Borrowed(v))));
        Some(EventLine {
            id: Cow::Borrowed(c.id),
            lead: Cow::Borrowed(c.lead),
            kind: Cow::Borrowed(c.kind),
            occurred_at: Cow::Borrowed(c.occurred_at),
            properties,
        })
    }

    /// The canonical layout matched with a few fixed comparisons: the fields'
    /// text and the properties object's text (checked, not yet split).
    #[inline]
    pub(super) fn canonical_fields(s: &str) -> Option<[&str; 5]> {
        let mut pos = 0;
        let id = field(s, &mut pos, b"{\"id\":\"")?;
        let lead = field(s, &mut pos, b",\"lead\":\"")?;
        let kind = field(s, &mut pos, b",\"type\":\"")?;
        let at = field(s, &mut pos, b",\"occurred_at\":\"")?;
        let rest = &s[pos..];
        let properties = if rest == "}" {
            ""
        } else {
            const PROPS: &str = ",\"properties\":";
            if !rest.starts_with(PROPS) {
                return None;
            }
            let start = pos + PROPS.len();
            let mut c = Cursor { s, pos: start };
            c.each_property(|_, _| ())?;
            let end = c.pos;
            c.eat(b'}')?;
            (c.pos == s.len()).then_some(&s[start..end])?
        };
        Some([id, lead, kind, at, properties])
    }

    /// Calls `f` with each (key, value) of a properties value already
    /// accepted by [`canonical_fields`] (an object or `null`).
    pub(super) fn each_property<'a>(text: &'a str, f: impl FnMut(&'a str, &'a str)) {
        if !text.is_empty() {
            let ok = Cursor { s: text, pos: 0 }.each_property(f);
            debug_assert!(ok.is_some(), "checked when the line was read");
        }
    }

    /// The string value after `prefix` (a key and its opening quote) at
    /// `*pos`, moving `*pos` past its closing quote. The prefix's length is
    /// a constant, so the comparison compiles to a few word compares (a call
    /// to `memcmp` costs more than the comparison itself).
    #[inline(always)]
    fn field<'a, const N: usize>(s: &'a str, pos: &mut usize, prefix: &[u8; N]) -> Option<&'a str> {
        let b = s.as_bytes();
        let head: &[u8; N] = b.get(*pos..*pos + N)?.try_into().ok()?;
        if head != prefix {
            return None;
        }
        let start = *pos + N;
        let end = start + super::swar::find_quote(&b[start..])?;
        *pos = end + 1;
        Some(&s[start..end])
    }

    /// Any other simple object: keys in any order, white space anywhere.
    fn any_order(s: &str) -> Option<EventLine<'_>> {
        let mut c = Cursor { s, pos: 0 };
        c.eat(b'{')?;
        let (mut id, mut lead, mut kind, mut at, mut props) = (None, None, None, None, None);
        loop {
            let key = c.string()?;
            c.eat(b':')?;
            let slot = match key {
                "id" => &mut id,
                "lead" => &mut lead,
                "type" => &mut kind,
                "occurred_at" => &mut at,
                "properties" if props.is_none() => {
                    props = Some(c.properties()?);
                    match c.peek()? {
                        b',' => {
                            c.pos += 1;
                            continue;
                        }
                        b'}' => break,
                        _ => return None,
                    }
                }
                _ => return None,
            };
            if slot.is_some() {
                return None; // a repeated key: serde reports it
            }
            *slot = Some(Cow::Borrowed(c.string()?));
            match c.peek()? {
                b',' => c.pos += 1,
                b'}' => break,
                _ => return None,
            }
        }
        c.pos += 1;
        c.ws();
        if c.pos != s.len() {
            return None;
        }
        Some(EventLine {
            id: id?,
            lead: lead?,
            kind: kind?,
            occurred_at: at?,
            properties: props.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// (id, lead, type, occurred_at, properties) or the start of the error's Debug text.
    type Expected<'a> = Result<(&'a str, &'a str, &'a str, &'a str, &'a [(&'a str, &'a str)]), &'a str>;

    fn check(line: &str, expected: Expected) {
        let got = parse_line(line.as_bytes());
        match (got, expected) {
            (Ok(ev), Ok((id, lead, kind, at, props))) => {
                assert_eq!(
                    (
                        ev.id.as_ref(),
                        ev.lead.as_ref(),
                        ev.kind.as_ref(),
                        ev.occurred_at.as_ref()
                    ),
                    (id, lead, kind, at),
                    "{line}"
                );
                let got: Vec<(&str, &str)> = ev
                    .properties
                    .iter()
                    .map(|(k, v)| (k.as_ref(), v.as_ref()))
                    .collect();
                assert_eq!(got, props, "{line}");
            }
            (Err(e), Err(kind)) => assert!(format!("{e:?}").starts_with(kind), "{line}: {e:?}"),
            (got, expected) => panic!("{line}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn table() {
        let ok = |props: &'static [(&'static str, &'static str)]| {
            Ok(("e1", "L1", "page_viewed", "2026-11-01T00:00:00Z", props))
        };
        check(
            r#"{"id":"e1","lead":"L1","type":"page_viewed","occurred_at":"2026-11-01T00:00:00Z"}"#,
            ok(&[]),
        );
        check(
            r#" { "id" : "e1", "lead":"L1","type":"page_viewed","occurred_at":"2026-11-01T00:00:00Z","properties":{"path":"/pricing","n":5,"x":null} } "#,
            ok(&[("path", "/pricing"), ("n", "5"), ("x", "null")]),
        );
        check(
            r#"{"properties":{"path":"/pri\"cing"},"id":"e1","lead":"L1","type":"page_viewed","occurred_at":"2026-11-01T00:00:00Z"}"#,
            ok(&[("path", "/pri\"cing")]),
        );
        check(
            r#"{"id":"e\u0031","lead":"L1","type":"page_viewed","occurred_at":"2026-11-01T00:00:00Z","properties":null}"#,
            ok(&[]),
        );
        check(
            r#"{"id":"e1","lead":"L1","type":"page_viewed","occurred_at":"2026-11-01T00:00:00Z","properties":{"tags":["a",1]}}"#,
            ok(&[("tags", r#"["a",1]"#)]),
        );
        check(
            r#"{"id":"e1","lead":"L1","type":"page_viewed"}"#,
            Err("MissingField(\"occurred_at\")"),
        );
        check(
            r#"{"id":"e1","lead":"L1","type":"page_viewed","occurred_at":null}"#,
            Err("MissingField"),
        );
        check(
            r#"{"id":1,"lead":"L1","type":"page_viewed","occurred_at":"2026-11-01T00:00:00Z"}"#,
            Err("WrongType"),
        );
        check(
            r#"{"id":"e1","lead":"L1","type":"page_viewed","occurred_at":"2026-11-01T00:00:00Z","properties":"x"}"#,
            Err("WrongType"),
        );
        check(
            r#"{"id":"e1","lead":"L1","kind":"page_viewed","occurred_at":"2026-11-01T00:00:00Z"}"#,
            Err("UnknownField"),
        );
        check(
            r#"{"id":"e1","id":"e2","lead":"L1","type":"t","occurred_at":"2026-11-01T00:00:00Z"}"#,
            Err("WrongType"),
        );
        check(r#"{"id":"e1","lead":"L1""#, Err("NotJson"));
        check("not json", Err("NotJson"));
        check(
            r#"{"id":"e1","lead":"L1","type":"t","occurred_at":"x"} trailing"#,
            Err("NotJson"),
        );
        check(
            r#"{"id":"e1","lead":"L1","type":"t","occurred_at":"x","properties":{"n":01}}"#,
            Err("NotJson"),
        );
    }

    fn json_string() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9 /_.:-]{0,12}",
            any::<String>().prop_map(|s| s.chars().take(8).collect()),
        ]
    }

    fn json_scalar() -> impl Strategy<Value = serde_json::Value> {
        prop_oneof![
            json_string().prop_map(serde_json::Value::String),
            any::<i32>().prop_map(|n| serde_json::json!(n)),
            (-1e6f64..1e6).prop_map(|n| serde_json::json!(n)),
            any::<bool>().prop_map(serde_json::Value::Bool),
            Just(serde_json::Value::Null),
        ]
    }

    #[test]
    fn swar_searches_find_every_offset() {
        for len in 0..40 {
            assert_eq!(swar::find_quote(&vec![b'a'; len]), None);
            assert!(!swar::has_escape_or_control(&vec![b'a'; len]));
            assert!(!swar::has_escape_or_control(&vec![0xc3; len]));
            for at in 0..len {
                let mut v = vec![b'x'; len];
                v[at] = b'"';
                if at + 1 < len {
                    v[at + 1] = b'"';
                }
                assert_eq!(swar::find_quote(&v), Some(at), "len {len} at {at}");
                for c in [b'\\', 0x00, 0x1f, b'\t', b'\r'] {
                    let mut v = vec![b' '; len];
                    v[at] = c;
                    assert!(swar::has_escape_or_control(&v), "len {len} at {at} byte {c}");
                }
            }
        }
    }

    proptest! {
        /// Whatever the fast path accepts, serde reads the same way.
        #[test]
        fn fast_path_agrees_with_serde(
            id in json_string(), lead in json_string(), kind in json_string(), at in json_string(),
            props in proptest::collection::vec((json_string(), json_scalar()), 0..4),
            spaced in any::<bool>(),
        ) {
            let mut obj = serde_json::Map::new();
            obj.insert("id".into(), id.into());
            obj.insert("lead".into(), lead.into());
            obj.insert("type".into(), kind.into());
            obj.insert("occurred_at".into(), at.into());
            obj.insert("properties".into(), serde_json::Value::Object(props.into_iter().collect()));
            let v = serde_json::Value::Object(obj);
            let line = if spaced { serde_json::to_string_pretty(&v).unwrap().replace('\n', " ") } else { v.to_string() };
            let slow_result = slow(line.as_bytes()).unwrap();
            let plain = !line.bytes().any(|c| c < 0x20 || c == b'\\');
            if plain && let Some(fast_result) = fast::parse(&line) {
                prop_assert_eq!(fast_result, slow_result);
            }
        }

        /// Lines in the canonical layout read the same through every path.
        #[test]
        fn canonical_layout_agrees_with_serde(
            id in json_string(), lead in json_string(), kind in json_string(), at in json_string(),
            props in proptest::option::of(proptest::collection::vec((json_string(), json_scalar()), 0..4)),
        ) {
            let q = |v: &str| serde_json::to_string(v).unwrap();
            let mut line = format!("{{\"id\":{},\"lead\":{},\"type\":{},\"occurred_at\":{}", q(&id), q(&lead), q(&kind), q(&at));
            if let Some(props) = props {
                let map: serde_json::Map<String, serde_json::Value> = props.into_iter().collect();
                line.push_str(&format!(",\"properties\":{}", serde_json::Value::Object(map)));
            }
            line.push('}');
            prop_assert_eq!(parse_line(line.as_bytes()).unwrap(), slow(line.as_bytes()).unwrap());
        }

        /// Arbitrary bytes never panic, and the fast path never accepts what serde refuses.
        #[test]
        fn garbage_is_refused_not_panicked(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let plain = !bytes.iter().any(|&c| c < 0x20 || c == b'\\');
            if plain && let Ok(s) = std::str::from_utf8(&bytes) && fast::parse(s).is_some() {
                prop_assert!(slow(&bytes).is_ok());
            }
            let _ = parse_line(&bytes);
        }
    }
}
