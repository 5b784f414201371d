//! The terraform checks (being written).

use crate::layout::Layout;

pub fn check(_layout: &Layout) -> anyhow::Result<()> {
    anyhow::bail!("the terraform checks are not written yet")
}
