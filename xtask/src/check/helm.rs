//! The helm checks (being written).

use crate::layout::Layout;

pub fn check(_layout: &Layout) -> anyhow::Result<()> {
    anyhow::bail!("the helm checks are not written yet")
}
