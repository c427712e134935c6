//! Generated types of `hearken.v1` (prost messages, tonic client and server, proto3 JSON).
#[allow(missing_docs, unreachable_pub, clippy::all, rust_2018_idioms)]
pub mod v1 {
    tonic::include_proto!("hearken.v1");
    include!(concat!(env!("OUT_DIR"), "/hearken.v1.serde.rs"));
    /// Encoded `FileDescriptorSet` of the API, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("hearken_v1_descriptor");
}
