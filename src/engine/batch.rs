//! The batch driver: a whole transcript's events through one conversation, for
//! `ScoreTranscript`, `hearken score` and `hearken eval` (a live stream calls
//! [`Conversation::observe`] itself, one event at a time).

use super::{
    Alert, Conversation, Emitted, End, EndReason, Event, Rejected, Scorecard, Signal, Update,
    Utterance,
};

/// Everything scoring a whole conversation produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The update after each utterance, in order.
    pub timeline: Vec<Update>,
    /// Every alert, in order.
    pub alerts: Vec<Alert>,
    /// Events that could not be used, with their position in the event list.
    pub rejections: Vec<(usize, Rejected)>,
    /// The scorecard.
    pub scorecard: Scorecard,
}

/// Orders a transcript's events as a live stream would send them: each signal just before the
/// first utterance that starts after it, signals left over at the end, then `end`.
pub fn transcript_events(
    utterances: Vec<Utterance>,
    mut signals: Vec<Signal>,
    end: End,
) -> Vec<Event> {
    signals.sort_by_key(|s| s.offset_ms);
    let mut signals = signals.into_iter().peekable();
    let mut events = Vec::with_capacity(utterances.len() + 2);
    for u in utterances {
        if let Some(start) = u.start_ms {
            while let Some(s) = signals.next_if(|s| s.offset_ms <= start) {
                events.push(Event::Signal(s));
            }
        }
        events.push(Event::Utterance(u));
    }
    events.extend(signals.map(Event::Signal));
    events.push(Event::End(end, EndReason::Completed));
    events
}

/// Drives a conversation through a list of events — the one loop behind `ScoreTranscript`,
/// `hearken score` and `hearken eval`. Rejected events are collected and skipped. Ends the
/// conversation if the events do not.
pub fn score_events(
    mut conversation: Conversation,
    events: impl IntoIterator<Item = Event>,
) -> Scored {
    let mut timeline = Vec::new();
    let mut alerts = Vec::new();
    let mut rejections = Vec::new();
    let mut scorecard = None;
    // What one event gave, sorted into the three lists.
    let mut take = |out: Vec<Emitted>, scorecard: &mut Option<Scorecard>| {
        for e in out {
            match e {
                Emitted::Update(u) => timeline.push(*u),
                Emitted::Alert(a) => alerts.push(a),
                Emitted::Scorecard(c) => *scorecard = Some(*c),
            }
        }
    };
    for (i, event) in events.into_iter().enumerate() {
        match conversation.observe(event) {
            Ok(out) => take(out, &mut scorecard),
            Err(r) => rejections.push((i, r)),
        }
        if scorecard.is_some() {
            break;
        }
    }
    if scorecard.is_none() {
        // The events did not end it: it ends here, completed, as a finished transcript is.
        // A conversation that has not ended accepts an end without an offset.
        if let Ok(out) = conversation.observe(Event::End(End::default(), EndReason::Completed)) {
            take(out, &mut scorecard);
        }
    }
    Scored {
        timeline,
        alerts,
        rejections,
        scorecard: scorecard.expect("a conversation that is ended gives its scorecard"),
    }
}
