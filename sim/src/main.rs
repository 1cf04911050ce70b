//! `cairn-sim`: run seeded simulations of cairn clusters (`run`, `sweep`). See
//! `cairn_sim::cli`. Built for simulation only (`RUSTFLAGS="--cfg madsim"`, or
//! `./scripts/sim`); a normal build produces a binary that says so.

#[cfg(madsim)]
fn main() -> std::process::ExitCode {
    cairn_sim::cli::main()
}

#[cfg(not(madsim))]
fn main() -> std::process::ExitCode {
    eprintln!(
        "cairn-sim runs only in the simulation build: use ./scripts/sim, or build with \
         RUSTFLAGS=\"--cfg madsim\" CARGO_TARGET_DIR=target-madsim"
    );
    std::process::ExitCode::from(2)
}
