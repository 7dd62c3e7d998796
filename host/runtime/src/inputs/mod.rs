//! The native inputs.

pub mod file;
pub mod generate;
pub mod stdin;

/// Most messages an input hands over in one read.
pub const READ_CHUNK: usize = 256;
