//! Printing responses in etcdctl's output formats (`-w simple|json|fields|table|protobuf`),
//! byte for byte as etcdctl 3.4 prints them (`ctlv3/command/printer*.go`). Each format
//! lives in its own module; [`Printer`] picks one and refuses the combinations etcdctl
//! refuses (`table not supported as output format`).

pub mod auth;
mod cluster;
mod fields;
mod go_json;
mod humanize;
mod json;
mod ops;
mod protobuf;
mod rows;
mod simple;
mod table;

use cairn_client::pb::etcdserverpb as pb;

pub use cluster::{MemberAdded, event_type as event_type_name};
pub use humanize::bytes as humanize_bytes;

use crate::console::Console;
use crate::exit::CliError;

/// One endpoint's health check result (etcdctl's `epHealth`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpHealth {
    /// The endpoint as given.
    pub endpoint: String,
    /// Whether it answered.
    pub health: bool,
    /// How long the check took, as Go prints a duration.
    pub took: String,
    /// Why it is unhealthy ("" when healthy).
    pub error: String,
}

/// One endpoint's status (etcdctl's `epStatus`).
#[derive(Debug, Clone, PartialEq)]
pub struct EpStatus {
    /// The endpoint as given.
    pub endpoint: String,
    /// Its answer to `Maintenance.Status`.
    pub status: pb::StatusResponse,
}

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable lines (the default).
    Simple,
    /// The response as Go's `encoding/json` renders etcd's structs.
    Json,
    /// `"Field" : value` lines.
    Fields,
    /// ASCII tables (member and endpoint commands only).
    Table,
    /// The response's protobuf encoding.
    Protobuf,
}

impl Format {
    /// The format named by `-w`, if it exists.
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "simple" => Some(Format::Simple),
            "json" => Some(Format::Json),
            "fields" => Some(Format::Fields),
            "table" => Some(Format::Table),
            "protobuf" => Some(Format::Protobuf),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Simple => "simple",
            Format::Json => "json",
            Format::Fields => "fields",
            Format::Table => "table",
            Format::Protobuf => "protobuf",
        }
    }
}

/// Prints responses in one format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Printer {
    /// The format.
    pub format: Format,
    /// `--hex`: keys and values as `\x..` escapes (simple format only, as in etcdctl).
    pub hex: bool,
}

impl Printer {
    /// A printer for `-w <name>`; an unknown name is etcdctl's "unsupported output format".
    pub fn new(name: &str, hex: bool) -> Result<Printer, CliError> {
        let format = Format::parse(name)
            .ok_or_else(|| CliError::bad_feature("unsupported output format"))?;
        Ok(Printer { format, hex })
    }

    /// The error etcdctl gives for a response type this format cannot print.
    fn unsupported(self) -> CliError {
        CliError::bad_feature(format!(
            "{} not supported as output format",
            self.format.name()
        ))
    }

    /// A `get` response; `value_only` is `--print-value-only` (simple format).
    pub fn get(
        self,
        r: &pb::RangeResponse,
        value_only: bool,
        c: &mut Console<'_>,
    ) -> Result<(), CliError> {
        match self.format {
            Format::Simple => c.out_bytes(&simple::get(r, self.hex, value_only)),
            Format::Json => c.out(&json::line(json::range(r))),
            Format::Fields => c.out(&fields::get(r)),
            Format::Protobuf => c.out_bytes(&protobuf::encode(r)),
            Format::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// An `auth`, `user` or `role` response.
    pub fn auth(self, out: &auth::AuthOutput, c: &mut Console<'_>) -> Result<(), CliError> {
        match (self.format, &out.fields) {
            (Format::Simple, _) => c.out(&out.simple),
            (Format::Json, _) => c.out(&json::line(out.json.clone())),
            (Format::Fields, Some(fields)) => c.out(fields),
            (Format::Protobuf, _) => c.out_bytes(&out.protobuf),
            (Format::Fields, None) | (Format::Table, _) => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// A `put` response.
    pub fn put(self, r: &pb::PutResponse, c: &mut Console<'_>) -> Result<(), CliError> {
        match self.format {
            Format::Simple => c.out_bytes(&simple::put(r, self.hex)),
            Format::Json => c.out(&json::line(json::put(r))),
            Format::Fields => c.out(&fields::put(r)),
            Format::Protobuf => c.out_bytes(&protobuf::encode(r)),
            Format::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// A `del` response.
    pub fn del(self, r: &pb::DeleteRangeResponse, c: &mut Console<'_>) -> Result<(), CliError> {
        match self.format {
            Format::Simple => c.out_bytes(&simple::del(r, self.hex)),
            Format::Json => c.out(&json::line(json::delete_range(r))),
            Format::Fields => c.out(&fields::del(r)),
            Format::Protobuf => c.out_bytes(&protobuf::encode(r)),
            Format::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// A `txn` response.
    pub fn txn(self, r: &pb::TxnResponse, c: &mut Console<'_>) -> Result<(), CliError> {
        match self.format {
            Format::Simple => c.out_bytes(&simple::txn(r, self.hex)),
            Format::Json => c.out(&json::line(json::txn(r))),
            Format::Fields => c.out(&fields::txn(r)),
            Format::Protobuf => c.out_bytes(&protobuf::encode(r)),
            Format::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// A `member list` response.
    pub fn member_list(
        self,
        r: &pb::MemberListResponse,
        c: &mut Console<'_>,
    ) -> Result<(), CliError> {
        match self.format {
            Format::Simple => c.out(&simple::member_list(r)),
            Format::Json => c.out(&json::line(json::member_list(r))),
            Format::Fields => c.out(&fields::member_list(r)),
            Format::Table => c.out(&table::member_list(r)),
            Format::Protobuf => c.out_bytes(&protobuf::encode(r)),
        }
        Ok(())
    }

    /// `endpoint health` results (the simple format writes them to stderr, as etcdctl does).
    pub fn endpoint_health(self, list: &[EpHealth], c: &mut Console<'_>) -> Result<(), CliError> {
        match self.format {
            Format::Simple => c.err(&simple::endpoint_health(list)),
            Format::Json => c.out(&json::line(json::endpoint_health(list))),
            Format::Fields => c.out(&fields::endpoint_health(list)),
            Format::Table => c.out(&table::endpoint_health(list)),
            Format::Protobuf => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// `endpoint status` results.
    pub fn endpoint_status(self, list: &[EpStatus], c: &mut Console<'_>) -> Result<(), CliError> {
        match self.format {
            Format::Simple => c.out(&simple::endpoint_status(list)),
            Format::Json => c.out(&json::line(json::endpoint_status(list))),
            Format::Fields => c.out(&fields::endpoint_status(list)),
            Format::Table => c.out(&table::endpoint_status(list)),
            Format::Protobuf => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// A `member add` response (the simple format's environment lines are printed by the
    /// command, which needs a fresh member list for them).
    pub fn member_add(
        self,
        r: &pb::MemberAddResponse,
        c: &mut Console<'_>,
    ) -> Result<(), CliError> {
        match self.format {
            Format::Simple => c.out(&cluster::member_add_simple(r)),
            Format::Json => c.out(&json::line(cluster::members_json(
                &r.header,
                r.member.as_ref(),
                &r.members,
            ))),
            Format::Protobuf => c.out_bytes(&protobuf::encode(r)),
            Format::Fields | Format::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// A `member remove` response.
    pub fn member_remove(
        self,
        id: u64,
        r: &pb::MemberRemoveResponse,
        c: &mut Console<'_>,
    ) -> Result<(), CliError> {
        let change = MemberChange {
            id,
            verb: "removed from",
            header: &r.header,
            members: &r.members,
        };
        self.member_change(&change, &protobuf::encode(r), c)
    }

    /// A `member update` response.
    pub fn member_update(
        self,
        id: u64,
        r: &pb::MemberUpdateResponse,
        c: &mut Console<'_>,
    ) -> Result<(), CliError> {
        let change = MemberChange {
            id,
            verb: "updated in",
            header: &r.header,
            members: &r.members,
        };
        self.member_change(&change, &protobuf::encode(r), c)
    }

    /// A `member promote` response.
    pub fn member_promote(
        self,
        id: u64,
        r: &pb::MemberPromoteResponse,
        c: &mut Console<'_>,
    ) -> Result<(), CliError> {
        let change = MemberChange {
            id,
            verb: "promoted in",
            header: &r.header,
            members: &r.members,
        };
        self.member_change(&change, &protobuf::encode(r), c)
    }

    fn member_change(
        self,
        change: &MemberChange<'_>,
        encoded: &[u8],
        c: &mut Console<'_>,
    ) -> Result<(), CliError> {
        match self.format {
            Format::Simple => c.out(&cluster::member_change_simple(
                change.id,
                change.verb,
                change.header,
            )),
            Format::Json => c.out(&json::line(cluster::members_json(
                change.header,
                None,
                change.members,
            ))),
            Format::Protobuf => c.out_bytes(encoded),
            Format::Fields | Format::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// A `move-leader` response.
    pub fn move_leader(
        self,
        leader: u64,
        target: u64,
        r: &pb::MoveLeaderResponse,
        c: &mut Console<'_>,
    ) -> Result<(), CliError> {
        match self.format {
            Format::Simple => c.out(&cluster::move_leader_simple(leader, target)),
            Format::Json => c.out(&json::line(header_only_json(&r.header))),
            Format::Protobuf => c.out_bytes(&protobuf::encode(r)),
            Format::Fields | Format::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// A `lease grant` response.
    pub fn lease_grant(
        self,
        r: &pb::LeaseGrantResponse,
        c: &mut Console<'_>,
    ) -> Result<(), CliError> {
        match self.format {
            Format::Simple => c.out(&format!(
                "lease {:016x} granted with TTL({}s)\n",
                r.id, r.ttl
            )),
            Format::Json => c.out(&json::line(cluster::lease_grant_json(r))),
            Format::Fields => c.out(&id_ttl_fields(&r.header, r.id, r.ttl)),
            Format::Protobuf => c.out_bytes(&protobuf::encode(&r.header.unwrap_or_default())),
            Format::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// A `lease revoke` response.
    pub fn lease_revoke(
        self,
        id: i64,
        r: &pb::LeaseRevokeResponse,
        c: &mut Console<'_>,
    ) -> Result<(), CliError> {
        match self.format {
            Format::Simple => c.out(&format!("lease {id:016x} revoked\n")),
            Format::Json => c.out(&json::line(header_only_json(&r.header))),
            Format::Fields => c.out(&cluster::fields_header(&r.header)),
            Format::Protobuf => c.out_bytes(&protobuf::encode(r)),
            Format::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// A `lease timetolive` response; `keys` is `--keys`.
    pub fn lease_time_to_live(
        self,
        r: &pb::LeaseTimeToLiveResponse,
        keys: bool,
        c: &mut Console<'_>,
    ) -> Result<(), CliError> {
        match self.format {
            Format::Simple => c.out(&cluster::lease_time_to_live_simple(r, keys)),
            Format::Json => c.out(&json::line(cluster::lease_time_to_live_json(r))),
            Format::Fields => c.out(&cluster::lease_time_to_live_fields(r)),
            Format::Protobuf => c.out_bytes(&protobuf::encode(&r.header.unwrap_or_default())),
            Format::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// A `lease list` response.
    pub fn lease_list(
        self,
        r: &pb::LeaseLeasesResponse,
        c: &mut Console<'_>,
    ) -> Result<(), CliError> {
        match self.format {
            Format::Simple => c.out(&cluster::lease_list_simple(r)),
            Format::Json => c.out(&json::line(cluster::lease_list_json(r))),
            Format::Fields => c.out(&cluster::lease_list_fields(r)),
            Format::Protobuf => c.out_bytes(&protobuf::encode(&r.header.unwrap_or_default())),
            Format::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// A `lease keep-alive` answer.
    pub fn lease_keep_alive(
        self,
        r: &pb::LeaseKeepAliveResponse,
        c: &mut Console<'_>,
    ) -> Result<(), CliError> {
        match self.format {
            Format::Simple => c.out(&format!(
                "lease {:016x} keepalived with TTL({})\n",
                r.id, r.ttl
            )),
            Format::Json => c.out(&json::line(cluster::lease_keep_alive_json(r))),
            Format::Fields => c.out(&id_ttl_fields(&r.header, r.id, r.ttl)),
            Format::Protobuf => c.out_bytes(&protobuf::encode(&r.header.unwrap_or_default())),
            Format::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// One watch response.
    pub fn watch(self, r: &pb::WatchResponse, c: &mut Console<'_>) -> Result<(), CliError> {
        match self.format {
            Format::Simple => c.out_bytes(&simple::watch(r, self.hex)),
            Format::Json => c.out(&json::line(cluster::watch_json(r))),
            Format::Fields => c.out(&fields::watch(r)),
            Format::Protobuf | Format::Table => return Err(self.unsupported()),
        }
        Ok(())
    }
}

/// A membership change, as the printers need it.
struct MemberChange<'a> {
    id: u64,
    verb: &'static str,
    header: &'a Option<pb::ResponseHeader>,
    members: &'a [pb::Member],
}

/// `{"header":…}`, or `{}` without a header.
fn header_only_json(header: &Option<pb::ResponseHeader>) -> String {
    go_json::Object::new()
        .opt("header", header.as_ref().map(json::header))
        .finish()
}

/// The header lines, then `"ID"` and `"TTL"`.
fn id_ttl_fields(header: &Option<pb::ResponseHeader>, id: i64, ttl: i64) -> String {
    format!(
        "{}\"ID\" : {id}\n\"TTL\" : {ttl}\n",
        cluster::fields_header(header)
    )
}
