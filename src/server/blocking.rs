//! Storage calls are blocking (an embedded database): async code runs them
//! on tokio's blocking threads through this one helper.

use crate::storage::StorageError;

/// Runs a blocking storage call off the async workers. A panic in the call
/// becomes an error, not a panic of the caller.
pub async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| StorageError(format!("storage task failed: {e}")))?
}
