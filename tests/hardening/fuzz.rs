//! Cases of this area (filled in by the hardening work).
