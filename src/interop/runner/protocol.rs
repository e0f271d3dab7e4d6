//! The run order the page sends a runner worker. Both workers speak through a
//! gloo-worker bridge with the types of `pairpad_runner_protocol::messages`;
//! what they send back is bounded there (`FromWorker::bounded`), and what
//! cannot pass through gloo's codec (shared memory) goes beside the bridge
//! (`bridge`).

use super::RunLimits;
use pairpad_runner_protocol::messages::{RunOrder, ToRunner};

/// A run handed to a worker.
pub struct RunRequest<'a> {
    pub id: u32,
    pub code: &'a str,
    pub stdin: &'a str,
    pub limits: RunLimits,
}

/// The run as a runner's bridge carries it (its output channel goes beside
/// the bridge). The time limit goes along because a Python worker without an
/// interrupt buffer enforces it itself.
pub fn run_order(request: &RunRequest<'_>) -> ToRunner {
    ToRunner::Run(RunOrder {
        id: request.id,
        code: request.code.to_owned(),
        stdin: request.stdin.to_owned(),
        max_output_bytes: request.limits.max_output_bytes as u64,
        max_output_lines: request.limits.max_output_lines as u64,
        time_limit_ms: request.limits.time_limit_ms,
    })
}
