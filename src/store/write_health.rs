//! Whether this process's writes reach the database: readiness answers "not
//! ready" while they fail (a full disk, a read-only file, a lost server), and
//! "ready" again with the first write that succeeds.

use std::sync::{Arc, Mutex, PoisonError};

use super::StoreError;

#[derive(Debug, Clone, Default)]
pub(super) struct WriteHealth {
    last_failure: Arc<Mutex<Option<String>>>,
}

impl WriteHealth {
    /// Notes a write's outcome. Rows the database refused say nothing of the
    /// database (other rows pass), nor does a write abandoned half-way.
    pub fn observe<T>(&self, result: &Result<T, StoreError>) {
        let failure = match result {
            Ok(_) => None,
            Err(error) if error.is_refused_data() || matches!(error, StoreError::Abandoned) => {
                return;
            }
            Err(error) => Some(error.to_string()),
        };
        *self
            .last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = failure;
    }

    /// Why the last write failed, when no write has succeeded since.
    pub fn failure(&self) -> Option<String> {
        self.last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
