//! `cargo xtask up` and `cargo xtask down`: the dev stack on fixed ports of 127.0.0.1.
//!
//! `up` starts, in order, nats-server, PostgreSQL, Redis, every service of `apps/services.toml` and
//! the gateway, waiting for each to be ready before the next; then it waits for Ctrl-C or
//! SIGTERM and stops them in reverse order. Each process runs in its own process group, so a
//! Ctrl-C on the terminal reaches only `up`, which then stops the others in order. Each
//! process's pid is recorded in `.dev/pids/` until it has stopped, for `down`.

use std::fs::File;
use std::net::IpAddr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::deps::{self, Servers};
use crate::dev_keys::{self, Role};
use crate::http;
use crate::layout::Layout;
use crate::ports;
use crate::services::{self, ServiceEntry};
use crate::system::{
    as_postgres, parse_version, process_alive, process_command_line, running_as_root, send_signal,
    user_ids, version_output,
};

/// Every service of the dev stack, in start order: `apps/services.toml`, the one list of
/// services (built in, so `cargo xtask up` always runs the list of the code it builds).
static SERVICES: LazyLock<Vec<ServiceEntry>> = LazyLock::new(|| {
    services::parse(include_str!("../../apps/services.toml"))
        .expect("apps/services.toml is valid (the services_are_in_step test checks it)")
});

const NATS_PORT: u16 = 4222;
const NATS_MONITOR_PORT: u16 = 8222;
const POSTGRES_PORT: u16 = 5432;
const REDIS_PORT: u16 = 6379;

/// How long a server may take to become ready.
const SERVER_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Services run migrations and seed data before they are ready.
const SERVICE_READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a process may take to stop after being asked before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// Ctrl-C or SIGTERM arrived: stop everything and exit 0.
#[derive(Debug)]
struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// `cargo xtask up`.
pub fn up(layout: &Layout, gateway_port: u16, gateway_bind: IpAddr) -> anyhow::Result<ExitCode> {
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        // The first signal asks for an orderly stop; a second one, while that is under way,
        // exits at once (`down` cleans up after that).
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&interrupted))
            .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&interrupted)))
            .context("installing signal handlers")?;
    }

    let mut stack = Stack::new(layout.clone(), Arc::clone(&interrupted));
    match start(&mut stack, layout, gateway_port, gateway_bind) {
        Ok(()) => {}
        Err(error) if error.is::<Interrupted>() => {
            stack.stop_all();
            println!("==> stopped");
            return Ok(ExitCode::SUCCESS);
        }
        Err(error) => {
            stack.stop_all();
            return Err(error);
        }
    }

    loop {
        if interrupted.load(Ordering::SeqCst) {
            println!();
            stack.stop_all();
            println!("==> stopped");
            return Ok(ExitCode::SUCCESS);
        }
        if let Some(death) = stack.first_death() {
            eprintln!("error: {death}");
            stack.stop_all();
            return Ok(ExitCode::FAILURE);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn start(
    stack: &mut Stack,
    layout: &Layout,
    gateway_port: u16,
    gateway_bind: IpAddr,
) -> anyhow::Result<()> {
    let mut leftovers = Vec::new();
    for (record, path) in recorded_files(layout) {
        if record.is_running() {
            leftovers.push(format!("{} (pid {})", record.name, record.pid));
        } else {
            // Left by an `up` that was killed, of a process that has ended since.
            let _ = std::fs::remove_file(path);
        }
    }
    if !leftovers.is_empty() {
        bail!(
            "a stack from an earlier `up` is still running: {}; stop it with `cargo xtask down`",
            leftovers.join(", ")
        );
    }
    let mut wanted = vec![
        ("nats", NATS_PORT),
        ("nats monitoring", NATS_MONITOR_PORT),
        ("postgres", POSTGRES_PORT),
        ("redis", REDIS_PORT),
    ];
    wanted.extend(
        SERVICES
            .iter()
            .map(|service| (service.name.as_str(), service.admin_port)),
    );
    wanted.push(("gateway", gateway_port));
    ports::ensure_free(&wanted)?;

    println!("==> checking dev servers");
    let servers = deps::ensure(layout)?;

    println!("==> building (cargo build --workspace --bins)");
    build(layout, &stack.interrupted)?;
    let key = dev_keys::load_or_generate(layout)?;
    println!(
        "==> dev JWT key {} (kid {}), public key set {}",
        layout.show(&layout.signing_key()),
        dev_keys::DEV_KEY_ID,
        layout.show(&layout.jwks())
    );
    for dir in [
        layout.logs(),
        layout.pids(),
        layout.nats_store(),
        layout.redis(),
    ] {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }

    start_nats(stack, layout, &servers)?;
    start_postgres(stack, layout, &servers)?;
    start_redis(stack, layout, &servers)?;
    for service in SERVICES.iter() {
        start_service(stack, layout, service)?;
    }
    start_gateway(stack, layout, gateway_port, gateway_bind)?;

    print_summary(layout, &key, gateway_port);
    Ok(())
}

/// `cargo build --workspace --bins`, with cargo's own progress on the terminal.
fn build(layout: &Layout, interrupted: &AtomicBool) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut child = Command::new(cargo)
        .args(["build", "--workspace", "--bins"])
        .current_dir(layout.root())
        .stdin(Stdio::null())
        .spawn()
        .context("running cargo build")?;
    loop {
        if let Some(status) = child.try_wait()? {
            if interrupted.load(Ordering::SeqCst) {
                return Err(Interrupted.into());
            }
            anyhow::ensure!(status.success(), "cargo build failed ({status})");
            return Ok(());
        }
        if interrupted.load(Ordering::SeqCst) {
            send_signal(child.id(), "TERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start_nats(stack: &mut Stack, layout: &Layout, servers: &Servers) -> anyhow::Result<()> {
    println!(
        "==> starting nats-server on 127.0.0.1:{NATS_PORT} (JetStream store {}, monitoring :{NATS_MONITOR_PORT})",
        layout.show(&layout.nats_store())
    );
    let mut command = Command::new(&servers.nats_server);
    command
        .arg("--config")
        .arg(layout.nats_config())
        .args(["--addr", "127.0.0.1"])
        .args(["--port", &NATS_PORT.to_string()])
        .args(["--http_port", &NATS_MONITOR_PORT.to_string()])
        .arg("--store_dir")
        .arg(layout.nats_store());
    stack.start("nats-server", command, StopBy::Terminate)?;
    stack.wait_until("nats-server", SERVER_READY_TIMEOUT, || {
        http::is_ok(NATS_MONITOR_PORT, "/healthz")
    })
}

fn start_postgres(stack: &mut Stack, layout: &Layout, servers: &Servers) -> anyhow::Result<()> {
    prepare_postgres(layout, &servers.pg_bin)?;
    println!(
        "==> starting PostgreSQL on 127.0.0.1:{POSTGRES_PORT} (data {})",
        layout.show(&layout.pg_data())
    );
    let mut command = as_postgres(&servers.pg_bin.join("postgres"));
    command
        .arg("-D")
        .arg(layout.pg_data())
        .arg("-k")
        .arg(layout.pg_socket())
        .args(["-h", "127.0.0.1"])
        .args(["-p", &POSTGRES_PORT.to_string()])
        .args(["-c", "lc_messages=C"]);
    stack.start(
        "postgres",
        command,
        StopBy::PgCtl {
            pg_ctl: servers.pg_bin.join("pg_ctl"),
            data: layout.pg_data(),
        },
    )?;
    let log = layout.log("postgres");
    let pg_isready = servers.pg_bin.join("pg_isready");
    stack.wait_until("postgres", SERVER_READY_TIMEOUT, || {
        if pg_isready.exists() {
            return Command::new(&pg_isready)
                .args(["-q", "-h", "127.0.0.1", "-p", &POSTGRES_PORT.to_string()])
                .status()
                .is_ok_and(|status| status.success());
        }
        std::fs::read_to_string(&log)
            .is_ok_and(|text| text.contains("database system is ready to accept connections"))
    })
}

/// Creates the cluster on first use (owned by the postgres user when we are root).
fn prepare_postgres(layout: &Layout, pg_bin: &Path) -> anyhow::Result<()> {
    for dir in [layout.pg(), layout.pg_socket()] {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if running_as_root() {
        let (uid, gid) =
            user_ids("postgres").context("there is no postgres user: run `cargo xtask deps`")?;
        for dir in [layout.pg(), layout.pg_socket()] {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .with_context(|| format!("handing {} to the postgres user", dir.display()))?;
        }
        let reachable = as_postgres(Path::new("test"))
            .arg("-w")
            .arg(layout.pg())
            .status()
            .is_ok_and(|status| status.success());
        if !reachable {
            bail!(
                "the postgres user cannot write {}: as root, PostgreSQL runs as postgres, so every \
                 directory above .dev/ must be searchable by others (chmod o+x) or the checkout \
                 must live elsewhere",
                layout.pg().display()
            );
        }
    }

    let version_file = layout.pg_data().join("PG_VERSION");
    let server_major = version_output(&pg_bin.join("postgres"))
        .and_then(|text| parse_version(&text))
        .map(|(major, _, _)| major);
    if let Ok(cluster_major) = std::fs::read_to_string(&version_file) {
        let cluster_major = cluster_major.trim();
        if let Some(server_major) = server_major
            && cluster_major != server_major.to_string()
        {
            bail!(
                "{} was created by PostgreSQL {cluster_major} but the server found is {server_major}; \
                 remove {} to start over (its data is lost)",
                layout.show(&layout.pg_data()),
                layout.show(&layout.pg())
            );
        }
        return Ok(());
    }

    println!(
        "==> creating the PostgreSQL cluster in {} (first run only)",
        layout.show(&layout.pg_data())
    );
    let output = as_postgres(&pg_bin.join("initdb"))
        .arg("-D")
        .arg(layout.pg_data())
        .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C"])
        .current_dir(layout.pg())
        .stdin(Stdio::null())
        .output()
        .context("running initdb")?;
    if !output.status.success() {
        bail!(
            "initdb failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

fn start_redis(stack: &mut Stack, layout: &Layout, servers: &Servers) -> anyhow::Result<()> {
    println!(
        "==> starting Redis on 127.0.0.1:{REDIS_PORT} (data {})",
        layout.show(&layout.redis())
    );
    let mut command = Command::new(&servers.redis_server);
    command
        .args(["--port", &REDIS_PORT.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--appendonly", "yes"])
        .args(["--daemonize", "no"])
        .args(["--logfile", ""])
        .arg("--dir")
        .arg(layout.redis());
    stack.start("redis-server", command, StopBy::Terminate)?;
    stack.wait_until("redis-server", SERVER_READY_TIMEOUT, || {
        redis_answers_ping(REDIS_PORT)
    })
}

fn redis_answers_ping(port: u16) -> bool {
    use std::io::{Read as _, Write as _};
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(1))
    else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

/// The environment every service and the gateway get: where the dev servers are.
fn server_environment(command: &mut Command) {
    command
        .env("NATS_URL", format!("nats://127.0.0.1:{NATS_PORT}"))
        .env("REDIS_URL", format!("redis://127.0.0.1:{REDIS_PORT}"));
}

fn start_service(stack: &mut Stack, layout: &Layout, service: &ServiceEntry) -> anyhow::Result<()> {
    let package = service.package();
    let binary = layout.debug_binary(&package);
    anyhow::ensure!(
        binary.exists(),
        "{} was not built: is `{package}` a binary of the workspace?",
        binary.display(),
    );
    println!(
        "==> starting {package} (admin 127.0.0.1:{}, log {})",
        service.admin_port,
        layout.show(&layout.log(&service.name))
    );
    let mut command = Command::new(&binary);
    let keys = layout.keys();
    command
        .args(service.dev_args.iter().map(|arg| {
            arg.replace(
                crate::services::KEYS_PLACEHOLDER,
                &keys.display().to_string(),
            )
        }))
        .env("ADMIN_ADDR", format!("127.0.0.1:{}", service.admin_port));
    server_environment(&mut command);
    stack.start(&service.name, command, StopBy::Terminate)?;
    stack.wait_until(&service.name, SERVICE_READY_TIMEOUT, || {
        http::is_ok(service.admin_port, "/health/ready")
    })
}

fn start_gateway(
    stack: &mut Stack,
    layout: &Layout,
    port: u16,
    bind: IpAddr,
) -> anyhow::Result<()> {
    println!(
        "==> starting the gateway on {bind}:{port} (log {})",
        layout.show(&layout.log("gateway"))
    );
    let mut command = Command::new(layout.debug_binary("gateway"));
    command
        .env("GATEWAY_PORT", port.to_string())
        .env("GATEWAY_BIND", bind.to_string())
        // The keys come from the auth service, which signs with the dev key in the dev stack
        // (apps/services.toml), so `cargo xtask dev-token` tokens verify too.
        .env("JWT_JWKS_NATS", "true");
    server_environment(&mut command);
    stack.start("gateway", command, StopBy::Terminate)?;
    stack.wait_until("gateway", SERVICE_READY_TIMEOUT, || {
        http::is_ok(port, "/health/ready")
    })
}

/// How a process is asked to stop.
#[derive(Clone, Debug, PartialEq, Eq)]
enum StopBy {
    /// SIGTERM: every server and service of the stack drains and exits on it.
    Terminate,
    /// `pg_ctl stop -m fast`, as the cluster's owner.
    PgCtl { pg_ctl: PathBuf, data: PathBuf },
}

/// A process started by `up`.
struct StackProcess {
    name: String,
    child: Child,
    log: PathBuf,
    pid_file: PathBuf,
    stop_by: StopBy,
}

/// The processes `up` started, in start order. Dropping it stops them all.
struct Stack {
    layout: Layout,
    interrupted: Arc<AtomicBool>,
    running: Vec<StackProcess>,
}

impl Stack {
    fn new(layout: Layout, interrupted: Arc<AtomicBool>) -> Self {
        Self {
            layout,
            interrupted,
            running: Vec::new(),
        }
    }

    /// Starts a process with its output in `.dev/logs/<name>.log` and records its pid.
    fn start(&mut self, name: &str, mut command: Command, stop_by: StopBy) -> anyhow::Result<()> {
        let log = self.layout.log(name);
        let log_file = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        command
            .current_dir(self.layout.root())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            // Its own process group: a Ctrl-C on the terminal reaches only `up`, which then
            // stops everything in order.
            .process_group(0);
        let program = command.get_program().to_string_lossy().into_owned();
        let child = command
            .spawn()
            .with_context(|| format!("starting {name} ({program})"))?;
        let record = Record {
            name: name.to_owned(),
            pid: child.id(),
            stop_by: stop_by.clone(),
        };
        let pid_file = self
            .layout
            .pids()
            .join(format!("{:02}-{name}.pid", self.running.len()));
        std::fs::write(&pid_file, record.to_text())
            .with_context(|| format!("writing {}", pid_file.display()))?;
        self.running.push(StackProcess {
            name: name.to_owned(),
            child,
            log,
            pid_file,
            stop_by,
        });
        Ok(())
    }

    /// Waits until `ready` holds, failing if any process dies, time runs out or the user
    /// interrupts.
    fn wait_until(
        &mut self,
        name: &str,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.interrupted.load(Ordering::SeqCst) {
                return Err(Interrupted.into());
            }
            if let Some(death) = self.first_death() {
                bail!("{death}");
            }
            if ready() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let tail = self
                    .running
                    .iter()
                    .find(|running| running.name == name)
                    .map(|running| log_tail(&running.log, 20))
                    .unwrap_or_default();
                bail!("{name} was not ready after {timeout:?}; the end of its log:\n{tail}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A description of the first process that has exited, with the end of its log.
    fn first_death(&mut self) -> Option<String> {
        for running in &mut self.running {
            if let Ok(Some(status)) = running.child.try_wait() {
                let _ = std::fs::remove_file(&running.pid_file);
                return Some(format!(
                    "{} exited unexpectedly ({status}); the end of {}:\n{}",
                    running.name,
                    self.layout.show(&running.log),
                    log_tail(&running.log, 20)
                ));
            }
        }
        None
    }

    /// Stops every process, last started first.
    fn stop_all(&mut self) {
        while let Some(mut running) = self.running.pop() {
            if running.child.try_wait().ok().flatten().is_none() {
                println!("==> stopping {}", running.name);
                ask_to_stop(running.child.id(), &running.stop_by);
                wait_or_kill(&mut running.child, &running.name);
            }
            let _ = std::fs::remove_file(&running.pid_file);
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop_all();
    }
}

fn ask_to_stop(pid: u32, stop_by: &StopBy) {
    match stop_by {
        StopBy::Terminate => {
            send_signal(pid, "TERM");
        }
        StopBy::PgCtl { pg_ctl, data } => {
            let stopped = as_postgres(pg_ctl)
                .arg("stop")
                .arg("-D")
                .arg(data)
                .args(["-m", "fast", "-w", "-t", "30"])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            if !stopped {
                // runuser passes SIGTERM on to postgres (a "smart" shutdown).
                send_signal(pid, "TERM");
            }
        }
    }
}

fn wait_or_kill(child: &mut Child, name: &str) {
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("==> {name} did not stop within {STOP_TIMEOUT:?}; killing it");
    let _ = child.kill();
    let _ = child.wait();
}

/// The last `lines` lines of a log file.
fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// What `.dev/pids/<NN>-<name>.pid` holds: enough for `down` to stop the process safely.
#[derive(Debug, PartialEq, Eq)]
struct Record {
    name: String,
    pid: u32,
    stop_by: StopBy,
}

impl Record {
    fn to_text(&self) -> String {
        match &self.stop_by {
            StopBy::Terminate => format!("{}\n{}\nterminate\n", self.pid, self.name),
            StopBy::PgCtl { pg_ctl, data } => format!(
                "{}\n{}\npg_ctl\n{}\n{}\n",
                self.pid,
                self.name,
                pg_ctl.display(),
                data.display()
            ),
        }
    }

    fn parse(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        let pid = lines.next()?.trim().parse().ok()?;
        let name = lines.next()?.trim().to_owned();
        let stop_by = match lines.next()?.trim() {
            "terminate" => StopBy::Terminate,
            "pg_ctl" => StopBy::PgCtl {
                pg_ctl: PathBuf::from(lines.next()?),
                data: PathBuf::from(lines.next()?),
            },
            _ => return None,
        };
        Some(Self { name, pid, stop_by })
    }

    /// Whether the recorded pid is still the process `up` started: a pid can be reused by an
    /// unrelated process after a reboot or a long time.
    fn is_running(&self) -> bool {
        let expected = match &self.stop_by {
            StopBy::Terminate => self.name.as_str(),
            StopBy::PgCtl { .. } => "postgres",
        };
        process_alive(self.pid)
            && process_command_line(self.pid).is_some_and(|line| {
                line.contains(expected)
                    || SERVICES.iter().any(|service| {
                        service.name == self.name && line.contains(&service.package())
                    })
            })
    }
}

/// The records in `.dev/pids/`, in start order, with their files.
fn recorded_files(layout: &Layout) -> Vec<(Record, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(layout.pids()) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "pid"))
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|path| {
            let record = Record::parse(&std::fs::read_to_string(&path).ok()?)?;
            Some((record, path))
        })
        .collect()
}

/// `cargo xtask down`.
pub fn down(layout: &Layout) -> anyhow::Result<()> {
    let records = recorded_files(layout);
    if records.is_empty() {
        println!(
            "==> nothing recorded in {}: no stack to stop",
            layout.show(&layout.pids())
        );
        return Ok(());
    }
    for (record, path) in records.into_iter().rev() {
        if record.is_running() {
            println!("==> stopping {} (pid {})", record.name, record.pid);
            ask_to_stop(record.pid, &record.stop_by);
            let deadline = Instant::now() + STOP_TIMEOUT;
            while process_alive(record.pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if process_alive(record.pid) {
                eprintln!("==> {} did not stop; killing it", record.name);
                send_signal(record.pid, "KILL");
            }
        } else if let StopBy::PgCtl { .. } = record.stop_by
            && record_postgres_running(&record)
        {
            // `up` ran postgres under runuser; if runuser died, postgres may live on.
            println!("==> stopping postgres");
            ask_to_stop(record.pid, &record.stop_by);
        }
        let _ = std::fs::remove_file(&path);
    }
    println!("==> stopped");
    Ok(())
}

fn record_postgres_running(record: &Record) -> bool {
    let StopBy::PgCtl { data, .. } = &record.stop_by else {
        return false;
    };
    let Ok(text) = std::fs::read_to_string(data.join("postmaster.pid")) else {
        return false;
    };
    text.lines()
        .next()
        .and_then(|pid| pid.trim().parse().ok())
        .is_some_and(process_alive)
}

/// One operation of the OpenAPI document.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Operation {
    /// `<service>.<method>`, e.g. `product.get_product`.
    id: String,
    /// Upper case, e.g. `GET`.
    http_method: String,
    path: String,
    nats_subject: String,
}

/// The operations of an OpenAPI document.
fn operations(document: &serde_json::Value) -> Vec<Operation> {
    let mut found = Vec::new();
    let Some(paths) = document.get("paths").and_then(|paths| paths.as_object()) else {
        return found;
    };
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            continue;
        };
        for (method, operation) in item {
            let text = |key: &str| {
                operation
                    .get(key)
                    .and_then(|value| value.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            found.push(Operation {
                id: text("operationId"),
                http_method: method.to_ascii_uppercase(),
                path: path.clone(),
                nats_subject: text("x-nats-subject"),
            });
        }
    }
    found
}

/// What to tell the developer once everything is up. Routes and subjects come from the
/// gateway's OpenAPI document, which is generated from the contracts.
fn print_summary(layout: &Layout, key: &auth::SigningKey, gateway_port: u16) {
    let base = format!("http://127.0.0.1:{gateway_port}");
    let ttl = Duration::from_secs(12 * 3600);
    let admin_token = dev_keys::mint(key, Role::Admin.dev_subject(), Role::Admin, ttl);
    let customer_token = dev_keys::mint(key, Role::Customer.dev_subject(), Role::Customer, ttl);

    println!();
    println!("Emporium dev stack is up. Ctrl-C stops it.");
    println!();
    println!("  gateway      {base}");
    println!("  API docs     {base}/docs");
    println!("  OpenAPI      {base}/openapi.json");
    println!("  metrics      {base}/metrics");
    for service in SERVICES.iter() {
        println!(
            "               http://127.0.0.1:{}/metrics ({})",
            service.admin_port, service.name
        );
    }
    println!(
        "  NATS         nats://127.0.0.1:{NATS_PORT} (monitoring http://127.0.0.1:{NATS_MONITOR_PORT})"
    );
    println!("  PostgreSQL   postgres://postgres@127.0.0.1:{POSTGRES_PORT}/<service>");
    println!("  Redis        redis://127.0.0.1:{REDIS_PORT}");
    println!("  logs         {}/", layout.show(&layout.logs()));
    println!();
    println!("Dev tokens (12 h; more with `cargo xtask dev-token --role admin|customer|seller`):");
    println!();
    println!("  export ADMIN_TOKEN={admin_token}");
    println!("  export CUSTOMER_TOKEN={customer_token}");
    println!();

    let document = http::get(gateway_port, "/openapi.json", Duration::from_secs(5))
        .ok()
        .filter(|response| response.status == 200)
        .and_then(|response| serde_json::from_str::<serde_json::Value>(&response.body).ok());
    let Some(document) = document else {
        println!("Try the API: see {base}/docs");
        return;
    };
    let operations = operations(&document);
    let find = |id: &str| operations.iter().find(|operation| operation.id == id);

    println!("Try it:");
    println!();
    if let Some(list) = find("product.list_products") {
        let list_path = &list.path;
        let sample = http::get(gateway_port, list_path, Duration::from_secs(5))
            .ok()
            .and_then(|response| serde_json::from_str::<serde_json::Value>(&response.body).ok())
            .and_then(|body| body.get("products")?.get(0).cloned());
        println!("  curl -s {base}{list_path}");
        println!("  curl -s '{base}{list_path}?q=widget'");
        if let (Some(product), Some(get)) = (&sample, find("product.get_product")) {
            let id = product
                .get("id")
                .and_then(|id| id.as_str())
                .unwrap_or("<id>");
            println!("  curl -s {base}{}", get.path.replace("{id}", id));
            if let Some(create) = find("product.create_product") {
                let (method, create_path) = (&create.http_method, &create.path);
                let shop_id = product
                    .get("shop_id")
                    .and_then(|shop| shop.as_str())
                    .unwrap_or("<shop id>");
                let currency = product
                    .pointer("/price/currency")
                    .and_then(|currency| currency.as_str())
                    .unwrap_or("EUR");
                println!(
                    "  curl -s -X {method} {base}{create_path} \\\n      -H \"authorization: Bearer $ADMIN_TOKEN\" -H 'content-type: application/json' \\\n      -d '{{\"shop_id\":\"{shop_id}\",\"name\":\"Travel Widget\",\"description\":\"A folding widget for the road.\",\"price\":{{\"minor_units\":\"1999\",\"currency\":\"{currency}\"}},\"initial_stock\":\"10\"}}'"
                );
            }
            println!();
            println!("With the nats CLI (https://github.com/nats-io/natscli):");
            println!();
            println!("  nats --server nats://127.0.0.1:{NATS_PORT} micro ls");
            println!(
                "  nats --server nats://127.0.0.1:{NATS_PORT} req {} '{{\"id\":\"{id}\"}}'",
                get.nats_subject
            );
        }
    }
    if let (Some(register), Some(login), Some(me)) = (
        find("auth.register"),
        find("auth.login"),
        find("user.get_my_profile"),
    ) {
        let body = r#"{"email":"you@example.com","password":"a long dev passphrase"}"#;
        println!();
        println!("An account of your own (the profile appears once user.registered is consumed):");
        println!();
        for operation in [register, login] {
            println!(
                "  curl -s -X {} {base}{} -H 'content-type: application/json' -d '{body}'",
                operation.http_method, operation.path
            );
        }
        println!(
            "  curl -s {base}{} -H \"authorization: Bearer <access_token from the login>\"",
            me.path
        );
    }
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_a_round_trip_through_their_file_format() {
        for record in [
            Record {
                name: "nats-server".into(),
                pid: 4242,
                stop_by: StopBy::Terminate,
            },
            Record {
                name: "postgres".into(),
                pid: 77,
                stop_by: StopBy::PgCtl {
                    pg_ctl: "/usr/lib/postgresql/15/bin/pg_ctl".into(),
                    data: "/work/.dev/pg/data".into(),
                },
            },
        ] {
            assert_eq!(Record::parse(&record.to_text()), Some(record));
        }
        assert_eq!(Record::parse("not a pid\nx\nterminate\n"), None);
        assert_eq!(Record::parse("12\nx\nreboot\n"), None);
    }

    #[test]
    fn a_record_of_a_process_that_is_gone_or_something_else_is_not_running() {
        let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = sleeper.id();
        let record = |name: &str| Record {
            name: name.into(),
            pid,
            stop_by: StopBy::Terminate,
        };
        assert!(record("sleep").is_running());
        // Same pid, but not the program that was recorded: a reused pid is left alone.
        assert!(!record("nats-server").is_running());
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
        assert!(!record("sleep").is_running());
    }

    #[test]
    fn the_services_have_distinct_names_and_ports_off_the_servers_ports() {
        let mut ports: Vec<u16> = SERVICES.iter().map(|service| service.admin_port).collect();
        ports.extend([
            NATS_PORT,
            NATS_MONITOR_PORT,
            POSTGRES_PORT,
            REDIS_PORT,
            8080,
        ]);
        let count = ports.len();
        ports.sort();
        ports.dedup();
        assert_eq!(ports.len(), count);
        let mut names: Vec<&str> = SERVICES
            .iter()
            .map(|service| service.name.as_str())
            .collect();
        names.dedup();
        assert_eq!(names.len(), SERVICES.len());
    }

    #[test]
    fn operations_are_read_from_an_openapi_document() {
        let document = serde_json::json!({
            "paths": {
                "/api/v1/things/{id}": {
                    "get": { "operationId": "thing.get_thing", "x-nats-subject": "thing.get_thing" },
                    "patch": { "operationId": "thing.update_thing", "x-nats-subject": "thing.update_thing" }
                }
            }
        });
        let mut found = operations(&document);
        found.sort();
        assert_eq!(
            found[0],
            Operation {
                id: "thing.get_thing".to_owned(),
                http_method: "GET".to_owned(),
                path: "/api/v1/things/{id}".to_owned(),
                nats_subject: "thing.get_thing".to_owned(),
            }
        );
        assert_eq!(found[1].http_method, "PATCH");
        assert!(operations(&serde_json::json!({})).is_empty());
    }

    #[test]
    fn a_log_tail_is_the_last_lines() {
        let path = std::env::temp_dir().join(format!("xtask-tail-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, "one\ntwo\nthree\n").unwrap();
        assert_eq!(log_tail(&path, 2), "two\nthree");
        assert_eq!(log_tail(&path, 10), "one\ntwo\nthree");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(log_tail(&path, 2), "");
    }
}
