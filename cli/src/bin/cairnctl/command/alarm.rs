//! `alarm list` and `alarm disarm` (etcdctl's `alarm_command.go`). `disarm` lists the
//! alarms, then deactivates each one, and prints those it deactivated, as clientv3's
//! `AlarmDisarm` with an empty member does.

use cairn_client::pb::etcdserverpb::{AlarmRequest, AlarmResponse, alarm_request::AlarmAction};

use crate::console::Console;
use crate::dispatch::Invocation;
use crate::exit::CliError;
use crate::session::{Env, Session};

fn list_request() -> AlarmRequest {
    AlarmRequest {
        action: AlarmAction::Get as i32,
        member_id: 0,
        alarm: 0,
    }
}

/// Runs `alarm list`.
pub async fn list(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    if !invocation.args.is_empty() {
        return Err(CliError::bad_args(
            "alarm list command accepts no arguments",
        ));
    }
    let session = Session::open(invocation, env, console).await?;
    let client = session.client();
    let response = session
        .call(console, client.maintenance_alarm(list_request()))
        .await?;
    session.printer().alarm(&response, console)
}

/// Runs `alarm disarm`.
pub async fn disarm(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    if !invocation.args.is_empty() {
        return Err(CliError::bad_args(
            "alarm disarm command accepts no arguments",
        ));
    }
    let session = Session::open(invocation, env, console).await?;
    let client = session.client();
    let active = session
        .call(console, client.maintenance_alarm(list_request()))
        .await?;
    let mut disarmed = AlarmResponse::default();
    for alarm in active.alarms {
        let request = AlarmRequest {
            action: AlarmAction::Deactivate as i32,
            member_id: alarm.member_id,
            alarm: alarm.alarm,
        };
        let answer = session
            .call(console, client.maintenance_alarm(request))
            .await?;
        disarmed.alarms.extend(answer.alarms);
    }
    session.printer().alarm(&disarmed, console)
}
