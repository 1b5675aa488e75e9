//! Entries → articles: identities, canonical URLs, sanitised HTML and plain text.
//!
//! Owns SPEC §5's identity rules. Knows nothing of HTTP, feed formats or storage.
