//! A conversation's windowed state: the earlier final utterances in arrival order, the timed ones
//! placed by start time (speech recognisers finalise the two channels independently, so a
//! segment may arrive after a later-starting one), each role's speech as an interval union,
//! holds, the agent's current run of speech and the speaking-rate window.
//!
//! The utterance being scored is a [`Segment`] (its text, tokens and full analysis); once it is
//! scored the history keeps it as an [`Earlier`] turn, which holds only what the detectors of
//! later utterances read — no text, no tokens.
//!
//! Bounded: the history and the utterance being scored are at most `history.max_utterances`
//! utterances, and speech that ended more than `history.max_window_ms` before the latest speech
//! is forgotten; running totals live in `Metrics`, so forgetting loses no count.

use std::collections::VecDeque;

use super::event::Role;
use super::language::{Analysis, Ending, QuestionForm, Stem};
use super::rubric::Profile;
use super::text::Token;
use super::timing::{IntervalSet, longest_common_piece};

/// Holds remembered per conversation; older ones are forgotten.
const MAX_HOLDS: usize = 32;

/// The final utterance being scored, as the detectors see it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Segment {
    /// Its id.
    pub utterance_id: String,
    /// Position among the conversation's final utterances, from 1.
    pub ordinal: u32,
    /// Who spoke.
    pub role: Role,
    /// Which participant, when known.
    pub participant_id: Option<String>,
    /// The words as sent (the learned layer reads them; the history never keeps them).
    pub text: String,
    /// The words, tokenised.
    pub tokens: Vec<Token>,
    /// Start offset, if timed.
    pub start_ms: Option<i64>,
    /// End offset, if timed.
    pub end_ms: Option<i64>,
    /// A short listening cue ("mm-hmm") by the rubric's definition of a backchannel.
    pub backchannel: bool,
    /// What the language detectors read.
    pub analysis: Analysis,
}

impl Segment {
    /// Analyses a final utterance: its tokens, the language features, whether it is a
    /// backchannel.
    pub(crate) fn of(u: super::Utterance, ordinal: u32, profile: &Profile) -> Segment {
        let tokens = super::text::tokenize(&u.text);
        let duration = u.interval().map(|(s, e)| e - s);
        let analysis =
            super::language::analyse(&u.text, &tokens, &profile.compiled.fillers, profile.lang());
        let backchannel =
            super::detectors::is_backchannel(&tokens, &analysis.words, duration, profile);
        Segment {
            utterance_id: u.utterance_id,
            ordinal,
            role: u.role,
            participant_id: u.participant_id,
            text: u.text,
            tokens,
            start_ms: u.start_ms,
            end_ms: u.end_ms,
            backchannel,
            analysis,
        }
    }

    /// Whether `other` was said by the other party: a different role, or, when neither role is
    /// known, a different participant.
    pub(crate) fn is_other_party(&self, other: &Earlier) -> bool {
        match (self.role, other.role) {
            (Role::Unknown, Role::Unknown) => {
                self.participant_id.as_deref() != other.participant_id.as_deref()
            }
            (a, b) => a != b,
        }
    }

    /// `(start, end)` when timed.
    pub(crate) fn interval(&self) -> Option<(i64, i64)> {
        self.start_ms.zip(self.end_ms)
    }
}

/// An earlier final utterance, as the history keeps it: everything the detectors of later
/// utterances read, and nothing else (no text, no tokens, no word positions).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Earlier {
    /// Its id.
    pub utterance_id: Box<str>,
    /// Position among the conversation's final utterances, from 1.
    pub ordinal: u32,
    /// Who spoke.
    pub role: Role,
    /// Which participant, when known.
    pub participant_id: Option<Box<str>>,
    /// End offset, if timed.
    pub end_ms: Option<i64>,
    /// A short listening cue.
    pub backchannel: bool,
    /// Its number of words (fillers and stutters left out).
    pub words: u32,
    /// Stems of its content words, sorted, without repeats.
    pub content: Box<[Stem]>,
    /// Its question form, if it was one.
    pub question: Option<QuestionForm>,
    /// Whether it ended with a question mark.
    pub question_mark: bool,
    /// How it ended.
    pub ending: Ending,
    /// Its sentiment in [-1, 1].
    pub sentiment: f64,
}

impl From<Segment> for Earlier {
    fn from(s: Segment) -> Self {
        Earlier {
            utterance_id: s.utterance_id.into_boxed_str(),
            ordinal: s.ordinal,
            role: s.role,
            participant_id: s.participant_id.map(String::into_boxed_str),
            end_ms: s.end_ms,
            backchannel: s.backchannel,
            words: u32::try_from(s.analysis.words.len()).unwrap_or(u32::MAX),
            content: s.analysis.content.into_boxed_slice(),
            question: s.analysis.question,
            question_mark: s.analysis.question_mark,
            ending: s.analysis.ending,
            sentiment: s.analysis.sentiment,
        }
    }
}

/// A timed utterance on the timeline.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TimedSpan {
    /// Its id.
    pub utterance_id: Box<str>,
    /// Arrival position.
    pub ordinal: u32,
    /// Who spoke.
    pub role: Role,
    /// Start offset.
    pub start_ms: i64,
    /// End offset.
    pub end_ms: i64,
    /// A backchannel.
    pub backchannel: bool,
    /// Already counted as an interruption.
    pub interrupting: bool,
}

/// The customer turn an agent utterance answered.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Response {
    /// The customer utterance.
    pub to_utterance_id: String,
    /// Agent start minus customer end; negative when they overlap.
    pub gap_ms: i64,
    /// Length of the customer utterance.
    pub customer_turn_ms: i64,
}

/// What placing one utterance on the timeline revealed. All zero without timing.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Placement {
    /// Talk time the utterance added to its role (not already covered).
    pub new_talk_ms: i64,
    /// Overtalk it added.
    pub new_overtalk_ms: i64,
    /// Longest continuous stretch of both roles speaking that involves this utterance.
    pub overtalk_episode_ms: i64,
    /// Other-role utterances it overlaps.
    pub overlapping: Vec<String>,
    /// Silence (outside holds) between the latest earlier speech and this utterance's start.
    pub silence_before_ms: i64,
    /// For an agent utterance: the customer turn it answers.
    pub response: Option<Response>,
    /// For an agent utterance: the agent's run of speech before and after it.
    pub run_before_ms: i64,
    /// See `run_before_ms`.
    pub run_after_ms: i64,
    /// The first utterance of the agent's current run.
    pub run_first_utterance_id: Option<String>,
    /// For an agent utterance long enough to count: words and milliseconds of agent speech in
    /// the speaking-rate window, once the window is full.
    pub rate_window: Option<(u64, i64)>,
}

#[derive(Debug, Clone)]
struct AgentRun {
    start_ms: i64,
    end_ms: i64,
    first_utterance_id: String,
}

/// The windowed state of one conversation.
#[derive(Debug, Clone, Default)]
pub(crate) struct State {
    /// Earlier final utterances, in arrival order (newest last); the one being scored is not
    /// among them.
    pub recent: VecDeque<Earlier>,
    /// Recent timed utterances, by start (then arrival).
    pub timeline: VecDeque<TimedSpan>,
    agent_speech: IntervalSet,
    customer_speech: IntervalSet,
    /// Latest end of any speech so far.
    frontier_ms: Option<i64>,
    holds: VecDeque<(i64, Option<i64>)>,
    run: Option<AgentRun>,
    rate_window: VecDeque<(u64, i64)>,
}

impl State {
    /// The latest end of any timed speech so far.
    pub(crate) fn frontier_ms(&self) -> Option<i64> {
        self.frontier_ms
    }

    /// Whether a hold is open.
    pub(crate) fn on_hold(&self) -> bool {
        matches!(self.holds.back(), Some((_, None)))
    }

    /// Opens a hold at `offset_ms`. Returns false if one is open already.
    pub(crate) fn start_hold(&mut self, offset_ms: i64) -> bool {
        if self.on_hold() {
            return false;
        }
        if self.holds.len() == MAX_HOLDS {
            self.holds.pop_front();
        }
        self.holds.push_back((offset_ms, None));
        true
    }

    /// Closes the open hold at `offset_ms`. Returns false if none is open or it would end
    /// before it started.
    pub(crate) fn end_hold(&mut self, offset_ms: i64) -> bool {
        match self.holds.back_mut() {
            Some((start, end @ None)) if offset_ms >= *start => {
                *end = Some(offset_ms);
                true
            }
            _ => false,
        }
    }

    /// Milliseconds of `[from, to)` spent on hold (an open hold runs on for ever).
    fn hold_overlap(&self, from: i64, to: i64) -> i64 {
        self.holds
            .iter()
            .map(|&(s, e)| {
                let (s, e) = (s.max(from), e.unwrap_or(i64::MAX).min(to));
                (e - s).max(0)
            })
            .sum()
    }

    fn speech_mut(&mut self, role: Role) -> Option<(&mut IntervalSet, &IntervalSet)> {
        match role {
            Role::Agent => Some((&mut self.agent_speech, &self.customer_speech)),
            Role::Customer => Some((&mut self.customer_speech, &self.agent_speech)),
            Role::Other | Role::Unknown => None,
        }
    }

    /// Places the final utterance being scored on the timeline. Timing is computed only when
    /// it is timed and `speech_timing` is on in the profile.
    pub(crate) fn place(&mut self, segment: &Segment, profile: &Profile) -> Placement {
        let mut placement = Placement::default();
        if let (Some((start, end)), true) = (segment.interval(), profile.timing.speech_timing) {
            self.place_timed(segment, start, end, profile, &mut placement);
        }
        self.forget(profile);
        placement
    }

    /// Keeps a scored utterance as an earlier turn, forgetting the oldest beyond the window
    /// (the history and the next utterance together are at most `history.max_utterances`).
    pub(crate) fn remember(&mut self, segment: Segment, profile: &Profile) {
        self.recent.push_back(Earlier::from(segment));
        while self.recent.len() >= profile.history.max_utterances {
            self.recent.pop_front();
        }
    }

    fn place_timed(
        &mut self,
        segment: &Segment,
        start: i64,
        end: i64,
        profile: &Profile,
        placement: &mut Placement,
    ) {
        let rules = &profile.timing;
        let role = segment.role;

        if let Some((own, other)) = self.speech_mut(role) {
            for (s, e) in own.uncovered(start, end) {
                placement.new_talk_ms += e - s;
                placement.new_overtalk_ms += other.overlap(s, e);
            }
            own.insert(start, end);
            if let Some((span_start, span_end)) = own.span_containing(start) {
                placement.overtalk_episode_ms =
                    longest_common_piece(own, span_start, span_end, other);
            }
        }
        if let Some(counterpart) = role.counterpart() {
            placement.overlapping = self
                .timeline
                .iter()
                .filter(|t| t.role == counterpart && t.start_ms < end && start < t.end_ms)
                .map(|t| t.utterance_id.to_string())
                .collect();
        }

        if let Some(frontier) = self.frontier_ms
            && start > frontier
        {
            placement.silence_before_ms = start - frontier - self.hold_overlap(frontier, start);
        }
        self.frontier_ms = Some(self.frontier_ms.map_or(end, |f| f.max(end)));

        match role {
            Role::Agent => self.place_agent(segment, start, end, rules, placement),
            Role::Customer => {
                // A customer turn (not a mere "mm-hmm") inside or after the agent's run ends it.
                if !segment.backchannel
                    && self.run.as_ref().is_some_and(|run| start >= run.start_ms)
                {
                    self.run = None;
                    self.rate_window.clear();
                }
            }
            Role::Other | Role::Unknown => {}
        }

        let span = TimedSpan {
            utterance_id: segment.utterance_id.as_str().into(),
            ordinal: segment.ordinal,
            role,
            start_ms: start,
            end_ms: end,
            backchannel: segment.backchannel,
            interrupting: false,
        };
        let at = self
            .timeline
            .partition_point(|t| (t.start_ms, t.ordinal) <= (start, segment.ordinal));
        self.timeline.insert(at, span);
    }

    /// An agent utterance on the timeline: the customer turn it answers, the agent's run of
    /// speech it extends or starts, and the speaking-rate window.
    fn place_agent(
        &mut self,
        segment: &Segment,
        start: i64,
        end: i64,
        rules: &super::rubric::TimingRules,
        placement: &mut Placement,
    ) {
        if !segment.backchannel {
            placement.response = self.response_to(start);
        }
        placement.run_before_ms = self.run.as_ref().map_or(0, |r| r.end_ms - r.start_ms);
        match &mut self.run {
            Some(run)
                if start - run.end_ms < rules.monologue_max_gap_ms && start >= run.start_ms =>
            {
                run.end_ms = run.end_ms.max(end);
            }
            _ => {
                placement.run_before_ms = 0;
                self.run = Some(AgentRun {
                    start_ms: start,
                    end_ms: end,
                    first_utterance_id: segment.utterance_id.clone(),
                });
            }
        }
        if let Some(run) = &self.run {
            placement.run_after_ms = run.end_ms - run.start_ms;
            placement.run_first_utterance_id = Some(run.first_utterance_id.clone());
        }
        let duration = end - start;
        if duration >= rules.speaking_rate_min_utterance_ms {
            self.rate_window
                .push_back((segment.tokens.len() as u64, duration));
            let mut total_ms: i64 = self.rate_window.iter().map(|w| w.1).sum();
            while let Some(&(_, front_ms)) = self.rate_window.front() {
                if total_ms - front_ms >= rules.fast_speech_window_ms {
                    total_ms -= front_ms;
                    self.rate_window.pop_front();
                } else {
                    break;
                }
            }
            if total_ms >= rules.fast_speech_window_ms {
                let words = self.rate_window.iter().map(|w| w.0).sum();
                placement.rate_window = Some((words, total_ms));
            }
        }
    }

    /// The customer turn that an agent utterance starting at `start` answers: the latest
    /// customer utterance (not a backchannel) that started before it, provided no other agent
    /// utterance (not a backchannel) started in between.
    fn response_to(&self, start: i64) -> Option<Response> {
        let customer = self
            .timeline
            .iter()
            .rev()
            .find(|t| t.role == Role::Customer && !t.backchannel && t.start_ms < start)?;
        let answered_already = self.timeline.iter().any(|t| {
            t.role == Role::Agent
                && !t.backchannel
                && t.start_ms > customer.start_ms
                && t.start_ms < start
        });
        (!answered_already).then(|| Response {
            to_utterance_id: customer.utterance_id.to_string(),
            gap_ms: start - customer.end_ms,
            customer_turn_ms: customer.end_ms - customer.start_ms,
        })
    }

    /// Marks the agent utterance `utterance_id` as an interruption already counted.
    pub(crate) fn mark_interrupting(&mut self, utterance_id: &str) {
        if let Some(span) = self
            .timeline
            .iter_mut()
            .rev()
            .find(|t| &*t.utterance_id == utterance_id)
        {
            span.interrupting = true;
        }
    }

    fn forget(&mut self, profile: &Profile) {
        let rules = &profile.history;
        let Some(frontier) = self.frontier_ms else {
            return;
        };
        let horizon = frontier - rules.max_window_ms;
        while self.timeline.len() > rules.max_utterances
            || self.timeline.front().is_some_and(|t| t.end_ms < horizon)
        {
            self.timeline.pop_front();
        }
        self.agent_speech.forget_before(horizon);
        self.customer_speech.forget_before(horizon);
    }
}
