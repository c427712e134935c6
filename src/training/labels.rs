//! The labels of a labelled conversation (`../shared/data/README.md`): per utterance,
//! `labels.behaviours` (`["none"]` when none applies; an empty list or none at all: not
//! annotated) and `labels.behaviours_ignore` (behaviours the annotation cannot decide there).

use std::collections::BTreeSet;

use crate::engine::Behaviour;

/// The label name of a behaviour (the data's name for sentence completion).
pub fn label_of(b: Behaviour) -> &'static str {
    use Behaviour as B;
    match b {
        B::Interruption => "interruption",
        B::CutOff => "cut_off",
        B::Backchannel | B::Acknowledgement => "acknowledgement",
        B::Overtalk => "overtalk",
        B::DeadAir => "dead_air",
        B::Monologue => "monologue",
        B::FastSpeech => "fast_speech",
        B::OpenQuestion => "open_question",
        B::ClosedQuestion => "closed_question",
        B::ClarifyingQuestion => "clarifying_question",
        B::Empathy => "empathy",
        B::Reflection => "reflection",
        B::SentenceCompletion => "collaborative_completion",
        B::PrematureSolution => "premature_solution",
        B::DismissiveLanguage => "dismissive_language",
        B::CustomerRepeat => "customer_repeat",
        B::CustomerEmotion => "customer_emotion",
        B::EscalationRequest => "escalation_request",
        B::SideIssue => "side_issue",
        B::UnansweredQuestion => "unanswered_question",
    }
}

/// Every behaviour a label may name, and `none`.
pub fn known(name: &str) -> bool {
    name == "none"
        || name == "sentence_completion"
        || Behaviour::ALL.iter().any(|b| label_of(*b) == name)
}

/// One utterance's annotation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotation {
    /// The behaviours it shows (`none` left out).
    pub positive: BTreeSet<String>,
    /// The behaviours the annotation cannot decide here.
    pub ignore: BTreeSet<String>,
}

impl Annotation {
    /// Whether the utterance shows `behaviour`: `None` when it is not to be counted.
    pub fn says(&self, behaviour: &str) -> Option<bool> {
        (!self.ignore.contains(behaviour)).then(|| self.positive.contains(behaviour))
    }
}

/// Reads an utterance's `labels`: `Ok(None)` when it is not annotated; an error naming the
/// key and the problem (never the utterance's text) when the labels are not the convention.
pub fn annotation(labels: Option<&serde_json::Value>) -> Result<Option<Annotation>, String> {
    let Some(labels) = labels else {
        return Ok(None);
    };
    let list = |key: &str| -> Result<Option<BTreeSet<String>>, String> {
        let Some(v) = labels.get(key) else {
            return Ok(None);
        };
        let items = v
            .as_array()
            .ok_or_else(|| format!("labels.{key} must be a list of behaviour names"))?;
        let mut names = BTreeSet::new();
        for item in items {
            let name = item
                .as_str()
                .ok_or_else(|| format!("labels.{key} must be a list of behaviour names"))?;
            if !known(name) {
                return Err(format!(
                    "labels.{key}: unknown behaviour {name:?} (known: none, {})",
                    Behaviour::ALL
                        .iter()
                        .map(|b| label_of(*b))
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            let name = if name == "sentence_completion" {
                "collaborative_completion"
            } else {
                name
            };
            names.insert(name.to_string());
        }
        Ok(Some(names))
    };
    let Some(positive) = list("behaviours")?.filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    if positive.contains("none") && positive.len() > 1 {
        return Err("labels.behaviours: \"none\" with other behaviours".into());
    }
    Ok(Some(Annotation {
        positive: positive.into_iter().filter(|b| b != "none").collect(),
        ignore: list("behaviours_ignore")?.unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_the_convention_or_say_what_is_wrong() {
        let read = |s: &str| annotation(Some(&serde_json::from_str(s).unwrap()));
        let a = read(
            r#"{"behaviours": ["reflection", "open_question"], "behaviours_ignore": ["empathy"]}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(a.says("reflection"), Some(true));
        assert_eq!(a.says("closed_question"), Some(false));
        assert_eq!(a.says("empathy"), None);
        assert_eq!(
            read(r#"{"behaviours": ["none"]}"#)
                .unwrap()
                .unwrap()
                .says("empathy"),
            Some(false)
        );
        assert_eq!(
            read(r#"{"behaviours": []}"#).unwrap(),
            None,
            "empty: not annotated"
        );
        assert_eq!(read(r#"{"act": "sd"}"#).unwrap(), None);
        assert_eq!(
            read(r#"{"behaviours": ["sentence_completion"]}"#)
                .unwrap()
                .unwrap()
                .says("collaborative_completion"),
            Some(true)
        );
        let e = read(r#"{"behaviours": ["reflektion"]}"#).unwrap_err();
        assert!(e.contains("unknown behaviour \"reflektion\""), "{e}");
        assert!(
            read(r#"{"behaviours": "reflection"}"#)
                .unwrap_err()
                .contains("must be a list")
        );
        assert!(read(r#"{"behaviours": ["none", "empathy"]}"#).is_err());
    }
}
