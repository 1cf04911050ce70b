//! Printing what the operations commands answer: `alarm list`/`alarm disarm` (etcdctl's
//! `Alarm` printers) and `snapshot status` (its `DBStatus` printers), in every format
//! etcdctl 3.4 has for them.

use cairn_client::pb::etcdserverpb as pb;
use cairn_core::apply::alarm::alarm_name;
use cairn_core::snapshot::SnapshotStatus;

use super::go_json::Object;
use super::{Format, Printer, fields, humanize, json, protobuf, rows, table};
use crate::console::Console;
use crate::exit::CliError;

impl Printer {
    /// An `alarm list` or `alarm disarm` response: one alarm per line in the simple format
    /// (gogoproto's compact text, trailing space included), no table.
    pub fn alarm(self, r: &pb::AlarmResponse, c: &mut Console<'_>) -> Result<(), CliError> {
        match self.format {
            Format::Simple => c.out(&alarm_simple(r)),
            Format::Json => c.out(&json::line(alarm_json(r))),
            Format::Fields => c.out(&alarm_fields(r)),
            Format::Protobuf => c.out_bytes(&protobuf::encode(r)),
            Format::Table => return Err(self.unsupported()),
        }
        Ok(())
    }

    /// A `snapshot status` summary (no protobuf form, as in etcdctl).
    pub fn db_status(self, s: &SnapshotStatus, c: &mut Console<'_>) -> Result<(), CliError> {
        match self.format {
            Format::Simple => c.out(&format!("{}\n", db_status_row(s).join(", "))),
            Format::Json => c.out(&json::line(db_status_json(s))),
            Format::Fields => c.out(&db_status_fields(s)),
            Format::Table => c.out(&table::db_status(db_status_table(s))),
            Format::Protobuf => return Err(self.unsupported()),
        }
        Ok(())
    }
}

fn alarm_simple(r: &pb::AlarmResponse) -> String {
    r.alarms
        .iter()
        .map(|a| format!("memberID:{} alarm:{} \n", a.member_id, alarm_name(a.alarm)))
        .collect()
}

fn alarm_json(r: &pb::AlarmResponse) -> String {
    let alarms = r
        .alarms
        .iter()
        .map(|a| {
            Object::new()
                .uint("memberID", a.member_id)
                .int("alarm", i64::from(a.alarm))
                .finish()
        })
        .collect();
    Object::new()
        .opt("header", r.header.as_ref().map(json::header))
        .list("alarms", alarms)
        .finish()
}

fn alarm_fields(r: &pb::AlarmResponse) -> String {
    let mut out = String::new();
    fields::header(&mut out, &r.header);
    for a in &r.alarms {
        out.push_str(&format!("\"MemberID\" : {}\n", a.member_id));
        out.push_str(&format!("\"AlarmType\" : {}\n\n", alarm_name(a.alarm)));
    }
    out
}

/// etcdctl's `makeDBStatusTable` row: hash in hex, revision, keys, humanized size.
fn db_status_row(s: &SnapshotStatus) -> Vec<String> {
    vec![
        format!("{:x}", s.hash),
        s.revision.to_string(),
        s.total_keys.to_string(),
        humanize::bytes(s.total_size),
    ]
}

fn db_status_table(s: &SnapshotStatus) -> rows::Table {
    (
        vec!["hash", "revision", "total keys", "total size"],
        vec![db_status_row(s)],
    )
}

/// Go's `json.Marshal` of `snapshot.Status`: no `omitempty`, so zeros are written.
fn db_status_json(s: &SnapshotStatus) -> String {
    Object::new()
        .raw("hash", s.hash.to_string())
        .raw("revision", s.revision.to_string())
        .raw("totalKey", s.total_keys.to_string())
        .raw("totalSize", s.total_size.to_string())
        .finish()
}

fn db_status_fields(s: &SnapshotStatus) -> String {
    format!(
        "\"Hash\" : {}\n\"Revision\" : {}\n\"Keys\" : {}\n\"Size\" : {}\n",
        s.hash, s.revision, s.total_keys, s.total_size
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> SnapshotStatus {
        SnapshotStatus {
            hash: 0x24eb_cebc,
            revision: 17,
            total_keys: 31,
            total_size: 180_224,
        }
    }

    #[test]
    fn db_status_prints_as_etcdctl_does() {
        assert_eq!(
            db_status_row(&status()).join(", "),
            "24ebcebc, 17, 31, 180 kB"
        );
        assert_eq!(
            db_status_json(&status()),
            r#"{"hash":619433660,"revision":17,"totalKey":31,"totalSize":180224}"#
        );
        assert_eq!(
            table::db_status(db_status_table(&status())),
            "+----------+----------+------------+------------+\n\
             |   HASH   | REVISION | TOTAL KEYS | TOTAL SIZE |\n\
             +----------+----------+------------+------------+\n\
             | 24ebcebc |       17 |         31 |     180 kB |\n\
             +----------+----------+------------+------------+\n"
        );
    }

    #[test]
    fn alarms_print_as_etcdctl_does() {
        let r = pb::AlarmResponse {
            header: None,
            alarms: vec![pb::AlarmMember {
                member_id: 17_496_614_320_493_254_894,
                alarm: pb::AlarmType::Nospace as i32,
            }],
        };
        assert_eq!(
            alarm_simple(&r),
            "memberID:17496614320493254894 alarm:NOSPACE \n"
        );
        assert_eq!(
            alarm_json(&r),
            r#"{"alarms":[{"memberID":17496614320493254894,"alarm":1}]}"#
        );
        assert_eq!(alarm_json(&pb::AlarmResponse::default()), "{}");
    }
}
