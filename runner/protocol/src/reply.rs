//! Telling a runner worker's reply from anything else, before gloo-worker
//! decodes it. gloo-worker's codec panics on bytes it cannot decode, and a
//! panic ends the page (panic = abort), while a program running in a worker can
//! post whatever it likes. So the page lets through only messages that decode
//! as gloo-worker 0.6.0's reply enum (mirrored here: its own is private) with
//! [`FromWorker`] inside.

use crate::messages::FromWorker;
use serde::Deserialize;

/// gloo-worker 0.6.0's `FromWorker<W>` (`actor/messages.rs`), with its
/// `HandlerId(usize)` newtype as the `usize` bincode writes for it.
#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
enum BridgeReply {
    #[allow(dead_code)] // only its shape matters
    WorkerLoaded,
    #[allow(dead_code)]
    ProcessOutput(usize, FromWorker),
}

/// Whether `bytes` are a reply gloo-worker will decode without panicking.
pub fn is_runner_reply(bytes: &[u8]) -> bool {
    // The same function and options gloo-worker's `Bincode` codec uses.
    bincode::deserialize::<BridgeReply>(bytes).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{messages::Done, messages::DoneStatus, Stream};

    #[test]
    fn replies_pass_and_anything_else_is_refused() {
        let loaded = bincode::serialize(&BridgeReply::WorkerLoaded).unwrap();
        assert!(is_runner_reply(&loaded));
        let out = BridgeReply::ProcessOutput(
            3,
            FromWorker::Out {
                id: 1.0,
                chunks: vec![(Stream::Stdout, "hi\n".into())],
            },
        );
        let out = bincode::serialize(&out).unwrap();
        assert!(is_runner_reply(&out));
        let done = BridgeReply::ProcessOutput(
            3,
            FromWorker::Done(Done {
                id: 1.0,
                status: DoneStatus::Ok,
                error: None,
                truncated: false,
                duration_ms: Some(2.5),
                restart: false,
            }),
        );
        assert!(is_runner_reply(&bincode::serialize(&done).unwrap()));

        assert!(!is_runner_reply(b""));
        assert!(!is_runner_reply(&[9, 0, 0, 0]), "no such variant");
        assert!(!is_runner_reply(&out[..out.len() - 1]), "cut short");
        // A list of chunks claiming more entries than the message holds.
        let mut huge = out.clone();
        huge[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(!is_runner_reply(&huge));
    }
}
