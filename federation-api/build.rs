//! Generates the gRPC watch service from `proto/` with the system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(&["proto/causeway/federation/v1/catalog.proto"], &["proto"])?;
    Ok(())
}
