# syntax=docker/dockerfile:1
# cairn: an etcd v3 API compatible replicated key-value store.
#
#   docker build -t cairn .
#   docker run -d --name cairn -p 2379:2379 -p 2380:2380 -v cairn-data:/var/lib/cairn cairn
#   etcdctl --endpoints 127.0.0.1:2379 put greeting hello
#
# The image is configured like etcd's: every flag has an ETCD_* environment variable
# (-e ETCD_NAME=n1 ...), and arguments after the image name are cairn flags, which take
# precedence over the environment (see docs/migrating-from-etcd.md).

# ---- build -------------------------------------------------------------------------------
# The current stable Rust on Debian bookworm (the workspace needs >= 1.90: fjall 3, edition
# 2024). Bookworm here and below, so the binaries find the glibc they were linked against.
FROM rust:1-bookworm AS builder

# protoc: none is installed, by design. cairn's build scripts (core/build.rs, node/build.rs,
# cli/build.rs) run the protoc shipped by the protoc-bin-vendored crate, and raft-proto's
# build runs the protoc bundled with protobuf-build; a system protoc is not needed and
# PROTOC must not be exported (DEPS.md: "Pitfalls"). A C compiler (for ring) is in the image.
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p cairn-node --bin cairn -p cairn-cli --bin cairnctl \
    && install -D -m 0755 target/release/cairn /out/cairn \
    && install -D -m 0755 target/release/cairnctl /out/cairnctl

# ---- runtime -----------------------------------------------------------------------------
FROM debian:bookworm-slim

RUN groupadd --system --gid 10001 cairn \
    && useradd --system --uid 10001 --gid cairn --home-dir /var/lib/cairn \
       --no-create-home --shell /usr/sbin/nologin cairn \
    && install -d -o cairn -g cairn -m 0700 /var/lib/cairn

COPY --from=builder /out/cairn /out/cairnctl /usr/local/bin/

# etcd's defaults, except that the listeners bind every interface of the container and the
# data dir is the volume. Without --initial-cluster a member forms a cluster of itself
# (name=initial advertise peer URLs), as etcd does.
# Advertised URLs must be reachable by clients and peers: override them
# (-e ETCD_ADVERTISE_CLIENT_URLS=http://<host>:2379, ...) for anything but a single member
# reached through published ports. NO_COLOR: plain log lines for `docker logs`.
ENV ETCD_NAME=default \
    ETCD_DATA_DIR=/var/lib/cairn \
    ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379 \
    ETCD_ADVERTISE_CLIENT_URLS=http://localhost:2379 \
    ETCD_LISTEN_PEER_URLS=http://0.0.0.0:2380 \
    ETCD_INITIAL_ADVERTISE_PEER_URLS=http://localhost:2380 \
    NO_COLOR=1

USER cairn:cairn
WORKDIR /var/lib/cairn
VOLUME ["/var/lib/cairn"]
# 2379: clients (gRPC, and /health /metrics /version over HTTP); 2380: peers.
EXPOSE 2379 2380

# cairn exits 0 on SIGTERM (docker stop) after shutting down cleanly.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/cairn"]
