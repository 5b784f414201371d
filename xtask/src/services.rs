//! The one list of services, `apps/services.toml`, and the places generated from it.
//!
//! `cargo xtask up` reads the list (see `stack/`). docker-compose.yml's services and volumes
//! sections and the service tables in README.md and docs/ARCHITECTURE.md are rendered from it
//! between marker comments by [`sync`] (`cargo xtask sync-services`). [`problems`] says where the
//! workspace disagrees with the list; the `services_are_in_step` test runs it on every
//! `make test`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail, ensure};
use serde::{Deserialize, Serialize};

use crate::templates::render_template;

/// Where the list lives, relative to the workspace root.
pub const LIST: &str = "apps/services.toml";
/// The admin port of the first service; the next new service gets the highest one plus one.
pub const FIRST_ADMIN_PORT: u16 = 9101;

/// How a service keeps its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// Its own PostgreSQL database, with sqlx migrations.
    Postgres,
    /// JSON values in Redis.
    Redis,
    /// JSON documents: in MongoDB when the service is given MONGODB_URL (docker-compose
    /// gives it one), otherwise PostgreSQL JSONB.
    Mongo,
}

impl StoreKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Redis => "redis",
            Self::Mongo => "mongo",
        }
    }

    /// Whether the service can keep its state in PostgreSQL and so has migrations (the
    /// `mongo` kind does when it is not given MONGODB_URL).
    pub fn uses_postgres(self) -> bool {
        self != Self::Redis
    }
}

/// One entry of the list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceEntry {
    pub name: String,
    pub store: StoreKind,
    pub admin_port: u16,
    pub description: String,
    /// Extra arguments in the dev stack and docker-compose; `{keys}` stands for the
    /// directory of the dev keys (`.dev/keys`, mounted at /etc/emporium/keys in compose).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dev_args: Vec<String>,
}

/// What `{keys}` in a service's `dev_args` stands for.
pub const KEYS_PLACEHOLDER: &str = "{keys}";
/// Where docker-compose mounts the dev keys.
pub const COMPOSE_KEYS_DIR: &str = "/etc/emporium/keys";

impl ServiceEntry {
    /// The cargo package and binary: `gift-card-service`.
    pub fn package(&self) -> String {
        format!("{}-service", self.name)
    }

    /// The name in Rust, protobuf and NATS: `gift_card`.
    pub fn snake(&self) -> String {
        self.name.replace('-', "_")
    }

    /// This entry as a `[[service]]` table, to append to the list.
    pub fn to_toml(&self) -> String {
        #[derive(Serialize)]
        struct One<'a> {
            service: [&'a ServiceEntry; 1],
        }
        toml::to_string(&One { service: [self] }).expect("a service entry serializes")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListFile {
    #[serde(default)]
    service: Vec<ServiceEntry>,
}

/// Rust keywords (strict and reserved): a name becomes a module (`api::<name>`).
const RUST_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use",
    "where", "while", "abstract", "become", "box", "do", "final", "gen", "macro", "override",
    "priv", "try", "typeof", "unsized", "virtual", "yield",
];

/// Names the platform already uses for something else (the contracts crate's own modules,
/// workspace crates).
const RESERVED: &[&str] = &[
    "common", "options", "emporium", "google", "tests", "gateway", "xtask", "bench", "host",
];

/// Checks a service name; the error says what is wrong with it.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    ensure!(
        name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
        "invalid service name {name:?}: use lower case letters, digits and hyphens, starting with a letter ([a-z][a-z0-9-]*)"
    );
    ensure!(
        !name.ends_with('-') && !name.contains("--"),
        "invalid service name {name:?}: a hyphen must sit between two words"
    );
    ensure!(
        name.len() <= 40,
        "invalid service name {name:?}: at most 40 characters"
    );
    let snake = name.replace('-', "_");
    ensure!(
        !RUST_KEYWORDS.contains(&snake.as_str()),
        "invalid service name {name:?}: it is a Rust keyword"
    );
    ensure!(
        !RESERVED.contains(&snake.as_str()),
        "invalid service name {name:?}: the platform already uses that name"
    );
    Ok(())
}

/// Checks a description: it goes into a proto string, TOML, YAML and a Markdown table.
pub fn check_description(description: &str) -> anyhow::Result<()> {
    ensure!(
        !description.trim().is_empty(),
        "the description must not be empty"
    );
    ensure!(
        !description
            .chars()
            .any(|c| c.is_control() || matches!(c, '"' | '\\' | '|')),
        "invalid description {description:?}: one line, without quotes, backslashes or |"
    );
    Ok(())
}

/// Parses the list and checks what every entry must satisfy.
pub fn parse(text: &str) -> anyhow::Result<Vec<ServiceEntry>> {
    let file: ListFile = toml::from_str(text).context("parsing apps/services.toml")?;
    let mut names = BTreeSet::new();
    let mut ports = BTreeSet::new();
    for entry in &file.service {
        check_name(&entry.name)
            .with_context(|| format!("apps/services.toml: service {:?}", entry.name))?;
        check_description(&entry.description)
            .with_context(|| format!("apps/services.toml: service {:?}", entry.name))?;
        if !names.insert(entry.name.as_str()) {
            bail!("apps/services.toml lists {:?} twice", entry.name);
        }
        if !ports.insert(entry.admin_port) {
            bail!(
                "apps/services.toml: admin port {} is used twice",
                entry.admin_port
            );
        }
    }
    Ok(file.service)
}

/// Reads the list of the workspace at `root`.
pub fn load(root: &Path) -> anyhow::Result<Vec<ServiceEntry>> {
    let path = root.join(LIST);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text)
}

/// The admin port for a service added after `services`.
pub fn next_admin_port(services: &[ServiceEntry]) -> u16 {
    services
        .iter()
        .map(|service| service.admin_port + 1)
        .max()
        .unwrap_or(FIRST_ADMIN_PORT)
}

/// A section of a file that is generated between two marker lines. A file may have several;
/// they are rendered in the order of [`SECTIONS`].
struct Section {
    file: &'static str,
    begin: &'static str,
    end: &'static str,
    template: &'static str,
}

const SECTIONS: &[Section] = &[
    Section {
        file: "docker-compose.yml",
        begin: "  # BEGIN generated services",
        end: "  # END generated services",
        template: "places/compose.yml.tera",
    },
    // Top-level named volumes must be declared outside `services:`: the ones the generated
    // services section uses (MongoDB's, when a service's store is mongo).
    Section {
        file: "docker-compose.yml",
        begin: "  # BEGIN generated volumes",
        end: "  # END generated volumes",
        template: "places/compose-volumes.yml.tera",
    },
    Section {
        file: "README.md",
        begin: "<!-- BEGIN generated services",
        end: "<!-- END generated services -->",
        template: "places/services-table.md.tera",
    },
    Section {
        file: "docs/ARCHITECTURE.md",
        begin: "<!-- BEGIN generated services",
        end: "<!-- END generated services -->",
        template: "places/services-table.md.tera",
    },
    // Prometheus under docker-compose scrapes every service's admin port by its DNS name.
    Section {
        file: "infra/prometheus/prometheus.yml",
        begin: "  # BEGIN generated scrape jobs",
        end: "  # END generated scrape jobs",
        template: "places/prometheus-targets.yml.tera",
    },
    // The Helm chart runs every service of the list: its `services` value.
    Section {
        file: "infra/helm/emporium/values.yaml",
        begin: "# BEGIN generated services",
        end: "# END generated services",
        template: "places/helm-values.yaml.tera",
    },
    // Terraform gives each service whose state is in PostgreSQL its database and role.
    Section {
        file: "infra/terraform/environments/production/services.tf",
        begin: "# BEGIN generated services",
        end: "# END generated services",
        template: "places/terraform-services.tf.tera",
    },
];

#[derive(Serialize)]
struct PlaceService {
    name: String,
    package: String,
    snake: String,
    store: &'static str,
    admin_port: u16,
    description: String,
    /// The compose `command`, as a JSON array (valid YAML).
    command: String,
    /// Whether it reads the dev keys (they are mounted then).
    uses_keys: bool,
}

/// The files of the workspace at `root` with their generated sections rendered from
/// `services`: (path, current text, wanted text), one entry per file.
pub fn render_places(
    root: &Path,
    services: &[ServiceEntry],
) -> anyhow::Result<Vec<(PathBuf, String, String)>> {
    let places: Vec<PlaceService> = services
        .iter()
        .map(|service| {
            let mut command = vec![service.package()];
            command.extend(
                service
                    .dev_args
                    .iter()
                    .map(|arg| arg.replace(KEYS_PLACEHOLDER, COMPOSE_KEYS_DIR)),
            );
            PlaceService {
                uses_keys: service
                    .dev_args
                    .iter()
                    .any(|arg| arg.contains(KEYS_PLACEHOLDER)),
                name: service.name.clone(),
                package: service.package(),
                snake: service.snake(),
                store: service.store.as_str(),
                admin_port: service.admin_port,
                description: service.description.clone(),
                command: format!(
                    "[{}]",
                    command
                        .iter()
                        .map(|part| serde_json::Value::from(part.as_str()).to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        })
        .collect();
    let mut context = tera::Context::new();
    context.insert("services", &places);
    // docker-compose.yml has a MongoDB server when some service keeps its documents there.
    context.insert(
        "mongodb",
        &services
            .iter()
            .any(|service| service.store == StoreKind::Mongo),
    );

    let mut out: Vec<(PathBuf, String, String)> = Vec::new();
    for section in SECTIONS {
        let path = root.join(section.file);
        // The sections of one file are applied one after the other to one wanted text.
        let index = match out.iter().position(|(seen, _, _)| *seen == path) {
            Some(index) => index,
            None => {
                let current = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                out.push((path, current.clone(), current));
                out.len() - 1
            }
        };
        let block = render_template(root, section.template, &context)?;
        let wanted = &mut out[index].2;
        *wanted = replace_section(wanted, section)
            .map(|(before, after)| format!("{before}{}{after}", block.trim_end_matches('\n')))
            .with_context(|| {
                format!(
                    "{}: the generated section's marker lines ({:?} ... {:?}) are missing",
                    section.file,
                    section.begin.trim(),
                    section.end.trim()
                )
            })?;
    }
    Ok(out)
}

/// The text before the begin marker line and from the end of the end marker line.
fn replace_section<'a>(text: &'a str, section: &Section) -> Option<(&'a str, &'a str)> {
    let begin = text.find(&format!("\n{}", section.begin))? + 1;
    let end_marker = text[begin..].find(section.end)? + begin;
    let end = text[end_marker..]
        .find('\n')
        .map_or(text.len(), |n| end_marker + n);
    Some((&text[..begin], &text[end..]))
}

/// Rewrites the generated sections of the workspace at `root` from its list; returns the
/// files that changed.
pub fn sync(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let services = load(root)?;
    let mut changed = Vec::new();
    for (path, current, wanted) in render_places(root, &services)? {
        if current != wanted {
            std::fs::write(&path, wanted).with_context(|| format!("writing {}", path.display()))?;
            changed.push(path);
        }
    }
    Ok(changed)
}

/// Every `.rs` file under `dir`, recursively; none when it does not exist.
fn rust_sources(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// Everything in the workspace at `root` that disagrees with its list; empty when in step.
pub fn problems(root: &Path) -> anyhow::Result<Vec<String>> {
    let services = load(root)?;
    let mut problems = Vec::new();
    let listed: BTreeSet<&str> = services.iter().map(|s| s.name.as_str()).collect();

    let apps = root.join("apps");
    for entry in std::fs::read_dir(&apps).with_context(|| format!("reading {}", apps.display()))? {
        let entry = entry?;
        if entry.path().join("Cargo.toml").exists() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !listed.contains(name.as_str()) {
                problems.push(format!(
                    "apps/{name} is not in {LIST}: add it there (or generate services with `cargo xtask new-service`)"
                ));
            }
        }
    }

    let workspace =
        std::fs::read_to_string(root.join("Cargo.toml")).context("reading Cargo.toml")?;
    let workspace: toml::Table = toml::from_str(&workspace).context("parsing Cargo.toml")?;
    let members: Vec<&str> = workspace
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(|m| m.as_array())
        .map(|m| m.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();

    for service in &services {
        let dir = format!("apps/{}", service.name);
        let manifest = root.join(&dir).join("Cargo.toml");
        match std::fs::read_to_string(&manifest) {
            Err(_) => problems.push(format!(
                "{LIST} lists {:?} but {dir}/ has no Cargo.toml",
                service.name
            )),
            Ok(text) => {
                let package = toml::from_str::<toml::Table>(&text)
                    .ok()
                    .and_then(|t| t.get("package")?.get("name")?.as_str().map(str::to_owned));
                if package.as_deref() != Some(service.package().as_str()) {
                    problems.push(format!(
                        "{dir}/Cargo.toml: the package must be named {:?}",
                        service.package()
                    ));
                }
            }
        }
        if !members.iter().any(|m| *m == dir || *m == "apps/*") {
            problems.push(format!("Cargo.toml: {dir} is not a workspace member"));
        }
        // The admin port is written once, in the list: the dev stack and docker-compose pass
        // it as ADMIN_ADDR, and a service run bare takes a free port.
        let port = service.admin_port.to_string();
        for source in rust_sources(&root.join(&dir).join("src")) {
            let text = std::fs::read_to_string(&source).unwrap_or_default();
            if text.contains(&port) || text.contains("DEFAULT_ADMIN_PORT") {
                problems.push(format!(
                    "{}: writes an admin port; it belongs in {LIST} only",
                    source.strip_prefix(root).unwrap_or(&source).display()
                ));
            }
        }
        let proto = format!("pkg/api/proto/emporium/{}/v1", service.snake());
        if !root.join(&proto).is_dir() {
            problems.push(format!(
                "{LIST} lists {:?} but {proto}/ does not exist",
                service.name
            ));
        }
    }

    for (path, current, wanted) in render_places(root, &services)? {
        if current != wanted {
            let shown = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string();
            let mut problem = format!("{shown}: a generated section is out of date");
            let _ = write!(problem, "; run `cargo xtask sync-services`");
            problems.push(problem);
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf()
    }

    /// The one list and everything made from it agree: run `cargo xtask sync-services` when
    /// this fails on a generated section.
    #[test]
    fn services_are_in_step() {
        let problems = problems(&workspace_root()).unwrap();
        assert!(
            problems.is_empty(),
            "out of step:\n  {}",
            problems.join("\n  ")
        );
    }

    #[test]
    fn the_list_names_product() {
        let services = load(&workspace_root()).unwrap();
        let product = services.iter().find(|s| s.name == "product").unwrap();
        assert_eq!(product.package(), "product-service");
        assert_eq!(product.store, StoreKind::Postgres);
        assert_eq!(product.admin_port, FIRST_ADMIN_PORT);
    }

    #[test]
    fn bad_lists_are_rejected_with_the_reason() {
        let entry = |name: &str, port: u16| {
            format!(
                "[[service]]\nname = \"{name}\"\nstore = \"redis\"\nadmin_port = {port}\ndescription = \"x\"\n"
            )
        };
        let twice = format!("{}{}", entry("a", 1), entry("a", 2));
        assert!(format!("{:#}", parse(&twice).unwrap_err()).contains("twice"));
        let same_port = format!("{}{}", entry("a", 1), entry("b", 1));
        assert!(format!("{:#}", parse(&same_port).unwrap_err()).contains("port"));
        assert!(parse(&entry("Bad", 1)).is_err());
        assert!(parse(&entry("a", 1).replace("redis", "sqlite")).is_err());
        assert!(parse("[[service]]\nname = \"a\"\n").is_err());
    }

    #[test]
    fn an_entry_round_trips_through_toml() {
        let entry = ServiceEntry {
            name: "gift-card".into(),
            store: StoreKind::Mongo,
            admin_port: 9107,
            description: "Gift cards: balances and redemptions.".into(),
            dev_args: Vec::new(),
        };
        assert_eq!(
            parse(&entry.to_toml()).unwrap(),
            std::slice::from_ref(&entry)
        );
        assert_eq!(entry.snake(), "gift_card");
        assert_eq!(next_admin_port(&[entry]), 9108);
        assert_eq!(next_admin_port(&[]), FIRST_ADMIN_PORT);
    }

    /// A workspace under the system's temp dir, removed on drop.
    struct TempTree(PathBuf);

    impl TempTree {
        fn new() -> Self {
            let root =
                std::env::temp_dir().join(format!("xtask-services-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&root).unwrap();
            Self(root)
        }

        fn write(&self, relative: &str, text: &str) {
            let path = self.0.join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
        }
    }

    impl Drop for TempTree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The smallest workspace that is in step with its list: one service, `widget`, with admin
    /// port 9150, and the places made from the list by the real templates.
    fn workspace_in_step() -> TempTree {
        let tree = TempTree::new();
        tree.write("Cargo.toml", "[workspace]\nmembers = [\"apps/*\"]\n");
        tree.write(
            LIST,
            "[[service]]\nname = \"widget\"\nstore = \"postgres\"\nadmin_port = 9150\ndescription = \"Widgets.\"\n",
        );
        tree.write(
            "apps/widget/Cargo.toml",
            "[package]\nname = \"widget-service\"\n",
        );
        tree.write(
            "apps/widget/src/main.rs",
            "fn main() {\n    widget_service::main();\n}\n",
        );
        std::fs::create_dir_all(tree.0.join("pkg/api/proto/emporium/widget/v1")).unwrap();
        // Each file with the marker lines of each of its sections.
        let mut files: std::collections::BTreeMap<&str, String> = Default::default();
        for section in SECTIONS {
            let template = Path::new("templates").join(section.template);
            let text = std::fs::read_to_string(workspace_root().join(&template)).unwrap();
            tree.write(template.to_str().unwrap(), &text);
            let file = files
                .entry(section.file)
                .or_insert_with(|| "before\n".into());
            file.push_str(&format!("{}\n{}\nafter\n", section.begin, section.end));
        }
        for (file, text) in files {
            tree.write(file, &text);
        }
        sync(&tree.0).unwrap();
        tree
    }

    fn compose(tree: &TempTree) -> String {
        std::fs::read_to_string(tree.0.join("docker-compose.yml")).unwrap()
    }

    /// A service whose store is mongo brings MongoDB into docker-compose.yml (the server, its
    /// volume) and is pointed at it instead of PostgreSQL; without one there is no MongoDB.
    #[test]
    fn compose_has_mongodb_exactly_when_a_service_keeps_documents_there() {
        let tree = workspace_in_step();
        let without = compose(&tree);
        for absent in ["mongodb", "MONGODB_URL"] {
            assert!(!without.contains(absent), "{without}");
        }
        assert!(
            without.contains("DATABASE_URL: postgres://postgres:postgres@postgres:5432/widget")
        );

        let list = std::fs::read_to_string(tree.0.join(LIST)).unwrap();
        tree.write(LIST, &list.replace("\"postgres\"", "\"mongo\""));
        sync(&tree.0).unwrap();
        let with = compose(&tree);
        assert!(
            with.contains("\n  mongodb:\n    image: mongo:7\n"),
            "{with}"
        );
        assert!(with.contains("      - mongodb-data:/data/db\n"), "{with}");
        assert!(
            with.contains("    healthcheck:\n      test: [\"CMD\", \"mongosh\""),
            "{with}"
        );
        assert!(
            with.contains("\n  mongodb-data:\n  # END generated volumes"),
            "the volume is declared: {with}"
        );
        let widget = &with[with.find("\n  widget-service:\n").unwrap()..];
        let widget = &widget[..widget.find("\n\n").unwrap_or(widget.len())];
        assert!(
            widget.contains("      MONGODB_URL: mongodb://mongodb:27017/widget\n"),
            "{widget}"
        );
        assert!(
            widget.contains("      mongodb:\n        condition: service_healthy\n"),
            "{widget}"
        );
        for absent in ["DATABASE_URL", "postgres"] {
            assert!(
                !widget.contains(absent),
                "it does not use PostgreSQL: {widget}"
            );
        }
        assert_eq!(problems(&tree.0).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn a_workspace_in_step_with_its_list_has_no_problems() {
        let tree = workspace_in_step();
        assert_eq!(problems(&tree.0).unwrap(), Vec::<String>::new());
    }

    /// The admin port is written in the list only; a service that writes it (or a default of
    /// its own) anywhere under its `src/` is out of step.
    #[test]
    fn a_service_source_that_writes_an_admin_port_is_a_problem() {
        for (file, source) in [
            (
                "apps/widget/src/main.rs",
                "const ADMIN_ADDR: &str = \"127.0.0.1:9150\";\n",
            ),
            (
                "apps/widget/src/config/admin.rs",
                "pub const DEFAULT_ADMIN_PORT: u16 = 0;\n",
            ),
        ] {
            let tree = workspace_in_step();
            tree.write(file, source);
            assert_eq!(
                problems(&tree.0).unwrap(),
                [format!(
                    "{file}: writes an admin port; it belongs in {LIST} only"
                )],
                "{source}"
            );
        }
    }
}
