//! `move-leader ID`: finds the leader among `--endpoints` (the first endpoint whose
//! `Status` names itself leader) and asks it to hand leadership to member `ID`, as
//! etcdctl's `transferLeadershipCommandFunc` does; an endpoint that cannot answer
//! `Status` fails the command.

use cairn_client::pb::etcdserverpb::{MoveLeaderRequest, StatusRequest};

use super::member::parse_hex_id;
use crate::console::Console;
use crate::dispatch::Invocation;
use crate::exit::CliError;
use crate::globals::Globals;
use crate::output::Printer;
use crate::session::{Env, Session};

/// Runs `move-leader`.
pub async fn run(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let [arg] = invocation.args.as_slice() else {
        return Err(CliError::bad_args("move-leader command needs 1 argument"));
    };
    let target = parse_hex_id(arg).map_err(|e| CliError::bad_args(e.to_string()))?;
    let globals = Session::globals(invocation, env, console)?;
    let printer = Printer::new(&globals.write_out, globals.hex)?;
    for endpoint in &globals.endpoints {
        let one = Globals {
            endpoints: vec![endpoint.clone()],
            ..globals.clone()
        };
        let session = Session::connect(one, printer, console).await?;
        let status = session
            .call(
                console,
                session
                    .client()
                    .maintenance_status(StatusRequest::default()),
            )
            .await?;
        let member = status.header.as_ref().map_or(0, |h| h.member_id);
        if member != status.leader {
            continue;
        }
        let request = MoveLeaderRequest { target_id: target };
        let response = session
            .call(console, session.client().maintenance_move_leader(request))
            .await?;
        return printer.move_leader(status.leader, target, &response, console);
    }
    Err(CliError::bad_args(format!(
        "no leader endpoint given at [{}]",
        globals.endpoints.join(" ")
    )))
}
