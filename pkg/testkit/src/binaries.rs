//! Finding the server binaries.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// The workspace root: this crate lives at `<root>/pkg/testkit`.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("pkg/testkit is two levels below the workspace root")
        .to_path_buf()
}

fn missing(name: &str) -> anyhow::Error {
    anyhow::anyhow!("{name} not found: run `make deps` (or `cargo xtask deps`) to install it")
}

fn is_executable_file(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable_file(candidate))
}

/// A single-binary server: the environment override, `.dev/bin/<name>`, then `PATH`.
fn server_binary(name: &str, env_var: &str) -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(env_var) {
        let path = PathBuf::from(path);
        if is_executable_file(&path) {
            return Ok(path);
        }
        bail!("{env_var}={} is not an executable file", path.display());
    }
    let dev = workspace_root().join(".dev/bin").join(name);
    if is_executable_file(&dev) {
        return Ok(dev);
    }
    on_path(name).ok_or_else(|| missing(name))
}

pub(crate) fn nats_server() -> anyhow::Result<PathBuf> {
    server_binary("nats-server", "NATS_SERVER_BIN")
}

pub(crate) fn redis_server() -> anyhow::Result<PathBuf> {
    server_binary("redis-server", "REDIS_SERVER_BIN")
}

fn is_postgres_bin_dir(dir: &Path) -> bool {
    is_executable_file(&dir.join("initdb")) && is_executable_file(&dir.join("postgres"))
}

/// The directory holding `initdb` and `postgres`.
pub(crate) fn postgres_bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN_DIR") {
        let dir = PathBuf::from(dir);
        if is_postgres_bin_dir(&dir) {
            return Ok(dir);
        }
        bail!("PG_BIN_DIR={} holds no initdb and postgres", dir.display());
    }
    let dev = workspace_root().join(".dev/bin/pg");
    if is_postgres_bin_dir(&dev) {
        return Ok(dev);
    }
    // Links on PATH (such as /usr/local/bin/initdb) lead to the real directory.
    if let Some(dir) = on_path("initdb")
        .and_then(|initdb| initdb.canonicalize().ok())
        .and_then(|initdb| initdb.parent().map(Path::to_path_buf))
        && is_postgres_bin_dir(&dir)
    {
        return Ok(dir);
    }
    newest_debian_postgres(Path::new("/usr/lib/postgresql"))
        .ok_or_else(|| missing("PostgreSQL server (initdb, postgres)"))
}

/// Debian installs each major version under `/usr/lib/postgresql/<major>/bin`.
fn newest_debian_postgres(root: &Path) -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            is_postgres_bin_dir(&bin).then_some((major, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
    }

    #[test]
    fn the_newest_debian_major_version_wins() {
        let root = std::env::temp_dir().join(format!("testkit-pgroot-{}", uuid::Uuid::new_v4()));
        for major in ["9", "15", "13", "not-a-version"] {
            let bin = root.join(major).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            for name in ["initdb", "postgres"] {
                std::fs::write(bin.join(name), "#!/bin/sh\n").unwrap();
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755))
                    .unwrap();
            }
        }
        let found = newest_debian_postgres(&root);
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(found, Some(root.join("15").join("bin")));
    }

    #[test]
    fn a_missing_binary_says_how_to_install_it() {
        let message = missing("nats-server").to_string();
        assert_eq!(
            message,
            "nats-server not found: run `make deps` (or `cargo xtask deps`) to install it"
        );
    }
}
