//! The alarm store: which members raised which alarm (etcd's `v3alarm.AlarmStore` and
//! `applierV3backend.Alarm`), replicated through the log and kept in the Meta space, so
//! active alarms survive a restart and travel in snapshots.
//!
//! An active NOSPACE alarm caps the store (etcd's `applierV3Capped`): puts, txns with a put
//! and lease grants fail with `ErrNoSpace`, while reads, deletes, compactions and revokes
//! still work. An active CORRUPT alarm refuses every write (etcd's `applierV3Corrupt`).
//! Alarms are listed in (alarm type, member id) order, so every member answers alike
//! (etcd iterates Go maps).

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use prost::Message as _;

use crate::api::etcdserverpb::{
    AlarmMember, AlarmRequest, AlarmResponse, AlarmType, alarm_request::AlarmAction,
};
use crate::storage::{Engine, Order, Space, StorageError, WriteBatch};

/// Meta keys of active alarms: this prefix, the alarm type (u32 BE), the member id (u64 BE).
const ALARM_PREFIX: &[u8] = b"alarm/";
/// The first key after every alarm key.
const ALARM_END: &[u8] = b"alarm0";

/// The active alarms, as `(alarm type, member id)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Alarms {
    active: BTreeSet<(i32, u64)>,
}

fn alarm_key(alarm: i32, member_id: u64) -> Vec<u8> {
    [
        ALARM_PREFIX,
        &(alarm as u32).to_be_bytes(),
        &member_id.to_be_bytes(),
    ]
    .concat()
}

fn member(alarm: i32, member_id: u64) -> AlarmMember {
    AlarmMember { member_id, alarm }
}

impl Alarms {
    /// The alarms stored in `engine`.
    pub fn open(engine: &dyn Engine) -> Result<Alarms, StorageError> {
        let mut active = BTreeSet::new();
        let mut failure = None;
        engine.scan(
            Space::Meta,
            ALARM_PREFIX,
            Some(ALARM_END),
            Order::Ascending,
            &mut |_, value| match AlarmMember::decode(value) {
                Ok(m) => {
                    active.insert((m.alarm, m.member_id));
                    ControlFlow::Continue(())
                }
                Err(e) => {
                    failure = Some(StorageError::Corrupt {
                        space: Space::Meta.name(),
                        reason: format!("undecodable alarm record: {e}"),
                    });
                    ControlFlow::Break(())
                }
            },
        )?;
        match failure {
            Some(e) => Err(e),
            None => Ok(Alarms { active }),
        }
    }

    /// Whether any member raised `alarm`.
    pub fn is_active(&self, alarm: AlarmType) -> bool {
        self.active.iter().any(|(a, _)| *a == alarm as i32)
    }

    /// The active alarms of type `alarm` (`NONE`: all of them).
    pub fn list(&self, alarm: i32) -> Vec<AlarmMember> {
        self.active
            .iter()
            .filter(|(a, _)| alarm == AlarmType::None as i32 || *a == alarm)
            .map(|(a, id)| member(*a, *id))
            .collect()
    }

    /// Applies an AlarmRequest (etcd's `applierV3backend.Alarm`): GET lists, ACTIVATE
    /// answers the (new or already active) alarm, DEACTIVATE answers the alarm it removed
    /// (nothing if it was not active). Changes are staged in `batch`.
    pub fn apply(&mut self, req: &AlarmRequest, batch: &mut WriteBatch) -> AlarmResponse {
        let alarms = match AlarmAction::try_from(req.action) {
            Ok(AlarmAction::Get) => self.list(req.alarm),
            Ok(AlarmAction::Activate) => self.activate(req.alarm, req.member_id, batch),
            Ok(AlarmAction::Deactivate) => self.deactivate(req.alarm, req.member_id, batch),
            Err(_) => Vec::new(),
        };
        AlarmResponse {
            header: None,
            alarms,
        }
    }

    fn activate(&mut self, alarm: i32, member_id: u64, batch: &mut WriteBatch) -> Vec<AlarmMember> {
        // etcd stores an alarm of any type it is given, NONE included.
        let raised = member(alarm, member_id);
        if self.active.insert((alarm, member_id)) {
            batch.put(
                Space::Meta,
                alarm_key(alarm, member_id),
                raised.encode_to_vec(),
            );
            tracing::warn!(
                alarm = alarm_name(alarm),
                from = format_args!("{member_id:x}"),
                "alarm raised"
            );
        }
        vec![raised]
    }

    fn deactivate(
        &mut self,
        alarm: i32,
        member_id: u64,
        batch: &mut WriteBatch,
    ) -> Vec<AlarmMember> {
        if !self.active.remove(&(alarm, member_id)) {
            return Vec::new();
        }
        batch.delete(Space::Meta, alarm_key(alarm, member_id));
        tracing::warn!(
            alarm = alarm_name(alarm),
            from = format_args!("{member_id:x}"),
            "alarm disarmed"
        );
        vec![member(alarm, member_id)]
    }
}

/// The alarm's name as etcd prints it (`NOSPACE`), or its number if unknown.
pub fn alarm_name(alarm: i32) -> String {
    AlarmType::try_from(alarm)
        .map(|a| a.as_str_name().to_string())
        .unwrap_or_else(|_| alarm.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Durability;
    use crate::storage::mem::MemEngine;

    fn request(action: AlarmAction, member_id: u64, alarm: AlarmType) -> AlarmRequest {
        AlarmRequest {
            action: action as i32,
            member_id,
            alarm: alarm as i32,
        }
    }

    fn apply(engine: &MemEngine, alarms: &mut Alarms, req: AlarmRequest) -> Vec<AlarmMember> {
        let mut batch = WriteBatch::new();
        let response = alarms.apply(&req, &mut batch);
        engine.write(batch, Durability::Sync).unwrap();
        response.alarms
    }

    #[test]
    fn activated_alarms_are_listed_in_order_and_survive_reopening() {
        let engine = MemEngine::new();
        let mut alarms = Alarms::open(&engine).unwrap();
        let nospace = |id| request(AlarmAction::Activate, id, AlarmType::Nospace);
        assert_eq!(
            apply(&engine, &mut alarms, nospace(9)),
            [member(AlarmType::Nospace as i32, 9)]
        );
        apply(&engine, &mut alarms, nospace(3));
        apply(
            &engine,
            &mut alarms,
            request(AlarmAction::Activate, 5, AlarmType::Corrupt),
        );
        let all = apply(
            &engine,
            &mut alarms,
            request(AlarmAction::Get, 0, AlarmType::None),
        );
        let ids: Vec<(i32, u64)> = all.iter().map(|m| (m.alarm, m.member_id)).collect();
        assert_eq!(ids, [(1, 3), (1, 9), (2, 5)]);
        assert_eq!(Alarms::open(&engine).unwrap(), alarms);
        assert_eq!(alarms.list(AlarmType::Corrupt as i32).len(), 1);
    }

    #[test]
    fn deactivating_answers_only_what_was_active() {
        let engine = MemEngine::new();
        let mut alarms = Alarms::open(&engine).unwrap();
        apply(
            &engine,
            &mut alarms,
            request(AlarmAction::Activate, 7, AlarmType::Nospace),
        );
        assert!(alarms.is_active(AlarmType::Nospace));
        let off = request(AlarmAction::Deactivate, 7, AlarmType::Nospace);
        assert_eq!(apply(&engine, &mut alarms, off).len(), 1);
        assert!(apply(&engine, &mut alarms, off).is_empty());
        assert!(!alarms.is_active(AlarmType::Nospace));
        assert_eq!(Alarms::open(&engine).unwrap(), Alarms::default());
    }

    mod through_the_state_machine {
        use std::sync::Arc;

        use prost::Message as _;

        use super::request;
        use crate::Error;
        use crate::api::cairnpb::{InternalRequest, internal_request::Request};
        use crate::api::etcdserverpb::{
            AlarmType, DeleteRangeRequest, LeaseGrantRequest, PutRequest, RequestOp, TxnRequest,
            alarm_request::AlarmAction, request_op,
        };
        use crate::apply::{Response, StateMachine};
        use crate::storage::Engine;
        use crate::storage::mem::MemEngine;

        fn apply(sm: &StateMachine, index: u64, request: Request) -> Result<Response, Error> {
            let data = InternalRequest {
                id: index,
                request: Some(request),
                auth: None,
            }
            .encode_to_vec();
            sm.apply(index, &data).unwrap().unwrap().result
        }

        fn put(key: &str) -> Request {
            Request::Put(PutRequest {
                key: key.into(),
                value: b"v".to_vec(),
                ..PutRequest::default()
            })
        }

        fn alarm(action: AlarmAction, alarm: AlarmType) -> Request {
            Request::Alarm(request(action, 42, alarm))
        }

        #[test]
        fn nospace_caps_writes_that_need_space_until_disarmed_even_across_restarts() {
            let engine: Arc<dyn Engine> = Arc::new(MemEngine::new());
            let sm = StateMachine::open(engine.clone()).unwrap();
            assert!(apply(&sm, 1, put("a")).is_ok());
            assert!(apply(&sm, 2, alarm(AlarmAction::Activate, AlarmType::Nospace)).is_ok());
            let sm = StateMachine::open(engine.clone()).unwrap();
            assert_eq!(sm.alarms(AlarmType::None).len(), 1);
            assert_eq!(apply(&sm, 3, put("b")), Err(Error::NoSpace));
            let grant = Request::LeaseGrant(LeaseGrantRequest { id: 5, ttl: 60 });
            assert_eq!(apply(&sm, 4, grant), Err(Error::NoSpace));
            let txn_put = Request::Txn(TxnRequest {
                success: vec![RequestOp {
                    request: Some(request_op::Request::RequestPut(PutRequest {
                        key: b"c".to_vec(),
                        ..PutRequest::default()
                    })),
                }],
                ..TxnRequest::default()
            });
            assert_eq!(apply(&sm, 5, txn_put.clone()), Err(Error::NoSpace));
            let delete = Request::DeleteRange(DeleteRangeRequest {
                key: b"a".to_vec(),
                ..DeleteRangeRequest::default()
            });
            assert!(apply(&sm, 6, delete).is_ok());
            assert!(apply(&sm, 7, Request::Txn(TxnRequest::default())).is_ok());
            assert!(apply(&sm, 8, alarm(AlarmAction::Deactivate, AlarmType::Nospace)).is_ok());
            assert!(apply(&sm, 9, txn_put).is_ok());
            assert!(sm.alarms(AlarmType::None).is_empty());
        }

        #[test]
        fn corrupt_refuses_every_write() {
            let sm = StateMachine::open(Arc::new(MemEngine::new())).unwrap();
            assert!(apply(&sm, 1, alarm(AlarmAction::Activate, AlarmType::Corrupt)).is_ok());
            assert_eq!(apply(&sm, 2, put("a")), Err(Error::Corrupt));
            let delete = Request::DeleteRange(DeleteRangeRequest {
                key: b"a".to_vec(),
                ..DeleteRangeRequest::default()
            });
            assert_eq!(apply(&sm, 3, delete), Err(Error::Corrupt));
            let listed = apply(&sm, 4, alarm(AlarmAction::Get, AlarmType::None));
            let Ok(Response::Alarm(listed)) = listed else {
                panic!("unexpected {listed:?}");
            };
            assert_eq!(listed.alarms.len(), 1);
        }

        #[test]
        fn hash_is_equal_for_equal_histories_and_ignores_the_applied_index() {
            let one = StateMachine::open(Arc::new(MemEngine::new())).unwrap();
            let two = StateMachine::open(Arc::new(MemEngine::new())).unwrap();
            apply(&one, 1, put("a")).unwrap();
            two.mark_applied(1).unwrap();
            apply(&two, 2, put("a")).unwrap();
            assert_eq!(one.hash().unwrap(), two.hash().unwrap());
            apply(&one, 2, put("b")).unwrap();
            assert_ne!(one.hash().unwrap().0, two.hash().unwrap().0);
        }
    }
}
