//! The auth store's rules and permission checks, against etcd 3.4's behaviour.

use super::permission::{Access, affine_cmp, permitted};
use super::*;
use crate::api::authpb::{Permission, Role, UserAddOptions, permission::Type};
use crate::api::cairnpb::RequestAuth;
use crate::error::Error;
use crate::storage::mem::MemEngine;
use crate::storage::{Durability, Engine, WriteBatch};

fn perm(kind: Type, key: &[u8], range_end: &[u8]) -> Permission {
    Permission {
        perm_type: kind as i32,
        key: key.to_vec(),
        range_end: range_end.to_vec(),
    }
}

fn role(perms: Vec<Permission>) -> Role {
    Role {
        name: b"r".to_vec(),
        key_permission: perms,
    }
}

fn read(roles: &[Role], key: &[u8], range_end: &[u8]) -> bool {
    permitted(roles, key, range_end, Access::Read)
}

#[test]
fn the_empty_bound_is_infinity() {
    assert_eq!(affine_cmp(b"", b"zzz"), std::cmp::Ordering::Greater);
    assert_eq!(affine_cmp(b"a", b"b"), std::cmp::Ordering::Less);
    assert_eq!(affine_cmp(b"", b""), std::cmp::Ordering::Equal);
}

#[test]
fn a_key_permission_grants_that_key_only() {
    let roles = [role(vec![perm(Type::Read, b"foo", b"")])];
    assert!(read(&roles, b"foo", b""));
    assert!(!read(&roles, b"foo0", b""));
    assert!(!read(&roles, b"fo", b""));
    assert!(
        !read(&roles, b"foo", b"fop"),
        "a range over one key needs a range grant"
    );
    assert!(
        read(&roles, b"foo", b"foo\0"),
        "the range holding just the key is covered"
    );
}

#[test]
fn a_prefix_permission_covers_keys_and_subranges_of_the_prefix() {
    let roles = [role(vec![perm(Type::Read, b"/app/", b"/app0")])];
    assert!(read(&roles, b"/app/x", b""));
    assert!(read(&roles, b"/app/", b"/app0"));
    assert!(read(&roles, b"/app/a", b"/app/b"));
    assert!(!read(&roles, b"/ap", b"/app0"), "begins before the grant");
    assert!(!read(&roles, b"/app/", b"/app1"), "ends after the grant");
    assert!(!read(&roles, b"/other", b""));
    assert!(
        !read(&roles, b"/app/", b"\0"),
        "from-key reaches past the prefix"
    );
}

#[test]
fn a_from_key_permission_is_open_ended() {
    let roles = [role(vec![perm(Type::Read, b"m", b"\0")])];
    assert!(read(&roles, b"zzzz", b""));
    assert!(read(&roles, b"m", b"\0"));
    assert!(read(&roles, b"n", b"\0"));
    assert!(!read(&roles, b"a", b"\0"));
    assert!(!read(&roles, b"l", b""));
}

#[test]
fn adjacent_grants_join_but_a_gap_does_not() {
    let joined = [
        role(vec![perm(Type::Read, b"a", b"c")]),
        role(vec![perm(Type::Readwrite, b"c", b"e")]),
    ];
    assert!(read(&joined, b"a", b"e"));
    let gap = [role(vec![
        perm(Type::Read, b"a", b"c"),
        perm(Type::Read, b"d", b"e"),
    ])];
    assert!(!read(&gap, b"a", b"e"));
    assert!(read(&gap, b"d", b"e"));
}

#[test]
fn permission_types_grant_their_access_only() {
    let roles = [role(vec![
        perm(Type::Read, b"r", b""),
        perm(Type::Write, b"w", b""),
        perm(Type::Readwrite, b"rw", b""),
    ])];
    assert!(permitted(&roles, b"r", b"", Access::Read));
    assert!(!permitted(&roles, b"r", b"", Access::Write));
    assert!(permitted(&roles, b"w", b"", Access::Write));
    assert!(!permitted(&roles, b"w", b"", Access::Read));
    assert!(permitted(&roles, b"rw", b"", Access::Read));
    assert!(permitted(&roles, b"rw", b"", Access::Write));
}

/// A store with user root (role root), user alice with role reader reading prefix `/app/`.
fn sample() -> (AuthStore, WriteBatch) {
    let mut store = AuthStore::default();
    let mut batch = WriteBatch::new();
    store.user_add("root", b"h", None, &mut batch).unwrap();
    store.user_grant_role("root", "root", &mut batch).unwrap();
    store.user_add("alice", b"h", None, &mut batch).unwrap();
    store.role_add("reader", &mut batch).unwrap();
    store
        .role_grant_permission("reader", perm(Type::Read, b"/app/", b"/app0"), &mut batch)
        .unwrap();
    store
        .user_grant_role("alice", "reader", &mut batch)
        .unwrap();
    (store, batch)
}

fn as_user(store: &AuthStore, name: &str) -> RequestAuth {
    RequestAuth {
        username: name.to_string(),
        revision: store.revision(),
    }
}

#[test]
fn enable_needs_root_with_the_root_role() {
    let mut store = AuthStore::default();
    let mut batch = WriteBatch::new();
    assert_eq!(store.enable(&mut batch), Err(Error::RootUserNotExist));
    store.user_add("root", b"h", None, &mut batch).unwrap();
    assert_eq!(store.enable(&mut batch), Err(Error::RootRoleNotExist));
    store.user_grant_role("root", "root", &mut batch).unwrap();
    let revision = store.revision();
    store.enable(&mut batch).unwrap();
    assert!(store.enabled());
    assert_eq!(
        store.revision(),
        revision,
        "etcd's AuthEnable commits no revision"
    );
}

#[test]
fn checks_need_a_user_at_the_current_revision() {
    let (mut store, mut batch) = sample();
    store.enable(&mut batch).unwrap();
    let alice = as_user(&store, "alice");
    assert_eq!(
        store.check(None, b"/app/x", b"", Access::Read),
        Err(Error::UserEmpty)
    );
    assert_eq!(
        store.check(Some(&alice), b"/app/x", b"", Access::Read),
        Ok(())
    );
    assert_eq!(
        store.check(Some(&alice), b"/app/x", b"", Access::Write),
        Err(Error::PermissionDenied)
    );
    assert_eq!(
        store.check(Some(&alice), b"/other", b"", Access::Read),
        Err(Error::PermissionDenied)
    );
    store.role_add("other", &mut batch).unwrap();
    assert_eq!(
        store.check(Some(&alice), b"/app/x", b"", Access::Read),
        Err(Error::AuthOldRevision),
        "a token checked before a change is stale"
    );
    let root = as_user(&store, "root");
    assert_eq!(
        store.check(Some(&root), b"any", b"\0", Access::Write),
        Ok(())
    );
    assert_eq!(store.check_admin(Some(&root)), Ok(()));
    assert_eq!(
        store.check_admin(Some(&alice)),
        Err(Error::PermissionDenied)
    );
}

#[test]
fn a_revoked_permission_is_refused() {
    let (mut store, mut batch) = sample();
    store.enable(&mut batch).unwrap();
    store
        .role_revoke_permission("reader", b"/app/", b"/app0", &mut batch)
        .unwrap();
    let alice = as_user(&store, "alice");
    assert_eq!(
        store.check(Some(&alice), b"/app/x", b"", Access::Read),
        Err(Error::PermissionDenied)
    );
    assert_eq!(
        store.role_revoke_permission("reader", b"/app/", b"/app0", &mut batch),
        Err(Error::PermissionNotGranted)
    );
}

#[test]
fn root_is_protected_while_auth_is_enabled() {
    let (mut store, mut batch) = sample();
    store.enable(&mut batch).unwrap();
    assert_eq!(
        store.user_delete("root", &mut batch),
        Err(Error::InvalidAuthMgmt)
    );
    assert_eq!(
        store.role_delete("root", &mut batch),
        Err(Error::InvalidAuthMgmt)
    );
    assert_eq!(
        store.user_revoke_role("root", "root", &mut batch),
        Err(Error::InvalidAuthMgmt)
    );
    store.disable(&mut batch);
    assert_eq!(store.user_revoke_role("root", "root", &mut batch), Ok(()));
}

#[test]
fn management_errors_match_etcd() {
    let (mut store, mut batch) = sample();
    assert_eq!(
        store.user_add("", b"h", None, &mut batch),
        Err(Error::UserEmpty)
    );
    assert_eq!(
        store.user_add("alice", b"h", None, &mut batch),
        Err(Error::UserAlreadyExist)
    );
    assert_eq!(store.user_get("bob"), Err(Error::UserNotFound));
    assert_eq!(
        store.role_add("reader", &mut batch),
        Err(Error::RoleAlreadyExist)
    );
    assert_eq!(store.role_add("", &mut batch), Err(Error::RoleEmpty));
    assert_eq!(
        store.user_grant_role("alice", "nope", &mut batch),
        Err(Error::RoleNotFound)
    );
    assert_eq!(
        store.user_revoke_role("alice", "nope", &mut batch),
        Err(Error::RoleNotGranted)
    );
    let revision = store.revision();
    store
        .user_grant_role("alice", "reader", &mut batch)
        .unwrap();
    assert_eq!(
        store.revision(),
        revision,
        "granting a held role changes nothing"
    );
}

#[test]
fn deleting_a_role_revokes_it_from_every_user() {
    let (mut store, mut batch) = sample();
    store.role_delete("reader", &mut batch).unwrap();
    assert_eq!(store.user_get("alice"), Ok(vec![]));
}

#[test]
fn granting_the_same_range_again_replaces_its_type() {
    let (mut store, mut batch) = sample();
    store
        .role_grant_permission("reader", perm(Type::Write, b"/app/", b"/app0"), &mut batch)
        .unwrap();
    store
        .role_grant_permission("reader", perm(Type::Read, b"/a", b""), &mut batch)
        .unwrap();
    let perms = store.role_get("reader").unwrap();
    assert_eq!(
        perms,
        vec![
            perm(Type::Read, b"/a", b""),
            perm(Type::Write, b"/app/", b"/app0")
        ]
    );
}

#[test]
fn authenticate_refuses_no_password_users_and_disabled_auth() {
    let (mut store, mut batch) = sample();
    assert_eq!(
        store.authenticate("alice", "p", 7),
        Err(Error::AuthNotEnabled)
    );
    let options = Some(UserAddOptions { no_password: true });
    store.user_add("cn", b"", options, &mut batch).unwrap();
    store.enable(&mut batch).unwrap();
    assert_eq!(store.authenticate("alice", "p", 7), Ok("p.7".to_string()));
    assert_eq!(store.authenticate("cn", "p", 7), Err(Error::AuthFailed));
    assert_eq!(store.authenticate("bob", "p", 7), Err(Error::AuthFailed));
    assert_eq!(store.password_hash("cn"), Err(Error::NoPasswordUser));
}

#[test]
fn the_store_survives_reopening_from_its_writes() {
    let (mut store, mut batch) = sample();
    store.enable(&mut batch).unwrap();
    let engine = MemEngine::new();
    engine.write(batch, Durability::Sync).unwrap();
    let reopened = AuthStore::open(&engine).unwrap();
    assert_eq!(reopened, store);
}

#[test]
fn a_fresh_store_starts_at_revision_one() {
    let engine = MemEngine::new();
    let store = AuthStore::open(&engine).unwrap();
    assert_eq!(store.revision(), 1);
    assert!(!store.enabled());
}
