//! `hearken replay FILE --addr URL`: streams each conversation of a transcript file to a
//! running server over its own stream, as a contact-centre integration would (one stream per
//! call), optionally at real-time pace, and prints what comes back.

use std::path::PathBuf;
use std::process::ExitCode;

use super::client::{Output, latency_summary, stream_call};
use crate::proto::v1::listening_service_client::ListeningServiceClient;

/// Flags of `hearken replay`.
#[derive(Debug, clap::Args)]
pub(super) struct ReplayArgs {
    /// Transcript file (JSON Lines, one conversation per line), or a directory of them.
    file: PathBuf,
    /// The server: `http://host:port`, `https://host:port`, or `host:port` (plaintext).
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// Pace: 1 sends each utterance when it ends in real time, 10 ten times faster, 0 as fast
    /// as possible.
    #[arg(long, default_value_t = 0.0)]
    speed: f64,
    /// Print every response as a JSON line (proto3 JSON) instead of text.
    #[arg(long)]
    json: bool,
    /// Show each utterance's text beside its update (off by default: transcripts are private).
    #[arg(long)]
    show_text: bool,
    /// Print only alerts and scorecards.
    #[arg(long)]
    quiet: bool,
    /// Exit 0 even when the server rejected messages (they are printed and counted either way).
    #[arg(long)]
    allow_rejections: bool,
    #[command(flatten)]
    input: super::InputArgs,
}

pub(super) async fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let mut client = ListeningServiceClient::new(super::connect(&args.addr, |e| e).await?);
    let output = Output {
        json: args.json,
        show_text: args.show_text,
        quiet: args.quiet,
        silent: false,
    };
    let mut all = Vec::new();
    let mut skipped = 0;
    let mut rejections = 0;
    for path in super::input_files(std::slice::from_ref(&args.file))? {
        for (i, item) in args.input.read(&path)?.enumerate() {
            match item {
                Ok(t) => {
                    super::warn_about(&path, i + 1, &t);
                    if !args.json {
                        // Text lines carry no conversation id: a header says whose they are.
                        println!(
                            "━━ call {} ━━ {} utterances",
                            super::render::printable(&t.conversation_id),
                            t.utterances.len()
                        );
                    }
                    let result = stream_call(&mut client, &t, args.speed, output).await?;
                    rejections += result.rejections;
                    all.extend(result.latencies);
                }
                Err(e) => {
                    skipped += 1;
                    eprintln!("{}: {e}", path.display());
                }
            }
        }
    }
    eprintln!("replay: {}", latency_summary(&all));
    let (code, hint) = super::outcome(skipped, rejections, args.allow_rejections);
    if rejections > 0 {
        eprintln!(
            "replay: the server rejected {rejections} message(s) (printed above with their field and reason){hint}"
        );
    }
    Ok(code)
}
