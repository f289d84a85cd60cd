//! Behavior rules: points for what a lead did (events), with decay, windows and caps.

use crate::time::Timestamp;

#[derive(Debug, Clone)]
pub struct BehaviorRule {
    pub id: String,
    pub label: Option<String>,
    pub events: Vec<String>,
    /// Every listed property must equal the value (string compare).
    pub filter: Vec<(String, String)>,
    pub points: f64,
    pub max_events: Option<u32>,
    pub cap: Option<f64>,
    pub half_life_days: Option<f64>,
    pub window_days: Option<f64>,
}

/// One event counted against one behavior rule: the compact form the engine
/// scores from. `seq` is the ingest order (later ingested = larger).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub rule: u16,
    pub at: Timestamp,
    pub seq: u64,
}

/// What one behavior rule contributed for one lead.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuleResult {
    pub points: f64,
    pub events: u32,
}

impl BehaviorRule {
    /// Evaluates the rule over its hits, which must be sorted newest first
    /// (later `at` first, ties by larger `seq` first), as of `as_of`.
    pub fn evaluate(&self, newest_first: &[Hit], as_of: Timestamp) -> RuleResult {
        let window_start = self.window_days.map(|w| as_of.minus_days(w));
        let limit = self.max_events.map_or(usize::MAX, |n| n as usize);
        let mut sum = 0.0;
        let mut events = 0u32;
        for hit in newest_first.iter().filter(|h| h.at <= as_of) {
            if window_start.is_some_and(|start| hit.at <= start) || events as usize >= limit {
                break; // older hits are outside the window too, or past max_events
            }
            events += 1;
            sum += match self.half_life_days {
                Some(h) => self.points * 0.5f64.powf(as_of.days_since(hit.at) / h),
                None => self.points,
            };
        }
        if let Some(cap) = self.cap {
            sum = sum.clamp(-cap, cap);
        }
        RuleResult { points: sum, events }
    }

    /// Does an event of this type with these properties count for the rule?
    pub fn matches(&self, event_type: &str, properties: &dyn PropertyLookup) -> bool {
        self.events.iter().any(|e| e == event_type) && self.matches_properties(properties)
    }

    /// Do the properties satisfy the rule's `where`?
    pub fn matches_properties(&self, properties: &dyn PropertyLookup) -> bool {
        self.filter
            .iter()
            .all(|(k, v)| properties.property(k).is_some_and(|p| p == v.as_str()))
    }
}

/// Read access to an event's properties as strings (numbers and booleans in
/// their JSON spelling).
pub trait PropertyLookup {
    fn property(&self, key: &str) -> Option<std::borrow::Cow<'_, str>>;
}

impl PropertyLookup for std::collections::BTreeMap<String, String> {
    fn property(&self, key: &str) -> Option<std::borrow::Cow<'_, str>> {
        self.get(key).map(|v| std::borrow::Cow::Borrowed(v.as_str()))
    }
}

impl PropertyLookup for [(&str, &str)] {
    fn property(&self, key: &str) -> Option<std::borrow::Cow<'_, str>> {
        self.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| std::borrow::Cow::Borrowed(*v))
    }
}
