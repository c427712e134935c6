//! What the engine gives back: an update per final utterance (score, behaviours, metrics, the
//! customer's state and what moved each component), alerts, and the scorecard at the end.

use super::{Alert, Behaviour, Component, Detection, Metrics, Score, Scorecard};

/// Direction of the customer's mood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trend {
    /// Not enough to tell.
    #[default]
    Unknown,
    /// Getting better.
    Improving,
    /// About the same.
    Steady,
    /// Getting worse.
    Worsening,
}

/// The customer's state as the words show it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CustomerState {
    /// −1 to 1.
    pub sentiment: f64,
    /// 0 to 1.
    pub frustration: f64,
    /// Where it is heading.
    pub trend: Trend,
}

/// What moved a component in one update.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    /// The component.
    pub component: Component,
    /// The behaviour that moved it; `None` when the change came from talk time alone.
    pub behaviour: Option<Behaviour>,
    /// Points, may be negative.
    pub delta: f64,
    /// The utterance with the evidence.
    pub utterance_id: String,
}

/// The score after one utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// The utterance that caused it.
    pub utterance_id: String,
    /// A partial segment: nothing was scored.
    pub partial: bool,
    /// The score.
    pub score: Score,
    /// What was recognised in (or revealed by) the utterance.
    pub behaviours: Vec<Detection>,
    /// Running metrics.
    pub metrics: Metrics,
    /// The customer's state.
    pub customer: CustomerState,
    /// What moved which component.
    pub contributions: Vec<Contribution>,
}

/// One output of the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Emitted {
    /// The score after an utterance.
    Update(Box<Update>),
    /// Something to act on now.
    Alert(Alert),
    /// The summary at the end.
    Scorecard(Box<Scorecard>),
}
