//! `auth enable|disable`, `user ...` and `role ...`: etcdctl 3.4's `auth_command.go`,
//! `user_command.go` and `role_command.go`, with their argument checks and messages.

use cairn_client::etcd_error::EtcdError;
use cairn_client::pb::authpb::{Permission, UserAddOptions, permission::Type};
use cairn_client::pb::etcdserverpb as pb;
use cairn_client::{Client, ClientError};
use prost::Message as _;

use crate::commands::CommandId;
use crate::console::Console;
use crate::dispatch::Invocation;
use crate::exit::CliError;
use crate::output::auth::{self as out, AuthOutput, prefix_range_end};
use crate::session::{Env, Session};

/// Runs one of the auth, user or role commands.
pub async fn run(
    id: CommandId,
    invocation: &mut Invocation,
    env: &Env,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let args = invocation.args.clone();
    check_args(id, &args)?;
    let request = prepare(id, invocation, &args, console)?;
    let session = Session::open(invocation, env, console).await?;
    if let Prepared::UserGet { name, detail: true } = &request {
        return user_get_detail(&session, name, console).await;
    }
    let output = execute(&session, request, console).await?;
    session.printer().auth(&output, console)
}

/// etcdctl's argument-count checks, made before connecting.
fn check_args(id: CommandId, args: &[String]) -> Result<(), CliError> {
    let (ok, message) = match id {
        CommandId::AuthEnable => (
            args.is_empty(),
            "auth enable command does not accept any arguments",
        ),
        CommandId::AuthDisable => (
            args.is_empty(),
            "auth disable command does not accept any arguments",
        ),
        CommandId::UserAdd => (
            args.len() == 1,
            "user add command requires user name as its argument",
        ),
        CommandId::UserDelete => (
            args.len() == 1,
            "user delete command requires user name as its argument",
        ),
        CommandId::UserGet => (
            args.len() == 1,
            "user get command requires user name as its argument",
        ),
        CommandId::UserList => (args.is_empty(), "user list command requires no arguments"),
        CommandId::UserPasswd => (
            args.len() == 1,
            "user passwd command requires user name as its argument",
        ),
        CommandId::UserGrantRole => (
            args.len() == 2,
            "user grant command requires user name and role name as its argument",
        ),
        CommandId::UserRevokeRole => (
            args.len() == 2,
            "user revoke-role requires user name and role name as its argument",
        ),
        CommandId::RoleAdd => (
            args.len() == 1,
            "role add command requires role name as its argument",
        ),
        CommandId::RoleDelete => (
            args.len() == 1,
            "role delete command requires role name as its argument",
        ),
        CommandId::RoleGet => (
            args.len() == 1,
            "role get command requires role name as its argument",
        ),
        CommandId::RoleList => (args.is_empty(), "role list command requires no arguments"),
        CommandId::RoleGrantPermission => (
            args.len() >= 3,
            "role grant command requires role name, permission type, and key [endkey] as its argument",
        ),
        CommandId::RoleRevokePermission => (
            args.len() >= 2,
            "role revoke-permission command requires role name and key [endkey] as its argument",
        ),
        _ => (false, "not an auth command"),
    };
    if ok {
        Ok(())
    } else {
        Err(CliError::bad_args(message))
    }
}

/// What to send, worked out from the arguments (and passwords read) before connecting.
enum Prepared {
    Enable,
    Disable,
    UserAdd(pb::AuthUserAddRequest),
    UserDelete(String),
    UserGet { name: String, detail: bool },
    UserList,
    UserPasswd(String, String),
    UserGrantRole(String, String),
    UserRevokeRole(String, String),
    RoleAdd(String),
    RoleDelete(String),
    RoleGet(String),
    RoleList,
    RoleGrant(String, Permission),
    RoleRevoke(String, String, String),
}

fn prepare(
    id: CommandId,
    invocation: &Invocation,
    args: &[String],
    console: &mut Console<'_>,
) -> Result<Prepared, CliError> {
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let flags = &invocation.values;
    Ok(match id {
        CommandId::AuthEnable => Prepared::Enable,
        CommandId::AuthDisable => Prepared::Disable,
        CommandId::UserAdd => Prepared::UserAdd(user_add_request(invocation, &arg(0), console)?),
        CommandId::UserDelete => Prepared::UserDelete(arg(0)),
        CommandId::UserGet => Prepared::UserGet {
            name: arg(0),
            detail: flags.bool("detail"),
        },
        CommandId::UserList => Prepared::UserList,
        CommandId::UserPasswd => {
            let password = read_password(flags.bool("interactive"), &arg(0), console)?;
            Prepared::UserPasswd(arg(0), password)
        }
        CommandId::UserGrantRole => Prepared::UserGrantRole(arg(0), arg(1)),
        CommandId::UserRevokeRole => Prepared::UserRevokeRole(arg(0), arg(1)),
        CommandId::RoleAdd => Prepared::RoleAdd(arg(0)),
        CommandId::RoleDelete => Prepared::RoleDelete(arg(0)),
        CommandId::RoleGet => Prepared::RoleGet(arg(0)),
        CommandId::RoleList => Prepared::RoleList,
        CommandId::RoleGrantPermission => {
            let kind = permission_type(&arg(1))?;
            let (key, range_end) = perm_range(invocation, &args[2..])?;
            let perm = Permission {
                perm_type: kind as i32,
                key: key.into_bytes(),
                range_end: range_end.into_bytes(),
            };
            Prepared::RoleGrant(arg(0), perm)
        }
        CommandId::RoleRevokePermission => {
            let (key, range_end) = perm_range(invocation, &args[1..])?;
            Prepared::RoleRevoke(arg(0), key, range_end)
        }
        _ => return Err(CliError::bad_args("not an auth command")),
    })
}

/// clientv3's `StrToPermissionType`.
fn permission_type(name: &str) -> Result<Type, CliError> {
    match name.to_uppercase().as_str() {
        "READ" => Ok(Type::Read),
        "WRITE" => Ok(Type::Write),
        "READWRITE" => Ok(Type::Readwrite),
        _ => Err(CliError::bad_args(format!(
            "invalid permission type: {name}"
        ))),
    }
}

/// etcdctl's `permRange` and `rangeEndFromPermFlags`.
fn perm_range(invocation: &Invocation, args: &[String]) -> Result<(String, String), CliError> {
    let prefix = invocation.values.bool("prefix");
    let from_key = invocation.values.bool("from-key");
    let key = args.first().cloned().unwrap_or_default();
    if key.is_empty() {
        if prefix && from_key {
            return Err(CliError::bad_args(
                "--from-key and --prefix flags are mutually exclusive",
            ));
        }
        let range_end = if prefix || from_key { "\0" } else { "" };
        return Ok(("\0".to_string(), range_end.to_string()));
    }
    let range_end = match (args.get(1), prefix, from_key) {
        (None, true, true) => {
            return Err(CliError::bad_args(
                "--from-key and --prefix flags are mutually exclusive",
            ));
        }
        (None, true, false) => {
            String::from_utf8_lossy(&prefix_range_end(key.as_bytes())).into_owned()
        }
        (None, false, true) => "\0".to_string(),
        (None, false, false) => String::new(),
        (Some(_), true, _) => {
            return Err(CliError::bad_args(
                "unexpected endkey argument with --prefix flag",
            ));
        }
        (Some(_), false, true) => {
            return Err(CliError::bad_args(
                "unexpected endkey argument with --from-key flag",
            ));
        }
        (Some(end), false, false) => end.clone(),
    };
    Ok((key, range_end))
}

/// etcdctl's `userAddCommandFunc` before the call.
fn user_add_request(
    invocation: &Invocation,
    arg: &str,
    console: &mut Console<'_>,
) -> Result<pb::AuthUserAddRequest, CliError> {
    let flags = &invocation.values;
    let no_password = flags.bool("no-password");
    let (name, password) = if no_password {
        (arg.to_string(), String::new())
    } else if !flags.str("new-user-password").is_empty() {
        (arg.to_string(), flags.str("new-user-password").to_string())
    } else if let Some((name, password)) = arg.split_once(':') {
        if name.is_empty() {
            return Err(CliError::bad_args("empty user name is not allowed"));
        }
        (name.to_string(), password.to_string())
    } else {
        let password = read_password(flags.bool("interactive"), arg, console)?;
        (arg.to_string(), password)
    };
    Ok(pb::AuthUserAddRequest {
        name,
        password,
        options: Some(UserAddOptions { no_password }),
    })
}

/// A password from the console: with `--interactive=false` the first word of standard
/// input (Go's `fmt.Scanf("%s")`); otherwise asked twice, as etcdctl asks on its terminal.
fn read_password(
    interactive: bool,
    name: &str,
    console: &mut Console<'_>,
) -> Result<String, CliError> {
    if !interactive {
        let mut line = String::new();
        // A missing line leaves the password empty, as Scanf does.
        let _ = console.input().read_line(&mut line);
        return Ok(line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string());
    }
    let first = ask(console, &format!("Password of {name}: "))?;
    if first.is_empty() {
        return Err(CliError::bad_args("empty password"));
    }
    let second = ask(
        console,
        &format!("Type password of {name} again for confirmation: "),
    )?;
    if first != second {
        return Err(CliError::bad_args("given passwords are different"));
    }
    Ok(first)
}

fn ask(console: &mut Console<'_>, prompt: &str) -> Result<String, CliError> {
    console.out(prompt);
    let mut line = String::new();
    console
        .input()
        .read_line(&mut line)
        .map_err(|e| CliError::bad_args(format!("failed to ask password: {e}")))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

async fn execute(
    session: &Session,
    request: Prepared,
    console: &mut Console<'_>,
) -> Result<AuthOutput, CliError> {
    let client = session.client();
    match request {
        Prepared::Enable => {
            let r = session.call(console, enable(client)).await?;
            let simple = "Authentication Enabled\n".to_string();
            Ok(out::header_only(simple, &r.header, r.encode_to_vec()))
        }
        Prepared::Disable => {
            let r = session
                .call(console, client.auth_disable(pb::AuthDisableRequest {}))
                .await?;
            let simple = "Authentication Disabled\n".to_string();
            Ok(out::header_only(simple, &r.header, r.encode_to_vec()))
        }
        Prepared::UserAdd(req) => {
            let name = req.name.clone();
            let r = session.call(console, client.auth_user_add(req)).await?;
            let simple = format!("User {name} created\n");
            Ok(out::header_only(simple, &r.header, r.encode_to_vec()))
        }
        Prepared::UserDelete(name) => {
            let req = pb::AuthUserDeleteRequest { name: name.clone() };
            let r = session.call(console, client.auth_user_delete(req)).await?;
            let simple = format!("User {name} deleted\n");
            Ok(out::header_only(simple, &r.header, r.encode_to_vec()))
        }
        Prepared::UserGet { name, .. } => {
            let req = pb::AuthUserGetRequest { name: name.clone() };
            let r = session.call(console, client.auth_user_get(req)).await?;
            Ok(out::user_get(&name, &r, r.encode_to_vec()))
        }
        Prepared::UserList => {
            let r = session
                .call(console, client.auth_user_list(pb::AuthUserListRequest {}))
                .await?;
            Ok(out::user_list(&r, r.encode_to_vec()))
        }
        Prepared::UserPasswd(name, password) => {
            let req = pb::AuthUserChangePasswordRequest { name, password };
            let r = session
                .call(console, client.auth_user_change_password(req))
                .await?;
            let simple = "Password updated\n".to_string();
            Ok(out::header_only(simple, &r.header, r.encode_to_vec()))
        }
        Prepared::UserGrantRole(user, role) => {
            let req = pb::AuthUserGrantRoleRequest {
                user: user.clone(),
                role: role.clone(),
            };
            let r = session
                .call(console, client.auth_user_grant_role(req))
                .await?;
            let simple = format!("Role {role} is granted to user {user}\n");
            Ok(out::header_only(simple, &r.header, r.encode_to_vec()))
        }
        Prepared::UserRevokeRole(name, role) => {
            let req = pb::AuthUserRevokeRoleRequest {
                name: name.clone(),
                role: role.clone(),
            };
            let r = session
                .call(console, client.auth_user_revoke_role(req))
                .await?;
            let simple = format!("Role {role} is revoked from user {name}\n");
            Ok(out::header_only(simple, &r.header, r.encode_to_vec()))
        }
        Prepared::RoleAdd(name) => {
            let req = pb::AuthRoleAddRequest { name: name.clone() };
            let r = session.call(console, client.auth_role_add(req)).await?;
            let simple = format!("Role {name} created\n");
            Ok(out::header_only(simple, &r.header, r.encode_to_vec()))
        }
        Prepared::RoleDelete(role) => {
            let req = pb::AuthRoleDeleteRequest { role: role.clone() };
            let r = session.call(console, client.auth_role_delete(req)).await?;
            let simple = format!("Role {role} deleted\n");
            Ok(out::header_only(simple, &r.header, r.encode_to_vec()))
        }
        Prepared::RoleGet(role) => {
            let req = pb::AuthRoleGetRequest { role: role.clone() };
            let r = session.call(console, client.auth_role_get(req)).await?;
            Ok(out::role_get(&role, &r, r.encode_to_vec()))
        }
        Prepared::RoleList => {
            let r = session
                .call(console, client.auth_role_list(pb::AuthRoleListRequest {}))
                .await?;
            Ok(out::role_list(&r, r.encode_to_vec()))
        }
        Prepared::RoleGrant(name, perm) => {
            let req = pb::AuthRoleGrantPermissionRequest {
                name: name.clone(),
                perm: Some(perm),
            };
            let r = session
                .call(console, client.auth_role_grant_permission(req))
                .await?;
            let simple = format!("Role {name} updated\n");
            Ok(out::header_only(simple, &r.header, r.encode_to_vec()))
        }
        Prepared::RoleRevoke(role, key, range_end) => {
            let req = pb::AuthRoleRevokePermissionRequest {
                role: role.clone(),
                key: key.clone().into_bytes(),
                range_end: range_end.clone().into_bytes(),
            };
            let r = session
                .call(console, client.auth_role_revoke_permission(req))
                .await?;
            let simple = out::revoke_permission_simple(&role, &key, &range_end);
            Ok(out::header_only(simple, &r.header, r.encode_to_vec()))
        }
    }
}

/// `auth enable`: when user root lacks role root, etcdctl adds role root, grants it to
/// root and tries again.
async fn enable(client: &Client) -> Result<pb::AuthEnableResponse, ClientError> {
    loop {
        match client.auth_enable(pb::AuthEnableRequest {}).await {
            Err(e) if e.etcd_error() == Some(EtcdError::RootRoleNotExist) => {
                let add = pb::AuthRoleAddRequest {
                    name: "root".into(),
                };
                client.auth_role_add(add).await?;
                let grant = pb::AuthUserGrantRoleRequest {
                    user: "root".into(),
                    role: "root".into(),
                };
                client.auth_user_grant_role(grant).await?;
            }
            other => return other,
        }
    }
}

/// `user get --detail`: the user line, then each role as `role get` prints it, in the
/// chosen format.
async fn user_get_detail(
    session: &Session,
    name: &str,
    console: &mut Console<'_>,
) -> Result<(), CliError> {
    let client = session.client();
    let req = pb::AuthUserGetRequest {
        name: name.to_string(),
    };
    let r = session.call(console, client.auth_user_get(req)).await?;
    console.out(&format!("User: {name}\n"));
    for role in &r.roles {
        console.out("\n");
        let req = pb::AuthRoleGetRequest { role: role.clone() };
        let got = session.call(console, client.auth_role_get(req)).await?;
        session
            .printer()
            .auth(&out::role_get(role, &got, got.encode_to_vec()), console)?;
    }
    Ok(())
}
