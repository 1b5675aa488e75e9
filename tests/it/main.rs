//! herald's integration tests: one binary (faster to link), shared fixtures in `support`.

mod fetch;
mod support;
