//! The rubric: every threshold, weight, vocabulary, alert text and cool-down, as data.
//!
//! The embedded default (`rubric/default.toml`) holds a complete `base` profile and named
//! `profiles` laid over it key by key. A user's file is laid over the embedded one the same way.
//! Loading validates every profile and reports every problem at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use super::alerts::{AlertKind, Severity};
use super::language::{CompiledLanguage, LanguageRules};
use super::scorer::Component;
use super::text::tokenize;

/// The embedded default rubric, as TOML.
pub(crate) const DEFAULT_RUBRIC_TOML: &str = include_str!("rubric/default.toml");

/// Every problem found while loading a rubric.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid rubric ({} problem(s)):\n  {}", problems.len(), problems.join("\n  "))]
pub struct RubricError {
    /// One line per problem: `profile.key: why`.
    pub problems: Vec<String>,
}

/// How much context a conversation keeps.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryRules {
    /// Final utterances kept for detector context.
    pub max_utterances: usize,
    /// Utterances that ended longer ago than this (behind the latest speech) are dropped.
    pub max_window_ms: i64,
}

/// Thresholds of the timing behaviours (see `listening-rubric.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // documented in default.toml, next to their values
pub struct TimingRules {
    pub speech_timing: bool,
    pub interruption_min_remaining_ms: i64,
    pub cut_off_window_ms: i64,
    pub backchannel_max_words: usize,
    pub backchannel_max_ms: i64,
    pub overtalk_ms: i64,
    pub dead_air_ms: i64,
    pub monologue_max_gap_ms: i64,
    pub monologue_ms: i64,
    pub speaking_rate_min_utterance_ms: i64,
    pub fast_speech_wpm: f64,
    pub fast_speech_window_ms: i64,
    pub long_customer_turn_ms: i64,
    pub rushed_response_ms: i64,
}

/// Word lists.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vocabulary {
    /// Listening cues that take no floor.
    pub acknowledgements: Vec<String>,
    /// Fillers ignored when matching cues.
    pub fillers: Vec<String>,
}

/// Parameters of the patience component.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatienceRules {
    pub half_confidence_minutes: f64,
    pub interruption_penalty: f64,
    pub cut_off_extra: f64,
    pub overtalk_penalty: f64,
    pub rushed_penalty: f64,
    pub min_minutes: f64,
}

/// Parameters of the talk-balance component.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TalkBalanceRules {
    pub half_confidence_minutes: f64,
    pub band_low: f64,
    pub band_high: f64,
    pub under_slope: f64,
    pub over_slope: f64,
    pub monologue_penalty_per_s: f64,
    pub monologue_penalty_cap: f64,
    pub words_per_minute: f64,
}

/// Parameters of the inquiry component.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InquiryRules {
    pub half_confidence_questions: f64,
    pub base: f64,
    pub open_points: f64,
    pub premature_penalty: f64,
    pub streak_penalty: f64,
    pub no_question_turns: f64,
    pub no_question_score: f64,
}

/// Parameters of the acknowledgement component.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgementRules {
    pub half_confidence_turns: f64,
}

/// Parameters of the empathy component.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmpathyRules {
    pub half_confidence_episodes: f64,
    pub unprompted_score: f64,
    pub reflection_credit: f64,
}

/// Parameters of the understanding component.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnderstandingRules {
    pub half_confidence_agent_turns: f64,
    pub base: f64,
    pub reflection_bonus: f64,
    pub reflections_per_question: f64,
    pub premature_penalty: f64,
    pub dismissive_penalty: f64,
    pub completion_penalty: f64,
}

/// Parameters of the customer-experience component.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerExperienceRules {
    pub half_confidence_customer_turns: f64,
    pub repeat_penalty: f64,
    pub escalation_penalty: f64,
    pub unanswered_penalty: f64,
    pub dropped_side_issue_penalty: f64,
    pub frustration_penalty: f64,
}

/// How scores are computed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoringRules {
    /// Score with no evidence.
    pub prior: f64,
    /// Turns within which each counted fault costs its whole penalty; in a longer conversation
    /// a fault costs `fault_turns / turns` of it (a rate, not a count).
    pub fault_turns: f64,
    /// Weight of each component in the overall score.
    pub weights: BTreeMap<Component, f64>,
    /// Patience.
    pub patience: PatienceRules,
    /// Talk balance.
    pub talk_balance: TalkBalanceRules,
    /// Inquiry.
    pub inquiry: InquiryRules,
    /// Acknowledgement.
    pub acknowledgement: AcknowledgementRules,
    /// Empathy.
    pub empathy: EmpathyRules,
    /// Understanding.
    pub understanding: UnderstandingRules,
    /// Customer experience.
    pub customer_experience: CustomerExperienceRules,
}

/// When and how an alert kind is raised.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// Severity of the first alerts.
    pub severity: Severity,
    /// From this many occurrences in a call on, the alert is critical (0: never escalates).
    #[serde(default)]
    pub critical_after: u32,
    /// The same kind is not raised again within this long (conversation time).
    pub cooldown_ms: i64,
    /// One line saying what happened.
    pub message: String,
    /// What to do about it.
    pub tip: String,
}

/// What the scorecard says about one component.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoachingText {
    /// Said when the component scored well.
    pub strength: String,
    /// Said when it is among the things to change.
    pub improve: String,
}

/// One named set of rules; every conversation is scored with one profile.
/// A profile as its file gives it: every table, checked by serde, nothing compiled.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    history: HistoryRules,
    timing: TimingRules,
    vocabulary: Vocabulary,
    scoring: ScoringRules,
    alerts: BTreeMap<AlertKind, AlertRule>,
    coaching: BTreeMap<Component, CoachingText>,
    language: LanguageRules,
}

/// A rubric profile, compiled: its rules as data and its vocabularies ready for matching. Only
/// [`Rubric`] makes one, so every field is set.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The profile's name.
    pub name: String,
    /// Context kept.
    pub history: HistoryRules,
    /// Timing thresholds.
    pub timing: TimingRules,
    /// Word lists.
    pub vocabulary: Vocabulary,
    /// Scoring parameters.
    pub scoring: ScoringRules,
    /// Alert rules, one per kind.
    pub alerts: BTreeMap<AlertKind, AlertRule>,
    /// Scorecard texts, one per component.
    pub coaching: BTreeMap<Component, CoachingText>,
    /// Language behaviours: word lists and thresholds.
    pub language: LanguageRules,
    /// The vocabularies compiled, once, at load.
    pub compiled: CompiledVocabulary,
    /// The listening model its learned layer uses (the rubric's, shared by its profiles).
    pub model: super::ListeningModel,
}

/// Vocabularies prepared for matching.
#[derive(Debug, Clone)]
pub struct CompiledVocabulary {
    /// The language rules and the backchannel vocabulary, in one phrase automaton.
    pub language: Arc<CompiledLanguage>,
    /// Fillers, lower-cased.
    pub fillers: Vec<String>,
}

impl ProfileFile {
    /// Compiles the vocabularies. Fails only when they do not fit one automaton.
    fn compile(
        self,
        name: &str,
        lexicon: &Arc<super::language::Lexicon>,
        model: &super::ListeningModel,
    ) -> Result<Profile, String> {
        let language = CompiledLanguage::new(
            &self.language,
            &self.vocabulary.acknowledgements,
            Arc::clone(lexicon),
        )?;
        let fillers = self
            .vocabulary
            .fillers
            .iter()
            .map(|f| f.to_lowercase())
            .collect();
        Ok(Profile {
            name: name.to_owned(),
            history: self.history,
            timing: self.timing,
            vocabulary: self.vocabulary,
            scoring: self.scoring,
            alerts: self.alerts,
            coaching: self.coaching,
            language: self.language,
            compiled: CompiledVocabulary {
                language: Arc::new(language),
                fillers,
            },
            model: model.clone(),
        })
    }
}

impl Profile {
    /// The rule of an alert kind. Every kind has one: `Rubric` validation guarantees it.
    pub fn alert(&self, kind: AlertKind) -> &AlertRule {
        &self.alerts[&kind]
    }

    /// The compiled language rules.
    pub fn lang(&self) -> &CompiledLanguage {
        &self.compiled.language
    }

    /// Weight of a component (0 when not configured).
    pub fn weight(&self, component: Component) -> f64 {
        self.scoring.weights.get(&component).copied().unwrap_or(0.0)
    }

    fn validate(&self, problems: &mut Vec<String>) {
        let name = &self.name;
        let mut check = |ok: bool, key: &str, why: &str| {
            if !ok {
                problems.push(format!("profiles.{name}.{key}: {why}"));
            }
        };
        let t = &self.timing;
        check(
            self.history.max_utterances >= 2,
            "history.max_utterances",
            "must be at least 2",
        );
        check(
            self.history.max_window_ms >= 60_000,
            "history.max_window_ms",
            "must be at least 60000",
        );
        for (key, value) in [
            (
                "timing.interruption_min_remaining_ms",
                t.interruption_min_remaining_ms,
            ),
            ("timing.cut_off_window_ms", t.cut_off_window_ms),
            ("timing.backchannel_max_ms", t.backchannel_max_ms),
            ("timing.overtalk_ms", t.overtalk_ms),
            ("timing.dead_air_ms", t.dead_air_ms),
            ("timing.monologue_max_gap_ms", t.monologue_max_gap_ms),
            ("timing.monologue_ms", t.monologue_ms),
            (
                "timing.speaking_rate_min_utterance_ms",
                t.speaking_rate_min_utterance_ms,
            ),
            ("timing.fast_speech_window_ms", t.fast_speech_window_ms),
            ("timing.long_customer_turn_ms", t.long_customer_turn_ms),
            ("timing.rushed_response_ms", t.rushed_response_ms),
        ] {
            check(value > 0, key, "must be greater than 0");
        }
        check(
            t.fast_speech_wpm > 0.0,
            "timing.fast_speech_wpm",
            "must be greater than 0",
        );
        check(
            t.cut_off_window_ms >= t.interruption_min_remaining_ms,
            "timing.cut_off_window_ms",
            "must be at least timing.interruption_min_remaining_ms",
        );
        check(
            t.backchannel_max_words >= 1,
            "timing.backchannel_max_words",
            "must be at least 1",
        );
        check(
            self.vocabulary
                .acknowledgements
                .iter()
                .any(|p| !tokenize(p).is_empty()),
            "vocabulary.acknowledgements",
            "must hold at least one phrase with a word in it",
        );
        let s = &self.scoring;
        check(
            (0.0..=100.0).contains(&s.prior),
            "scoring.prior",
            "must be within 0..=100",
        );
        check(
            s.fault_turns.is_finite() && s.fault_turns >= 1.0,
            "scoring.fault_turns",
            "must be a finite number at least 1",
        );
        for component in Component::ALL {
            match s.weights.get(&component) {
                None => check(
                    false,
                    &format!("scoring.weights.{}", component.name()),
                    "is missing",
                ),
                Some(w) => check(
                    w.is_finite() && *w >= 0.0,
                    &format!("scoring.weights.{}", component.name()),
                    "must be a finite number at least 0",
                ),
            }
        }
        check(
            s.weights.values().any(|w| *w > 0.0),
            "scoring.weights",
            "at least one weight must be greater than 0",
        );
        let p = &s.patience;
        for (key, v) in [
            (
                "scoring.patience.half_confidence_minutes",
                p.half_confidence_minutes,
            ),
            ("scoring.patience.min_minutes", p.min_minutes),
            (
                "scoring.talk_balance.half_confidence_minutes",
                s.talk_balance.half_confidence_minutes,
            ),
            (
                "scoring.talk_balance.words_per_minute",
                s.talk_balance.words_per_minute,
            ),
        ] {
            check(v.is_finite() && v > 0.0, key, "must be greater than 0");
        }
        for (key, v) in [
            (
                "scoring.patience.interruption_penalty",
                p.interruption_penalty,
            ),
            ("scoring.patience.cut_off_extra", p.cut_off_extra),
            ("scoring.patience.overtalk_penalty", p.overtalk_penalty),
            ("scoring.patience.rushed_penalty", p.rushed_penalty),
            (
                "scoring.talk_balance.under_slope",
                s.talk_balance.under_slope,
            ),
            ("scoring.talk_balance.over_slope", s.talk_balance.over_slope),
            (
                "scoring.talk_balance.monologue_penalty_per_s",
                s.talk_balance.monologue_penalty_per_s,
            ),
            (
                "scoring.talk_balance.monologue_penalty_cap",
                s.talk_balance.monologue_penalty_cap,
            ),
        ] {
            check(
                v.is_finite() && v >= 0.0,
                key,
                "must be a finite number at least 0",
            );
        }
        let b = &s.talk_balance;
        check(
            0.0 <= b.band_low && b.band_low < b.band_high && b.band_high <= 1.0,
            "scoring.talk_balance.band_low",
            "must satisfy 0 <= band_low < band_high <= 1",
        );
        for component in Component::ALL {
            check(
                self.coaching.contains_key(&component),
                &format!("coaching.{}", component.name()),
                "is missing",
            );
        }
        for kind in AlertKind::ALL {
            match self.alerts.get(&kind) {
                None => check(false, &format!("alerts.{}", kind.name()), "is missing"),
                Some(rule) => {
                    check(
                        rule.cooldown_ms >= 0,
                        &format!("alerts.{}.cooldown_ms", kind.name()),
                        "must be at least 0",
                    );
                    check(
                        !rule.message.trim().is_empty(),
                        &format!("alerts.{}.message", kind.name()),
                        "must not be empty",
                    );
                }
            }
        }
    }
}

/// A validated set of profiles.
#[derive(Debug, Clone)]
pub struct Rubric {
    default_profile: String,
    profiles: BTreeMap<String, Arc<Profile>>,
    model: super::ListeningModel,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RubricFile {
    default_profile: String,
    base: toml::Table,
    #[serde(default)]
    profiles: BTreeMap<String, toml::Table>,
}

/// Lays `over` onto `under`: tables merge key by key, anything else replaces.
fn overlay(under: &mut toml::Table, over: &toml::Table) {
    for (key, value) in over {
        match (under.get_mut(key), value) {
            (Some(toml::Value::Table(u)), toml::Value::Table(o)) => overlay(u, o),
            _ => {
                under.insert(key.clone(), value.clone());
            }
        }
    }
}

impl Rubric {
    /// The embedded default rubric.
    pub fn embedded() -> Rubric {
        // The embedded file is checked by a unit test; failing here is a build defect.
        Self::from_toml_str("").expect("embedded rubric is valid")
    }

    /// Loads a rubric file laid over the embedded default. An empty string gives the default.
    ///
    /// ```
    /// let rubric = hearken::engine::Rubric::from_toml_str(
    ///     "[profiles.strict.timing]\ninterruption_min_remaining_ms = 100\n",
    /// ).unwrap();
    /// assert_eq!(rubric.profile("strict").unwrap().timing.interruption_min_remaining_ms, 100);
    /// assert_eq!(rubric.profile("").unwrap().name, "voice");
    /// ```
    pub fn from_toml_str(user: &str) -> Result<Rubric, RubricError> {
        let model = super::ListeningModel::embedded().map_err(|e| RubricError {
            problems: vec![format!("the embedded {e}")],
        })?;
        Self::from_toml_str_with_model(user, &model)
    }

    /// As [`Rubric::from_toml_str`], with the listening model its profiles use (`--model`;
    /// a reload keeps the running rubric's, [`Rubric::model`]).
    pub fn from_toml_str_with_model(
        user: &str,
        model: &super::ListeningModel,
    ) -> Result<Rubric, RubricError> {
        let mut merged: toml::Table = DEFAULT_RUBRIC_TOML.parse().map_err(|e| RubricError {
            problems: vec![format!("embedded rubric: {e}")],
        })?;
        if !user.trim().is_empty() {
            let user: toml::Table = user.parse().map_err(|e| RubricError {
                problems: vec![format!("{e}")],
            })?;
            overlay(&mut merged, &user);
        }
        let file: RubricFile =
            toml::Value::Table(merged)
                .try_into()
                .map_err(|e: toml::de::Error| RubricError {
                    problems: vec![e.to_string()],
                })?;
        let mut problems = Vec::new();
        let mut profiles = BTreeMap::new();
        let lexicon = Arc::new(super::language::vader_lexicon());
        for (name, overrides) in &file.profiles {
            let mut table = file.base.clone();
            overlay(&mut table, overrides);
            let file = match toml::Value::Table(table).try_into::<ProfileFile>() {
                Ok(file) => file,
                Err(e) => {
                    problems.push(format!("profiles.{name}: {}", e.message()));
                    continue;
                }
            };
            match file.compile(name, &lexicon, model) {
                Ok(profile) => {
                    profile.validate(&mut problems);
                    profiles.insert(name.clone(), Arc::new(profile));
                }
                Err(e) => problems.push(format!("profiles.{name}: {e}")),
            }
        }
        if !file.profiles.contains_key(&file.default_profile) {
            problems.push(format!(
                "default_profile: no profile named `{}`",
                file.default_profile
            ));
        }
        if problems.is_empty() {
            Ok(Rubric {
                default_profile: file.default_profile,
                profiles,
                model: model.clone(),
            })
        } else {
            Err(RubricError { problems })
        }
    }

    /// The profile of that name; the empty name is the default profile.
    pub fn profile(&self, name: &str) -> Option<Arc<Profile>> {
        let name = if name.is_empty() {
            &self.default_profile
        } else {
            name
        };
        self.profiles.get(name).cloned()
    }

    /// The listening model the profiles use.
    pub fn model(&self) -> &super::ListeningModel {
        &self.model
    }

    /// The names of all profiles.
    pub fn profile_names(&self) -> impl Iterator<Item = &str> {
        self.profiles.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_rubric_is_valid_with_voice_and_chat() {
        let rubric = Rubric::embedded();
        assert_eq!(
            rubric.profile_names().collect::<Vec<_>>(),
            ["chat", "collections", "sales", "voice"]
        );
        let collections = rubric.profile("collections").unwrap();
        assert_eq!(collections.weight(Component::Empathy), 1.5);
        assert_eq!(collections.alert(AlertKind::Interruption).critical_after, 2);
        assert_eq!(
            collections.timing.dead_air_ms,
            rubric.profile("voice").unwrap().timing.dead_air_ms,
            "unchanged keys come from the base"
        );
        assert!(!rubric.profile("chat").unwrap().timing.speech_timing);
        assert!(rubric.profile("voice").unwrap().timing.speech_timing);
        assert!(rubric.profile("nope").is_none());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = Rubric::from_toml_str(
            "default_profile = \"missing\"\n[base.timing]\ndead_air_ms = 0\n[base.scoring]\nprior = 150.0\nfault_turns = 0.5\n",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("profiles.voice.timing.dead_air_ms"), "{text}");
        assert!(text.contains("profiles.chat.scoring.prior"), "{text}");
        assert!(
            text.contains("profiles.voice.scoring.fault_turns"),
            "{text}"
        );
        assert!(text.contains("default_profile"), "{text}");
        assert!(err.problems.len() >= 5, "{text}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = Rubric::from_toml_str("[profiles.voice.timing]\ndead_air = 5\n").unwrap_err();
        assert!(err.to_string().contains("dead_air"), "{err}");
    }
}
