//! RESP wire format: reading client requests and writing replies.
//!
//! `decode` turns the bytes a client sends into argument vectors, exactly as
//! Redis's networking layer does, including its protocol error texts;
//! `encode` writes RESP2/RESP3 replies.

pub mod decode;
pub mod encode;
