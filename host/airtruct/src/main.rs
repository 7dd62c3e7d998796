//! The `airtruct` binary: `standalone`, `coordinator` and `worker` processes, and `run` and `validate` for a
//! stream file.

mod api;
mod cli;
mod client;
mod coordinator;
mod listener;
mod protocol;
mod server;
mod worker;

fn main() -> std::process::ExitCode {
    cli::main()
}
