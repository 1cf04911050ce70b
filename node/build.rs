//! Generates the gRPC *servers* of etcd's v3 services. The messages themselves come from
//! cairn-core (`extern_path`), so node, cli and core share one set of types. Under
//! `--cfg madsim`, madsim-tonic-build's simulated version is picked by `include_proto!`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Set for this build script only: raft-proto's build wants the protoc it bundles.
    unsafe { std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    // The descriptors of the etcd API, for the gRPC gateway's JSON mapping (gateway.rs).
    let descriptors =
        std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("etcd_descriptors.bin");
    tonic_build::configure()
        .file_descriptor_set_path(descriptors)
        .build_client(false)
        .build_server(true)
        .extern_path(".mvccpb", "::cairn_core::api::mvccpb")
        .extern_path(".authpb", "::cairn_core::api::authpb")
        .extern_path(".etcdserverpb", "::cairn_core::api::etcdserverpb")
        .extern_path(".v3electionpb", "::cairn_core::api::v3electionpb")
        .extern_path(".v3lockpb", "::cairn_core::api::v3lockpb")
        .compile_protos(
            &[
                "../core/proto/etcdserverpb/rpc.proto",
                "../core/proto/v3electionpb/v3election.proto",
                "../core/proto/v3lockpb/v3lock.proto",
            ],
            &["../core/proto"],
        )?;
    // The peer protocol: both ends live in the node.
    tonic_build::configure()
        .build_client(true)
        .build_server(true)
        .extern_path(".cairnpb", "::cairn_core::api::cairnpb")
        .extern_path(".mvccpb", "::cairn_core::api::mvccpb")
        .extern_path(".authpb", "::cairn_core::api::authpb")
        .extern_path(".etcdserverpb", "::cairn_core::api::etcdserverpb")
        .compile_protos(&["../core/proto/cairnpb/peer.proto"], &["../core/proto"])?;
    Ok(())
}
