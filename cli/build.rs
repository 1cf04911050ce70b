//! Generates the gRPC *clients* of etcd's v3 services. The messages themselves come from
//! cairn-core (`extern_path`), so cli, node and core share one set of types. Under
//! `--cfg madsim`, `tonic::include_proto!` picks madsim-tonic-build's simulated version.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Set for this build script only: raft-proto's build wants the protoc it bundles.
    unsafe { std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    tonic_build::configure()
        .build_server(false)
        .build_client(true)
        .extern_path(".mvccpb", "::cairn_core::api::mvccpb")
        .extern_path(".authpb", "::cairn_core::api::authpb")
        .extern_path(".etcdserverpb", "::cairn_core::api::etcdserverpb")
        .compile_protos(
            &["../core/proto/etcdserverpb/rpc.proto"],
            &["../core/proto"],
        )?;
    Ok(())
}
