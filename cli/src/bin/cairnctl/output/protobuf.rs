//! etcdctl's `protobuf` format: the response's wire encoding, written raw.

/// The message's protobuf encoding.
pub fn encode(message: &impl prost::Message) -> Vec<u8> {
    message.encode_to_vec()
}
