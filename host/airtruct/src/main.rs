//! The `airtruct` binary: `standalone`, `coordinator` and `worker` processes, `run` and `validate` for a stream
//! file, and `streams`, `processors`, `secrets` and `tap` for a server's API.

mod api;
mod cli;
mod client;
mod coordinator;
mod listener;
mod protocol;
mod remote;
mod server;
mod stream_tests;
mod tap;
mod worker;

fn main() -> std::process::ExitCode {
    cli::main()
}
