//! `version`: the client's version and the API version it speaks (etcdctl prints its own
//! version on the first line, so cairnctl prints its own).

use crate::console::Console;
use crate::usage::API_VERSION;

/// Prints the version lines.
pub fn run(console: &mut Console<'_>) {
    console.out(&format!(
        "cairnctl version: {}\nAPI version: {API_VERSION}\n",
        env!("CARGO_PKG_VERSION")
    ));
}
