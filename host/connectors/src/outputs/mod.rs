//! The native outputs.

pub mod amqp_0_9;
pub mod drop;
pub mod file;
pub mod http_client;
pub mod kafka;
pub mod log;
pub mod mqtt;
pub mod nats;
pub mod redis;
pub mod sql_insert;
pub mod stdout;
pub mod sync_response;
