//! Tests of the service generator: rendered snapshots, idempotence, refusal of bad input, and
//! a generated service built and tested in a copy of the workspace.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use super::*;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is one level below the workspace root")
        .to_path_buf()
}

fn args(name: &str) -> NewServiceArgs {
    NewServiceArgs {
        name: name.into(),
        store: None,
        description: None,
        force: false,
    }
}

/// A directory under the system's temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "xtask-{label}-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn copy_file(from_root: &Path, to_root: &Path, relative: &Path) {
    let target = to_root.join(relative);
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::copy(from_root.join(relative), &target)
        .unwrap_or_else(|e| panic!("copying {}: {e}", relative.display()));
}

fn files_under(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(root.join(dir)).unwrap() {
        let entry = entry.unwrap();
        let relative = dir.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            files_under(root, &relative, out);
        } else {
            out.push(relative);
        }
    }
}

/// The parts of the workspace the generator reads and writes: enough to generate into, fast.
fn small_workspace() -> TempDir {
    let root = workspace_root();
    let dir = TempDir::new("new-service");
    let mut files: Vec<PathBuf> = [
        "Cargo.toml",
        "apps/services.toml",
        "docker-compose.yml",
        "README.md",
        "docs/ARCHITECTURE.md",
        "infra/prometheus/prometheus.yml",
        "infra/terraform/environments/production/services.tf",
        "infra/helm/emporium/values.yaml",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    // Every listed service's manifest, so the copy's list is in step.
    files.extend(
        services::load(&root)
            .unwrap()
            .iter()
            .map(|service| PathBuf::from(format!("apps/{}/Cargo.toml", service.name))),
    );
    files_under(&root, Path::new("templates"), &mut files);
    files_under(&root, Path::new("pkg/api/proto"), &mut files);
    for file in files {
        copy_file(&root, &dir.0, &file);
    }
    dir
}

/// Every file under `root` and its bytes.
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = Vec::new();
    files_under(root, Path::new(""), &mut files);
    files
        .into_iter()
        .map(|file| {
            let bytes = std::fs::read(root.join(&file)).unwrap();
            (file, bytes)
        })
        .collect()
}

fn sample(store: StoreKind) -> ServiceEntry {
    ServiceEntry {
        name: "gift-card".into(),
        store,
        admin_port: 9102,
        description: "Gift cards: balances and redemptions.".into(),
        dev_args: Vec::new(),
    }
}

/// What the templates render for a sample service of each store kind, compared with the
/// files under `xtask/tests/snapshots/<store>/`. The postgres snapshot is complete; the other
/// stores keep only the files that differ from it, so a store-independent template change is
/// reviewed once. After a deliberate template change, bless them with
/// `UPDATE_SNAPSHOTS=1 cargo test -p xtask`.
#[test]
fn rendered_templates_match_the_snapshots() {
    let root = workspace_root();
    let snapshots = root.join("xtask/tests/snapshots");
    let bless = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut stale = Vec::new();
    let reference: BTreeMap<PathBuf, String> = plan(&root, &sample(StoreKind::Postgres))
        .unwrap()
        .into_iter()
        .map(|file| (file.path, file.content))
        .collect();
    for store in [StoreKind::Postgres, StoreKind::Redis, StoreKind::Mongo] {
        let dir = snapshots.join(store.as_str());
        if bless {
            let _ = std::fs::remove_dir_all(&dir);
        }
        let expected: Vec<_> = plan(&root, &sample(store))
            .unwrap()
            .into_iter()
            .filter(|file| {
                store == StoreKind::Postgres || reference.get(&file.path) != Some(&file.content)
            })
            .collect();
        for file in &expected {
            let snapshot = dir.join(&file.path);
            if bless {
                std::fs::create_dir_all(snapshot.parent().unwrap()).unwrap();
                std::fs::write(&snapshot, &file.content).unwrap();
            } else if std::fs::read_to_string(&snapshot).ok().as_deref() != Some(&file.content) {
                stale.push(snapshot.strip_prefix(&root).unwrap().display().to_string());
            }
        }
        // A snapshot the generator no longer renders differently is stale too.
        for snapshot in tree(&dir).into_keys() {
            if !expected.iter().any(|file| file.path == snapshot) {
                stale.push(format!(
                    "{} (not rendered)",
                    dir.join(&snapshot).strip_prefix(&root).unwrap().display()
                ));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "rendered output differs from the snapshots (bless with `UPDATE_SNAPSHOTS=1 cargo test -p xtask`):\n  {}",
        stale.join("\n  ")
    );
}

#[test]
fn generated_files_say_so_and_written_once_files_belong_to_the_service() {
    for file in plan(&workspace_root(), &sample(StoreKind::Redis)).unwrap() {
        let generated = is_generated(&file.content);
        assert_eq!(
            generated,
            file.ownership == Ownership::Generated,
            "{}",
            file.path.display()
        );
        if generated {
            assert!(
                file.content
                    .contains("cargo xtask new-service gift-card --force")
            );
        }
    }
}

#[test]
fn a_new_service_lands_everywhere_the_platform_lists_services() {
    let workspace = small_workspace();
    let root = &workspace.0;
    let highest_port = services::load(root)
        .unwrap()
        .iter()
        .map(|s| s.admin_port)
        .max()
        .unwrap();
    let outcome = run(
        root,
        &NewServiceArgs {
            store: Some(StoreKind::Redis),
            description: Some("Wish lists of customers.".into()),
            ..args("wish-list")
        },
    )
    .unwrap();
    assert!(outcome.kept.is_empty(), "{outcome:?}");
    for expected in [
        "apps/wish-list/Cargo.toml",
        "apps/wish-list/src/lib.rs",
        "apps/wish-list/src/store.rs",
        "apps/wish-list/tests/it/main.rs",
        "pkg/api/proto/emporium/wish_list/v1/wish_list.proto",
        "apps/services.toml",
        "docker-compose.yml",
        "README.md",
        "docs/ARCHITECTURE.md",
        "infra/terraform/environments/production/services.tf",
    ] {
        assert!(
            outcome.written.contains(&PathBuf::from(expected)),
            "{expected} not written: {outcome:?}"
        );
    }
    assert!(
        !root.join("apps/wish-list/migrations").exists(),
        "a Redis service has no migrations"
    );
    let listed = services::load(root).unwrap();
    let entry = listed.iter().find(|s| s.name == "wish-list").unwrap();
    assert_eq!(entry.store, StoreKind::Redis);
    assert_eq!(
        entry.admin_port,
        highest_port + 1,
        "the next port after the highest listed"
    );
    let compose = std::fs::read_to_string(root.join("docker-compose.yml")).unwrap();
    assert!(compose.contains("  wish-list-service:\n"), "{compose}");
    assert!(compose.contains("      wish-list-service:\n        condition: service_healthy"));
    // It is there as every Emporium container is: health checked on its admin port, started
    // after the servers and the trace collector, its traces sent to the collector (through
    // the shared anchor, which the cross-checks of `check-infra` resolve and follow).
    let port = highest_port + 1;
    let service = &compose[compose.find("\n  wish-list-service:\n").unwrap()..];
    let service = &service[..service.find("\n\n").unwrap_or(service.len())];
    for expected in [
        "      <<: *server-urls\n".to_owned(),
        format!("      ADMIN_ADDR: 0.0.0.0:{port}\n"),
        format!("      - \"127.0.0.1:{port}:{port}\"\n"),
        "      nats:\n        condition: service_healthy\n".to_owned(),
        "      redis:\n        condition: service_healthy\n".to_owned(),
        "      otel-collector:\n        condition: service_started\n".to_owned(),
        format!(
            "      test: [\"CMD\", \"healthcheck\", \"http://127.0.0.1:{port}/health/ready\"]\n"
        ),
    ] {
        assert!(service.contains(&expected), "{expected:?} in\n{service}");
    }
    let containers = crate::check::containers::workspace::Workspace {
        root: workspace_root(),
        binaries: crate::check::containers::workspace::image_binaries(&workspace_root())
            .unwrap()
            .into_iter()
            .chain(["wish-list-service".to_owned()])
            .collect(),
        services: listed.clone(),
        made_locally: vec![PathBuf::from(".dev/keys")],
    };
    let problems = crate::check::containers::compose::problems(&compose, &containers).unwrap();
    assert!(problems.is_empty(), "{problems:#?}");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(readme.contains("| `wish-list` |"));
    // Prometheus scrapes it by its compose name on its admin port, labelled as its metrics are.
    let prometheus = std::fs::read_to_string(root.join("infra/prometheus/prometheus.yml")).unwrap();
    assert!(
        prometheus.contains(&format!(
            "  - job_name: wish_list\n    honor_labels: true\n    static_configs:\n      - targets: [\"wish-list-service:{}\"]\n        labels:\n          service: wish_list\n",
            highest_port + 1
        )),
        "{prometheus}"
    );
    // Terraform deploys it, and would give it a database were its store PostgreSQL.
    let terraform =
        std::fs::read_to_string(root.join("infra/terraform/environments/production/services.tf"))
            .unwrap();
    assert!(
        terraform.contains(&format!(
            "    \"wish-list\" = {{\n      name       = \"wish-list\"\n      store      = \"redis\"\n      admin_port = {}\n    }}\n",
            highest_port + 1
        )),
        "{terraform}"
    );
    // The Helm chart runs it: an entry of its `services` value, on the same admin port.
    let helm_values =
        std::fs::read_to_string(root.join("infra/helm/emporium/values.yaml")).unwrap();
    assert!(
        helm_values.contains(&format!(
            "  # Wish lists of customers.\n  - name: wish-list\n    store: redis\n    adminPort: {}\n",
            highest_port + 1
        )),
        "{helm_values}"
    );
    let problems = services::problems(root).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn running_the_generator_twice_changes_nothing() {
    let workspace = small_workspace();
    let root = &workspace.0;
    run(root, &args("gift-card")).unwrap();
    let first = tree(root);

    let again = run(
        root,
        &NewServiceArgs {
            force: true,
            ..args("gift-card")
        },
    )
    .unwrap();
    assert!(again.written.is_empty(), "{again:?}");
    assert_eq!(tree(root), first, "a second run changed files");

    // Without --force an existing service is refused and nothing changes.
    let error = run(root, &args("gift-card")).unwrap_err();
    assert!(format!("{error:#}").contains("already exists"), "{error:#}");
    assert_eq!(tree(root), first);
}

#[test]
fn force_rewrites_generated_files_and_keeps_the_services_own() {
    let workspace = small_workspace();
    let root = &workspace.0;
    run(root, &args("gift-card")).unwrap();
    let lib = root.join("apps/gift-card/src/lib.rs");
    let handlers = root.join("apps/gift-card/src/handlers.rs");
    let generated_lib = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, format!("{generated_lib}\n// local change\n")).unwrap();
    std::fs::write(&handlers, "// edited by the team\n").unwrap();
    std::fs::remove_file(root.join("apps/gift-card/src/domain.rs")).unwrap();

    let outcome = run(
        root,
        &NewServiceArgs {
            force: true,
            ..args("gift-card")
        },
    )
    .unwrap();
    assert_eq!(std::fs::read_to_string(&lib).unwrap(), generated_lib);
    assert_eq!(
        std::fs::read_to_string(&handlers).unwrap(),
        "// edited by the team\n"
    );
    assert!(
        root.join("apps/gift-card/src/domain.rs").exists(),
        "a deleted file is written again"
    );
    assert!(
        outcome
            .kept
            .contains(&PathBuf::from("apps/gift-card/src/handlers.rs"))
    );

    // A generated file whose header was removed has been taken over: left alone.
    let taken_over = generated_lib.lines().skip(3).collect::<Vec<_>>().join("\n");
    std::fs::write(&lib, &taken_over).unwrap();
    run(
        root,
        &NewServiceArgs {
            force: true,
            ..args("gift-card")
        },
    )
    .unwrap();
    assert_eq!(std::fs::read_to_string(&lib).unwrap(), taken_over);

    // The list decides the store of a service that exists.
    let error = run(
        root,
        &NewServiceArgs {
            force: true,
            store: Some(StoreKind::Redis),
            ..args("gift-card")
        },
    )
    .unwrap_err();
    assert!(format!("{error:#}").contains("edit the list"), "{error:#}");
}

#[test]
fn bad_input_is_refused_with_a_reason_and_writes_nothing() {
    let workspace = small_workspace();
    let root = &workspace.0;
    std::fs::create_dir_all(root.join("apps/orphan")).unwrap();
    let before = tree(root);
    let cases: Vec<(NewServiceArgs, &str)> = vec![
        (args("Bad"), "lower case"),
        (args("9lives"), "starting with a letter"),
        (args("gift_card"), "hyphens"),
        (args("gift-"), "between two words"),
        (args("a--b"), "between two words"),
        (args(""), "invalid service name"),
        (args("type"), "Rust keyword"),
        (args("async"), "Rust keyword"),
        (args("common"), "already uses"),
        (args("product"), "already exists"),
        (args("orphan"), "apps/orphan already exists"),
        (
            NewServiceArgs {
                description: Some("Say \"hi\"".into()),
                ..args("greeting")
            },
            "invalid description",
        ),
        (
            NewServiceArgs {
                description: Some("two\nlines".into()),
                ..args("greeting")
            },
            "invalid description",
        ),
    ];
    for (case, reason) in cases {
        let error = run(root, &case).expect_err(&case.name);
        assert!(
            format!("{error:#}").contains(reason),
            "{:?}: {error:#} does not say {reason:?}",
            case.name
        );
        assert_eq!(tree(root), before, "{:?} wrote something", case.name);
    }

    // A workspace whose compose file lost its markers: refused before writing anything.
    let compose = root.join("docker-compose.yml");
    let text = std::fs::read_to_string(&compose).unwrap();
    std::fs::write(
        &compose,
        text.replace("# BEGIN generated services", "# moved"),
    )
    .unwrap();
    let before = tree(root);
    let error = run(root, &args("greeting")).unwrap_err();
    assert!(format!("{error:#}").contains("marker"), "{error:#}");
    assert_eq!(tree(root), before);
}

#[test]
fn the_command_line_refuses_unknown_store_kinds() {
    use clap::Parser as _;
    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        args: NewServiceArgs,
    }
    let error = Cli::try_parse_from(["new-service", "wallet", "--store", "sqlite"]).unwrap_err();
    assert!(error.to_string().contains("sqlite"), "{error}");
    let parsed = Cli::try_parse_from(["new-service", "wallet", "--store", "mongo", "--force"])
        .unwrap()
        .args;
    assert_eq!(parsed.store, Some(StoreKind::Mongo));
    assert!(parsed.force);
}

#[test]
fn names_take_the_forms_the_templates_need() {
    let names = Names::of("gift-card");
    assert_eq!(names.snake, "gift_card");
    assert_eq!(names.pascal, "GiftCard");
    assert_eq!(names.plural_pascal, "GiftCards");
    assert_eq!(names.plural_kebab, "gift-cards");
    assert_eq!(names.crate_name, "gift_card_service");
    assert_eq!(names.package, "gift-card-service");
    assert_eq!(Names::of("address").plural_snake, "addresses");
    assert_eq!(Names::of("inventory").plural_snake, "inventories");
    assert_eq!(Names::of("day").plural_snake, "days");
}

/// The files of the workspace as git sees them (tracked and new, not ignored), copied to a
/// temp dir: the generator runs there, so the real workspace is untouched.
fn copy_of_the_workspace() -> TempDir {
    let root = workspace_root();
    let output = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(&root)
        .output()
        .expect("running git ls-files");
    assert!(output.status.success());
    // A fixed place per workspace, so the copied crates compile to the same artifacts on every
    // run instead of piling up new ones. Not under target/: cargo ignores sources there.
    let dir = TempDir(std::env::temp_dir().join(format!(
        "emporium-xtask-e2e{}",
        root.display().to_string().replace('/', "-")
    )));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).unwrap();
    for file in output.stdout.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        let relative = PathBuf::from(String::from_utf8_lossy(file).into_owned());
        if relative.starts_with("target") || !root.join(&relative).is_file() {
            continue;
        }
        copy_file(&root, &dir.0, &relative);
    }
    // Cargo names a workspace crate's artifacts by its name, version and path relative to the
    // workspace, not by where the workspace is: built into the shared target directory, the
    // copy's `api` (with the throwaway contracts) would replace the real one, and the real
    // workspace's next compilation (its doc tests, say) would link against it. Another
    // version gives every copied crate artifacts of its own.
    let manifest = dir.0.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let section = text
        .find("[workspace.package]")
        .expect("the workspace manifest has [workspace.package]");
    let version = section
        + text[section..]
            .find("\nversion = \"")
            .expect("[workspace.package] has a version")
        + "\nversion = \"".len();
    let end = version + text[version..].find('"').unwrap();
    let renamed = format!(
        "{}{}-e2e{}",
        &text[..version],
        &text[version..end],
        &text[end..]
    );
    std::fs::write(&manifest, renamed).unwrap();
    dir
}

/// The workspace's own target directory: the copy's crates have another version (see
/// [`copy_of_the_workspace`]), so they get artifacts of their own, while the registry crates
/// compiled for the workspace (and checked by its clippy) are reused instead of compiled
/// again. Cargo holds no lock on it while tests
/// run. The binaries the copy builds replace the workspace's in `target/debug/`; the test
/// removes them when it ends, and the next build links the workspace's back.
fn e2e_target_dir() -> PathBuf {
    workspace_root().join("target")
}

/// Removes the copy's binaries from `target/debug/` when dropped.
struct CopyBinaries(Vec<&'static str>);

impl Drop for CopyBinaries {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = std::fs::remove_file(e2e_target_dir().join("debug").join(name));
        }
    }
}

fn cargo_in(root: &Path, args: &[&str]) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let started = Instant::now();
    let status = Command::new(cargo)
        .args(args)
        .env("CARGO_TARGET_DIR", e2e_target_dir())
        .current_dir(root)
        .status()
        .expect("running cargo");
    eprintln!("cargo {} took {:.0?}", args.join(" "), started.elapsed());
    assert!(status.success(), "cargo {} failed", args.join(" "));
}

/// Generated services of every store kind build, pass their own tests (on real NATS,
/// PostgreSQL and Redis), are clippy- and fmt-clean and leave the workspace in step, in a copy
/// of the workspace; then the postgres one, run as a binary behind the gateway's binary,
/// answers HTTP requests. About three minutes on two cores, most of it compiling the copied
/// crates.
#[test]
fn generated_services_build_and_pass_their_tests() {
    let started = Instant::now();
    let _binaries = CopyBinaries(vec![
        "gateway",
        "nats-credentials",
        "e2e-pg-service",
        "e2e-redis-service",
        "e2e-docs-service",
    ]);
    let workspace = copy_of_the_workspace();
    let root = &workspace.0;
    let generated = [
        ("e2e-pg", StoreKind::Postgres),
        ("e2e-redis", StoreKind::Redis),
        ("e2e-docs", StoreKind::Mongo),
    ];
    for (name, store) in generated {
        run(
            root,
            &NewServiceArgs {
                store: Some(store),
                ..args(name)
            },
        )
        .unwrap();
    }
    let problems = services::problems(root).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    let packages: Vec<String> = generated
        .iter()
        .flat_map(|(name, _)| ["-p".to_owned(), format!("{name}-service")])
        .collect();
    let packages: Vec<&str> = packages.iter().map(String::as_str).collect();
    cargo_in(root, &[&["test"], &packages[..]].concat());
    cargo_in(
        root,
        &[
            &["clippy", "--all-targets"],
            &packages[..],
            &["--", "-D", "warnings"],
        ]
        .concat(),
    );
    cargo_in(root, &[&["fmt", "--check"], &packages[..]].concat());
    eprintln!("generated, built and tested in {:.0?}", started.elapsed());

    cargo_in(
        root,
        &[
            "build",
            "--bin",
            "gateway",
            "--bin",
            "e2e-pg-service",
            "--bin",
            "nats-credentials",
        ],
    );
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(answers_through_the_gateway(
            root,
            "e2e-pg-service",
            "e2e-pgs",
        ));
    eprintln!(
        "and answered through the gateway in {:.0?}",
        started.elapsed()
    );
}

/// A child process killed when the test ends, whatever happens.
struct KilledOnDrop(std::process::Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs the service's binary and the gateway's on private servers and calls the API over
/// HTTP, the way a client of the platform does.
async fn answers_through_the_gateway(root: &Path, package: &str, plural: &str) {
    // The generated service's NATS identity comes from its contract, in that build of the
    // platform: its `nats-credentials` makes the keys and the authorization.
    let bin = e2e_target_dir().join("debug");
    let credentials = root.join("e2e-nats");
    let made = Command::new(bin.join("nats-credentials"))
        .arg("--out")
        .arg(&credentials)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let nats = testkit::NatsServer::start_with_credentials(&credentials)
        .await
        .unwrap();
    let seed = |name: &str| nats.credentials().seed_file(name).unwrap();
    let redis = testkit::RedisServer::start().await.unwrap();
    let database = testkit::fresh_database().await.unwrap();
    let key = tokens::SigningKey::generate("e2e");
    let jwks = root.join("e2e-jwks.json");
    std::fs::write(
        &jwks,
        tokens::Jwks {
            keys: vec![key.jwk()],
        }
        .to_json(),
    )
    .unwrap();
    let service_admin = free_port();
    let _service = KilledOnDrop(
        Command::new(bin.join(package))
            .env("NATS_URL", nats.url())
            .env(
                "NATS_NKEY_FILE",
                seed(
                    package
                        .strip_suffix("-service")
                        .unwrap()
                        .replace('-', "_")
                        .as_str(),
                ),
            )
            .env("REDIS_URL", redis.url())
            .env("DATABASE_URL", database.url())
            .env("ADMIN_ADDR", format!("127.0.0.1:{service_admin}"))
            .env("RUST_LOG", "warn")
            .spawn()
            .unwrap(),
    );
    let gateway_port = free_port();
    let _gateway = KilledOnDrop(
        Command::new(bin.join("gateway"))
            .env("NATS_URL", nats.url())
            .env("NATS_NKEY_FILE", seed("gateway"))
            .env("REDIS_URL", redis.url())
            .env("GATEWAY_BIND", "127.0.0.1")
            .env("GATEWAY_PORT", gateway_port.to_string())
            .env("JWT_JWKS_FILE", &jwks)
            .env("RUST_LOG", "warn")
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    while !(crate::http::is_ok(service_admin, "/health/ready")
        && crate::http::is_ok(gateway_port, "/health/ready"))
    {
        assert!(
            Instant::now() < deadline,
            "the service or the gateway never got ready"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let token = key.mint(
        "01900000-0000-7000-8000-000000000001",
        &["admin"],
        std::time::Duration::from_secs(600),
        tokens::DEFAULT_ISSUER,
        tokens::DEFAULT_AUDIENCE,
    );
    let base = format!("http://127.0.0.1:{gateway_port}/api/v1/{plural}");
    let http = reqwest::Client::new();
    let created = http
        .post(&base)
        .bearer_auth(&token)
        .json(&serde_json::json!({ "name": "Through the gateway" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200, "{:?}", created.text().await);
    let created: serde_json::Value = created.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    let read: serde_json::Value = http
        .get(format!("{base}/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["name"], "Through the gateway");
    let anonymous = http
        .post(&base)
        .json(&serde_json::json!({ "name": "No token" }))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401, "writes need a token");
}
