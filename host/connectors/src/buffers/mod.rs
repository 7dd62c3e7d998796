//! Buffers that ride on a connector's client library (the `sqlite` buffer uses sqlx); the others live in the
//! runtime.

pub mod sqlite;
