//! Simple auth tokens, as etcd 3.4's `auth/simple_token.go` keeps them: member-local
//! memory, never on disk, each with a TTL that every use renews.
//!
//! An Authenticate is applied through Raft on every member, and each member records the
//! token it yields (`<16 random letters>.<raft index>`) as it applies the entry, so a token
//! is honoured by every member that has applied it; a token naming an index this member has
//! not applied yet makes the request wait for that index (etcd's `indexWaiter`). A password
//! change or a user deletion voids that user's tokens, disabling auth voids them all, and a
//! restart forgets them (clients authenticate again, as with etcd).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use cairn_core::apply::TokenChange;
use madsim::rand::{Rng, thread_rng};
use tokio::time::Instant;

/// The letters of a token prefix (etcd's `letters`).
const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// The length of a token prefix (etcd's `defaultSimpleTokenLength`).
pub const TOKEN_PREFIX_LEN: usize = 16;
/// The TTL when `--auth-token-ttl` is 0 (etcd's `simpleTokenTTLDefault`).
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(300);
/// Tokens a member keeps at most; the oldest expiring ones are dropped beyond it, so a
/// client that authenticates in a loop cannot grow memory without bound.
pub const MAX_TOKENS: usize = 100_000;

struct Entry {
    user: String,
    expires: Instant,
}

/// The tokens this member honours.
pub struct Tokens {
    ttl: Duration,
    entries: Mutex<BTreeMap<String, Entry>>,
}

impl Tokens {
    /// An empty table whose tokens live `ttl` after their last use (0: etcd's default).
    pub fn new(ttl: Duration) -> Tokens {
        Tokens {
            ttl: if ttl.is_zero() {
                DEFAULT_TOKEN_TTL
            } else {
                ttl
            },
            entries: Mutex::new(BTreeMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh random token prefix (etcd's `genTokenPrefix`).
    pub fn prefix() -> String {
        let mut rng = thread_rng();
        (0..TOKEN_PREFIX_LEN)
            .map(|_| char::from(LETTERS[rng.gen_range(0..LETTERS.len())]))
            .collect()
    }

    /// The Raft index a well-formed token names (`<prefix>.<index>`), or `None`.
    pub fn index_of(token: &str) -> Option<u64> {
        let (_, index) = token.split_once('.')?;
        if index.contains('.') {
            return None;
        }
        index.parse().ok()
    }

    /// Applies what an applied entry means for tokens.
    pub fn apply(&self, change: &TokenChange) {
        let mut entries = self.entries();
        match change {
            TokenChange::Assign { token, user } => {
                let now = Instant::now();
                entries.retain(|_, e| e.expires > now);
                if entries.len() >= MAX_TOKENS
                    && let Some(oldest) = entries
                        .iter()
                        .min_by_key(|(_, e)| e.expires)
                        .map(|(t, _)| t.clone())
                {
                    entries.remove(&oldest);
                }
                let entry = Entry {
                    user: user.clone(),
                    expires: now + self.ttl,
                };
                entries.insert(token.clone(), entry);
            }
            TokenChange::InvalidateUser(user) => entries.retain(|_, e| &e.user != user),
            TokenChange::InvalidateAll => entries.clear(),
        }
    }

    /// The user of a live token, renewing its TTL; `None` for an unknown or expired one.
    pub fn user(&self, token: &str) -> Option<String> {
        let mut entries = self.entries();
        let now = Instant::now();
        let entry = entries.get_mut(token)?;
        if entry.expires <= now {
            entries.remove(token);
            return None;
        }
        entry.expires = now + self.ttl;
        Some(entry.user.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_sixteen_letters() {
        // Under madsim the rng is the simulation's: draw inside a runtime.
        #[cfg(madsim)]
        let prefix = madsim::runtime::Runtime::new().block_on(async { Tokens::prefix() });
        #[cfg(not(madsim))]
        let prefix = Tokens::prefix();
        assert_eq!(prefix.len(), TOKEN_PREFIX_LEN);
        assert!(prefix.bytes().all(|b| b.is_ascii_alphabetic()));
    }

    #[test]
    fn only_prefix_dot_index_is_well_formed() {
        assert_eq!(Tokens::index_of("abc.42"), Some(42));
        assert_eq!(Tokens::index_of("abc"), None);
        assert_eq!(Tokens::index_of("a.b.1"), None);
        assert_eq!(Tokens::index_of("abc.x"), None);
    }

    #[tokio::test]
    async fn tokens_are_voided_by_user_and_all() {
        let tokens = Tokens::new(Duration::from_secs(60));
        let assign = |token: &str, user: &str| TokenChange::Assign {
            token: token.into(),
            user: user.into(),
        };
        tokens.apply(&assign("a.1", "alice"));
        tokens.apply(&assign("b.2", "bob"));
        assert_eq!(tokens.user("a.1").as_deref(), Some("alice"));
        tokens.apply(&TokenChange::InvalidateUser("alice".into()));
        assert_eq!(tokens.user("a.1"), None);
        assert_eq!(tokens.user("b.2").as_deref(), Some("bob"));
        tokens.apply(&TokenChange::InvalidateAll);
        assert_eq!(tokens.user("b.2"), None);
    }
}
