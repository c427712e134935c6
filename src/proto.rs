//! The generated `hearken.v1` types (prost messages, tonic client and server, proto3 JSON via
//! pbjson), and conversions between them and the engine's domain types. The engine never sees
//! a generated type; this module is the only place the two meet.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::engine;

/// Generated code of `proto/hearken/v1/hearken.proto`.
#[allow(
    missing_docs,
    unreachable_pub,
    clippy::all,
    rust_2018_idioms,
    missing_debug_implementations
)]
pub mod v1 {
    tonic::include_proto!("hearken.v1");
    include!(concat!(env!("OUT_DIR"), "/hearken.v1.serde.rs"));
    /// Encoded `FileDescriptorSet` of the API, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("hearken_v1_descriptor");
}

use v1::*;

/// The wire role of a domain role, and back.
pub fn role_to_proto(role: engine::Role) -> Role {
    match role {
        engine::Role::Agent => Role::Agent,
        engine::Role::Customer => Role::Customer,
        engine::Role::Other => Role::Other,
        engine::Role::Unknown => Role::Unspecified,
    }
}

fn role_from_proto(role: i32) -> engine::Role {
    match Role::try_from(role) {
        Ok(Role::Agent) => engine::Role::Agent,
        Ok(Role::Customer) => engine::Role::Customer,
        Ok(Role::Other) => engine::Role::Other,
        Ok(Role::Unspecified) | Err(_) => engine::Role::Unknown,
    }
}

/// A `ConversationStart` as the engine's `Start` (the wall-clock start stays with the caller).
pub fn start_from_proto(start: &ConversationStart) -> engine::Start {
    engine::Start {
        channel: match Channel::try_from(start.channel) {
            Ok(Channel::Chat) => engine::Channel::Chat,
            _ => engine::Channel::Voice,
        },
        language: start.language.clone(),
        rubric_profile: start.rubric_profile.clone(),
        metadata: start
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// The engine's start on the wire (the wall-clock start time is the caller's to add).
pub fn start_to_proto(start: &engine::Start) -> ConversationStart {
    ConversationStart {
        channel: match start.channel {
            engine::Channel::Chat => Channel::Chat,
            engine::Channel::Voice => Channel::Voice,
        } as i32,
        language: start.language.clone(),
        rubric_profile: start.rubric_profile.clone(),
        metadata: start
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        ..ConversationStart::default()
    }
}

/// An `Utterance` as the engine's.
pub fn utterance_from_proto(u: Utterance) -> engine::Utterance {
    engine::Utterance {
        role: role_from_proto(u.role),
        utterance_id: u.utterance_id,
        participant_id: u.participant_id,
        text: u.text,
        start_ms: u.start_ms,
        end_ms: u.end_ms,
        partial: u.partial,
        confidence: u.confidence,
    }
}

/// The engine's utterance on the wire.
pub fn utterance_to_proto(u: &engine::Utterance) -> Utterance {
    Utterance {
        utterance_id: u.utterance_id.clone(),
        role: role_to_proto(u.role) as i32,
        participant_id: u.participant_id.clone(),
        text: u.text.clone(),
        start_ms: u.start_ms,
        end_ms: u.end_ms,
        partial: u.partial,
        confidence: u.confidence,
    }
}

/// A `ConversationSignal` as the engine's; `None` for an unspecified kind.
pub fn signal_from_proto(s: &ConversationSignal) -> Option<engine::Signal> {
    let kind = match SignalKind::try_from(s.kind) {
        Ok(SignalKind::HoldStarted) => engine::SignalKind::HoldStarted,
        Ok(SignalKind::HoldEnded) => engine::SignalKind::HoldEnded,
        Ok(SignalKind::Transfer) => engine::SignalKind::Transfer,
        Ok(SignalKind::Unspecified) | Err(_) => return None,
    };
    Some(engine::Signal {
        kind,
        offset_ms: s.offset_ms,
    })
}

/// The engine's signal on the wire.
pub fn signal_to_proto(s: &engine::Signal) -> ConversationSignal {
    ConversationSignal {
        kind: match s.kind {
            engine::SignalKind::HoldStarted => SignalKind::HoldStarted,
            engine::SignalKind::HoldEnded => SignalKind::HoldEnded,
            engine::SignalKind::Transfer => SignalKind::Transfer,
        } as i32,
        offset_ms: s.offset_ms,
    }
}

fn behaviour_to_proto(b: engine::Behaviour) -> Behaviour {
    use engine::Behaviour as E;
    match b {
        E::Interruption => Behaviour::Interruption,
        E::CutOff => Behaviour::CutOff,
        E::Backchannel => Behaviour::Backchannel,
        E::Overtalk => Behaviour::Overtalk,
        E::DeadAir => Behaviour::DeadAir,
        E::Monologue => Behaviour::Monologue,
        E::FastSpeech => Behaviour::FastSpeech,
        E::OpenQuestion => Behaviour::OpenQuestion,
        E::ClosedQuestion => Behaviour::ClosedQuestion,
        E::ClarifyingQuestion => Behaviour::ClarifyingQuestion,
        E::Acknowledgement => Behaviour::Acknowledgement,
        E::Empathy => Behaviour::Empathy,
        E::Reflection => Behaviour::Reflection,
        E::SentenceCompletion => Behaviour::SentenceCompletion,
        E::PrematureSolution => Behaviour::PrematureSolution,
        E::DismissiveLanguage => Behaviour::DismissiveLanguage,
        E::CustomerRepeat => Behaviour::CustomerRepeat,
        E::CustomerEmotion => Behaviour::CustomerEmotion,
        E::EscalationRequest => Behaviour::EscalationRequest,
        E::SideIssue => Behaviour::SideIssue,
        E::UnansweredQuestion => Behaviour::UnansweredQuestion,
    }
}

fn component_to_proto(c: engine::Component) -> Component {
    use engine::Component as E;
    match c {
        E::Patience => Component::Patience,
        E::TalkBalance => Component::TalkBalance,
        E::Inquiry => Component::Inquiry,
        E::Acknowledgement => Component::Acknowledgement,
        E::Empathy => Component::Empathy,
        E::Understanding => Component::Understanding,
        E::CustomerExperience => Component::CustomerExperience,
    }
}

/// The wire alert kind of a domain one.
pub fn alert_kind_to_proto(k: engine::AlertKind) -> AlertKind {
    use engine::AlertKind as E;
    match k {
        E::Interruption => AlertKind::Interruption,
        E::Overtalk => AlertKind::Overtalk,
        E::LongMonologue => AlertKind::LongMonologue,
        E::DeadAir => AlertKind::DeadAir,
        E::CustomerRepeating => AlertKind::CustomerRepeating,
        E::EmpathyMissed => AlertKind::EmpathyMissed,
        E::FrustrationRising => AlertKind::FrustrationRising,
        E::EscalationRisk => AlertKind::EscalationRisk,
        E::DismissiveLanguage => AlertKind::DismissiveLanguage,
        E::PrematureSolution => AlertKind::PrematureSolution,
        E::ClosedQuestionStreak => AlertKind::ClosedQuestionStreak,
        E::UnansweredQuestion => AlertKind::UnansweredQuestion,
        E::SideIssueDropped => AlertKind::SideIssueDropped,
        E::FastSpeech => AlertKind::FastSpeech,
    }
}

fn severity_to_proto(s: engine::Severity) -> Severity {
    match s {
        engine::Severity::Info => Severity::Info,
        engine::Severity::Warning => Severity::Warning,
        engine::Severity::Critical => Severity::Critical,
    }
}

fn score_to_proto(s: &engine::Score) -> Score {
    Score {
        overall: s.overall,
        confidence: s.confidence,
        components: s
            .components
            .iter()
            .map(|c| ComponentScore {
                component: component_to_proto(c.component) as i32,
                score: c.score,
                confidence: c.confidence,
                weight: c.weight,
            })
            .collect(),
    }
}

fn metrics_to_proto(m: &engine::Metrics) -> Metrics {
    Metrics {
        agent_talk_ms: m.agent_talk_ms,
        customer_talk_ms: m.customer_talk_ms,
        overtalk_ms: m.overtalk_ms,
        interruptions: m.interruptions,
        cut_offs: m.cut_offs,
        backchannels: m.backchannels,
        questions: m.questions,
        open_questions: m.open_questions,
        closed_questions: m.closed_questions,
        clarifying_questions: m.clarifying_questions,
        acknowledgements: m.acknowledgements,
        empathy: m.empathy,
        reflections: m.reflections,
        customer_repeats: m.customer_repeats,
        longest_monologue_ms: m.longest_monologue_ms,
        mean_response_gap_ms: m.mean_response_gap_ms(),
        agent_words_per_minute: m.agent_words_per_minute(),
        dead_air_episodes: m.dead_air_episodes,
        dead_air_ms: m.dead_air_ms,
        utterances: m.utterances,
        agent_talk_share: m.agent_talk_share(),
        emotion_episodes: m.emotion_episodes,
        emotion_answered: m.emotion_answered,
        unanswered_questions: m.unanswered_questions,
        side_issues: m.side_issues,
        side_issues_dropped: m.side_issues_dropped,
        escalation_requests: m.escalation_requests,
        premature_solutions: m.premature_solutions,
        dismissive_phrases: m.dismissive,
        sentence_completions: m.sentence_completions,
        long_customer_turns: m.long_customer_turns,
        long_turns_acknowledged: m.long_turns_acknowledged,
        start_only_utterances: m.start_only_utterances,
        chat_agent_responses: m.chat_agent_responses,
        chat_agent_response_mean_ms: m.chat_agent_response_mean_ms(),
        chat_agent_response_max_ms: m.chat_agent_response_max_ms,
        chat_customer_responses: m.chat_customer_responses,
        chat_customer_response_mean_ms: m.chat_customer_response_mean_ms(),
        chat_customer_response_max_ms: m.chat_customer_response_max_ms,
        chat_first_response_ms: m.chat_first_response_ms,
    }
}

fn customer_to_proto(c: &engine::CustomerState) -> CustomerState {
    CustomerState {
        sentiment: c.sentiment,
        frustration: c.frustration,
        trend: match c.trend {
            engine::Trend::Unknown => Trend::Unspecified,
            engine::Trend::Improving => Trend::Improving,
            engine::Trend::Steady => Trend::Steady,
            engine::Trend::Worsening => Trend::Worsening,
        } as i32,
    }
}

/// The engine's update on the wire.
pub fn update_to_proto(u: &engine::Update) -> ScoreUpdate {
    ScoreUpdate {
        utterance_id: u.utterance_id.clone(),
        partial: u.partial,
        score: Some(score_to_proto(&u.score)),
        behaviours: u
            .behaviours
            .iter()
            .map(|d| DetectedBehaviour {
                behaviour: behaviour_to_proto(d.behaviour) as i32,
                confidence: d.confidence,
                span_start: d.span.map_or(0, |s| s.0),
                span_end: d.span.map_or(0, |s| s.1),
                related_utterance_ids: d.related_utterance_ids.clone(),
                duration_ms: d.duration_ms,
            })
            .collect(),
        metrics: Some(metrics_to_proto(&u.metrics)),
        customer: Some(customer_to_proto(&u.customer)),
        contributions: u
            .contributions
            .iter()
            .map(|c| ScoreContribution {
                component: component_to_proto(c.component) as i32,
                behaviour: c
                    .behaviour
                    .map_or(Behaviour::Unspecified, behaviour_to_proto)
                    as i32,
                delta: c.delta,
                utterance_id: c.utterance_id.clone(),
            })
            .collect(),
    }
}

/// A protobuf timestamp of a system time.
pub fn timestamp(t: SystemTime) -> pbjson_types::Timestamp {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    pbjson_types::Timestamp {
        seconds: since.as_secs() as i64,
        nanos: since.subsec_nanos() as i32,
    }
}

/// The system time of a protobuf timestamp, if it is a valid one.
pub fn system_time(t: &pbjson_types::Timestamp) -> Option<SystemTime> {
    if t.seconds < 0 || !(0..1_000_000_000).contains(&t.nanos) {
        return None;
    }
    UNIX_EPOCH.checked_add(Duration::new(t.seconds as u64, t.nanos as u32))
}

/// The engine's alert on the wire, stamped with a wall-clock time when one is given.
pub fn alert_to_proto(a: &engine::Alert, time: Option<SystemTime>) -> Alert {
    Alert {
        alert_id: a.alert_id.clone(),
        kind: alert_kind_to_proto(a.kind) as i32,
        severity: severity_to_proto(a.severity) as i32,
        message: a.message.clone(),
        coaching_tip: a.coaching_tip.clone(),
        evidence_utterance_ids: a.evidence_utterance_ids.clone(),
        offset_ms: a.offset_ms,
        time: time.map(timestamp),
    }
}

fn coaching_to_proto(p: &engine::CoachingPoint) -> CoachingPoint {
    CoachingPoint {
        component: component_to_proto(p.component) as i32,
        text: p.text.clone(),
        evidence_utterance_ids: p.evidence_utterance_ids.clone(),
    }
}

/// The engine's scorecard on the wire; `alert_time` stamps each alert.
pub fn scorecard_to_proto(
    c: &engine::Scorecard,
    alert_time: impl Fn(&engine::Alert) -> Option<SystemTime>,
) -> Scorecard {
    Scorecard {
        score: Some(score_to_proto(&c.score)),
        metrics: Some(metrics_to_proto(&c.metrics)),
        alerts: c
            .alerts
            .iter()
            .map(|a| alert_to_proto(a, alert_time(a)))
            .collect(),
        strengths: c.strengths.iter().map(coaching_to_proto).collect(),
        coaching: c.coaching.iter().map(coaching_to_proto).collect(),
        end_reason: match c.end_reason {
            engine::EndReason::Completed => EndReason::Completed,
            engine::EndReason::Abandoned => EndReason::Abandoned,
        } as i32,
        duration_ms: c.duration_ms,
        rubric_profile: c.rubric_profile.clone(),
    }
}

/// The response of `ScoreTranscript` (and each line of `hearken score`) for a scored
/// conversation.
pub fn scored_to_response(
    conversation_id: String,
    scored: &engine::Scored,
    include_timeline: bool,
    alert_time: impl Fn(&engine::Alert) -> Option<SystemTime>,
) -> ScoreTranscriptResponse {
    ScoreTranscriptResponse {
        conversation_id,
        scorecard: Some(scorecard_to_proto(&scored.scorecard, &alert_time)),
        alerts: scored
            .alerts
            .iter()
            .map(|a| alert_to_proto(a, alert_time(a)))
            .collect(),
        timeline: if include_timeline {
            scored.timeline.iter().map(update_to_proto).collect()
        } else {
            Vec::new()
        },
        rejections: scored
            .rejections
            .iter()
            .map(|(_, r)| rejection(r))
            .collect(),
        metadata: Default::default(),
    }
}

/// The wire's reason for a refused message.
pub fn rejection_reason(reason: engine::RejectReason) -> RejectionReason {
    use engine::RejectReason as R;
    match reason {
        R::Malformed | R::TooLong => RejectionReason::InvalidArgument,
        R::OffsetOutOfRange | R::EndsBeforeStart => RejectionReason::OutOfRange,
        R::DuplicateUtterance => RejectionReason::AlreadyExists,
        R::ConversationEnded | R::HoldConflict | R::AlreadyLive | R::NotOpen => {
            RejectionReason::FailedPrecondition
        }
        R::TooManyUtterances | R::TooManyConversations | R::RateLimited => {
            RejectionReason::ResourceExhausted
        }
        R::UnknownProfile => RejectionReason::UnknownProfile,
    }
}

/// An in-band rejection on the wire. Carries field paths and limits only.
pub fn rejection(r: &engine::Rejected) -> Rejection {
    Rejection {
        reason: rejection_reason(r.reason) as i32,
        field: r.field.to_string(),
        description: r.description.clone(),
        utterance_id: r.utterance_id.clone().unwrap_or_default(),
        retry_after_ms: r.retry_after_ms.unwrap_or(0),
    }
}

/// The wire names of the proto enums, written once: `upper` is the name without its enum's
/// prefix (`REJECTION_REASON_INVALID_ARGUMENT` → `INVALID_ARGUMENT`: error reasons, headers,
/// metric attributes), `lower` the same in lower case (`open_question`: the floor page's JSON).
pub trait WireName: Copy {
    /// Without the enum's prefix.
    fn upper(self) -> &'static str;
    /// Without the enum's prefix, in lower case.
    fn lower(self) -> &'static str;
}

macro_rules! wire_names {
    ($($ty:ident => $prefix:literal),* $(,)?) => {$(
        impl WireName for $ty {
            fn upper(self) -> &'static str {
                self.as_str_name().trim_start_matches($prefix)
            }

            fn lower(self) -> &'static str {
                // Each enum's names lower-cased once, in a table by value.
                static TABLE: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
                let table = TABLE.get_or_init(|| {
                    let mut table = Vec::new();
                    for value in 0..=i32::from(u8::MAX) {
                        if let Ok(v) = $ty::try_from(value) {
                            table.resize(value as usize + 1, "unspecified");
                            let lower = v.upper().to_ascii_lowercase();
                            table[value as usize] = &*Box::leak(lower.into_boxed_str());
                        }
                    }
                    table
                });
                table.get(self as usize).copied().unwrap_or("unspecified")
            }
        }
    )*};
}

wire_names! {
    Channel => "CHANNEL_",
    Role => "ROLE_",
    SignalKind => "SIGNAL_KIND_",
    Behaviour => "BEHAVIOUR_",
    Component => "COMPONENT_",
    Trend => "TREND_",
    AlertKind => "ALERT_KIND_",
    Severity => "SEVERITY_",
    EndReason => "END_REASON_",
    RejectionReason => "REJECTION_REASON_",
}
