//! `relevance review`: the statistics against reference implementations, the store and
//! summary against hand counts, the server's security through raw HTTP, and the rating page
//! end to end in headless Chromium.

mod browser;
mod common;
mod security;
mod stats_reference;
mod store_summary;
mod study;
