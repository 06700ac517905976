//! The federation CLI. See `causewayctl --help`.

fn main() -> std::process::ExitCode {
    causeway_federation::cli::main()
}
