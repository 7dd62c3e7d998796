//! The connectors (every native input, output and the buffers that need a client library), and [`registry`]:
//! the one table of every kind a stream config may name, one line each. The catalogue, parsing, validation and
//! building all read it; adding a kind is one file and one line here.

pub mod acks;
pub mod amqp;
pub mod buffers;
pub mod http;
pub mod inputs;
pub mod kafka;
pub mod mqtt;
pub mod nats;
pub mod net;
pub mod outputs;
pub mod redis;
pub mod resources;
pub mod sql;

use std::sync::LazyLock;

use airtruct_builtins::{
    AGGREGATE, AVRO, CACHE, DEDUPE, FILTER, HTTP, MAPPING, PROTOBUF, RATE_LIMIT, SPLIT, SQL,
    VALIDATE,
};
use airtruct_runtime::buffers::{memory::MemoryBufferConfig, window::WindowConfig};
use airtruct_runtime::control::{
    BranchProcessorConfig, CatchProcessorConfig, SwitchProcessorConfig, TryProcessorConfig,
    resolve_branch, resolve_catch, resolve_switch, resolve_try,
};
use airtruct_runtime::kind::{Registry, buffer, builtin, input, output, processor};
use airtruct_runtime::processors::{WasmProcessorConfig, resolve_wasm};

use buffers::sqlite::SqliteBufferConfig;
use inputs::{
    amqp_0_9 as amqp_in, file, generate, http_client, http_server, kafka as kafka_in, mcp_tool,
    mqtt as mqtt_in, mysql_cdc, nats as nats_in, postgres_cdc, redis as redis_in, sql_select,
    stdin,
};
use outputs::{
    amqp_0_9 as amqp_out, drop, file as file_out, http_client as http_out, kafka as kafka_out,
    mqtt as mqtt_out, nats as nats_out, redis as redis_out, sql_insert, stdout, sync_response,
};

/// Every kind, one line each.
pub fn registry() -> &'static Registry {
    static REGISTRY: LazyLock<Registry> = LazyLock::new(kinds);
    &REGISTRY
}

fn kinds() -> Registry {
    Registry::new(vec![
        input::<file::FileInputConfig>(),
        input::<stdin::StdinInputConfig>(),
        input::<generate::GenerateInputConfig>(),
        input::<http_server::HttpServerInputConfig>(),
        input::<http_client::HttpClientInputConfig>(),
        input::<kafka_in::KafkaInputConfig>(),
        input::<postgres_cdc::PostgresCdcInputConfig>(),
        input::<mysql_cdc::MysqlCdcInputConfig>(),
        input::<sql_select::SqlSelectInputConfig>(),
        input::<redis_in::RedisInputConfig>(),
        input::<amqp_in::AmqpInputConfig>(),
        input::<nats_in::NatsInputConfig>(),
        input::<mqtt_in::MqttInputConfig>(),
        input::<mcp_tool::McpToolInputConfig>(),
        input::<inputs::broker::BrokerInputConfig>(),
        output::<file_out::FileOutputConfig>(),
        output::<stdout::StdoutOutputConfig>(),
        output::<drop::DropOutputConfig>(),
        output::<http_out::HttpClientOutputConfig>(),
        output::<sync_response::SyncResponseOutputConfig>(),
        output::<kafka_out::KafkaOutputConfig>(),
        output::<sql_insert::SqlInsertOutputConfig>(),
        output::<outputs::log::LogOutputConfig>(),
        output::<redis_out::RedisOutputConfig>(),
        output::<amqp_out::AmqpOutputConfig>(),
        output::<nats_out::NatsOutputConfig>(),
        output::<mqtt_out::MqttOutputConfig>(),
        output::<outputs::switch::SwitchOutputConfig>(),
        output::<outputs::broker::BrokerOutputConfig>(),
        buffer::<MemoryBufferConfig>(),
        buffer::<SqliteBufferConfig>(),
        buffer::<WindowConfig>(),
        builtin(&MAPPING),
        builtin(&FILTER),
        builtin(&VALIDATE),
        builtin(&SPLIT),
        builtin(&AGGREGATE),
        builtin(&AVRO),
        builtin(&PROTOBUF),
        builtin(&HTTP),
        builtin(&SQL),
        builtin(&CACHE),
        builtin(&DEDUPE),
        builtin(&RATE_LIMIT),
        processor::<WasmProcessorConfig>(resolve_wasm),
        processor::<SwitchProcessorConfig>(resolve_switch),
        processor::<CatchProcessorConfig>(resolve_catch),
        processor::<TryProcessorConfig>(resolve_try),
        processor::<BranchProcessorConfig>(resolve_branch),
    ])
    .with_resources(resources::SUPPORT)
}
