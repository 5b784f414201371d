//! What travels through the layers to a handler and back: a decoded [`Request`] with its
//! context, method and codec, and the encoded [`Reply`]. The serve loop (`server`) makes them
//! and the tower layers (`layers`) wrap them; both depend on this module, not on each other.

use bytes::Bytes;

use crate::codec::Codec;
use crate::context::Context;
use crate::method::MethodDescriptor;

/// A decoded request on its way through the layers to a handler.
#[derive(Debug)]
pub struct Request {
    pub ctx: Context,
    pub method: &'static MethodDescriptor,
    pub codec: Codec,
    pub payload: Bytes,
}

/// An encoded reply.
#[derive(Debug)]
pub struct Reply {
    pub codec: Codec,
    pub payload: Bytes,
}
