//! The type the page spawns gloo-worker bridges with. Its input and output are
//! the protocol's ([`ToRunner`], [`FromWorker`]); the real workers (e.g. the
//! `pairpad-runner-worker` crate's JavaScript and Python runners) implement `gloo_worker::Worker` with the same
//! two types, so the page never links a worker's code. Its methods never run:
//! nothing registers this type in a worker.

use crate::messages::{FromWorker, ToRunner};
use gloo_worker::{HandlerId, Worker, WorkerScope};

/// A code runner, as the page sees it through a bridge.
pub struct RunnerEndpoint;

impl Worker for RunnerEndpoint {
    type Message = ();
    type Input = ToRunner;
    type Output = FromWorker;

    fn create(_scope: &WorkerScope<Self>) -> Self {
        RunnerEndpoint
    }

    fn update(&mut self, _scope: &WorkerScope<Self>, _message: ()) {}

    fn received(&mut self, _scope: &WorkerScope<Self>, _input: ToRunner, _from: HandlerId) {}
}
