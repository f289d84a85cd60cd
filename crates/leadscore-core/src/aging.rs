//! Scores as time passes: when does a lead's band or MQL flag change by itself?
//!
//! A score is computed as of a moment, and it moves with that moment even when
//! nothing new happens: points with a `half_life_days` decay, events leave a
//! `window_days` window, and events dated in the future start counting when
//! the moment reaches them (pushing older ones out under `max_events`). Caps,
//! the clamp to the score range, the rounding to 2 decimals and the band, grade
//! and MQL decisions all apply as usual: every state here is the one
//! [`ScoringModel::score_hits`] computes, so it never disagrees with a score.
//!
//! [`ScoringModel::next_change`] tells when the band or the MQL flag will
//! next change (to schedule a rescore, a "cooling down" alert, or the moment
//! an SLA starts), assuming no new events arrive. The grade depends on the fit
//! score alone and so never changes with time.
//!
//! # How the search works
//!
//! Between *breakpoints* (a hit's `at` when it is still in the future, a hit's
//! `at + window_days` when its rule has a window) the set of counted hits is
//! constant and the score is smooth. Each breakpoint is a jump whose direction
//! is known from the sign of its rule's points: an event starting to count
//! adds points (under `max_events` it replaces an older, no heavier event), an
//! event leaving a window takes them away. Between breakpoints, decaying
//! positive points only fall and decaying negative points only rise.
//!
//! So time splits into *stretches* over which the total is monotone: every
//! drift and jump in them goes the same way. Band and MQL are monotone in the
//! total, so over such a stretch the state can change at most once, and
//! checking its end tells whether it does; the moment is then found by
//! bisection on whole seconds.
//!
//! Where decaying rules of both signs count at once, the total may rise and
//! fall again. There the positive and the negative rules are scored apart: the
//! first only fall and the second only rise, which bounds the total over a
//! piece of time by their values at its ends. A piece whose bounds reach no
//! band's `from` and not the MQL threshold is skipped whole; any other is
//! halved, down to a 32nd of the shortest half-life (at least a minute), where
//! the state at its end is checked. A change that starts and ends within such
//! a step, close to a threshold, is missed.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use crate::behavior::Hit;
use crate::event::Event;
use crate::model::ScoringModel;
use crate::scoring::FitOutcome;
use crate::time::{MICROS_PER_DAY, Timestamp};

const SECOND: i64 = 1_000_000;
/// The smallest piece split where the total is not monotone: a fraction of
/// the shortest half-life, so the score moves little within it ...
const SAMPLES_PER_HALF_LIFE: f64 = 32.0;
/// ... but never below a minute, so a short half-life stays cheap.
const MIN_SAMPLE_STEP: i64 = 60 * SECOND;
/// How far the bound on a total may be off: the two engagements summed are
/// rounded to 2 decimals each, plus float noise.
const BOUND_SLACK: f64 = 0.01 + 1e-9;

/// What `next_change` watches: the band (an index into `model.bands`), the
/// MQL flag, and how many of the extra score thresholds the total reaches.
type State = (usize, bool, usize);

impl ScoringModel {
    /// The hits of these events under this model, as [`ScoringModel::score`]
    /// builds them: events with the same id count once (the first one given
    /// wins), and `seq` is the event's position in the slice (the ingest order).
    pub fn hits_for_events(&self, events: &[Event]) -> Vec<Hit> {
        let mut seen: HashSet<&str, foldhash::fast::RandomState> = HashSet::default();
        seen.reserve(events.len());
        let mut hits = Vec::with_capacity(events.len());
        for (seq, event) in events.iter().enumerate() {
            if !seen.insert(event.id.as_str()) {
                continue;
            }
            hits.extend(
                self.rules_for_event(&event.kind, &event.properties)
                    .map(|rule| Hit {
                        rule,
                        at: event.occurred_at,
                        seq: seq as u64,
                    }),
            );
        }
        hits
    }

    /// The band index and the MQL flag of the lead as of `t`, exactly as
    /// [`ScoringModel::score_hits`] decides them. `hits` is left as it is (the
    /// hits are copied); to probe many moments use [`ScoringModel::next_change`].
    pub fn state_at(&self, fit: &FitOutcome, hits: &[Hit], t: Timestamp) -> (usize, bool) {
        let (band, mql, _) = Probe::new(self, fit, hits, &[]).state(t.as_micros());
        (band, mql)
    }

    /// The earliest moment `t`, `from < t <= horizon`, at which the lead's band
    /// or MQL flag differs from what it is as of `from`, assuming no new events
    /// arrive; `None` when neither changes by `horizon`.
    ///
    /// `t` is a whole second (rounded up): the new state holds at `t` and the
    /// old one still held a second before. Only when the change falls in the
    /// last fraction of a second before `horizon`, or undoes itself within a
    /// second, is `t` the exact microsecond instead.
    ///
    /// `hits` must come from this model (see [`ScoringModel::hits_for_events`]),
    /// without duplicates; the slice is not modified (one copy is made and
    /// reused for every evaluation).
    ///
    /// # Cost
    ///
    /// Counted in calls of [`ScoringModel::score_hits`] on the copy (each
    /// linear in the hits once they are sorted): one at `from`; one at the end
    /// of each stretch over which the total is monotone (with positive rules
    /// and past events only, the whole horizon is one stretch; each future
    /// event of a lead whose points decay starts another); and about log2 of
    /// the stretch in seconds (25 for a year) to pin a change down to the
    /// second. That is typically 25 to 60 calls for a lead with tens of hits.
    /// Where decaying rules of both signs count at once, the bounds cost two
    /// calls on part of the hits (positive rules, negative rules) per moment
    /// looked at: 4 for a piece of time that stays clear of every threshold,
    /// more as the pieces that come near one are halved; at worst (a total
    /// within a cent of a threshold all along) about 5 per 32nd of the
    /// shortest half-life, some 500 over 90 days with a 30-day half-life.
    /// Finding the breakpoints takes one sort of the hits.
    pub fn next_change(
        &self,
        fit: &FitOutcome,
        hits: &[Hit],
        from: Timestamp,
        horizon: Timestamp,
    ) -> Option<Timestamp> {
        self.next_change_counted(fit, hits, from, horizon, &[]).0
    }

    /// [`ScoringModel::next_change`], also watching the (rounded) total
    /// cross any of `thresholds` (e.g. a trigger on `score >= 80`): the
    /// earliest moment the band, the MQL flag, or the number of thresholds
    /// the total reaches differs from `from`'s.
    pub fn next_change_with(
        &self,
        fit: &FitOutcome,
        hits: &[Hit],
        from: Timestamp,
        horizon: Timestamp,
        thresholds: &[f64],
    ) -> Option<Timestamp> {
        self.next_change_counted(fit, hits, from, horizon, thresholds).0
    }

    /// [`ScoringModel::next_change`], and how many scores it evaluated.
    fn next_change_counted(
        &self,
        fit: &FitOutcome,
        hits: &[Hit],
        from: Timestamp,
        horizon: Timestamp,
        thresholds: &[f64],
    ) -> (Option<Timestamp>, usize) {
        // Some 73,000 years either way: far enough for any real moment, and
        // near enough that no sum or difference of two moments overflows.
        const FAR: i64 = 1 << 61;
        let (from, horizon) = (
            from.as_micros().clamp(-FAR, FAR),
            horizon.as_micros().clamp(-FAR, FAR),
        );
        if horizon <= from {
            return (None, 0);
        }
        let mut probe = Probe::new(self, fit, hits, thresholds);
        let start = probe.state(from);
        let timeline = Timeline::build(self, hits, from, horizon);
        let mut search = Search {
            probe,
            start,
            horizon,
            sample_step: timeline.sample_step,
            fit_points: fit.held.iter().map(|&i| self.fit[usize::from(i)].points).sum(),
            run_start: from,
            run_end: from,
            run_trend: Trend::Flat,
        };
        let found = match search.walk(&timeline) {
            ControlFlow::Break(t) => Some(Timestamp::from_micros(t)),
            ControlFlow::Continue(()) => None,
        };
        (found, search.probe.evaluations)
    }
}

/// Scores one lead as of any moment, from one scratch copy of its hits.
struct Probe<'a> {
    model: &'a ScoringModel,
    fit: &'a FitOutcome,
    /// Extra thresholds on the total (see `next_change_with`).
    thresholds: &'a [f64],
    /// `score_hits` sorts this in place; after the first call it stays sorted.
    scratch: Vec<Hit>,
    /// The hits of positive and of negative rules apart, made on first use.
    by_sign: Option<BySign>,
    evaluations: usize,
}

/// Scratch copies of the hits of positive rules and of negative rules, and
/// their engagements at the moments asked so far.
#[derive(Debug)]
struct BySign {
    positive: Vec<Hit>,
    negative: Vec<Hit>,
    seen: HashMap<i64, (f64, f64)>,
}

impl<'a> Probe<'a> {
    fn new(model: &'a ScoringModel, fit: &'a FitOutcome, hits: &[Hit], thresholds: &'a [f64]) -> Self {
        Probe {
            model,
            fit,
            thresholds,
            scratch: hits.to_vec(),
            by_sign: None,
            evaluations: 0,
        }
    }

    fn state(&mut self, t: i64) -> State {
        self.evaluations += 1;
        let score = self
            .model
            .score_hits(self.fit, &mut self.scratch, Timestamp::from_micros(t));
        let reached = self.thresholds.iter().filter(|&&c| score.score >= c).count();
        (score.band, score.mql, reached)
    }

    /// The engagement from positive rules and from negative rules as of `t`,
    /// each rounded to 2 decimals (as `score_hits` reports engagements).
    fn engagement_by_sign(&mut self, t: i64) -> (f64, f64) {
        let model = self.model;
        let split = self.by_sign.get_or_insert_with(|| {
            let (positive, negative) = self
                .scratch
                .iter()
                .partition(|h| model.behavior[usize::from(h.rule)].points > 0.0);
            BySign {
                positive,
                negative,
                seen: HashMap::new(),
            }
        });
        if let Some(&known) = split.seen.get(&t) {
            return known;
        }
        let no_fit = FitOutcome::default();
        let as_of = Timestamp::from_micros(t);
        let engagements = (
            model.score_hits(&no_fit, &mut split.positive, as_of).engagement,
            model.score_hits(&no_fit, &mut split.negative, as_of).engagement,
        );
        split.seen.insert(t, engagements);
        self.evaluations += 2;
        engagements
    }
}

/// Which way the total can move over a piece of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trend {
    Flat,
    Rising,
    Falling,
    Mixed,
}

impl Trend {
    /// The trend of two pieces taken together.
    fn and(self, other: Trend) -> Trend {
        match (self, other) {
            (Trend::Flat, t) | (t, Trend::Flat) => t,
            (a, b) if a == b => a,
            _ => Trend::Mixed,
        }
    }

    /// How adding (`adds`) or removing points of this sign moves the total.
    fn of_change(points: f64, adds: bool) -> Trend {
        if (points > 0.0) == adds {
            Trend::Rising
        } else {
            Trend::Falling
        }
    }
}

/// A breakpoint: a hit starts counting or leaves its window.
#[derive(Debug, Clone, Copy)]
struct Mark {
    at: i64,
    jump: Trend,
    /// Change in the number of decaying hits with positive / negative points that count.
    decaying: (i32, i32),
}

/// The breakpoints in `(from, horizon]`, and what decays when.
#[derive(Debug)]
struct Timeline {
    from: i64,
    horizon: i64,
    /// Sorted by `at`.
    marks: Vec<Mark>,
    /// Decaying hits (positive, negative points) counting at `from`. A hit
    /// pushed out by `max_events` is counted here too: that only makes a
    /// piece look mixed when it is not, which costs samples, never a miss.
    decaying_at_from: (i32, i32),
    sample_step: i64,
}

impl Timeline {
    fn build(model: &ScoringModel, hits: &[Hit], from: i64, horizon: i64) -> Timeline {
        let mut marks = Vec::new();
        let mut decaying_at_from = (0, 0);
        let mut shortest_half_life = f64::INFINITY;
        for hit in hits {
            let rule = &model.behavior[usize::from(hit.rule)];
            let at = hit.at.as_micros();
            if rule.points == 0.0 || at > horizon {
                continue; // never moves the total before the horizon
            }
            // Signed counts: (+1, 0) for a decaying positive hit, (0, +1) for a negative one.
            let decaying = match rule.half_life_days {
                Some(h) => {
                    shortest_half_life = shortest_half_life.min(h);
                    if rule.points > 0.0 { (1, 0) } else { (0, 1) }
                }
                None => (0, 0),
            };
            // The same arithmetic as `BehaviorRule::evaluate`: the hit counts
            // while `at > as_of.minus_days(w)`, i.e. until `at + w` (exclusive).
            let end = rule
                .window_days
                .map(|w| at.saturating_add((w * MICROS_PER_DAY).round() as i64));
            if at <= from {
                if end.is_none_or(|e| e > from) {
                    decaying_at_from.0 += decaying.0;
                    decaying_at_from.1 += decaying.1;
                }
            } else {
                marks.push(Mark {
                    at,
                    jump: Trend::of_change(rule.points, true),
                    decaying,
                });
            }
            if let Some(end) = end.filter(|&e| e > from && e <= horizon) {
                marks.push(Mark {
                    at: end,
                    jump: Trend::of_change(rule.points, false),
                    decaying: (-decaying.0, -decaying.1),
                });
            }
        }
        marks.sort_unstable_by_key(|m| m.at);
        let sample_step = if shortest_half_life.is_finite() {
            ((shortest_half_life * MICROS_PER_DAY / SAMPLES_PER_HALF_LIFE) as i64).max(MIN_SAMPLE_STEP)
        } else {
            MIN_SAMPLE_STEP
        };
        Timeline {
            from,
            horizon,
            marks,
            decaying_at_from,
            sample_step,
        }
    }
}

/// How the total drifts while these decaying hits count.
fn drift((positive, negative): (i32, i32)) -> Trend {
    let falling = if positive > 0 { Trend::Falling } else { Trend::Flat };
    let rising = if negative > 0 { Trend::Rising } else { Trend::Flat };
    falling.and(rising)
}

/// The walk over the timeline: pieces (drifts between breakpoints and the
/// jumps at them) are gathered into a monotone run as long as they agree on a
/// direction; a run is checked at its end when it closes.
struct Search<'a> {
    probe: Probe<'a>,
    /// The state as of `from`.
    start: State,
    horizon: i64,
    sample_step: i64,
    /// The fit score (unrounded).
    fit_points: f64,
    /// The state at `run_start` is `start` (checked, or known).
    run_start: i64,
    /// The last moment the current run covers.
    run_end: i64,
    run_trend: Trend,
}

impl Search<'_> {
    /// Breaks with the moment of the first change.
    fn walk(&mut self, timeline: &Timeline) -> ControlFlow<i64> {
        let mut decaying = timeline.decaying_at_from;
        let mut last = timeline.from;
        let mut marks = timeline.marks.iter().peekable();
        while let Some(first) = marks.next() {
            let at = first.at;
            // The drift before the jump: [last, at), with the hits counting since `last`.
            self.piece(at - 1, drift(decaying), true)?;
            let mut jump = Trend::Flat;
            let mut mark = Some(first);
            while let Some(m) = mark {
                jump = jump.and(m.jump);
                decaying.0 += m.decaying.0;
                decaying.1 += m.decaying.1;
                mark = marks.next_if(|m| m.at == at);
            }
            self.piece(at, jump, false)?;
            last = at;
        }
        if last < timeline.horizon {
            self.piece(timeline.horizon, drift(decaying), true)?;
        }
        self.close_run()
    }

    /// Adds the piece of time from the current run's end to `end`: a drift
    /// (the counted hits do not change) or a jump at `end`.
    fn piece(&mut self, end: i64, trend: Trend, drift: bool) -> ControlFlow<i64> {
        if end <= self.run_end {
            return ControlFlow::Continue(());
        }
        if trend == Trend::Mixed {
            self.close_run()?;
            if drift {
                self.scan_mixed(self.run_end, end)?;
            } else if self.changed(end) {
                return ControlFlow::Break(self.pin(self.run_end, end));
            }
            self.run_start = end;
            self.run_end = end;
            return ControlFlow::Continue(());
        }
        if self.run_trend.and(trend) == Trend::Mixed {
            self.close_run()?;
        }
        self.run_trend = self.run_trend.and(trend);
        self.run_end = end;
        ControlFlow::Continue(())
    }

    /// Checks the state at the end of the current run, and starts a new one there.
    fn close_run(&mut self) -> ControlFlow<i64> {
        // A flat run changes nothing: the counted hits and their points stay put.
        if self.run_trend != Trend::Flat && self.run_end > self.run_start && self.changed(self.run_end) {
            return ControlFlow::Break(self.pin(self.run_start, self.run_end));
        }
        self.run_start = self.run_end;
        self.run_trend = Trend::Flat;
        ControlFlow::Continue(())
    }

    /// Searches `(a, b]` of a drift that may rise and fall (the state at
    /// `a` is the start state): skips it when the total cannot reach a
    /// threshold there, checks its end when it is a sample step long, and
    /// else searches its halves, the earlier first.
    fn scan_mixed(&mut self, a: i64, b: i64) -> ControlFlow<i64> {
        if self.stays_clear(a, b) {
            return ControlFlow::Continue(());
        }
        if b - a <= self.sample_step {
            if self.changed(b) {
                return ControlFlow::Break(self.pin(a, b));
            }
            return ControlFlow::Continue(());
        }
        let mid = a + (b - a) / 2;
        self.scan_mixed(a, mid)?;
        self.scan_mixed(mid, b)
    }

    /// Is the state certainly the same all over `[a, b]`, a piece of a drift?
    /// There, points of positive rules only fall and those of negative rules
    /// only rise, so the total lies between (positive at `b` + negative at
    /// `a`) and (positive at `a` + negative at `b`); band and MQL stay put
    /// when no band's `from` and not the MQL threshold is within that range
    /// (clamped to the score range, widened by the rounding).
    fn stays_clear(&mut self, a: i64, b: i64) -> bool {
        let (positive_a, negative_a) = self.probe.engagement_by_sign(a);
        let (positive_b, negative_b) = self.probe.engagement_by_sign(b);
        let model = self.probe.model;
        let low = (self.fit_points + positive_b + negative_a - BOUND_SLACK).clamp(model.min, model.max);
        let high = (self.fit_points + positive_a + negative_b + BOUND_SLACK).clamp(model.min, model.max);
        let band_bounds = model.bands.iter().skip(1).map(|b| b.from);
        let mql_threshold = model.mql.map(|m| m.threshold);
        // A rounded total reaches `c` from about `c - 0.005`: keep a cent away.
        band_bounds
            .chain(mql_threshold)
            .chain(self.probe.thresholds.iter().copied())
            .all(|c| low >= c + 0.01 || high <= c - 0.01)
    }

    fn changed(&mut self, t: i64) -> bool {
        self.probe.state(t) != self.start
    }

    /// The change between `lo` (where the state is the start state) and `hi`
    /// (where it is not), to the second: the first whole second in `(lo, hi]`
    /// with a changed state, found by bisection (which needs the change to be
    /// monotone in between); when the change comes after the last whole
    /// second, the next whole second, unless it is past the horizon or back
    /// to the start state, in which case `hi` itself.
    fn pin(&mut self, lo: i64, hi: i64) -> i64 {
        let first = lo.div_euclid(SECOND) + 1;
        let last = hi.div_euclid(SECOND);
        if first <= last && (last * SECOND == hi || self.changed(last * SECOND)) {
            // Invariant: unchanged at second `l` (or `l` is at or before `lo`), changed at `r`.
            let (mut l, mut r) = (first - 1, last);
            while r - l > 1 {
                let m = l + (r - l) / 2;
                if self.changed(m * SECOND) {
                    r = m;
                } else {
                    l = m;
                }
            }
            return r * SECOND;
        }
        let next = (last + 1) * SECOND;
        if next <= self.horizon && self.changed(next) {
            next
        } else {
            hi
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(rules: &str) -> ScoringModel {
        let text = format!(
            "name = \"m\"\n[[band]]\nname = \"cold\"\nfrom = 0\n[[band]]\nname = \"warm\"\nfrom = 25\n\
             [[band]]\nname = \"hot\"\nfrom = 50\n[mql]\nthreshold = 40\n{rules}"
        );
        ScoringModel::from_toml(&text, "m.toml").unwrap_or_else(|e| panic!("{e}"))
    }

    fn at(day: f64) -> Timestamp {
        Timestamp::from_micros((day * MICROS_PER_DAY) as i64)
    }

    fn hits(rule: u16, days: impl IntoIterator<Item = f64>) -> Vec<Hit> {
        days.into_iter()
            .enumerate()
            .map(|(seq, d)| Hit {
                rule,
                at: at(d),
                seq: seq as u64,
            })
            .collect()
    }

    #[test]
    fn a_decaying_lead_with_tens_of_hits_costs_well_under_a_hundred_scores() {
        let m = model(
            "[[behavior]]\nid = \"click\"\nevents = [\"c\"]\npoints = 6\nhalf_life_days = 20\n\
             [[behavior]]\nid = \"visit\"\nevents = [\"v\"]\npoints = 2\nwindow_days = 30\n",
        );
        let mut all = hits(0, (0..20).map(|i| 100.0 - f64::from(i)));
        all.extend(hits(1, (0..20).map(|i| 100.0 - 1.5 * f64::from(i))));
        let fit = FitOutcome::default();
        let (found, evaluations) = m.next_change_counted(&fit, &all, at(100.0), at(400.0), &[]);
        let t = found.expect("the lead cools down");
        assert_ne!(m.state_at(&fit, &all, t), m.state_at(&fit, &all, at(100.0)));
        assert!(evaluations < 60, "{evaluations} evaluations");
    }

    #[test]
    fn future_events_each_start_a_run() {
        let m = model("[[behavior]]\nid = \"click\"\nevents = [\"c\"]\npoints = 6\nhalf_life_days = 20\n");
        // Ten clicks spread over the coming 90 days keep the lead warm-ish, then it cools down.
        let all = hits(0, (0..10).map(|i| 100.0 + 9.0 * f64::from(i)));
        let fit = FitOutcome::default();
        let (_, evaluations) = m.next_change_counted(&fit, &all, at(100.0), at(500.0), &[]);
        assert!(evaluations < 100, "{evaluations} evaluations");
    }

    #[test]
    fn decay_of_both_signs_is_skipped_where_it_stays_clear_of_thresholds() {
        let m = model(
            "[[behavior]]\nid = \"click\"\nevents = [\"c\"]\npoints = 60\nhalf_life_days = 30\n\
             [[behavior]]\nid = \"bounce\"\nevents = [\"b\"]\npoints = -40\nhalf_life_days = 3\n",
        );
        let mut all = hits(0, [0.0]);
        all.extend(hits(1, [0.0]));
        let fit = FitOutcome::default();
        // 60 * 0.5^(d / 30) - 40 * 0.5^(d / 3): warm (about 24.7) down to cold, no threshold
        // crossed, so the 90 days need not be sampled every 2.25 hours.
        let (found, evaluations) = m.next_change_counted(&fit, &all, at(40.0), at(130.0), &[]);
        assert_eq!(found, None);
        assert!(evaluations < 10, "{evaluations} evaluations");
        // Near its peak (43.8, MQL), then falling below the MQL threshold of 40 on day 16.6.
        let (found, evaluations) = m.next_change_counted(&fit, &all, at(10.0), at(365.0), &[]);
        let t = found.expect("it cools down");
        assert!(t > at(16.5) && t < at(16.7), "{t}");
        assert_eq!(m.state_at(&fit, &all, t), (1, false));
        assert!(evaluations < 100, "{evaluations} evaluations");
    }

    #[test]
    fn extreme_moments_do_not_overflow() {
        let m = model(
            "[[behavior]]\nid = \"click\"\nevents = [\"c\"]\npoints = 30\nhalf_life_days = 5\nwindow_days = 9\n",
        );
        let (min, max) = (Timestamp::from_micros(i64::MIN), Timestamp::from_micros(i64::MAX));
        let mut all = hits(0, [1.0]);
        all.push(Hit {
            rule: 0,
            at: max,
            seq: 1,
        });
        all.push(Hit {
            rule: 0,
            at: min,
            seq: 2,
        });
        let fit = FitOutcome::default();
        let soon = m.next_change(&fit, &all, at(1.0), at(100.0));
        assert!(soon.is_some());
        assert_eq!(m.next_change(&fit, &all, at(1.0), max), soon);
        assert_eq!(m.next_change(&fit, &all, min, at(0.0)), None);
        assert!(m.next_change(&fit, &all, min, max).is_some());
    }

    #[test]
    fn the_callers_hits_keep_their_order() {
        let m = model("[[behavior]]\nid = \"click\"\nevents = [\"c\"]\npoints = 30\nhalf_life_days = 5\n");
        let all = hits(0, [1.0, 3.0, 2.0]);
        let before = all.clone();
        let _ = m.next_change(&FitOutcome::default(), &all, at(3.0), at(90.0));
        assert_eq!(all, before);
    }

    #[test]
    fn trends_combine() {
        use Trend::*;
        assert_eq!(Flat.and(Rising), Rising);
        assert_eq!(Falling.and(Flat), Falling);
        assert_eq!(Rising.and(Rising), Rising);
        assert_eq!(Rising.and(Falling), Mixed);
        assert_eq!(Mixed.and(Flat), Mixed);
        assert_eq!(Trend::of_change(5.0, true), Rising);
        assert_eq!(Trend::of_change(5.0, false), Falling);
        assert_eq!(Trend::of_change(-5.0, true), Falling);
        assert_eq!(Trend::of_change(-5.0, false), Rising);
    }
}
