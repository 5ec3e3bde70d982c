//! RESP wire format: reading client requests and writing replies.
//!
//! `decode` turns the bytes a client sends into argument vectors, exactly as
//! Redis's networking layer does, including its protocol error texts.

pub mod decode;
