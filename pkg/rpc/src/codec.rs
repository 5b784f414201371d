//! Message encodings on NATS: canonical proto3 JSON by default, protobuf on request.
//!
//! JSON is the default so that `nats req product.get_product '{"id":"..."}'` just works and
//! `nats sub` shows readable traffic; a caller that sets `Content-Type: application/protobuf`
//! gets protobuf back.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::headers;

/// A contract message: a prost message with its canonical JSON form.
pub trait Message:
    prost::Message + Serialize + DeserializeOwned + Default + Send + Sync + 'static
{
}

impl<T> Message for T where
    T: prost::Message + Serialize + DeserializeOwned + Default + Send + Sync + 'static
{
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Codec {
    #[default]
    Json,
    Protobuf,
}

impl Codec {
    /// The codec a message asks for through its `Content-Type`; JSON when it names none.
    pub fn from_content_type(content_type: Option<&str>) -> Result<Self, Error> {
        let Some(value) = content_type else {
            return Ok(Codec::Json);
        };
        let essence = value.split(';').next().unwrap_or("").trim();
        match essence.to_ascii_lowercase().as_str() {
            "" | headers::JSON => Ok(Codec::Json),
            headers::PROTOBUF | "application/x-protobuf" => Ok(Codec::Protobuf),
            other => Err(Error::invalid_argument(format!(
                "unsupported content type {other:?}: use {} or {}",
                headers::JSON,
                headers::PROTOBUF
            ))),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Codec::Json => headers::JSON,
            Codec::Protobuf => headers::PROTOBUF,
        }
    }

    pub fn decode<T: Message>(self, payload: &[u8]) -> Result<T, Error> {
        match self {
            // An empty body is the empty message, so `nats req subject ''` works.
            _ if payload.is_empty() => Ok(T::default()),
            Codec::Json => serde_json::from_slice(payload)
                .map_err(|e| Error::invalid_argument(format!("malformed JSON request: {e}"))),
            Codec::Protobuf => T::decode(payload)
                .map_err(|e| Error::invalid_argument(format!("malformed protobuf request: {e}"))),
        }
    }

    pub fn encode<T: Message>(self, message: &T) -> Result<Bytes, Error> {
        match self {
            Codec::Json => serde_json::to_vec(message)
                .map(Bytes::from)
                .map_err(|e| Error::internal(anyhow::Error::new(e).context("encoding a reply"))),
            Codec::Protobuf => Ok(Bytes::from(message.encode_to_vec())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_are_recognised() {
        assert_eq!(Codec::from_content_type(None).unwrap(), Codec::Json);
        assert_eq!(
            Codec::from_content_type(Some("application/json; charset=utf-8")).unwrap(),
            Codec::Json
        );
        assert_eq!(
            Codec::from_content_type(Some("Application/Protobuf")).unwrap(),
            Codec::Protobuf
        );
        assert!(Codec::from_content_type(Some("text/xml")).is_err());
    }
}
