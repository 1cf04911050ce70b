//! `member list|add|remove|update|promote`: the Cluster service, with etcdctl's argument
//! checks and messages (`ctlv3/command/member_command.go`). Member IDs are hexadecimal on
//! the command line, as etcdctl prints them.

use cairn_client::pb::etcdserverpb::{
    MemberAddRequest, MemberListRequest, MemberPromoteRequest, MemberRemoveRequest,
    MemberUpdateRequest,
};

use crate::console::Console;
use crate::dispatch::Invocation;
use crate::exit::CliError;
use crate::go_strconv;
use crate::output::{Format, MemberAdded};
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

/// Runs `member add NAME --peer-urls URLS [--learner]`. In the simple format it then prints
/// the environment the new member starts with, from a member list read through the member
/// that answered the add (etcdctl syncs with a quorum read when another member answers).
pub async fn add(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let name = add_name(&invocation.args)?;
    let peer_urls = invocation.values.str("peer-urls").to_string();
    if peer_urls.is_empty() {
        return Err(CliError::bad_args("member peer urls not provided"));
    }
    let request = MemberAddRequest {
        peer_ur_ls: peer_urls.split(',').map(str::to_string).collect(),
        is_learner: invocation.values.bool("learner"),
    };
    let session = Session::open(invocation, env, console).await?;
    let response = session
        .call(console, session.client().cluster_member_add(request))
        .await?;
    let printer = session.printer();
    printer.member_add(&response, console)?;
    if printer.format != Format::Simple {
        return Ok(());
    }
    let list = || {
        session
            .client()
            .cluster_member_list(MemberListRequest::default())
    };
    let members = session.call_repeatable(console, list).await?;
    let added = MemberAdded {
        name: &name,
        id: response.member.as_ref().map_or(0, |m| m.id),
        peer_urls: &peer_urls,
        members: &members,
    };
    console.out(&added.environment());
    Ok(())
}

/// etcdctl's checks of `member add`'s arguments: exactly one name, and a hint when a URL
/// was given as an argument.
fn add_name(args: &[String]) -> Result<String, CliError> {
    match args {
        [] => Err(CliError::bad_args("member name not provided")),
        [name] => Ok(name.clone()),
        _ => {
            let mut message = String::from("too many arguments");
            for arg in args {
                if arg.to_lowercase().starts_with("http") {
                    message.push_str(&format!(", did you mean --peer-urls={arg}"));
                }
            }
            Err(CliError::bad_args(message))
        }
    }
}

/// Runs `member remove ID`.
pub async fn remove(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let id = member_id(&invocation.args)?;
    let session = Session::open(invocation, env, console).await?;
    let response = session
        .call(
            console,
            session
                .client()
                .cluster_member_remove(MemberRemoveRequest { id }),
        )
        .await?;
    session.printer().member_remove(id, &response, console)
}

/// Runs `member update ID --peer-urls URLS`.
pub async fn update(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let id = member_id(&invocation.args)?;
    let peer_urls = invocation.values.str("peer-urls");
    if peer_urls.is_empty() {
        return Err(CliError::bad_args("member peer urls not provided"));
    }
    let request = MemberUpdateRequest {
        id,
        peer_ur_ls: peer_urls.split(',').map(str::to_string).collect(),
    };
    let session = Session::open(invocation, env, console).await?;
    let response = session
        .call(console, session.client().cluster_member_update(request))
        .await?;
    session.printer().member_update(id, &response, console)
}

/// Runs `member promote ID`.
pub async fn promote(
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let id = member_id(&invocation.args)?;
    let session = Session::open(invocation, env, console).await?;
    let response = session
        .call(
            console,
            session
                .client()
                .cluster_member_promote(MemberPromoteRequest { id }),
        )
        .await?;
    session.printer().member_promote(id, &response, console)
}

/// The one hexadecimal member ID argument.
pub fn member_id(args: &[String]) -> Result<u64, CliError> {
    let [arg] = args else {
        return Err(CliError::bad_args("member ID is not provided"));
    };
    parse_hex_id(arg)
        .map_err(|e| CliError::bad_args(format!("bad member ID arg ({e}), expecting ID in Hex")))
}

/// Go's `strconv.ParseUint(s, 16, 64)`.
pub fn parse_hex_id(text: &str) -> Result<u64, go_strconv::NumError> {
    go_strconv::parse_uint_base(text, 16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn member_ids_are_hexadecimal() {
        assert_eq!(
            member_id(&args(&["8e9e05c52164694d"])),
            Ok(0x8e9e_05c5_2164_694d)
        );
        assert_eq!(
            member_id(&args(&["xyz"])).unwrap_err(),
            CliError::bad_args(
                r#"bad member ID arg (strconv.ParseUint: parsing "xyz": invalid syntax), expecting ID in Hex"#
            )
        );
        assert_eq!(member_id(&[]).unwrap_err().code, exit::BAD_ARGS);
        assert_eq!(
            member_id(&args(&["1", "2"])).unwrap_err().code,
            exit::BAD_ARGS
        );
    }

    #[test]
    fn add_hints_at_peer_urls_given_as_arguments() {
        assert_eq!(
            add_name(&args(&["n", "http://a:2380"])).unwrap_err(),
            CliError::bad_args("too many arguments, did you mean --peer-urls=http://a:2380")
        );
        assert_eq!(
            add_name(&[]).unwrap_err(),
            CliError::bad_args("member name not provided")
        );
    }
}
