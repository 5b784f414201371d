//! The observability checks (being written).

use crate::layout::Layout;

pub fn check(_layout: &Layout) -> anyhow::Result<()> {
    anyhow::bail!("the observability checks are not written yet")
}
