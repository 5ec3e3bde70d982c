//! ringcast-core: everything that is broker logic and has no I/O.

pub mod glob;
pub mod mesh;
