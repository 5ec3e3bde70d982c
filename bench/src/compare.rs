//! Side-by-side comparison: starts the servers, runs the shape matrix.

use anyhow::{Result, bail};
use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct CompareArgs {}

pub fn main(_a: CompareArgs) -> Result<bool> {
    bail!("compare is not available yet")
}
