//! Compiles `proto/hearken/v1/hearken.proto` with the pure-Rust `protox` (no system `protoc`),
//! generates the tonic client and server, the proto3 JSON mapping (`pbjson`), and writes the
//! descriptor set that server reflection serves.

use protox::prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(["hearken/v1/hearken.proto"], ["proto"])?;
    let encoded = descriptors.encode_to_vec();
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("hearken_v1_descriptor.bin"), &encoded)?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Well-known types from pbjson-types, so that they have the proto3 JSON mapping too.
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        // Maps as BTreeMap: the JSON a map field gives is then the same, byte for byte, on
        // every run (a HashMap's order is random).
        .btree_map(".")
        .compile_fds(descriptors)?;
    pbjson_build::Builder::new()
        .register_descriptors(&encoded)?
        .btree_map(["."])
        .build(&[".hearken.v1"])?;
    Ok(())
}
