//! Text rendering of live responses and scorecards for people at a terminal.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::proto::WireName as _;
use crate::proto::v1::*;

/// `talk_balance` → `talk balance`.
fn spaced(name: &str) -> String {
    name.replace('_', " ")
}

pub(super) fn component_name(c: i32) -> String {
    Component::try_from(c)
        .map(|c| spaced(c.lower()))
        .unwrap_or_else(|_| "?".into())
}

fn behaviour_name(b: i32) -> String {
    Behaviour::try_from(b)
        .map(|b| spaced(b.lower()))
        .unwrap_or_else(|_| "?".into())
}

pub(super) fn alert_kind_name(k: i32) -> String {
    AlertKind::try_from(k)
        .map(|k| spaced(k.lower()))
        .unwrap_or_else(|_| "?".into())
}

fn severity_name(s: i32) -> String {
    Severity::try_from(s)
        .map(|s| spaced(s.lower()))
        .unwrap_or_else(|_| "?".into())
}

/// `m:ss.t` of a millisecond offset.
pub(super) fn clock(ms: i64) -> String {
    let ms = ms.max(0);
    format!(
        "{}:{:02}.{}",
        ms / 60_000,
        (ms / 1000) % 60,
        (ms % 1000) / 100
    )
}

/// What the renderer knows of an utterance it sent.
#[derive(Debug, Clone)]
pub(super) struct Sent {
    pub(super) role: &'static str,
    pub(super) start_ms: Option<i64>,
    pub(super) text: Option<String>,
}

/// Text from a file or the wire made safe for a terminal: control characters (C0, DEL, C1:
/// the escape that starts a colour, a window title or a screen clear) become U+FFFD, line
/// breaks and tabs a space, so a transcript cannot drive the operator's terminal.
pub(super) fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    s.chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c if c.is_control() => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// Renders one response as lines of text (empty for nothing worth showing).
pub(super) fn response(
    r: &StreamConversationsResponse,
    sent: &HashMap<String, Sent>,
    quiet: bool,
) -> String {
    use stream_conversations_response::Payload;
    let mut out = String::new();
    match &r.payload {
        Some(Payload::Update(u)) if !quiet && !u.partial => {
            let info = sent.get(&u.utterance_id);
            let score = u.score.clone().unwrap_or_default();
            let at = info
                .and_then(|i| i.start_ms)
                .map(clock)
                .unwrap_or_else(|| "    -  ".into());
            let role = info.map_or("?", |i| i.role);
            let behaviours: Vec<String> = u
                .behaviours
                .iter()
                .map(|b| behaviour_name(b.behaviour))
                .collect();
            let _ = write!(
                out,
                "  {at:>7}  {role:<8} {:<6} score {:5.1} (confidence {:.2})",
                printable(&u.utterance_id),
                score.overall,
                score.confidence
            );
            if !behaviours.is_empty() {
                let _ = write!(out, "  [{}]", behaviours.join(", "));
            }
            if let Some(text) = info.and_then(|i| i.text.as_deref()) {
                let short: String = printable(text).chars().take(60).collect();
                let ellipsis = if text.chars().count() > 60 { "…" } else { "" };
                let _ = write!(out, "  \"{short}{ellipsis}\"");
            }
            out.push('\n');
        }
        Some(Payload::Alert(a)) => out.push_str(&alert(a)),
        Some(Payload::Scorecard(card)) => out.push_str(&scorecard(&r.conversation_id, card)),
        Some(Payload::Rejection(rej)) => out.push_str(&rejection(rej)),
        _ => {}
    }
    out
}

/// One line for a rejected message: its utterance, field and why (never its text).
pub(super) fn rejection(r: &Rejection) -> String {
    format!(
        "  rejected {} {}: {}\n",
        r.utterance_id, r.field, r.description
    )
}

pub(super) fn alert(a: &Alert) -> String {
    format!(
        "  {:>7}  ⚠ {} {}: {}\n           tip: {}\n",
        clock(a.offset_ms),
        severity_name(a.severity).to_uppercase(),
        alert_kind_name(a.kind),
        a.message,
        a.coaching_tip
    )
}

fn seconds(ms: i64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// A readable scorecard.
/// A scorecard's timing lines: response times for a chat (its profile, or response times
/// measured: it has no speech), talk time and pace otherwise.
fn timing(out: &mut String, card: &Scorecard) {
    let m = card.metrics.unwrap_or_default();
    let chat = card.rubric_profile == "chat"
        || m.chat_first_response_ms.is_some()
        || m.chat_agent_responses + m.chat_customer_responses > 0;
    if chat {
        let _ = writeln!(
            out,
            "     chat: first response {} · agent response mean {} / longest {} ({} replies) · customer response mean {} / longest {}",
            m.chat_first_response_ms.map_or("-".to_string(), seconds),
            seconds(m.chat_agent_response_mean_ms.round() as i64),
            seconds(m.chat_agent_response_max_ms),
            m.chat_agent_responses,
            seconds(m.chat_customer_response_mean_ms.round() as i64),
            seconds(m.chat_customer_response_max_ms),
        );
    } else {
        let _ = writeln!(
            out,
            "     talk: agent {} · customer {} · agent share {:.0}% · overtalk {} · longest monologue {}",
            seconds(m.agent_talk_ms),
            seconds(m.customer_talk_ms),
            m.agent_talk_share * 100.0,
            seconds(m.overtalk_ms),
            seconds(m.longest_monologue_ms)
        );
        let _ = writeln!(
            out,
            "     interruptions {} (cut-offs {}) · backchannels {} · dead air {} ({}) · mean response gap {:.0} ms · agent pace {:.0} wpm",
            m.interruptions,
            m.cut_offs,
            m.backchannels,
            m.dead_air_episodes,
            seconds(m.dead_air_ms),
            m.mean_response_gap_ms,
            m.agent_words_per_minute
        );
    }
}

pub(super) fn scorecard(conversation_id: &str, card: &Scorecard) -> String {
    let mut out = String::new();
    let score = card.score.clone().unwrap_or_default();
    let end = EndReason::try_from(card.end_reason)
        .map(|e| spaced(e.lower()))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  ── scorecard {conversation_id} ({end}, {}, profile {}) ──",
        clock(card.duration_ms),
        card.rubric_profile
    );
    let _ = writeln!(
        out,
        "     listening score {:.1} / 100   (confidence {:.2})",
        score.overall, score.confidence
    );
    for c in &score.components {
        if c.confidence > 0.0 {
            let _ = writeln!(
                out,
                "       {:<20} {:5.1}   (confidence {:.2})",
                component_name(c.component),
                c.score,
                c.confidence
            );
        }
    }
    timing(&mut out, card);
    if !card.alerts.is_empty() {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for a in &card.alerts {
            let name = alert_kind_name(a.kind);
            match counts.iter_mut().find(|(n, _)| *n == name) {
                Some((_, n)) => *n += 1,
                None => counts.push((name, 1)),
            }
        }
        let list: Vec<String> = counts.iter().map(|(n, c)| format!("{n} ×{c}")).collect();
        let _ = writeln!(out, "     alerts: {}", list.join(", "));
    }
    for s in &card.strengths {
        let _ = writeln!(out, "     ✓ {}: {}", component_name(s.component), s.text);
    }
    for c in &card.coaching {
        let evidence = if c.evidence_utterance_ids.is_empty() {
            String::new()
        } else {
            format!(" (see {})", c.evidence_utterance_ids.join(", "))
        };
        let _ = writeln!(
            out,
            "     → {}: {}{evidence}",
            component_name(c.component),
            c.text
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1::ScoreUpdate;

    /// #29: `replay --show-text` printed a transcript's terminal control sequences raw (a
    /// window title, a screen clear, C1 controls).
    #[test]
    fn text_and_ids_reach_the_terminal_without_control_sequences() {
        let hostile = "hi \u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m there";
        let sent = HashMap::from([(
            "u1\u{1b}[31m".to_string(),
            Sent {
                role: "customer",
                start_ms: Some(0),
                text: Some(hostile.to_string()),
            },
        )]);
        let r = StreamConversationsResponse {
            conversation_id: "c1".into(),
            payload: Some(stream_conversations_response::Payload::Update(
                ScoreUpdate {
                    utterance_id: "u1\u{1b}[31m".into(),
                    ..Default::default()
                },
            )),
            ..Default::default()
        };
        let line = response(&r, &sent, false);
        assert!(line.contains("hi"), "{line:?}");
        assert!(
            !line.trim_end_matches('\n').chars().any(char::is_control),
            "{line:?}"
        );
        assert_eq!(printable("call\u{1b}[2J-1\nx"), "call\u{FFFD}[2J-1 x");
        assert!(matches!(printable("plain"), std::borrow::Cow::Borrowed(_)));
    }
}
