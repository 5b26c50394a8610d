//! Generates the gRPC code from `proto/doradura.proto` with a vendored `protoc`, so no system compiler is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; this sets the variable for this process only.
    unsafe { std::env::set_var("PROTOC", protoc) };
    println!("cargo:rerun-if-changed=proto/doradura.proto");
    tonic_prost_build::configure().compile_protos(&["proto/doradura.proto"], &["proto"])?;
    Ok(())
}
