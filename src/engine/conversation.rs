//! One conversation: its state, and the dispatcher that takes each event through the stages
//! (`score_final`: analyse → place → detect → record → follow-ups → alerts → score → emit), each
//! stage owned by its module.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use super::detectors::{self, Context};
use super::finals::Finals;
use super::state::{self, Segment, State};
use super::*;

/// The listening state of one conversation. Pure and deterministic.
#[derive(Debug, Clone)]
pub struct Conversation {
    profile: Arc<Profile>,
    start: Start,
    limits: InputLimits,
    state: State,
    metrics: Metrics,
    score: Score,
    customer: CustomerState,
    policy: alerts::AlertPolicy,
    /// Alerts raised so far, for the scorecard (at most `MAX_ALERTS_KEPT`).
    alerts: alerts::AlertLog,
    followups: followups::FollowUps,
    /// Final utterances seen: hash of id → hash of content (repeats are ignored or rejected).
    finals: Finals,
    ended: bool,
    /// The learned layer's context (the latest turn of each party).
    learned: learned::Memory,
    /// What a chat's response times are measured from.
    chat: metrics::ChatClock,
    /// Whether to keep the learned layer's features (for `hearken features`).
    record_features: bool,
    /// The learned layer's features of the latest final utterance it judged, when recording.
    features: Option<learned::features::Features>,
}

fn stable_hash(value: impl Hash) -> u64 {
    // DefaultHasher::new() has fixed keys: the same value hashes the same in every process.
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

impl Conversation {
    /// Opens a conversation with the profile its `start` names (empty: the rubric's default).
    pub fn open(
        start: Start,
        rubric: &Rubric,
        limits: InputLimits,
    ) -> Result<Conversation, Rejected> {
        limits.check_start(&start)?;
        let profile = rubric.profile(&start.rubric_profile).ok_or_else(|| {
            Rejected::new(
                RejectReason::UnknownProfile,
                "start.rubric_profile",
                "no rubric profile of that name on this server",
            )
        })?;
        Ok(Conversation::with_profile(start, profile, limits))
    }

    /// Opens a conversation with a given profile (the detector tests use it directly).
    pub(crate) fn with_profile(
        start: Start,
        profile: Arc<Profile>,
        limits: InputLimits,
    ) -> Conversation {
        let mut profile = profile;
        if start.channel == Channel::Chat && profile.timing.speech_timing {
            // Chat has no speech timing whatever the profile says.
            let mut chat = (*profile).clone();
            chat.timing.speech_timing = false;
            profile = Arc::new(chat);
        }
        let score = scorer::score(&profile, &Metrics::default());
        Conversation {
            profile,
            start,
            limits,
            state: State::default(),
            metrics: Metrics::default(),
            score,
            customer: CustomerState::default(),
            policy: alerts::AlertPolicy::default(),
            alerts: alerts::AlertLog::default(),
            followups: followups::FollowUps::default(),
            finals: Finals::default(),
            ended: false,
            learned: learned::Memory::default(),
            chat: metrics::ChatClock::default(),
            record_features: false,
            features: None,
        }
    }

    /// The current score.
    pub fn score(&self) -> &Score {
        &self.score
    }

    /// Applies one event and returns what it caused, in emission order: an update, then the
    /// alerts it raised; or the scorecard at the end. A rejected event changes nothing.
    ///
    /// ```
    /// use hearken::engine::*;
    /// let mut c = Conversation::open(Start::default(), &Rubric::embedded(), InputLimits::default()).unwrap();
    /// let customer = Utterance {
    ///     utterance_id: "u1".into(), role: Role::Customer,
    ///     text: "my card was charged twice".into(), start_ms: Some(0), end_ms: Some(4000),
    ///     ..Default::default()
    /// };
    /// let agent = Utterance {
    ///     utterance_id: "u2".into(), role: Role::Agent,
    ///     text: "okay let me look at that".into(), start_ms: Some(1500), end_ms: Some(3500),
    ///     ..Default::default()
    /// };
    /// c.observe(Event::Utterance(customer)).unwrap();
    /// let out = c.observe(Event::Utterance(agent)).unwrap();
    /// assert!(matches!(&out[1], Emitted::Alert(a) if a.kind == AlertKind::Interruption));
    /// ```
    pub fn observe(&mut self, event: Event) -> Result<Vec<Emitted>, Rejected> {
        if self.ended {
            return Err(Rejected::new(
                RejectReason::ConversationEnded,
                "conversation_id",
                "the conversation has ended",
            ));
        }
        match event {
            Event::Utterance(utterance) => self.observe_utterance(utterance),
            Event::Signal(signal) => self.observe_signal(signal).map(|()| Vec::new()),
            Event::End(end, reason) => self.end(end, reason).map(|(alerts, card)| {
                let mut out: Vec<Emitted> = alerts.into_iter().map(Emitted::Alert).collect();
                out.push(Emitted::Scorecard(Box::new(card)));
                out
            }),
        }
    }

    /// Keeps the learned layer's features of each final utterance, for [`Self::take_features`].
    pub(crate) fn record_features(&mut self) {
        self.record_features = true;
    }

    /// The learned layer's features of the latest final utterance, when it judged one.
    pub(crate) fn take_features(&mut self) -> Option<learned::features::Features> {
        self.features.take()
    }

    fn observe_utterance(&mut self, u: Utterance) -> Result<Vec<Emitted>, Rejected> {
        self.limits
            .check_utterance(&u)
            .map_err(|r| r.for_utterance(&u, &self.limits))?;
        let id_key = stable_hash(&u.utterance_id);
        let content_of = |u: &Utterance| stable_hash((&u.role, &u.text, u.start_ms, u.end_ms));
        if let Some(content) = self.finals.get(id_key) {
            let reject = |field, description: &str| {
                Err(
                    Rejected::new(RejectReason::DuplicateUtterance, field, description)
                        .for_utterance(&u, &self.limits),
                )
            };
            if u.partial {
                return reject(
                    "utterance.partial",
                    "a partial segment cannot follow the final one with the same utterance_id",
                );
            }
            return if content == content_of(&u) {
                Ok(Vec::new()) // an identical repeat (e.g. a replay) is ignored
            } else {
                reject(
                    "utterance.utterance_id",
                    "a final utterance with this utterance_id and different content was already scored",
                )
            };
        }
        if u.partial {
            return Ok(vec![Emitted::Update(Box::new(Update {
                utterance_id: u.utterance_id,
                partial: true,
                score: self.score.clone(),
                behaviours: Vec::new(),
                metrics: self.metrics.clone(),
                customer: self.customer,
                contributions: Vec::new(),
            }))]);
        }
        if self.metrics.utterances >= self.limits.max_utterances {
            return Err(Rejected::new(
                RejectReason::TooManyUtterances,
                "utterance",
                format!(
                    "the conversation already has the maximum of {} utterances",
                    self.limits.max_utterances
                ),
            )
            .for_utterance(&u, &self.limits));
        }
        self.finals.insert(id_key, content_of(&u));
        Ok(self.score_final(u))
    }

    /// One final utterance through the stages, each written once: analyse → place → detect →
    /// record → follow-ups → alerts → score → emit; then the history keeps it.
    fn score_final(&mut self, u: Utterance) -> Vec<Emitted> {
        let profile = Arc::clone(&self.profile);
        let segment = Segment::of(u, self.metrics.utterances + 1, &profile);
        let placement = self.state.place(&segment, &profile);
        let mut found = self.detect(&segment, &placement, &profile);
        self.record(&found, &placement, &segment);
        let due = self.follow_ups(&segment, &found, &profile);
        let alerts_due = alerts::due(&mut found, due, &segment.utterance_id, segment.role);
        let contributions = self.rescore(&found, &segment, &profile);
        let emitted = self.emit(found, alerts_due, contributions, &segment, &profile);
        self.state.remember(segment, &profile);
        emitted
    }

    /// Runs every detector on the segment being scored, then lets the learned layer revise what
    /// they found.
    fn detect(
        &mut self,
        segment: &Segment,
        placement: &state::Placement,
        profile: &Profile,
    ) -> Vec<Detection> {
        let context = Context {
            profile,
            state: &self.state,
            placement,
            metrics: &self.metrics,
            cues: Default::default(),
        };
        let mut found = detectors::detect_all(segment, &context);
        self.features = learned::revise(
            profile,
            &mut self.learned,
            &learned::Input {
                text: &segment.text,
                role: segment.role,
                participant: segment.participant_id.as_deref(),
                backchannel: segment.backchannel,
                utterance_id: &segment.utterance_id,
                analysis: &segment.analysis,
            },
            &mut found,
            self.record_features,
        );
        found
    }

    /// The running counts, the chat clock and the interruption marks for one turn.
    fn record(&mut self, found: &[Detection], placement: &state::Placement, segment: &Segment) {
        self.metrics
            .record_turn(&self.profile.timing, found, placement, segment);
        if self.start.channel == Channel::Chat
            && let Some(at) = segment.start_ms.or(segment.end_ms)
        {
            self.chat.message(&mut self.metrics, segment.role, at);
        }
        for d in found
            .iter()
            .filter(|d| d.behaviour == Behaviour::Interruption)
        {
            let agent = if segment.role == Role::Agent {
                segment.utterance_id.as_str()
            } else {
                d.related_utterance_ids[0].as_str()
            };
            self.state.mark_interrupting(agent);
        }
    }

    /// What earlier turns called for and this one did (not) deliver.
    fn follow_ups(
        &mut self,
        segment: &Segment,
        found: &[Detection],
        profile: &Profile,
    ) -> Vec<followups::FollowUp> {
        let mut counts = metrics::FollowUpCounts::default();
        let due = self.followups.after(
            segment,
            found,
            &self.state,
            profile,
            self.metrics.customer_turns,
            &mut counts,
        );
        self.metrics.record_follow_ups(&counts);
        self.customer = self.followups.customer();
        due
    }

    /// The new score and what moved it. The live score moves on what the agent does: a
    /// customer's turn (their emotion, a question, a repeat) is counted, and judged when the
    /// agent answers or fails to.
    fn rescore(
        &mut self,
        found: &[Detection],
        segment: &Segment,
        profile: &Profile,
    ) -> Vec<Contribution> {
        let before = if segment.role == Role::Customer {
            self.score.clone()
        } else {
            std::mem::replace(
                &mut self.score,
                scorer::score_with_mood(profile, &self.metrics, self.customer.frustration),
            )
        };
        scorer::explain(&before, &self.score, found, &segment.utterance_id)
    }

    /// The update, then the alerts the policy lets through.
    fn emit(
        &mut self,
        found: Vec<Detection>,
        alerts_due: Vec<(AlertKind, Vec<String>)>,
        contributions: Vec<Contribution>,
        segment: &Segment,
        profile: &Profile,
    ) -> Vec<Emitted> {
        let mut emitted = vec![Emitted::Update(Box::new(Update {
            utterance_id: segment.utterance_id.clone(),
            partial: false,
            score: self.score.clone(),
            behaviours: found,
            metrics: self.metrics.clone(),
            customer: self.customer,
            contributions,
        }))];
        for (kind, evidence) in alerts_due {
            let raised = self.raise(profile, kind, segment.start_ms, segment.ordinal, evidence);
            emitted.extend(raised.map(Emitted::Alert));
        }
        emitted
    }

    /// An occurrence of `kind`: the alert, if the policy lets it through, kept for the
    /// scorecard (up to [`MAX_ALERTS_KEPT`]).
    fn raise(
        &mut self,
        profile: &Profile,
        kind: AlertKind,
        offset_ms: Option<i64>,
        ordinal: u32,
        evidence: Vec<String>,
    ) -> Option<Alert> {
        let kept = self
            .policy
            .occur(profile, kind, offset_ms, ordinal, evidence)?;
        self.alerts.keep(&kept);
        Some(kept.alert(profile))
    }

    fn observe_signal(&mut self, signal: Signal) -> Result<(), Rejected> {
        self.limits
            .check_offset("signal.offset_ms", signal.offset_ms)?;
        let ok = match signal.kind {
            SignalKind::HoldStarted => self.state.start_hold(signal.offset_ms),
            SignalKind::HoldEnded => self.state.end_hold(signal.offset_ms),
            SignalKind::Transfer => true,
        };
        if ok {
            Ok(())
        } else {
            Err(Rejected::new(
                RejectReason::HoldConflict,
                "signal.kind",
                match signal.kind {
                    SignalKind::HoldStarted => "a hold is already in progress",
                    _ => "no hold in progress, or the hold would end before it started",
                },
            ))
        }
    }

    fn end(&mut self, end: End, reason: EndReason) -> Result<(Vec<Alert>, Scorecard), Rejected> {
        if let Some(offset) = end.offset_ms {
            self.limits.check_offset("end.offset_ms", offset)?;
        }
        self.ended = true;
        // A chat's messages have start times only: its last message counts too.
        let frontier = self
            .state
            .frontier_ms()
            .unwrap_or(0)
            .max(self.chat.last_ms().unwrap_or(0));
        let duration_ms = end.offset_ms.map_or(frontier, |o| o.max(frontier));
        let profile = Arc::clone(&self.profile);
        let ordinal = self.metrics.utterances + 1;
        let mut counts = metrics::FollowUpCounts::default();
        let at_end = self.followups.at_end(&mut counts);
        self.metrics.record_follow_ups(&counts);
        let mut raised = Vec::new();
        for f in at_end {
            let (kind, evidence) = f.into_alert(None);
            raised.extend(self.raise(&profile, kind, Some(duration_ms), ordinal, evidence));
        }
        self.score = scorer::score_with_mood(&profile, &self.metrics, self.customer.frustration);
        let all = std::mem::take(&mut self.alerts).alerts(&profile);
        Ok((
            raised,
            scorecard::build(
                &self.profile,
                self.score.clone(),
                self.metrics.clone(),
                all,
                reason,
                duration_ms,
            ),
        ))
    }
}
