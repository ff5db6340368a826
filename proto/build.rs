//! Compiles `farm.proto` with protox (a pure-Rust protobuf compiler), so building farm needs no
//! system `protoc`. Also writes the encoded descriptor set that the master serves for reflection.
use prost::Message;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=farm.proto");
    let fds = protox::compile(["farm.proto"], ["."])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("farm_descriptor.bin"), fds.encode_to_vec())?;
    // No generated `connect` constructors: they would clash with the `Connect` rpc, and the
    // client crate builds its channels itself.
    // Our codec maps undecodable bytes to InvalidArgument (see src/codec.rs).
    tonic_prost_build::configure()
        .build_transport(false)
        .codec_path("crate::codec::FarmCodec")
        .compile_fds(fds)?;
    Ok(())
}
