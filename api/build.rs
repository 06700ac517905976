//! Generates the gRPC watch messages, client and server stubs from `proto/`
//! with the system `protoc`. The server stub needs tonic's `codegen` only
//! (no axum): `causeway-federation` mounts it on its own router.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    // The commit of `VersionInfo::this_build` (the image build sets it).
    println!("cargo:rerun-if-env-changed=CAUSEWAY_GIT_COMMIT");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(&["proto/causeway/federation/v1/catalog.proto"], &["proto"])?;
    // The SPIFFE Workload API (no package: generated into `_.rs`). The
    // server stub serves the fake Workload API of the tests.
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(&["proto/spiffe/workload/workload.proto"], &["proto"])?;
    Ok(())
}
