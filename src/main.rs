use std::process::ExitCode;

fn main() -> ExitCode {
    nib::cli::main()
}
