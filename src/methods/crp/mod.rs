//! Concept Relevance Propagation.
