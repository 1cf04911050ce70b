//! Compiles the etcd wire protos and cairn's internal ones into prost messages.
//! The vendored protoc is used so that no system protoc is needed (and it is set here only,
//! not exported: raft-proto's own build wants the protoc it bundles).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc);
    // A peer batch's messages stay slices of the received buffer: raft-rs parses each one
    // from there, and the entries' data reference it instead of copying it twice.
    config.bytes([".cairnpb.RaftBatch.messages"]);
    config.compile_protos(
        &[
            "proto/mvccpb/kv.proto",
            "proto/authpb/auth.proto",
            "proto/etcdserverpb/rpc.proto",
            "proto/v3electionpb/v3election.proto",
            "proto/v3lockpb/v3lock.proto",
            "proto/cairnpb/internal.proto",
            "proto/cairnpb/peer.proto",
        ],
        &["proto"],
    )?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
