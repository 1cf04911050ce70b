//! The output of `auth`, `user` and `role` commands (etcdctl 3.4's `simplePrinter`,
//! `fieldsPrinter` and `printerRPC` methods for them; `table` prints none of them, and
//! `fields` has no `user get` or `user list`).

use cairn_client::pb::authpb::{Permission, permission::Type};
use cairn_client::pb::etcdserverpb as pb;

use super::cluster::fields_header;
use super::go_json::{self, Object};
use super::json;
use crate::go_strconv::quote;

/// One response, rendered in every format etcdctl can print it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthOutput {
    /// `-w simple`.
    pub simple: String,
    /// `-w json`, without the final newline.
    pub json: String,
    /// `-w fields`, when etcdctl supports it for this response.
    pub fields: Option<String>,
    /// `-w protobuf`.
    pub protobuf: Vec<u8>,
}

fn header_json(header: &Option<pb::ResponseHeader>) -> Object {
    Object::new().opt("header", header.as_ref().map(json::header))
}

/// A response that is only a header, printed as `simple` in simple format.
pub fn header_only(
    simple: String,
    header: &Option<pb::ResponseHeader>,
    protobuf: Vec<u8>,
) -> AuthOutput {
    AuthOutput {
        simple,
        json: header_json(header).finish(),
        fields: Some(fields_header(header)),
        protobuf,
    }
}

fn strings_json(items: &[String]) -> Vec<String> {
    items
        .iter()
        .map(|s| go_json::string(s.as_bytes()))
        .collect()
}

/// `user get` (without `--detail`).
pub fn user_get(name: &str, r: &pb::AuthUserGetResponse, protobuf: Vec<u8>) -> AuthOutput {
    let roles: String = r.roles.iter().map(|role| format!(" {role}")).collect();
    AuthOutput {
        simple: format!("User: {name}\nRoles:{roles}\n"),
        json: header_json(&r.header)
            .list("roles", strings_json(&r.roles))
            .finish(),
        fields: None,
        protobuf,
    }
}

/// `user list`.
pub fn user_list(r: &pb::AuthUserListResponse, protobuf: Vec<u8>) -> AuthOutput {
    AuthOutput {
        simple: r.users.iter().map(|u| format!("{u}\n")).collect(),
        json: header_json(&r.header)
            .list("users", strings_json(&r.users))
            .finish(),
        fields: None,
        protobuf,
    }
}

/// `role list`.
pub fn role_list(r: &pb::AuthRoleListResponse, protobuf: Vec<u8>) -> AuthOutput {
    let quoted: String = r
        .roles
        .iter()
        .map(|role| format!(" {}", quote(role)))
        .collect();
    AuthOutput {
        simple: r.roles.iter().map(|role| format!("{role}\n")).collect(),
        json: header_json(&r.header)
            .list("roles", strings_json(&r.roles))
            .finish(),
        fields: Some(format!("{}\"Roles\" :{quoted}\n", fields_header(&r.header))),
        protobuf,
    }
}

/// `role get`.
pub fn role_get(name: &str, r: &pb::AuthRoleGetResponse, protobuf: Vec<u8>) -> AuthOutput {
    let perms: Vec<String> = r.perm.iter().map(permission_json).collect();
    AuthOutput {
        simple: role_get_simple(name, &r.perm),
        json: header_json(&r.header).list("perm", perms).finish(),
        fields: Some(role_get_fields(r)),
        protobuf,
    }
}

fn permission_json(p: &Permission) -> String {
    Object::new()
        .int("permType", i64::from(p.perm_type))
        .bytes("key", &p.key)
        .bytes("range_end", &p.range_end)
        .finish()
}

fn type_name(p: &Permission) -> &'static str {
    match Type::try_from(p.perm_type) {
        Ok(Type::Read) => "READ",
        Ok(Type::Write) => "WRITE",
        Ok(Type::Readwrite) => "READWRITE",
        Err(_) => "UNKNOWN",
    }
}

fn role_get_fields(r: &pb::AuthRoleGetResponse) -> String {
    let mut out = fields_header(&r.header);
    for p in &r.perm {
        out += &format!("\"PermType\" :  {}\n", type_name(p));
        out += &format!("\"Key\" : {}\n", quote(&String::from_utf8_lossy(&p.key)));
        out += &format!(
            "\"RangeEnd\" : {}\n",
            quote(&String::from_utf8_lossy(&p.range_end))
        );
    }
    out
}

/// clientv3's `GetPrefixRangeEnd`: the key after every key with the prefix (`"\0"` when
/// there is none).
pub fn prefix_range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn range_simple(p: &Permission) -> String {
    let key = String::from_utf8_lossy(&p.key);
    let mut out = if p.range_end != [0] {
        format!("\t[{key}, {})", String::from_utf8_lossy(&p.range_end))
    } else {
        format!("\t[{key}, <open ended>")
    };
    if prefix_range_end(&p.key) == p.range_end {
        out += &format!(" (prefix {key})");
    }
    out + "\n"
}

fn role_get_simple(name: &str, perms: &[Permission]) -> String {
    let line = |p: &Permission| {
        if p.range_end.is_empty() {
            format!("\t{}\n", String::from_utf8_lossy(&p.key))
        } else {
            range_simple(p)
        }
    };
    let mut out = format!("Role {name}\nKV Read:\n");
    for p in perms
        .iter()
        .filter(|p| matches!(type_name(p), "READ" | "READWRITE"))
    {
        out += &line(p);
    }
    out += "KV Write:\n";
    for p in perms
        .iter()
        .filter(|p| matches!(type_name(p), "WRITE" | "READWRITE"))
    {
        out += &line(p);
    }
    out
}

/// `role revoke-permission`, simple.
pub fn revoke_permission_simple(role: &str, key: &str, end: &str) -> String {
    if end.is_empty() {
        format!("Permission of key {key} is revoked from role {role}\n")
    } else if end != "\0" {
        format!("Permission of range [{key}, {end}) is revoked from role {role}\n")
    } else {
        format!("Permission of range [{key}, <open ended> is revoked from role {role}\n")
    }
}
