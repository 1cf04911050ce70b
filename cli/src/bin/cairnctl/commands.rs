//! The command tree: etcdctl 3.4's commands with their names, `Use` lines, descriptions
//! and flags, exactly as etcdctl declares them (`etcdctl/ctlv3/ctl.go` and
//! `ctlv3/command/*.go`), so that usage text, prefix matching (`g` runs `get`) and
//! "Did you mean this?" suggestions behave the same. Commands cairnctl does not implement
//! yet are present as [`Action::NotYet`], so they are recognised and refused clearly.

use crate::flags::{FlagDef, FlagKind};

/// The name cairnctl's usage and errors call the program.
pub const PROGRAM: &str = "cairnctl";

/// What running a command does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A group (`endpoint`, `member`): shows its usage.
    Group,
    /// cobra's `help [command]`.
    Help,
    /// Runs an implemented command.
    Run(CommandId),
    /// An etcdctl command cairnctl does not implement yet.
    NotYet,
}

/// The implemented commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandId {
    /// `get`.
    Get,
    /// `put`.
    Put,
    /// `del`.
    Del,
    /// `txn`.
    Txn,
    /// `compaction`.
    Compaction,
    /// `endpoint health`.
    EndpointHealth,
    /// `endpoint status`.
    EndpointStatus,
    /// `member list`.
    MemberList,
    /// `member add`.
    MemberAdd,
    /// `member remove`.
    MemberRemove,
    /// `member update`.
    MemberUpdate,
    /// `member promote`.
    MemberPromote,
    /// `move-leader`.
    MoveLeader,
    /// `lease grant`.
    LeaseGrant,
    /// `lease revoke`.
    LeaseRevoke,
    /// `lease timetolive`.
    LeaseTimeToLive,
    /// `lease list`.
    LeaseList,
    /// `lease keep-alive`.
    LeaseKeepAlive,
    /// `watch`.
    Watch,
    /// `elect`.
    Elect,
    /// `lock`.
    Lock,
    /// `version`.
    Version,
    /// `auth enable`.
    AuthEnable,
    /// `auth disable`.
    AuthDisable,
    /// `user add`.
    UserAdd,
    /// `user delete`.
    UserDelete,
    /// `user get`.
    UserGet,
    /// `user list`.
    UserList,
    /// `user passwd`.
    UserPasswd,
    /// `user grant-role`.
    UserGrantRole,
    /// `user revoke-role`.
    UserRevokeRole,
    /// `role add`.
    RoleAdd,
    /// `role delete`.
    RoleDelete,
    /// `role get`.
    RoleGet,
    /// `role list`.
    RoleList,
    /// `role grant-permission`.
    RoleGrantPermission,
    /// `role revoke-permission`.
    RoleRevokePermission,
    /// `bench put`.
    BenchPut,
    /// `bench range`.
    BenchRange,
    /// `bench txn-put`.
    BenchTxnPut,
    /// `bench watch`.
    BenchWatch,
    /// `bench txn-mixed`.
    BenchTxnMixed,
    /// `bench watch-latency`.
    BenchWatchLatency,
    /// `bench lease-keepalive`.
    BenchLeaseKeepalive,
    /// `alarm list`.
    AlarmList,
    /// `alarm disarm`.
    AlarmDisarm,
    /// `defrag`.
    Defrag,
    /// `make-mirror`.
    MakeMirror,
    /// `completion bash`.
    CompletionBash,
    /// `completion zsh`.
    CompletionZsh,
    /// `check perf`.
    CheckPerf,
    /// `check datascale`.
    CheckDatascale,
    /// `snapshot save`.
    SnapshotSave,
    /// `snapshot status`.
    SnapshotStatus,
    /// `snapshot restore`.
    SnapshotRestore,
}

/// One command of the tree.
#[derive(Debug, Clone, Copy)]
pub struct Command {
    /// The name typed on the command line.
    pub name: &'static str,
    /// cobra's `Use`: the name and the argument synopsis.
    pub use_line: &'static str,
    /// The one-line description.
    pub short: &'static str,
    /// The long description (may be empty).
    pub long: &'static str,
    /// Flags of this command only.
    pub flags: &'static [FlagDef],
    /// Flags of this command that its subcommands inherit.
    pub persistent: &'static [FlagDef],
    /// Subcommands, in etcdctl's (alphabetical) order.
    pub children: &'static [Command],
    /// What running it does.
    pub action: Action,
}

impl Command {
    /// Whether running this command does something other than show usage.
    pub fn runnable(&self) -> bool {
        !matches!(self.action, Action::Group)
    }
}

/// The root command.
pub static ROOT: Command = Command {
    name: PROGRAM,
    use_line: PROGRAM,
    short: "A simple command line client for etcd3.",
    long: "",
    flags: &[],
    persistent: &GLOBAL_FLAGS,
    children: &ROOT_CHILDREN,
    action: Action::Group,
};

/// etcdctl's global flags (`ctl.go`), inherited by every command.
pub static GLOBAL_FLAGS: [FlagDef; 18] = [
    FlagDef::str(
        "cacert",
        "",
        "verify certificates of TLS-enabled secure servers using this CA bundle",
    ),
    FlagDef::str(
        "cert",
        "",
        "identify secure client using this TLS certificate file",
    ),
    duration(
        "command-timeout",
        "5s",
        "timeout for short running command (excluding dial timeout)",
    ),
    FlagDef::bool("debug", "enable client-side debug logging"),
    duration("dial-timeout", "2s", "dial timeout for client connections"),
    FlagDef::str(
        "discovery-srv",
        "",
        "domain name to query for SRV records describing cluster endpoints",
    )
    .short('d'),
    FlagDef::str(
        "discovery-srv-name",
        "",
        "service name to query when using DNS discovery",
    ),
    FlagDef {
        name: "endpoints",
        shorthand: None,
        kind: FlagKind::StrList,
        default: "[127.0.0.1:2379]",
        usage: "gRPC endpoints",
    },
    FlagDef::bool("hex", "print byte strings as hex encoded strings"),
    bool_true(
        "insecure-discovery",
        "accept insecure SRV records describing cluster endpoints",
    ),
    FlagDef::bool(
        "insecure-skip-tls-verify",
        "skip server certificate verification (CAUTION: this option should be enabled only for testing purposes)",
    ),
    bool_true(
        "insecure-transport",
        "disable transport security for client connections",
    ),
    duration(
        "keepalive-time",
        "2s",
        "keepalive time for client connections",
    ),
    duration(
        "keepalive-timeout",
        "6s",
        "keepalive timeout for client connections",
    ),
    FlagDef::str("key", "", "identify secure client using this TLS key file"),
    FlagDef::str(
        "password",
        "",
        "password for authentication (if this option is used, --user option shouldn't include password)",
    ),
    FlagDef::str(
        "user",
        "",
        "username[:password] for authentication (prompt if password is not supplied)",
    ),
    FlagDef::str(
        "write-out",
        "simple",
        "set the output format (fields, json, protobuf, simple, table)",
    )
    .short('w'),
];

const fn duration(name: &'static str, default: &'static str, usage: &'static str) -> FlagDef {
    FlagDef {
        name,
        shorthand: None,
        kind: FlagKind::Duration,
        default,
        usage,
    }
}

const fn bool_true(name: &'static str, usage: &'static str) -> FlagDef {
    FlagDef {
        name,
        shorthand: None,
        kind: FlagKind::Bool,
        default: "true",
        usage,
    }
}

const fn run(
    name: &'static str,
    use_line: &'static str,
    short: &'static str,
    id: CommandId,
) -> Command {
    Command {
        name,
        use_line,
        short,
        long: "",
        flags: &[],
        persistent: &[],
        children: &[],
        action: Action::Run(id),
    }
}

const fn group(
    name: &'static str,
    use_line: &'static str,
    short: &'static str,
    children: &'static [Command],
) -> Command {
    Command {
        name,
        use_line,
        short,
        long: "",
        flags: &[],
        persistent: &[],
        children,
        action: Action::Group,
    }
}

const fn not_yet(name: &'static str, use_line: &'static str, short: &'static str) -> Command {
    Command {
        name,
        use_line,
        short,
        long: "",
        flags: &[],
        persistent: &[],
        children: &[],
        action: Action::NotYet,
    }
}

static ROOT_CHILDREN: [Command; 25] = [
    group(
        "alarm",
        "alarm <subcommand>",
        "Alarm related commands",
        &ALARM_CHILDREN,
    ),
    group(
        "auth",
        "auth <enable or disable>",
        "Enable or disable authentication",
        &AUTH_CHILDREN,
    ),
    Command {
        long: BENCH_LONG,
        persistent: &BENCH_FLAGS,
        ..group(
            "bench",
            "bench <subcommand>",
            "Benchmarks a cluster (etcd's benchmark tool scenarios)",
            &BENCH_CHILDREN,
        )
    },
    group(
        "check",
        "check <subcommand>",
        "commands for checking properties of the etcd cluster",
        &CHECK_CHILDREN,
    ),
    Command {
        flags: &[FlagDef::bool(
            "physical",
            "'true' to wait for compaction to physically remove all old revisions",
        )],
        ..run(
            "compaction",
            "compaction [options] <revision>",
            "Compacts the event history in etcd",
            CommandId::Compaction,
        )
    },
    Command {
        long: "Generate the autocompletion script for cairnctl for the specified shell.
See each sub-command's help for details on how to use the generated script.
",
        ..group(
            "completion",
            "completion",
            "Generate the autocompletion script for the specified shell",
            &COMPLETION_CHILDREN,
        )
    },
    Command {
        flags: &[FlagDef::str(
            "data-dir",
            "",
            "Optional. If present, defragments a data directory not in use by etcd.",
        )],
        persistent: &[FlagDef::bool(
            "cluster",
            "use all endpoints from the cluster member list",
        )],
        ..run(
            "defrag",
            "defrag",
            "Defragments the storage of the etcd members with given endpoints",
            CommandId::Defrag,
        )
    },
    DEL,
    Command {
        flags: &[FlagDef::bool("listen", "observation mode").short('l')],
        ..run(
            "elect",
            "elect <election-name> [proposal]",
            "Observes and participates in leader election",
            CommandId::Elect,
        )
    },
    Command {
        persistent: &[FlagDef::bool(
            "cluster",
            "use all endpoints from the cluster member list",
        )],
        ..group(
            "endpoint",
            "endpoint <subcommand>",
            "Endpoint related commands",
            &ENDPOINT_CHILDREN,
        )
    },
    GET,
    Command {
        long: "Help provides help for any command in the application.\nSimply type cairnctl help [path to command] for full details.",
        action: Action::Help,
        ..not_yet("help", "help [command]", "Help about any command")
    },
    group(
        "lease",
        "lease <subcommand>",
        "Lease related commands",
        &LEASE_CHILDREN,
    ),
    Command {
        flags: &[FlagDef::int64("ttl", "timeout for session").default_to("10")],
        ..run(
            "lock",
            "lock <lockname> [exec-command arg1 arg2 ...]",
            "Acquires a named lock",
            CommandId::Lock,
        )
    },
    Command {
        flags: &MAKE_MIRROR_FLAGS,
        ..run(
            "make-mirror",
            "make-mirror [options] <destination>",
            "Makes a mirror at the destination etcd cluster",
            CommandId::MakeMirror,
        )
    },
    group(
        "member",
        "member <subcommand>",
        "Membership related commands",
        &MEMBER_CHILDREN,
    ),
    not_yet(
        "migrate",
        "migrate",
        "Migrates keys in a v2 store to a mvcc store",
    ),
    run(
        "move-leader",
        "move-leader <transferee-member-id>",
        "Transfers leadership to another etcd cluster member.",
        CommandId::MoveLeader,
    ),
    PUT,
    group(
        "role",
        "role <subcommand>",
        "Role related commands",
        &ROLE_CHILDREN,
    ),
    group(
        "snapshot",
        "snapshot <subcommand>",
        "Manages etcd node snapshots",
        &SNAPSHOT_CHILDREN,
    ),
    Command {
        flags: &[FlagDef::bool("interactive", "Input transaction in interactive mode").short('i')],
        ..run(
            "txn",
            "txn [options]",
            "Txn processes all the requests in one transaction",
            CommandId::Txn,
        )
    },
    group(
        "user",
        "user <subcommand>",
        "User related commands",
        &USER_CHILDREN,
    ),
    run(
        "version",
        "version",
        "Prints the version of etcdctl",
        CommandId::Version,
    ),
    Command {
        flags: &WATCH_FLAGS,
        ..run(
            "watch",
            "watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]",
            "Watches events stream on keys or prefixes",
            CommandId::Watch,
        )
    },
];

/// The root's commands in the order etcdctl registers them (`ctl.go`), then cobra's
/// `help` and `completion`: the order of cobra's "Did you mean this?" suggestions.
pub const REGISTRATION_ORDER: [&str; 25] = [
    "get",
    "put",
    "del",
    "txn",
    "compaction",
    "alarm",
    "defrag",
    "endpoint",
    "move-leader",
    "watch",
    "version",
    "lease",
    "member",
    "snapshot",
    "make-mirror",
    "migrate",
    "lock",
    "elect",
    "auth",
    "user",
    "role",
    "check",
    "bench",
    "help",
    "completion",
];

/// `get`.
const GET: Command = Command {
    flags: &GET_FLAGS,
    ..run(
        "get",
        "get [options] <key> [range_end]",
        "Gets the key or a range of keys",
        CommandId::Get,
    )
};

/// `put`.
const PUT: Command = Command {
    long: PUT_LONG,
    flags: &PUT_FLAGS,
    ..run(
        "put",
        "put [options] <key> <value> (<value> can also be given from stdin)",
        "Puts the given key into the store",
        CommandId::Put,
    )
};

/// `del`.
const DEL: Command = Command {
    flags: &DEL_FLAGS,
    ..run(
        "del",
        "del [options] <key> [range_end]",
        "Removes the specified key or range of keys [key, range_end)",
        CommandId::Del,
    )
};

/// The nameless command etcdctl builds to parse each request line of a `txn`
/// (`parseRequestUnion`): `get`, `put` and `del` with their usual flags.
pub static TXN_REQUESTS: Command = Command {
    name: "",
    use_line: "",
    short: "",
    long: "",
    flags: &[],
    persistent: &[],
    children: &[DEL, GET, PUT],
    action: Action::Group,
};

/// `get`'s flags: etcdctl 3.4's, plus 3.5's `--count-only` and revision filters.
pub static GET_FLAGS: [FlagDef; 14] = [
    FlagDef::str("consistency", "l", "Linearizable(l) or Serializable(s)"),
    FlagDef::bool("count-only", "Get only the count"),
    FlagDef::bool(
        "from-key",
        "Get keys that are greater than or equal to the given key using byte compare",
    ),
    FlagDef::bool("keys-only", "Get only the keys"),
    FlagDef::int64("limit", "Maximum number of results"),
    FlagDef::int64("max-create-rev", "Maximum create revision"),
    FlagDef::int64("max-mod-rev", "Maximum modify revision"),
    FlagDef::int64("min-create-rev", "Minimum create revision"),
    FlagDef::int64("min-mod-rev", "Minimum modify revision"),
    FlagDef::str(
        "order",
        "",
        "Order of results; ASCEND or DESCEND (ASCEND by default)",
    ),
    FlagDef::bool("prefix", "Get keys with matching prefix"),
    FlagDef::bool(
        "print-value-only",
        "Only write values when using the \"simple\" output format",
    ),
    FlagDef::int64("rev", "Specify the kv revision"),
    FlagDef::str(
        "sort-by",
        "",
        "Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION",
    ),
];

/// `put`'s flags.
pub static PUT_FLAGS: [FlagDef; 4] = [
    FlagDef::bool("ignore-lease", "updates the key using its current lease"),
    FlagDef::bool("ignore-value", "updates the key using its current value"),
    FlagDef::str(
        "lease",
        "0",
        "lease ID (in hexadecimal) to attach to the key",
    ),
    FlagDef::bool(
        "prev-kv",
        "return the previous key-value pair before modification",
    ),
];

/// `del`'s flags.
pub static DEL_FLAGS: [FlagDef; 3] = [
    FlagDef::bool(
        "from-key",
        "delete keys that are greater than or equal to the given key using byte compare",
    ),
    FlagDef::bool("prefix", "delete keys with matching prefix"),
    FlagDef::bool("prev-kv", "return deleted key-value pairs"),
];

const PUT_LONG: &str = "
Puts the given key into the store.

When <value> begins with '-', <value> is interpreted as a flag.
Insert '--' for workaround:

$ put <key> -- <value>
$ put -- <key> <value>

If <value> isn't given as a command line argument and '--ignore-value' is not specified,
this command tries to read the value from standard input.

If <lease> isn't given as a command line argument and '--ignore-lease' is not specified,
this command tries to read the value from standard input.

For example,
$ cat file | put <key>
will store the content of the file to <key>.
";

static ENDPOINT_CHILDREN: [Command; 3] = [
    not_yet("hashkv", "hashkv", "Prints the KV history hash for each endpoint in --endpoints"),
    run(
        "health",
        "health",
        "Checks the healthiness of endpoints specified in `--endpoints` flag",
        CommandId::EndpointHealth,
    ),
    Command {
        long: "When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.
The items in the lists are endpoint, ID, version, db size, is leader, is learner, raft term, raft index, raft applied index, errors.
",
        ..run(
            "status",
            "status",
            "Prints out the status of endpoints specified in `--endpoints` flag",
            CommandId::EndpointStatus,
        )
    },
];

static COMPLETION_CHILDREN: [Command; 4] = [
    Command {
        long: "Generate the autocompletion script for the bash shell.

To load completions in your current shell session:

	source <(cairnctl completion bash)

To load completions for every new session, execute once:

	cairnctl completion bash > /etc/bash_completion.d/cairnctl
",
        ..run(
            "bash",
            "bash",
            "Generate the autocompletion script for bash",
            CommandId::CompletionBash,
        )
    },
    not_yet(
        "fish",
        "fish [flags]",
        "Generate the autocompletion script for fish",
    ),
    not_yet(
        "powershell",
        "powershell [flags]",
        "Generate the autocompletion script for powershell",
    ),
    Command {
        long: "Generate the autocompletion script for the zsh shell.

To load completions in your current shell session:

	source <(cairnctl completion zsh)

To load completions for every new session, execute once:

	cairnctl completion zsh > \"${fpath[1]}/_cairnctl\"
",
        ..run(
            "zsh",
            "zsh [flags]",
            "Generate the autocompletion script for zsh",
            CommandId::CompletionZsh,
        )
    },
];

static MAKE_MIRROR_FLAGS: [FlagDef; 7] = [
    FlagDef::str(
        "dest-cacert",
        "",
        "Verify certificates of TLS enabled secure servers using this CA bundle",
    ),
    FlagDef::str(
        "dest-cert",
        "",
        "Identify secure client using this TLS certificate file for the destination cluster",
    ),
    bool_true(
        "dest-insecure-transport",
        "Disable transport security for client connections",
    ),
    FlagDef::str(
        "dest-key",
        "",
        "Identify secure client using this TLS key file",
    ),
    FlagDef::str(
        "dest-prefix",
        "",
        "destination prefix to mirror a prefix to a different prefix in the destination cluster",
    ),
    FlagDef::bool(
        "no-dest-prefix",
        "mirror key-values to the root of the destination cluster",
    ),
    FlagDef::str("prefix", "", "Key-value prefix to mirror"),
];

static CHECK_CHILDREN: [Command; 2] = [
    Command {
        long: "If no endpoint is provided, localhost will be used. If multiple endpoints are provided, first endpoint will be used.",
        flags: &CHECK_DATASCALE_FLAGS,
        ..run(
            "datascale",
            "datascale [options]",
            "Check the memory usage of holding data for different workloads on a given server endpoint.",
            CommandId::CheckDatascale,
        )
    },
    Command {
        flags: &CHECK_PERF_FLAGS,
        ..run(
            "perf",
            "perf [options]",
            "Check the performance of the etcd cluster",
            CommandId::CheckPerf,
        )
    },
];

static CHECK_PERF_FLAGS: [FlagDef; 4] = [
    FlagDef::bool(
        "auto-compact",
        "Compact storage with last revision after test is finished.",
    ),
    FlagDef::bool("auto-defrag", "Defragment storage after test is finished."),
    FlagDef::str(
        "load",
        "s",
        "The performance check's workload model. Accepted workloads: s(small), m(medium), l(large), xl(xLarge)",
    ),
    FlagDef::str(
        "prefix",
        "/etcdctl-check-perf/",
        "The prefix for writing the performance check's keys.",
    ),
];

static CHECK_DATASCALE_FLAGS: [FlagDef; 4] = [
    FlagDef::bool(
        "auto-compact",
        "Compact storage with last revision after test is finished.",
    ),
    FlagDef::bool("auto-defrag", "Defragment storage after test is finished."),
    FlagDef::str(
        "load",
        "s",
        "The datascale check's workload model. Accepted workloads: s(small), m(medium), l(large), xl(xLarge)",
    ),
    FlagDef::str(
        "prefix",
        "/etcdctl-check-datascale/",
        "The prefix for writing the datascale check's keys.",
    ),
];

static ALARM_CHILDREN: [Command; 2] = [
    run(
        "disarm",
        "disarm",
        "Disarms all alarms",
        CommandId::AlarmDisarm,
    ),
    run("list", "list", "Lists all alarms", CommandId::AlarmList),
];

static SNAPSHOT_CHILDREN: [Command; 3] = [
    Command {
        flags: &SNAPSHOT_RESTORE_FLAGS,
        ..run(
            "restore",
            "restore <filename> [options]",
            "Restores an etcd member snapshot to an etcd directory",
            CommandId::SnapshotRestore,
        )
    },
    run(
        "save",
        "save <filename>",
        "Stores an etcd node backend snapshot to a given file",
        CommandId::SnapshotSave,
    ),
    Command {
        long: "When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.
The items in the lists are hash, revision, total keys, total size.
",
        ..run(
            "status",
            "status <filename>",
            "Gets backend snapshot status of a given file",
            CommandId::SnapshotStatus,
        )
    },
];

/// `snapshot restore`'s flags (etcdctl's, in its alphabetical order).
static SNAPSHOT_RESTORE_FLAGS: [FlagDef; 7] = [
    FlagDef::str("data-dir", "", "Path to the data directory"),
    FlagDef::str(
        "initial-advertise-peer-urls",
        "http://localhost:2380",
        "List of this member's peer URLs to advertise to the rest of the cluster",
    ),
    FlagDef::str(
        "initial-cluster",
        "default=http://localhost:2380",
        "Initial cluster configuration for restore bootstrap",
    ),
    FlagDef::str(
        "initial-cluster-token",
        "etcd-cluster",
        "Initial cluster token for the etcd cluster during restore bootstrap",
    ),
    FlagDef::str("name", "default", "Human-readable name for this member"),
    FlagDef::bool(
        "skip-hash-check",
        "Ignore snapshot integrity hash value (required if copied from data directory)",
    ),
    FlagDef::str(
        "wal-dir",
        "",
        "Path to the WAL directory (use --data-dir if none given)",
    ),
];

static MEMBER_CHILDREN: [Command; 5] = [
    Command {
        flags: &MEMBER_ADD_FLAGS,
        ..run(
            "add",
            "add <memberName> [options]",
            "Adds a member into the cluster",
            CommandId::MemberAdd,
        )
    },
    Command {
        long: "When --write-out is set to simple, this command prints out comma-separated member lists for each endpoint.
The items in the lists are ID, Status, Name, Peer Addrs, Client Addrs, Is Learner.
",
        ..run("list", "list", "Lists all members in the cluster", CommandId::MemberList)
    },
    run(
        "promote",
        "promote <memberID>",
        "Promotes a non-voting member in the cluster",
        CommandId::MemberPromote,
    ),
    run(
        "remove",
        "remove <memberID>",
        "Removes a member from the cluster",
        CommandId::MemberRemove,
    ),
    Command {
        flags: &MEMBER_UPDATE_FLAGS,
        ..run(
            "update",
            "update <memberID> [options]",
            "Updates a member in the cluster",
            CommandId::MemberUpdate,
        )
    },
];

static MEMBER_ADD_FLAGS: [FlagDef; 2] = [
    FlagDef::bool("learner", "indicates if the new member is raft learner"),
    FlagDef::str(
        "peer-urls",
        "",
        "comma separated peer URLs for the new member.",
    ),
];

static MEMBER_UPDATE_FLAGS: [FlagDef; 1] = [FlagDef::str(
    "peer-urls",
    "",
    "comma separated peer URLs for the updated member.",
)];

static AUTH_CHILDREN: [Command; 2] = [
    run(
        "disable",
        "disable",
        "Disables authentication",
        CommandId::AuthDisable,
    ),
    run(
        "enable",
        "enable",
        "Enables authentication",
        CommandId::AuthEnable,
    ),
];

const INTERACTIVE_FLAG: FlagDef = FlagDef {
    name: "interactive",
    shorthand: None,
    kind: FlagKind::Bool,
    default: "true",
    usage: "Read password from stdin instead of interactive terminal",
};

static USER_CHILDREN: [Command; 7] = [
    Command {
        flags: &[
            INTERACTIVE_FLAG,
            FlagDef::str(
                "new-user-password",
                "",
                "Supply password from the command line flag",
            ),
            FlagDef::bool(
                "no-password",
                "Create a user without password (CN based auth only)",
            ),
        ],
        ..run(
            "add",
            "add <user name or user:password> [options]",
            "Adds a new user",
            CommandId::UserAdd,
        )
    },
    run(
        "delete",
        "delete <user name>",
        "Deletes a user",
        CommandId::UserDelete,
    ),
    Command {
        flags: &[FlagDef::bool(
            "detail",
            "Show permissions of roles granted to the user",
        )],
        ..run(
            "get",
            "get <user name> [options]",
            "Gets detailed information of a user",
            CommandId::UserGet,
        )
    },
    run(
        "grant-role",
        "grant-role <user name> <role name>",
        "Grants a role to a user",
        CommandId::UserGrantRole,
    ),
    run("list", "list", "Lists all users", CommandId::UserList),
    Command {
        flags: &[FlagDef {
            usage: "If true, read password from stdin instead of interactive terminal",
            ..INTERACTIVE_FLAG
        }],
        ..run(
            "passwd",
            "passwd <user name> [options]",
            "Changes password of user",
            CommandId::UserPasswd,
        )
    },
    run(
        "revoke-role",
        "revoke-role <user name> <role name>",
        "Revokes a role from a user",
        CommandId::UserRevokeRole,
    ),
];

static ROLE_CHILDREN: [Command; 6] = [
    run(
        "add",
        "add <role name>",
        "Adds a new role",
        CommandId::RoleAdd,
    ),
    run(
        "delete",
        "delete <role name>",
        "Deletes a role",
        CommandId::RoleDelete,
    ),
    run(
        "get",
        "get <role name>",
        "Gets detailed information of a role",
        CommandId::RoleGet,
    ),
    Command {
        flags: &[
            FlagDef::bool(
                "from-key",
                "grant a permission of keys that are greater than or equal to the given key using byte compare",
            ),
            FlagDef::bool("prefix", "grant a prefix permission"),
        ],
        ..run(
            "grant-permission",
            "grant-permission [options] <role name> <permission type> <key> [endkey]",
            "Grants a key to a role",
            CommandId::RoleGrantPermission,
        )
    },
    run("list", "list", "Lists all roles", CommandId::RoleList),
    Command {
        flags: &[
            FlagDef::bool(
                "from-key",
                "revoke a permission of keys that are greater than or equal to the given key using byte compare",
            ),
            FlagDef::bool("prefix", "revoke a prefix permission"),
        ],
        ..run(
            "revoke-permission",
            "revoke-permission <role name> <key> [endkey]",
            "Revokes a key from a role",
            CommandId::RoleRevokePermission,
        )
    },
];

static LEASE_CHILDREN: [Command; 5] = [
    run(
        "grant",
        "grant <ttl>",
        "Creates leases",
        CommandId::LeaseGrant,
    ),
    Command {
        flags: &[FlagDef::bool(
            "once",
            "Resets the keep-alive time to its original value and exits immediately",
        )],
        ..run(
            "keep-alive",
            "keep-alive [options] <leaseID>",
            "Keeps leases alive (renew)",
            CommandId::LeaseKeepAlive,
        )
    },
    run(
        "list",
        "list",
        "List all active leases",
        CommandId::LeaseList,
    ),
    run(
        "revoke",
        "revoke <leaseID>",
        "Revokes leases",
        CommandId::LeaseRevoke,
    ),
    Command {
        flags: &[FlagDef::bool("keys", "Get keys attached to this lease")],
        ..run(
            "timetolive",
            "timetolive <leaseID> [options]",
            "Get lease information",
            CommandId::LeaseTimeToLive,
        )
    },
];

/// `watch`'s flags (also parsed for each line of `watch -i`).
pub static WATCH_FLAGS: [FlagDef; 4] = [
    FlagDef::bool("interactive", "Interactive mode").short('i'),
    FlagDef::bool("prefix", "Watch on a prefix if prefix is set"),
    FlagDef::bool(
        "prev-kv",
        "get the previous key-value pair before the event happens",
    ),
    FlagDef::int64("rev", "Revision to start watching"),
];

const BENCH_LONG: &str = "
Runs the scenarios of etcd's benchmark tool (tools/benchmark) against any etcd v3
endpoint: many concurrent clients (--clients) share a number of gRPC connections (--conns),
which are spread over --endpoints in turn. The report gives the total time, the slowest,
fastest and average request, the standard deviation, requests per second, a latency
histogram and percentiles, as etcd's tool prints them; -w json prints it for machines.
A progress indicator is written to stderr while the benchmark runs.
";

/// Flags every `bench` scenario inherits (etcd's benchmark root flags).
pub static BENCH_FLAGS: [FlagDef; 4] = [
    FlagDef::int64("clients", "Total number of gRPC clients").default_to("1"),
    FlagDef::int64("conns", "Total number of gRPC connections").default_to("1"),
    FlagDef::bool("precise", "use full floating point precision"),
    FlagDef::bool("target-leader", "connect only to the leader node"),
];

static BENCH_CHILDREN: [Command; 7] = [
    Command {
        flags: &BENCH_LEASE_FLAGS,
        ..run(
            "lease-keepalive",
            "lease-keepalive",
            "Benchmark lease keepalive",
            CommandId::BenchLeaseKeepalive,
        )
    },
    Command {
        flags: &BENCH_PUT_FLAGS,
        ..run("put", "put", "Benchmark put", CommandId::BenchPut)
    },
    Command {
        flags: &BENCH_RANGE_FLAGS,
        ..run(
            "range",
            "range key [end-range]",
            "Benchmark range",
            CommandId::BenchRange,
        )
    },
    Command {
        flags: &BENCH_TXN_PUT_FLAGS,
        ..run(
            "txn-put",
            "txn-put",
            "Benchmark txn-put",
            CommandId::BenchTxnPut,
        )
    },
    Command {
        flags: &BENCH_TXN_MIXED_FLAGS,
        ..run(
            "txn-mixed",
            "txn-mixed key [end-range]",
            "Benchmark a mixed load of txn-put & txn-range.",
            CommandId::BenchTxnMixed,
        )
    },
    Command {
        long: BENCH_WATCH_LONG,
        flags: &BENCH_WATCH_FLAGS,
        ..run("watch", "watch", "Benchmark watch", CommandId::BenchWatch)
    },
    Command {
        long: "Benchmarks the latency for watches by measuring
the latency between writing to a key and receiving the
associated watch response.",
        flags: &BENCH_WATCH_LATENCY_FLAGS,
        ..run(
            "watch-latency",
            "watch-latency",
            "Benchmark watch latency",
            CommandId::BenchWatchLatency,
        )
    },
];

static BENCH_PUT_FLAGS: [FlagDef; 6] = [
    FlagDef::int64("key-size", "Key size of put request").default_to("8"),
    FlagDef::int64("key-space-size", "Maximum possible keys").default_to("1"),
    FlagDef::int64("rate", "Maximum puts per second (0 is no limit)"),
    FlagDef::bool("sequential-keys", "Use sequential keys"),
    FlagDef::int64("total", "Total number of put requests").default_to("10000"),
    FlagDef::int64("val-size", "Value size of put request").default_to("8"),
];

static BENCH_RANGE_FLAGS: [FlagDef; 3] = [
    FlagDef::str("consistency", "l", "Linearizable(l) or Serializable(s)"),
    FlagDef::int64("rate", "Maximum range requests per second (0 is no limit)"),
    FlagDef::int64("total", "Total number of range requests").default_to("10000"),
];

static BENCH_TXN_PUT_FLAGS: [FlagDef; 6] = [
    FlagDef::int64("key-size", "Key size of txn put").default_to("8"),
    FlagDef::int64("key-space-size", "Maximum possible keys").default_to("1"),
    FlagDef::int64("rate", "Maximum txns per second (0 is no limit)"),
    FlagDef::int64("total", "Total number of txn requests").default_to("10000"),
    FlagDef::int64("txn-ops", "Number of puts per txn").default_to("1"),
    FlagDef::int64("val-size", "Value size of txn put").default_to("8"),
];

/// `bench txn-mixed`'s flags (etcd's `txn_mixed.go`).
pub static BENCH_TXN_MIXED_FLAGS: [FlagDef; 9] = [
    FlagDef::str("consistency", "l", "Linearizable(l) or Serializable(s)"),
    FlagDef::str(
        "end-key",
        "",
        "Read operation range end key. By default, we do full range query with the default limit of 1000.",
    ),
    FlagDef::int64("key-size", "Key size of mixed txn").default_to("8"),
    FlagDef::int64("key-space-size", "Maximum possible keys").default_to("1"),
    FlagDef::int64("limit", "Read operation range result limit").default_to("1000"),
    FlagDef::int64("rate", "Maximum txns per second (0 is no limit)"),
    FlagDef::str("rw-ratio", "1", "Read/write ops ratio"),
    FlagDef::int64("total", "Total number of txn requests").default_to("10000"),
    FlagDef::int64("val-size", "Value size of mixed txn").default_to("8"),
];

static BENCH_WATCH_LATENCY_FLAGS: [FlagDef; 4] = [
    FlagDef::int64("key-size", "Key size of watch response").default_to("32"),
    FlagDef::int64("put-rate", "Number of keys to put per second").default_to("100"),
    FlagDef::int64("total", "Total number of put requests").default_to("10000"),
    FlagDef::int64("val-size", "Value size of watch response").default_to("32"),
];

static BENCH_LEASE_FLAGS: [FlagDef; 1] =
    [FlagDef::int64("total", "Total number of lease keepalive requests").default_to("10000")];

static BENCH_WATCH_FLAGS: [FlagDef; 8] = [
    FlagDef::int64("key-size", "Key size of watch request").default_to("32"),
    FlagDef::int64("key-space-size", "Maximum possible keys").default_to("1"),
    FlagDef::int64(
        "put-rate",
        "Number of keys to put per second (0 is no limit)",
    ),
    FlagDef::int64("put-total", "Number of put requests").default_to("1000"),
    FlagDef::bool("sequential-keys", "Use sequential keys"),
    FlagDef::int64("streams", "Total watch streams").default_to("10"),
    FlagDef::int64("watch-per-stream", "Total watchers per stream").default_to("100"),
    FlagDef::int64("watched-key-total", "Total number of keys to be watched").default_to("1"),
];

const BENCH_WATCH_LONG: &str = "
Benchmark watch tests the performance of processing watch requests and
sending events to watchers. It tests the sending performance by
changing the value of the watched keys with concurrent put
requests.

During the test, each watcher watches (--total/--watchers) keys

(a watcher might watch on the same key multiple times if
--watched-key-total is small).

Each key is watched by (--total/--watched-key-total) watchers.

Unlike etcd's tool, watch creation is timed from the create request to the server's
confirmation, and each event from the start of the put that caused it to its arrival.
";

/// The help flag cobra gives every command; usage text renders its help as
/// "help for <command name>".
pub const HELP_FLAG: FlagDef = FlagDef::bool("help", "help for").short('h');
