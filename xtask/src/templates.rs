//! The tera templates in `templates/`: what `new-service` renders a service from, and what
//! `sync-services` renders the places made from `apps/services.toml` from.

use std::path::Path;

use anyhow::Context as _;

/// Renders `templates/<template>` of the workspace at `root`.
pub fn render_template(
    root: &Path,
    template: &str,
    context: &tera::Context,
) -> anyhow::Result<String> {
    let path = root.join("templates").join(template);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut tera = tera::Tera::default();
    tera.autoescape_on(Vec::new());
    tera.add_raw_template(template, &text)
        .with_context(|| format!("parsing {}", path.display()))?;
    tera.render(template, context)
        .map_err(|error| anyhow::anyhow!("rendering {}: {error:?}", path.display()))
}
