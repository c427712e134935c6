//! Running metrics of a conversation: counts and times, updated after every utterance.

use super::detectors::{Behaviour, Detection};
use super::event::Role;

/// Running counts and times. Times in milliseconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    /// Union of the agent's utterance intervals.
    pub agent_talk_ms: i64,
    /// Union of the customer's utterance intervals.
    pub customer_talk_ms: i64,
    /// Time agent and customer spoke at once.
    pub overtalk_ms: i64,
    /// Part of `overtalk_ms` added by backchannels ("mm-hmm" under the other's speech), which
    /// are listening cues and do not count against patience.
    pub backchannel_overtalk_ms: i64,
    /// Agent interruptions (cut-offs included).
    pub interruptions: u32,
    /// Interruptions after which the customer stopped within the cut-off window.
    pub cut_offs: u32,
    /// Agent backchannels.
    pub backchannels: u32,
    /// Agent questions.
    pub questions: u32,
    /// Open agent questions.
    pub open_questions: u32,
    /// Closed agent questions.
    pub closed_questions: u32,
    /// Clarifying agent questions.
    pub clarifying_questions: u32,
    /// Agent acknowledgements (backchannels included).
    pub acknowledgements: u32,
    /// Agent expressions of empathy.
    pub empathy: u32,
    /// Agent reflections.
    pub reflections: u32,
    /// Customer repeats.
    pub customer_repeats: u32,
    /// Longest agent run of speech.
    pub longest_monologue_ms: i64,
    /// Sum of response gaps measured.
    pub response_gap_sum_ms: i64,
    /// Number of response gaps measured.
    pub response_gaps: u32,
    /// Agent responses that started almost at once after a long customer turn.
    pub rushed_responses: u32,
    /// Agent words over utterances long enough for the speaking rate.
    pub rate_words: u64,
    /// Duration of those utterances.
    pub rate_ms: i64,
    /// Silences longer than the dead-air threshold outside holds.
    pub dead_air_episodes: u32,
    /// Their total time.
    pub dead_air_ms: i64,
    /// Final utterances scored (all roles).
    pub utterances: u32,
    /// Agent words (all utterances).
    pub agent_words: u64,
    /// Customer words (all utterances).
    pub customer_words: u64,
    /// Agent utterances that were not backchannels.
    pub agent_turns: u32,
    /// Customer utterances.
    pub customer_turns: u32,
    /// Customer turns showing strong emotion (one at a time: an episode lasts until answered
    /// or its window passes).
    pub emotion_episodes: u32,
    /// Episodes answered with empathy within the response window.
    pub emotion_answered: u32,
    /// Episodes answered, within the window, with a reflection but no empathy: the agent said
    /// back what the customer said without naming the feeling (part credit in the score).
    pub emotion_reflected: u32,
    /// Customer turns of at least `long_customer_turn_words` words.
    pub long_customer_turns: u32,
    /// Long customer turns acknowledged (backchannel under them, or a cue, reflection or
    /// empathy right after).
    pub long_turns_acknowledged: u32,
    /// Customer questions not taken up in time.
    pub unanswered_questions: u32,
    /// Side issues the customer raised.
    pub side_issues: u32,
    /// Side issues never picked up.
    pub side_issues_dropped: u32,
    /// Escalation requests.
    pub escalation_requests: u32,
    /// Premature solutions.
    pub premature_solutions: u32,
    /// Dismissive phrases.
    pub dismissive: u32,
    /// Sentence completions.
    pub sentence_completions: u32,
    /// Closed-question streaks.
    pub closed_question_streaks: u32,
    /// Final utterances timed by their start only (no `end_ms`): their language behaviours are
    /// scored, the behaviours that need an end (talk time, overtalk, interruption, response
    /// gaps, pace, monologue) are not computed for them. Non-zero means timing was partial.
    pub start_only_utterances: u32,
    /// Chat only: the agent's replies (an agent message right after a customer message), with
    /// the sum and the longest of their response times (message to message).
    pub chat_agent_responses: u32,
    /// Sum of the agent's response times (ms).
    pub chat_agent_response_sum_ms: i64,
    /// The agent's longest response time (ms): the longest the customer waited.
    pub chat_agent_response_max_ms: i64,
    /// Chat only: the customer's replies to the agent, with their sum and longest.
    pub chat_customer_responses: u32,
    /// Sum of the customer's response times (ms).
    pub chat_customer_response_sum_ms: i64,
    /// The customer's longest response time (ms).
    pub chat_customer_response_max_ms: i64,
    /// Chat only: from the customer's first message to the agent's first message after it (ms);
    /// `None` until the agent has answered.
    pub chat_first_response_ms: Option<i64>,
}

/// What a chat's response times are measured from: who sent the latest message and when, and
/// when the customer's first message came (until the agent first answers). Conversation state,
/// not a metric.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChatClock {
    last: Option<(crate::engine::Role, i64)>,
    first_customer_ms: Option<i64>,
}

impl ChatClock {
    /// A chat message from `role` at `at_ms`: records the response times it completes.
    pub(crate) fn message(&mut self, m: &mut Metrics, role: crate::engine::Role, at_ms: i64) {
        use crate::engine::Role;
        if !matches!(role, Role::Agent | Role::Customer) {
            return;
        }
        if let Some((previous, at)) = self.last
            && previous != role
            && at_ms >= at
        {
            let wait = at_ms - at;
            if role == Role::Agent {
                m.chat_agent_responses += 1;
                m.chat_agent_response_sum_ms += wait;
                m.chat_agent_response_max_ms = m.chat_agent_response_max_ms.max(wait);
            } else {
                m.chat_customer_responses += 1;
                m.chat_customer_response_sum_ms += wait;
                m.chat_customer_response_max_ms = m.chat_customer_response_max_ms.max(wait);
            }
        }
        match role {
            Role::Customer
                if self.first_customer_ms.is_none() && m.chat_first_response_ms.is_none() =>
            {
                self.first_customer_ms = Some(at_ms);
            }
            Role::Agent if m.chat_first_response_ms.is_none() => {
                if let Some(first) = self.first_customer_ms.take() {
                    m.chat_first_response_ms = Some((at_ms - first).max(0));
                }
            }
            _ => {}
        }
        self.last = Some((role, at_ms));
    }

    /// When the latest chat message came (a chat's messages have start times only).
    pub(crate) fn last_ms(&self) -> Option<i64> {
        self.last.map(|(_, at)| at)
    }
}

/// What the follow-ups counted in one step (a turn, or the end), applied to the running
/// metrics by [`Metrics::record_follow_ups`]: the follow-ups never write the metrics
/// themselves.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FollowUpCounts {
    pub(crate) emotion_episodes: u32,
    pub(crate) emotion_answered: u32,
    pub(crate) emotion_reflected: u32,
    pub(crate) long_customer_turns: u32,
    pub(crate) long_turns_acknowledged: u32,
    pub(crate) unanswered_questions: u32,
    pub(crate) side_issues: u32,
    pub(crate) side_issues_dropped: u32,
    pub(crate) closed_question_streaks: u32,
}

impl Metrics {
    /// Applies what the follow-ups counted in one step.
    pub(crate) fn record_follow_ups(&mut self, c: &FollowUpCounts) {
        self.emotion_episodes += c.emotion_episodes;
        self.emotion_answered += c.emotion_answered;
        self.emotion_reflected += c.emotion_reflected;
        self.long_customer_turns += c.long_customer_turns;
        self.long_turns_acknowledged += c.long_turns_acknowledged;
        self.unanswered_questions += c.unanswered_questions;
        self.side_issues += c.side_issues;
        self.side_issues_dropped += c.side_issues_dropped;
        self.closed_question_streaks += c.closed_question_streaks;
    }

    /// The agent's mean chat response time; 0 when none was measured.
    pub fn chat_agent_response_mean_ms(&self) -> f64 {
        if self.chat_agent_responses == 0 {
            0.0
        } else {
            self.chat_agent_response_sum_ms as f64 / f64::from(self.chat_agent_responses)
        }
    }

    /// The customer's mean chat response time; 0 when none was measured.
    pub fn chat_customer_response_mean_ms(&self) -> f64 {
        if self.chat_customer_responses == 0 {
            0.0
        } else {
            self.chat_customer_response_sum_ms as f64 / f64::from(self.chat_customer_responses)
        }
    }

    /// Mean response gap; 0 when none was measured.
    pub fn mean_response_gap_ms(&self) -> f64 {
        if self.response_gaps == 0 {
            0.0
        } else {
            self.response_gap_sum_ms as f64 / f64::from(self.response_gaps)
        }
    }

    /// Agent words per minute over utterances long enough to count; 0 when none.
    pub fn agent_words_per_minute(&self) -> f64 {
        if self.rate_ms <= 0 {
            0.0
        } else {
            self.rate_words as f64 * 60_000.0 / self.rate_ms as f64
        }
    }

    /// Agent share of agent and customer talk time in [0, 1]; 0 before anyone spoke.
    pub fn agent_talk_share(&self) -> f64 {
        let total = self.agent_talk_ms + self.customer_talk_ms;
        if total <= 0 {
            0.0
        } else {
            self.agent_talk_ms as f64 / total as f64
        }
    }
}

impl Metrics {
    /// Counts one final utterance and what was found in it: the one place the running counts
    /// of a turn are written (the follow-ups' go through [`Metrics::record_follow_ups`]).
    pub(crate) fn record_turn(
        &mut self,
        timing: &super::rubric::TimingRules,
        found: &[Detection],
        placement: &super::state::Placement,
        segment: &super::state::Segment,
    ) {
        let words = segment.tokens.len() as u64;
        self.utterances += 1;
        if segment.start_ms.is_some() && segment.end_ms.is_none() {
            self.start_only_utterances += 1;
        }
        match segment.role {
            Role::Agent => {
                self.agent_talk_ms += placement.new_talk_ms;
                self.agent_words += words;
                if !segment.backchannel {
                    self.agent_turns += 1;
                }
                if let Some((start, end)) = segment.interval()
                    && timing.speech_timing
                    && end - start >= timing.speaking_rate_min_utterance_ms
                {
                    self.rate_words += words;
                    self.rate_ms += end - start;
                }
                self.longest_monologue_ms = self.longest_monologue_ms.max(placement.run_after_ms);
                if let Some(response) = &placement.response {
                    self.response_gaps += 1;
                    self.response_gap_sum_ms += response.gap_ms;
                    if response.customer_turn_ms >= timing.long_customer_turn_ms
                        && (0..timing.rushed_response_ms).contains(&response.gap_ms)
                    {
                        self.rushed_responses += 1;
                    }
                }
            }
            Role::Customer => {
                self.customer_talk_ms += placement.new_talk_ms;
                self.customer_words += words;
                self.customer_turns += 1;
            }
            Role::Other | Role::Unknown => {}
        }
        self.overtalk_ms += placement.new_overtalk_ms;
        if segment.backchannel {
            self.backchannel_overtalk_ms += placement.new_overtalk_ms;
        }
        self.count_behaviours(found, segment.role);
    }

    /// The language and timing behaviours of one turn. Language behaviours count for the
    /// roles they are about; an unknown speaker's are reported but not counted.
    fn count_behaviours(&mut self, found: &[Detection], role: Role) {
        let agent = role == Role::Agent;
        let customer = role == Role::Customer;
        // One question per utterance, whatever its kinds.
        let mut asked = false;
        for d in found {
            match d.behaviour {
                Behaviour::Interruption => self.interruptions += 1,
                Behaviour::CutOff => self.cut_offs += 1,
                Behaviour::Backchannel => {
                    self.backchannels += 1;
                    self.acknowledgements += 1;
                }
                Behaviour::DeadAir => {
                    self.dead_air_episodes += 1;
                    self.dead_air_ms += d.duration_ms;
                }
                Behaviour::OpenQuestion if agent => {
                    asked = true;
                    self.open_questions += 1;
                }
                Behaviour::ClosedQuestion if agent => {
                    asked = true;
                    self.closed_questions += 1;
                }
                Behaviour::ClarifyingQuestion if agent => {
                    asked = true;
                    self.clarifying_questions += 1;
                }
                Behaviour::Acknowledgement if agent => self.acknowledgements += 1,
                Behaviour::Empathy if agent => self.empathy += 1,
                Behaviour::Reflection if agent => self.reflections += 1,
                Behaviour::SentenceCompletion if agent => self.sentence_completions += 1,
                Behaviour::PrematureSolution if agent => self.premature_solutions += 1,
                Behaviour::DismissiveLanguage if agent => self.dismissive += 1,
                Behaviour::CustomerRepeat if customer => self.customer_repeats += 1,
                Behaviour::EscalationRequest if customer => self.escalation_requests += 1,
                _ => {}
            }
        }
        if asked {
            self.questions += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Role;

    #[test]
    fn chat_response_times_are_message_to_message_between_the_parties() {
        let mut m = Metrics::default();
        let mut clock = ChatClock::default();
        let mut message = |role, at| clock.message(&mut m, role, at);
        message(Role::Agent, 0); // a greeting answers nobody
        message(Role::Customer, 4_000); // the customer replies after 4 s
        message(Role::Customer, 6_000); // a second message: no reply
        message(Role::Other, 7_000); // a bot or system message changes nothing
        message(Role::Agent, 9_000); // 3 s after the last customer message
        message(Role::Customer, 8_000); // out of order: not a response
        message(Role::Agent, 14_000); // 6 s
        assert_eq!(m.chat_agent_responses, 2);
        assert_eq!(m.chat_agent_response_max_ms, 6_000);
        assert_eq!(m.chat_agent_response_mean_ms(), 4_500.0);
        assert_eq!(m.chat_customer_responses, 1);
        assert_eq!(m.chat_customer_response_mean_ms(), 4_000.0);
        // From the customer's first message (4 s) to the agent's first message after it (9 s).
        assert_eq!(m.chat_first_response_ms, Some(5_000));
    }
}
