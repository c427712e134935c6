//! Follow-ups: what a customer turn calls for and whether the agent's next turns deliver it —
//! an answer to the customer's question, empathy after emotion, an acknowledgement of a long
//! turn, picking up a side issue — plus the run of closed questions and the customer's mood.
//! Deterministic state, bounded (a few pending items at most), updated after the detectors.

use std::collections::VecDeque;

use super::detectors::{Behaviour, Detection};
use super::event::Role;
use super::metrics::FollowUpCounts;
use super::rubric::Profile;
use super::state::{Segment, State};
use super::{CustomerState, Trend};

/// Side issues waiting to be picked up, at most.
const MAX_SIDE_ISSUES: usize = 4;
/// Customer sentiments remembered for the trend.
const SENTIMENT_WINDOW: usize = 6;

#[derive(Debug, Clone)]
struct Pending {
    utterance_id: String,
    content: Vec<super::language::Stem>,
    agent_turns: u32,
    acknowledged: bool,
    /// For an emotion: the agent said back what the customer said (a reflection) in time.
    reflected: bool,
}

impl Pending {
    fn of(segment: &Segment) -> Pending {
        Pending {
            utterance_id: segment.utterance_id.clone(),
            content: segment.analysis.content.clone(),
            agent_turns: 0,
            acknowledged: false,
            reflected: false,
        }
    }
}

/// Something the agent did not deliver in time, or a trend worth an alert.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FollowUp {
    /// A customer question went unanswered for the response window.
    UnansweredQuestion {
        /// The customer's question.
        question: String,
    },
    /// Strong customer emotion met neither empathy nor acknowledgement.
    EmpathyMissed {
        /// The emotional customer turn.
        emotion: String,
    },
    /// A side issue was not picked up in time (or before the end).
    SideIssueDropped {
        /// The customer turn that raised it.
        side_issue: String,
    },
    /// Several closed questions in a row before the problem was understood.
    ClosedQuestionStreak {
        /// The questions.
        questions: Vec<String>,
    },
    /// Customer sentiment fell.
    FrustrationRising {
        /// The latest customer turn.
        latest: String,
    },
}

/// The follow-up state of a conversation.
#[derive(Debug, Clone, Default)]
pub(crate) struct FollowUps {
    question: Option<Pending>,
    emotion: Option<Pending>,
    /// A long customer turn waits for an acknowledgement.
    long_turn_open: bool,
    side_issues: VecDeque<Pending>,
    closed_run: VecDeque<String>,
    understood: bool,
    sentiments: VecDeque<f64>,
    mood: CustomerState,
    falling: bool,
}

fn has(found: &[Detection], behaviour: Behaviour) -> bool {
    found.iter().any(|d| d.behaviour == behaviour)
}

impl FollowUps {
    /// The customer's mood so far.
    pub(crate) fn customer(&self) -> CustomerState {
        self.mood
    }

    /// Takes in a final utterance and what was detected in it; returns what came due.
    pub(crate) fn after(
        &mut self,
        segment: &Segment,
        found: &[Detection],
        state: &State,
        profile: &Profile,
        customer_turns: u32,
        counts: &mut FollowUpCounts,
    ) -> Vec<FollowUp> {
        match segment.role {
            Role::Customer => self
                .customer_turn(segment, found, state, profile, customer_turns, counts)
                .into_iter()
                .collect(),
            Role::Agent => self.agent_turn(segment, found, profile, counts),
            Role::Other | Role::Unknown => Vec::new(),
        }
    }

    /// An agent turn: what it answers of the customer's open emotion, question, side issues
    /// and long turn, and whether it adds to a run of closed questions.
    fn agent_turn(
        &mut self,
        segment: &Segment,
        found: &[Detection],
        profile: &Profile,
        counts: &mut FollowUpCounts,
    ) -> Vec<FollowUp> {
        let rules = &profile.language.thresholds;
        let mut due = Vec::new();
        let cue = has(found, Behaviour::Acknowledgement) || has(found, Behaviour::Backchannel);
        let empathy = has(found, Behaviour::Empathy);
        let reflection = has(found, Behaviour::Reflection);
        // A backchannel takes no turn.
        let turn = !segment.backchannel;

        // A long customer turn is acknowledged by the agent's next cue, reflection or
        // empathy; the agent's next real turn without one closes it unacknowledged.
        if self.long_turn_open && (cue || empathy || reflection) {
            counts.long_turns_acknowledged += 1;
            self.long_turn_open = false;
        } else if turn {
            self.long_turn_open = false;
        }
        if let Some(emotion) = &mut self.emotion {
            if empathy {
                counts.emotion_answered += 1;
                self.emotion = None;
            } else {
                emotion.acknowledged |= cue || reflection;
                emotion.reflected |= reflection;
                if turn {
                    emotion.agent_turns += 1;
                }
                if emotion.agent_turns >= rules.response_window_agent_turns {
                    if !emotion.acknowledged {
                        due.push(FollowUp::EmpathyMissed {
                            emotion: emotion.utterance_id.clone(),
                        });
                    } else if emotion.reflected {
                        counts.emotion_reflected += 1;
                    }
                    self.emotion = None;
                }
            }
        }
        due.extend(self.question_after(segment, found, profile, turn, counts));
        due.extend(self.side_issues_after(segment, rules, turn, counts));
        if reflection {
            self.understood = true;
        }
        due.extend(self.closed_run_after(segment, found, rules, counts));
        due
    }

    /// Whether an agent turn takes up the customer's open question; it is due once the
    /// agent's turns have passed it by.
    fn question_after(
        &mut self,
        segment: &Segment,
        found: &[Detection],
        profile: &Profile,
        turn: bool,
        counts: &mut FollowUpCounts,
    ) -> Option<FollowUp> {
        let question = self.question.as_mut()?;
        let lang = profile.lang();
        let (shared, _) = segment.analysis.overlap_with(&question.content);
        // Taken up: it shares the question's words, asks about it, or replies with a
        // statement of its own (not a new question of the agent's).
        let reply =
            turn && segment.analysis.question.is_none() && segment.analysis.words.len() >= 4;
        let answered = shared > 0
            || reply
            || has(found, Behaviour::ClarifyingQuestion)
            || lang
                .answers
                .at(&segment.analysis.words, segment.analysis.lead)
                .is_some()
            || lang.answers.at(&segment.analysis.words, 0).is_some();
        if answered {
            self.question = None;
            return None;
        }
        if !turn {
            return None;
        }
        question.agent_turns += 1;
        if question.agent_turns < profile.language.thresholds.response_window_agent_turns {
            return None;
        }
        let due = FollowUp::UnansweredQuestion {
            question: question.utterance_id.clone(),
        };
        counts.unanswered_questions += 1;
        self.question = None;
        Some(due)
    }

    /// The side issues an agent turn picks up (they share its words) or lets pass; those
    /// passed over for the window are due.
    fn side_issues_after(
        &mut self,
        segment: &Segment,
        rules: &super::language::LanguageThresholds,
        turn: bool,
        counts: &mut FollowUpCounts,
    ) -> Vec<FollowUp> {
        let mut due = Vec::new();
        let mut kept = VecDeque::with_capacity(self.side_issues.len());
        while let Some(mut side) = self.side_issues.pop_front() {
            let (shared, _) = segment.analysis.overlap_with(&side.content);
            if shared > 0 {
                continue; // picked up
            }
            if turn {
                side.agent_turns += 1;
            }
            if side.agent_turns >= rules.side_issue_window_agent_turns {
                counts.side_issues_dropped += 1;
                due.push(FollowUp::SideIssueDropped {
                    side_issue: side.utterance_id,
                });
            } else {
                kept.push_back(side);
            }
        }
        self.side_issues = kept;
        due
    }

    /// A closed question adds to the run (due at the streak length unless the agent showed
    /// understanding); an open or clarifying question ends it.
    fn closed_run_after(
        &mut self,
        segment: &Segment,
        found: &[Detection],
        rules: &super::language::LanguageThresholds,
        counts: &mut FollowUpCounts,
    ) -> Option<FollowUp> {
        if has(found, Behaviour::ClosedQuestion) && !has(found, Behaviour::ClarifyingQuestion) {
            self.closed_run.push_back(segment.utterance_id.clone());
            let streak = rules.closed_question_streak as usize;
            if self.closed_run.len() > streak {
                self.closed_run.pop_front();
            }
            if self.closed_run.len() == streak && !self.understood {
                let due = FollowUp::ClosedQuestionStreak {
                    questions: self.closed_run.iter().cloned().collect(),
                };
                counts.closed_question_streaks += 1;
                self.closed_run.clear();
                return Some(due);
            }
        } else if has(found, Behaviour::OpenQuestion) || has(found, Behaviour::ClarifyingQuestion) {
            self.closed_run.clear();
        }
        None
    }

    fn customer_turn(
        &mut self,
        segment: &Segment,
        found: &[Detection],
        state: &State,
        profile: &Profile,
        customer_turns: u32,
        counts: &mut FollowUpCounts,
    ) -> Option<FollowUp> {
        let rules = &profile.language.thresholds;
        let a = &segment.analysis;
        if a.question.is_some() && a.words.len() > 2 {
            self.question = Some(Pending::of(segment));
        }
        let strong = a.sentiment <= rules.strong_emotion_sentiment
            || found
                .iter()
                .any(|d| d.behaviour == Behaviour::CustomerEmotion && d.confidence >= 0.8);
        if has(found, Behaviour::CustomerEmotion) {
            counts.emotion_episodes += u32::from(self.emotion.is_none() && strong);
            if strong && self.emotion.is_none() {
                self.emotion = Some(Pending::of(segment));
            }
        }
        if has(found, Behaviour::SideIssue) {
            counts.side_issues += 1;
            if self.side_issues.len() == MAX_SIDE_ISSUES {
                self.side_issues.pop_front();
            }
            self.side_issues.push_back(Pending::of(segment));
        }
        if a.words.len() >= rules.long_customer_turn_words {
            counts.long_customer_turns += 1;
            // Agent backchannels under this turn already acknowledged it.
            let heard = match segment.interval() {
                Some((start, end)) => state.timeline.iter().any(|t| {
                    t.role == Role::Agent && t.backchannel && t.start_ms < end && start < t.end_ms
                }),
                None => false,
            };
            if heard {
                counts.long_turns_acknowledged += 1;
            }
            self.long_turn_open = !heard;
        }
        // Mood: an average leaning to recent turns, and the trend between two windows.
        let s = a.sentiment;
        self.sentiments.push_back(s);
        if self.sentiments.len() > SENTIMENT_WINDOW {
            self.sentiments.pop_front();
        }
        // A frustration marker gives the emotion detection a text span; sentiment alone does not.
        let marker = found
            .iter()
            .any(|d| d.behaviour == Behaviour::CustomerEmotion && d.span.is_some());
        let mood = &mut self.mood;
        mood.sentiment = if customer_turns <= 1 {
            s
        } else {
            0.6 * mood.sentiment + 0.4 * s
        };
        let heat = ((-s).max(0.0) + if marker { 0.4 } else { 0.0 }).min(1.0);
        mood.frustration = (0.7 * mood.frustration + 0.3 * heat).clamp(0.0, 1.0);
        if self.sentiments.len() >= 5 {
            // The latest three turns against the ones before them.
            let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
            let all: Vec<f64> = self.sentiments.iter().copied().collect();
            let split = all.len() - 3;
            let (before, after) = (mean(&all[..split]), mean(&all[split..]));
            mood.trend = if after - before >= 0.15 {
                Trend::Improving
            } else if before - after >= 0.15 {
                Trend::Worsening
            } else {
                Trend::Steady
            };
            let falling =
                before - after >= rules.frustration_drop && after <= rules.emotion_sentiment / 2.0;
            let rising = falling && !self.falling;
            self.falling = falling;
            if rising {
                return Some(FollowUp::FrustrationRising {
                    latest: segment.utterance_id.clone(),
                });
            }
        }
        None
    }

    /// At the end: side issues never picked up, and emotion the agent had a turn to answer
    /// and did not.
    pub(crate) fn at_end(&mut self, counts: &mut FollowUpCounts) -> Vec<FollowUp> {
        let mut due: Vec<FollowUp> = self
            .side_issues
            .drain(..)
            .map(|s| FollowUp::SideIssueDropped {
                side_issue: s.utterance_id,
            })
            .collect();
        counts.side_issues_dropped += due.len() as u32;
        // Emotion the agent had a turn to answer and did not; or answered with a reflection.
        if let Some(emotion) = self.emotion.take() {
            if emotion.reflected {
                counts.emotion_reflected += 1;
            } else if emotion.agent_turns > 0 && !emotion.acknowledged {
                due.push(FollowUp::EmpathyMissed {
                    emotion: emotion.utterance_id,
                });
            }
        }
        due
    }
}
