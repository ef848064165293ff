//! The `spore` command-line tool. See `spore --help`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
