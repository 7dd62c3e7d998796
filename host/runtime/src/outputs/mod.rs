//! The native outputs.

pub mod drop;
pub mod file;
pub mod stdout;
