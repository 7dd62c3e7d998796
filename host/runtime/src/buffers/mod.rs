//! Buffers between a stream's input and its processors. A buffer wraps the input: it reads from it in the
//! background, keeps what it read, and is itself the input the stream reads from.

pub mod sqlite;
