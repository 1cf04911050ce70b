//! `member list`: the cluster's members as the connected member reports them.

use cairn_client::pb::etcdserverpb::MemberListRequest;

use crate::console::Console;
use crate::dispatch::Invocation;
use crate::exit::CliError;
use crate::session::{Env, Session};

/// Runs `member list`.
pub async fn list(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let session = Session::open(invocation, env, console).await?;
    let list = || {
        session
            .client()
            .cluster_member_list(MemberListRequest::default())
    };
    let response = session.call_repeatable(console, list).await?;
    session.printer().member_list(&response, console)
}
