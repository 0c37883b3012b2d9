//! The request table `Pending<N>` against a reference model, with proptest-state-machine.
//!
//! The model knows nothing about slots or id allocation. It names requests by the order they
//! were inserted ("keys"); the system under test maps keys to the ids the table handed out.
//! Checked after every step: occupancy and in-flight counts, the earliest deadline, which
//! requests are still known, and that ids are never 0 and never shared between occupied slots.
//! Checked at the end: every inserted request ended exactly once.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use sentelite_core::correlate::{Pending, PendingFull, UnknownRequest};
use sentelite_core::{Duration, Instant, RequestEnd};

/// Capacity under test: small, so "full" happens often.
const N: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Waiting for its end.
    Live,
    /// Ended, not yet reported by `poll_ended`.
    Ended(RequestEnd),
    /// Ended and reported, or completed by the responder: gone from the table.
    Gone,
}

#[derive(Debug, Clone)]
struct Entry {
    deadline: Option<u64>,
    next_seq: u32,
    fate: Fate,
}

#[derive(Debug, Clone, Default)]
struct Model {
    /// Microseconds of fake time.
    now: u64,
    /// Every request ever inserted, by key.
    entries: Vec<Entry>,
    /// Ended-but-unreported entries handed out by single `PollOne` steps: the model cannot
    /// know which one the table picks, so it only counts them.
    reported_blind: usize,
}

impl Model {
    fn live(&self) -> usize {
        self.entries.iter().filter(|e| e.fate == Fate::Live).count()
    }

    fn unreported(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e.fate, Fate::Ended(_)))
            .count()
            - self.reported_blind
    }

    fn occupied(&self) -> usize {
        self.live() + self.unreported()
    }

    fn earliest_deadline(&self) -> Option<u64> {
        self.entries
            .iter()
            .filter(|e| e.fate == Fate::Live)
            .filter_map(|e| e.deadline)
            .min()
    }
}

#[derive(Debug, Clone)]
enum Step {
    Insert {
        timeout_ms: Option<u16>,
    },
    OnPart {
        key: usize,
        seq: u32,
    },
    Complete {
        key: usize,
    },
    Cancel {
        key: usize,
    },
    /// Advance fake time, then expire.
    Expire {
        advance_ms: u16,
    },
    CloseAll,
    /// One `poll_ended` call.
    PollOne,
    /// `poll_ended` until it returns `None`.
    PollAll,
    /// Operations on an id the table never handed out.
    Stranger {
        seq: u32,
    },
}

struct PendingModel;

impl ReferenceStateMachine for PendingModel {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::default()).boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Step> {
        let seq = prop_oneof![0u32..6, Just(u32::MAX), any::<u32>()];
        let keyless = prop_oneof![
            4 => proptest::option::weighted(0.7, 0u16..60)
                .prop_map(|timeout_ms| Step::Insert { timeout_ms }),
            2 => (0u16..40).prop_map(|advance_ms| Step::Expire { advance_ms }),
            1 => Just(Step::CloseAll),
            2 => Just(Step::PollOne),
            1 => Just(Step::PollAll),
            1 => seq.clone().prop_map(|seq| Step::Stranger { seq }),
        ];
        if state.entries.is_empty() {
            return keyless.boxed();
        }
        // Favour recent keys: old ones have mostly ended already.
        let len = state.entries.len();
        let key = prop_oneof![0..len, len.saturating_sub(N)..len];
        prop_oneof![
            11 => keyless,
            3 => (key.clone(), seq).prop_map(|(key, seq)| Step::OnPart { key, seq }),
            2 => key.clone().prop_map(|key| Step::Complete { key }),
            1 => key.prop_map(|key| Step::Cancel { key }),
        ]
        .boxed()
    }

    fn preconditions(state: &Model, step: &Step) -> bool {
        match step {
            Step::OnPart { key, .. } | Step::Complete { key } | Step::Cancel { key } => {
                *key < state.entries.len()
            }
            _ => true,
        }
    }

    fn apply(mut state: Model, step: &Step) -> Model {
        match *step {
            Step::Insert { timeout_ms } => {
                if state.occupied() < N {
                    state.entries.push(Entry {
                        deadline: timeout_ms.map(|t| state.now + u64::from(t) * 1000),
                        next_seq: 0,
                        fate: Fate::Live,
                    });
                }
            }
            Step::OnPart { key, seq } => {
                let e = &mut state.entries[key];
                if e.fate == Fate::Live {
                    e.next_seq = seq.saturating_add(1).max(e.next_seq);
                }
            }
            Step::Complete { key } => {
                if state.entries[key].fate == Fate::Live {
                    state.entries[key].fate = Fate::Gone;
                }
            }
            Step::Cancel { key } => {
                if state.entries[key].fate == Fate::Live {
                    state.entries[key].fate = Fate::Ended(RequestEnd::Cancelled);
                }
            }
            Step::Expire { advance_ms } => {
                state.now += u64::from(advance_ms) * 1000;
                let now = state.now;
                for e in &mut state.entries {
                    if e.fate == Fate::Live && e.deadline.is_some_and(|d| d <= now) {
                        e.fate = Fate::Ended(RequestEnd::TimedOut);
                    }
                }
            }
            Step::CloseAll => {
                for e in &mut state.entries {
                    if e.fate == Fate::Live {
                        e.fate = Fate::Ended(RequestEnd::Closed);
                    }
                }
            }
            Step::PollOne => {
                if state.unreported() > 0 {
                    state.reported_blind += 1;
                }
            }
            Step::PollAll => {
                for e in &mut state.entries {
                    if matches!(e.fate, Fate::Ended(_)) {
                        e.fate = Fate::Gone;
                    }
                }
                state.reported_blind = 0;
            }
            Step::Stranger { .. } => {}
        }
        state
    }
}

/// The table plus what the test learned from it.
struct Sut {
    pending: Pending<N>,
    /// Key → id, in insertion order.
    ids: Vec<u32>,
    /// Keys whose end was reported, with the end.
    reports: HashMap<usize, RequestEnd>,
    /// Keys completed by the responder.
    completed: HashSet<usize>,
    /// The model as it was before the step being applied.
    prev: Model,
}

impl Sut {
    /// Checks one `poll_ended` report against the model before the step.
    fn record_report(&mut self, before: &Model, id: u32, end: RequestEnd) {
        // The newest key with this id: ids are unique among occupied slots.
        let key = self
            .ids
            .iter()
            .rposition(|&i| i == id)
            .expect("poll_ended reported an id never handed out");
        assert!(
            !self.completed.contains(&key),
            "completed request {id} reported"
        );
        assert!(
            self.reports.insert(key, end).is_none(),
            "request {id} reported twice"
        );
        assert_eq!(
            before.entries[key].fate,
            Fate::Ended(end),
            "request {id} reported with the wrong end"
        );
    }

    /// Keys that hold a slot in the table right now.
    fn occupied_keys(&self, before: &Model) -> impl Iterator<Item = usize> + '_ {
        let fates: Vec<Fate> = before.entries.iter().map(|e| e.fate).collect();
        (0..self.ids.len()).filter(move |k| match fates[*k] {
            Fate::Live => true,
            Fate::Ended(_) => !self.reports.contains_key(k),
            Fate::Gone => false,
        })
    }
}

struct PendingTest;

impl StateMachineTest for PendingTest {
    type SystemUnderTest = Sut;
    type Reference = PendingModel;

    fn init_test(model: &Model) -> Sut {
        Sut {
            pending: Pending::new(),
            ids: Vec::new(),
            reports: HashMap::new(),
            completed: HashSet::new(),
            prev: model.clone(),
        }
    }

    fn apply(mut sut: Sut, model: &Model, step: Step) -> Sut {
        let before = std::mem::take(&mut sut.prev);
        let now = Instant::from_micros(model.now);
        let was_live = |key: usize| before.entries[key].fate == Fate::Live;
        match step {
            Step::Insert { timeout_ms } => {
                let timeout = timeout_ms.map(|t| Duration::from_millis(t.into()));
                let expect_full = before.occupied() >= N;
                match sut.pending.insert(now, timeout) {
                    Ok(id) => {
                        assert!(!expect_full, "insert succeeded but the model says full");
                        assert_ne!(id, 0, "ids are never 0");
                        let clash = sut.occupied_keys(&before).find(|&k| sut.ids[k] == id);
                        assert_eq!(clash, None, "id {id} handed out while still occupied");
                        sut.ids.push(id);
                    }
                    Err(PendingFull) => assert!(expect_full, "table full too early"),
                }
            }
            Step::OnPart { key, seq } => match sut.pending.on_part(sut.ids[key], seq) {
                Ok(expected) => {
                    assert!(was_live(key), "part accepted for an ended request");
                    assert_eq!(
                        expected, before.entries[key].next_seq,
                        "expected part number"
                    );
                }
                Err(UnknownRequest) => assert!(!was_live(key), "part refused for a live request"),
            },
            Step::Complete { key } => match sut.pending.complete(sut.ids[key]) {
                Ok(()) => {
                    assert!(was_live(key), "completed a request that had ended");
                    sut.completed.insert(key);
                }
                Err(UnknownRequest) => assert!(!was_live(key), "live request not completable"),
            },
            Step::Cancel { key } => {
                let ok = sut.pending.cancel(sut.ids[key]).is_ok();
                assert_eq!(ok, was_live(key), "cancel of key {key}");
            }
            Step::Expire { .. } => sut.pending.expire(now),
            Step::CloseAll => sut.pending.close_all(),
            Step::PollOne => match sut.pending.poll_ended() {
                Some((id, end)) => sut.record_report(&before, id, end),
                None => assert_eq!(before.unreported(), 0, "an ended request was not reported"),
            },
            Step::PollAll => {
                for _ in 0..=N {
                    match sut.pending.poll_ended() {
                        Some((id, end)) => sut.record_report(&before, id, end),
                        None => break,
                    }
                }
                assert_eq!(sut.pending.poll_ended(), None);
                for (key, e) in before.entries.iter().enumerate() {
                    if matches!(e.fate, Fate::Ended(_)) {
                        assert!(sut.reports.contains_key(&key), "key {key} never reported");
                    }
                }
            }
            Step::Stranger { seq } => {
                let stranger = (1..=u32::MAX)
                    .find(|i| !sut.ids.contains(i))
                    .expect("some id is unused");
                assert_eq!(sut.pending.on_part(stranger, seq), Err(UnknownRequest));
                assert_eq!(sut.pending.complete(stranger), Err(UnknownRequest));
                assert_eq!(sut.pending.cancel(stranger), Err(UnknownRequest));
                assert_eq!(sut.pending.on_part(0, seq), Err(UnknownRequest));
            }
        }
        sut.prev = model.clone();
        sut
    }

    fn check_invariants(sut: &Sut, model: &Model) {
        let p = &sut.pending;
        assert!(p.occupied() <= N, "more than N occupied");
        assert_eq!(p.occupied(), model.occupied(), "occupied slots");
        assert_eq!(p.in_flight(), model.live(), "requests in flight");
        assert_eq!(
            p.next_deadline(),
            model.earliest_deadline().map(Instant::from_micros),
            "next deadline"
        );
        for (key, e) in model.entries.iter().enumerate() {
            assert_eq!(
                p.contains(sut.ids[key]),
                e.fate == Fate::Live,
                "contains(key {key}) with fate {:?}",
                e.fate
            );
        }
    }

    fn teardown(mut sut: Sut, model: Model) {
        // Close and drain: afterwards every request must have ended exactly once.
        sut.pending.close_all();
        let mut closed = model;
        for e in &mut closed.entries {
            if e.fate == Fate::Live {
                e.fate = Fate::Ended(RequestEnd::Closed);
            }
        }
        for _ in 0..=N {
            match sut.pending.poll_ended() {
                Some((id, end)) => sut.record_report(&closed, id, end),
                None => break,
            }
        }
        assert_eq!(sut.pending.occupied(), 0);
        for key in 0..sut.ids.len() {
            let completed = sut.completed.contains(&key);
            let reported = sut.reports.contains_key(&key);
            assert!(
                completed ^ reported,
                "request key {key} ended {} times",
                u8::from(completed) + u8::from(reported)
            );
        }
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn pending_table_matches_the_model(sequential 1..60 => PendingTest);
}
