use std::process::ExitCode;

use clap::Parser;
use herald::cli::{self, Cli};
use herald::domain::text::for_terminal;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("herald: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(failure) => {
            // An error may quote a feed's text or a value from the config.
            let message = cli::describe(failure.error());
            eprintln!("herald: {}", for_terminal(&message));
            failure.exit_code()
        }
    }
}
