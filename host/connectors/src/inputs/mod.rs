//! The native inputs.

pub mod amqp_0_9;
pub mod broker;
pub mod file;
pub mod generate;
pub mod http_client;
pub mod http_server;
pub mod kafka;
pub mod mcp_tool;
pub mod mqtt;
pub mod mysql_cdc;
pub mod nats;
pub mod postgres_cdc;
pub mod redis;
pub mod sql_select;
pub mod stdin;

/// Most messages an input hands over in one read.
pub const READ_CHUNK: usize = 256;
