//! A runner worker's replies in gloo-worker 0.6.0's wire format (its reply
//! enum is private, so it is mirrored here), for both ends:
//! - The page lets a message reach gloo's decoder only if [`is_runner_reply`]:
//!   gloo's codec panics on bytes it cannot decode, and a panic ends the page
//!   (panic = abort). Nothing but the runner should be able to post from a
//!   worker; this is the wall behind that.
//! - A worker encodes its replies itself ([`encode_reply`]) and posts them
//!   through the `postMessage` it took before the lockdown removed it, so a
//!   program cannot replace the function the runner posts with.

use crate::messages::FromWorker;
use serde::{Deserialize, Serialize};

/// gloo-worker 0.6.0's `FromWorker<W>` (`actor/messages.rs`), with its
/// `HandlerId(usize)` newtype as the `usize` bincode writes for it.
#[derive(Serialize, Deserialize)]
enum BridgeReply {
    #[allow(dead_code)] // gloo sends it itself; only its shape matters here
    WorkerLoaded,
    ProcessOutput(usize, FromWorker),
}

/// Whether `bytes` are a reply gloo-worker will decode without panicking.
pub fn is_runner_reply(bytes: &[u8]) -> bool {
    // The same function and options gloo-worker's `Bincode` codec uses.
    bincode::deserialize::<BridgeReply>(bytes).is_ok()
}

/// `message` as gloo-worker's reply to the bridge with handler number
/// `handler` (see [`handler_number`]).
pub fn encode_reply(handler: usize, message: FromWorker) -> Vec<u8> {
    // Serialising plain data into a Vec cannot fail.
    bincode::serialize(&BridgeReply::ProcessOutput(handler, message)).unwrap_or_default()
}

/// The number inside a gloo-worker `HandlerId` (any `Serialize` value that
/// bincode writes as one `usize`); `None` for anything else.
pub fn handler_number(handler: &impl Serialize) -> Option<usize> {
    let bytes = bincode::serialize(handler).ok()?;
    bincode::deserialize::<usize>(&bytes)
        .ok()
        .filter(|_| bytes.len() == 8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{messages::Done, messages::DoneStatus, Stream};

    #[test]
    fn replies_pass_and_anything_else_is_refused() {
        let loaded = bincode::serialize(&BridgeReply::WorkerLoaded).unwrap();
        assert!(is_runner_reply(&loaded));
        let out = encode_reply(
            3,
            FromWorker::Out {
                id: 1.0,
                chunks: vec![(Stream::Stdout, "hi\n".into())],
            },
        );
        assert!(is_runner_reply(&out));
        let done = encode_reply(
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
        assert!(is_runner_reply(&done));

        assert!(!is_runner_reply(b""));
        assert!(!is_runner_reply(&[9, 0, 0, 0]), "no such variant");
        assert!(!is_runner_reply(&out[..out.len() - 1]), "cut short");
        // A list of chunks claiming more entries than the message holds.
        let mut huge = out.clone();
        huge[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(!is_runner_reply(&huge));
    }

    #[test]
    fn a_handler_number_is_read_from_a_newtype_around_usize() {
        #[derive(Serialize)]
        struct HandlerLike(usize);
        assert_eq!(handler_number(&HandlerLike(7)), Some(7));
        assert_eq!(handler_number(&"not a number"), None);
    }
}
