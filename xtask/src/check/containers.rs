//! The containers checks (being written).

use crate::layout::Layout;

pub fn check(_layout: &Layout) -> anyhow::Result<()> {
    anyhow::bail!("the containers checks are not written yet")
}
