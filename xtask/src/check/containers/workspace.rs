//! What docker-compose.yml is checked against: the binaries the image holds, the list of
//! services, and the files a bind mount may name.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::layout::Layout;
use crate::services::{self, ServiceEntry};

/// Packages whose binaries the Dockerfile leaves out of the image (`--exclude`).
pub const NOT_IN_IMAGE: &[&str] = &["xtask"];

/// The facts of one workspace that compose is checked against.
#[derive(Clone, Debug)]
pub struct Workspace {
    /// Where relative bind-mount sources are looked up (docker-compose.yml's directory).
    pub root: PathBuf,
    /// Every binary the image holds.
    pub binaries: BTreeSet<String>,
    /// `apps/services.toml`.
    pub services: Vec<ServiceEntry>,
    /// Bind-mount sources that are not in the repository but made by a documented command,
    /// relative to `root`: `.dev/keys` (`cargo xtask dev-token`).
    pub made_locally: Vec<PathBuf>,
}

impl Workspace {
    pub fn load(layout: &Layout) -> anyhow::Result<Self> {
        let root = layout.root().to_path_buf();
        let made_locally = vec![
            layout
                .keys()
                .strip_prefix(&root)
                .context("the dev keys live under the workspace")?
                .to_path_buf(),
        ];
        Ok(Self {
            binaries: image_binaries(&root)?,
            services: services::load(&root)?,
            made_locally,
            root,
        })
    }
}

/// The binaries `cargo build --workspace --bins` makes for every member but [`NOT_IN_IMAGE`]:
/// each `[[bin]]`, `src/main.rs` (named after the package) and `src/bin/*` target.
pub fn image_binaries(root: &Path) -> anyhow::Result<BTreeSet<String>> {
    let mut binaries = BTreeSet::new();
    for member in members(root)? {
        let path = member.join("Cargo.toml");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let manifest: toml::Table =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let Some(package) = manifest
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
        else {
            continue;
        };
        if NOT_IN_IMAGE.contains(&package) {
            continue;
        }
        let declared = manifest
            .get("bin")
            .and_then(|b| b.as_array())
            .into_iter()
            .flatten();
        let mut declared_paths = BTreeSet::new();
        for bin in declared {
            let name = bin.get("name").and_then(|n| n.as_str()).unwrap_or(package);
            binaries.insert(name.to_owned());
            if let Some(path) = bin.get("path").and_then(|p| p.as_str()) {
                declared_paths.insert(member.join(path));
            }
        }
        let auto = manifest
            .get("package")
            .and_then(|p| p.get("autobins"))
            .and_then(|a| a.as_bool())
            .unwrap_or(true);
        if !auto {
            continue;
        }
        let main = member.join("src/main.rs");
        if main.exists() && !declared_paths.contains(&main) {
            binaries.insert(package.to_owned());
        }
        if let Ok(entries) = std::fs::read_dir(member.join("src/bin")) {
            for entry in entries.flatten() {
                let path = entry.path();
                if declared_paths.contains(&path) {
                    continue;
                }
                if path.extension().is_some_and(|e| e == "rs") {
                    if let Some(stem) = path.file_stem() {
                        binaries.insert(stem.to_string_lossy().into_owned());
                    }
                } else if path.join("main.rs").exists() {
                    binaries.insert(entry.file_name().to_string_lossy().into_owned());
                }
            }
        }
    }
    Ok(binaries)
}

/// The member directories of the workspace at `root` (`dir` and `dir/*` patterns).
fn members(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(root.join("Cargo.toml")).context("reading Cargo.toml")?;
    let manifest: toml::Table = toml::from_str(&text).context("parsing Cargo.toml")?;
    let patterns = manifest
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(|m| m.as_array())
        .context("Cargo.toml has no [workspace] members")?;
    let mut members = Vec::new();
    for pattern in patterns.iter().filter_map(|p| p.as_str()) {
        match pattern.strip_suffix("/*") {
            Some(parent) => {
                let dir = root.join(parent);
                let entries = std::fs::read_dir(&dir)
                    .with_context(|| format!("reading {}", dir.display()))?;
                let mut found: Vec<PathBuf> = entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.join("Cargo.toml").exists())
                    .collect();
                found.sort();
                members.extend(found);
            }
            None => members.push(root.join(pattern)),
        }
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The image holds the gateway, every service and the tools compose runs, and not xtask.
    #[test]
    fn the_image_binaries_are_found_in_the_manifests() {
        let layout = Layout::discover();
        let binaries = image_binaries(layout.root()).unwrap();
        for expected in ["gateway", "healthcheck", "nats-credentials", "bench"] {
            assert!(binaries.contains(expected), "{expected}: {binaries:?}");
        }
        for service in services::load(layout.root()).unwrap() {
            assert!(
                binaries.contains(&service.package()),
                "{}",
                service.package()
            );
        }
        assert!(!binaries.contains("xtask"), "{binaries:?}");
    }
}
