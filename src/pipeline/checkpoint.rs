//! A partition's checkpoint: what a new owner needs, beside the input log, to rebuild the
//! partition's live conversations exactly (`docs/pipeline.md`, "Offsets, and rebuilding a
//! partition elsewhere").
//!
//! Written to the state topic (compacted, keyed by group, topic and partition) after the outputs
//! of every record below `processed` are delivered and before the offset is committed. A new
//! owner reads the latest one and re-reads the input from the commit offset: below `processed`,
//! a record opens a conversation only at an offset in `live` (the first record of a call that
//! was live), and a record of any other call it does not hold is passed over, so that the tail of
//! a call that began before the resume offset, or that ended before `processed`, opens nothing
//! and writes nothing.

use serde::{Deserialize, Serialize};

use crate::host::route::Gone;

/// The version of the record's layout; a checkpoint of another version is not used.
pub const VERSION: u32 = 1;

/// One partition's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Layout version ([`VERSION`]).
    pub v: u32,
    /// The offset committed with it: the first record of the oldest live call, or `processed`.
    pub resume: i64,
    /// One past the last record handled; everything below it was delivered.
    pub processed: i64,
    /// Record time before the record at `resume` (the largest timestamp read before it).
    pub clock_before_resume: i64,
    /// Record time at `processed` (it may have been moved to the wall clock on a quiet
    /// partition).
    pub clock: i64,
    /// The first offset of every live call, ascending.
    pub live: Vec<i64>,
    /// Calls that ended, or whose start was refused, within the linger: their late messages are
    /// rejected rather than opening a new call.
    pub ended: Vec<Ended>,
}

/// A call that is not live but was lately.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ended {
    /// Its id.
    pub id: String,
    /// Record time when it ended.
    pub at: i64,
    /// The field its start was refused for; absent if it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

impl Ended {
    /// From the partition's memory.
    pub(crate) fn new(id: &str, at: i64, gone: Gone) -> Ended {
        Ended {
            id: id.to_owned(),
            at,
            refused: match gone {
                Gone::Ended => None,
                Gone::StartRefused(field) => Some(field.to_owned()),
            },
        }
    }

    /// Back into the partition's memory.
    pub(crate) fn gone(&self) -> Gone {
        match &self.refused {
            None => Gone::Ended,
            Some(field) => Gone::StartRefused(crate::host::route::start_field(field)),
        }
    }
}

/// The state topic's key for a partition of `topic` read by `group`.
pub fn key(group: &str, topic: &str, partition: i32) -> String {
    serde_json::to_string(&(group, topic, partition)).unwrap_or_default()
}

impl Checkpoint {
    /// The record's value.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A checkpoint read back, if it is one of this version and consistent.
    pub fn decode(value: &[u8]) -> Option<Checkpoint> {
        let c: Checkpoint = serde_json::from_slice(value).ok()?;
        let consistent = c.v == VERSION
            && c.resume <= c.processed
            && c.live.windows(2).all(|w| w[0] < w[1])
            && c.live.first().is_none_or(|&f| f == c.resume)
            && c.live.last().is_none_or(|&l| l < c.processed);
        consistent.then_some(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_round_trips_and_an_inconsistent_one_is_refused() {
        let c = Checkpoint {
            v: VERSION,
            resume: 10,
            processed: 20,
            clock_before_resume: 5,
            clock: 9,
            live: vec![10, 14],
            ended: vec![
                Ended::new("a", 7, Gone::Ended),
                Ended::new("b", 8, Gone::StartRefused("start.language")),
            ],
        };
        let back = Checkpoint::decode(&c.encode()).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.ended[1].gone(), Gone::StartRefused("start.language"));
        for broken in [
            Checkpoint { v: 2, ..c.clone() },
            Checkpoint {
                live: vec![11, 14],
                ..c.clone()
            },
            Checkpoint {
                live: vec![10, 20],
                ..c.clone()
            },
            Checkpoint {
                processed: 9,
                ..c.clone()
            },
        ] {
            assert_eq!(Checkpoint::decode(&broken.encode()), None, "{broken:?}");
        }
        assert_eq!(Checkpoint::decode(b"not json"), None);
        assert_ne!(key("g", "t", 1), key("g", "t", 2));
        assert_ne!(key("g:t", "1", 1), key("g", "t:1", 1));
    }
}
