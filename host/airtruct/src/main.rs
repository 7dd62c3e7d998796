//! The `airtruct` binary: `run` and `validate` a stream file.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
