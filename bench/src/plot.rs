//! Latency distribution plot (SVG).

use anyhow::{Result, bail};
use hdrhistogram::Histogram;
use std::path::Path;

/// Writes a latency-by-percentile plot, one line per named histogram.
pub fn latency_svg(_path: &Path, _series: &[(String, Histogram<u64>)]) -> Result<()> {
    bail!("plots are not available yet")
}
