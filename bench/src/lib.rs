//! ringcast-bench: a verifying publish/subscribe load generator for any
//! Redis-protocol server, and a side-by-side comparison driver.
//!
//! Layers, bottom up: [`resp`], [`nats`] and [`payload`] (bytes on the wire), [`verify`]
//! (what arrived vs. what was sent), [`plan`] and [`matrix`] (workloads),
//! [`tls`] and [`conn`] (connections), [`subscriber`], [`publisher`], [`churn`] (the load engine), [`pacing`],
//! [`probe`] and [`relay`] (the latency probe and its floor), [`outcome`]
//! (what a run is asked and what it found), [`run`] (one run against one server), [`compare`] (servers started here, shape matrix, ratios),
//! [`report`] and [`plot`] (output).

pub mod churn;
pub mod cli;
pub mod compare;
pub mod conn;
pub mod csv;
pub mod floor;
pub mod hgrm;
pub mod matrix;
pub mod nats;
pub mod outcome;
pub mod pacing;
pub mod payload;
pub mod plan;
pub mod plot;
pub mod probe;
pub mod publisher;
pub mod relay;
pub mod report;
pub mod resp;
pub mod run;
pub mod series;
pub mod servers;
pub mod shared;
pub mod subscriber;
pub mod sys;
pub mod tls;
pub mod verify;
