//! RESP wire format: reading client requests and writing replies.
//!
//! `decode` finds the requests in the bytes a client sends, exactly as
//! Redis's networking layer does, including its protocol error texts; `args`
//! is how a command reads a request's arguments;
//! `encode` writes RESP2/RESP3 replies.

pub mod args;
pub mod decode;
pub mod encode;
