//! Hostile and careless input, end to end through the built binary: every case must end in one
//! line `error: <file>: <what>` with exit status 1, within a bounded address space, and write
//! nothing outside the output folder it was given (issue: hardening).
//!
//! One test binary with a module per area, so the cases link the library once.

mod common;
mod report;
mod parsers;
mod outputs;
mod fuzz;
