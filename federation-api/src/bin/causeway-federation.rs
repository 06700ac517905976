//! The federation API server. See `causeway-federation --help`.

fn main() -> std::process::ExitCode {
    causeway_federation::server::server_main()
}
