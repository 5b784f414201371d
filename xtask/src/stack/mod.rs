//! `cargo xtask up` and `cargo xtask down`: the dev stack on fixed ports of 127.0.0.1.
//!
//! `up` builds the workspace and the web app (gateway/web), then starts, in order, nats-server,
//! PostgreSQL, Redis, the SMTP server, every service of `apps/services.toml` and the gateway
//! (serving the web app), waiting for each to be ready before the next; it makes the demo
//! accounts and prints the one URL to open; then it waits for Ctrl-C or SIGTERM and stops them
//! in reverse order. Each process runs in its own process group, so a
//! Ctrl-C on the terminal reaches only `up`, which then stops the others in order. Each
//! process's pid is recorded in `.dev/pids/` until it has stopped, for `down`; so is `up`'s
//! own, so that `down` run beside a live `up` asks it to stop.
//!
//! Once up, a service or the gateway that exits is restarted with an exponential backoff, as
//! Kubernetes restarts a container; the servers (nats-server, PostgreSQL, Redis) are not: the
//! death of one stops the stack (so does the SMTP server's).
//!
//! This module holds the two commands; the machinery is in its parts:
//! - `settings`: the services, ports and timeouts of the stack;
//! - `process`: the processes `up` owns (start, wait until ready, notice a death, stop);
//! - `supervise`: one process, restarted with a backoff when it exits once supervised;
//! - `record`: the pid files in `.dev/pids/` and how each process is asked to stop;
//! - `servers`: nats-server, PostgreSQL, Redis and the SMTP server;
//! - `binaries`: building the workspace, then starting the services and the gateway;
//! - `demo`: the demo customer and admin (the auth service seeds the demo seller);
//! - `summary`: what `up` prints once everything is ready.

mod binaries;
mod demo;
mod process;
mod record;
mod servers;
mod settings;
mod summary;
mod supervise;

use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use self::binaries::{build, start_gateway, start_service};
use self::process::{Interrupted, Stack};
use self::record::{StopBy, UP_RECORD_NAME, ask_to_stop, record_postgres_running, recorded_files};
use self::servers::{start_nats, start_postgres, start_redis, start_smtp};
use self::settings::{
    GATEWAY_ADMIN_PORT, NATS_MONITOR_PORT, NATS_PORT, POSTGRES_PORT, REDIS_PORT, SERVICES,
    SMTP_PORT, STOP_TIMEOUT,
};
use self::summary::print_summary;
use crate::deps;
use crate::dev_keys;
use crate::layout::Layout;
use crate::ports;
use crate::system::{process_alive, send_signal};

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
        if let Some(death) = stack.tend() {
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
        ("smtp", SMTP_PORT),
    ];
    wanted.extend(
        SERVICES
            .iter()
            .map(|service| (service.name.as_str(), service.admin_port)),
    );
    wanted.push(("gateway", gateway_port));
    wanted.push(("gateway admin", GATEWAY_ADMIN_PORT));
    ports::ensure_free(&wanted)?;

    println!("==> checking dev servers");
    let servers = deps::ensure(layout)?;

    println!("==> building (cargo build --workspace --bins)");
    build(layout, &stack.interrupted)?;
    let web_dir = if crate::web::dir(layout).join("package.json").is_file() {
        Some(crate::web::build(layout)?)
    } else {
        println!("==> no web app in gateway/web: the gateway serves the API only");
        None
    };
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
    stack.record_self()?;

    start_nats(stack, layout, &servers)?;
    start_postgres(stack, layout, &servers)?;
    start_redis(stack, layout, &servers)?;
    start_smtp(stack, layout, &servers)?;
    for service in SERVICES.iter() {
        start_service(stack, layout, service)?;
    }
    start_gateway(
        stack,
        layout,
        gateway_port,
        gateway_bind,
        web_dir.as_deref(),
    )?;
    let demo_accounts = demo::ensure(layout);

    print_summary(
        layout,
        &key,
        gateway_port,
        &demo_accounts,
        web_dir.is_some(),
    );
    Ok(())
}

/// `cargo xtask down`.
pub fn down(layout: &Layout) -> anyhow::Result<()> {
    let mut records = recorded_files(layout);
    if let Some(index) = records
        .iter()
        .position(|(record, _)| record.name == UP_RECORD_NAME)
    {
        let (record, path) = records.remove(index);
        if stop_up(&record) {
            println!("==> stopped");
            return Ok(());
        }
        let _ = std::fs::remove_file(path);
        // What it left, as it is now: it may have restarted a process since.
        records = recorded_files(layout);
    }
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

/// Asks a running `up` to stop its stack, as a Ctrl-C would, and waits for it: stopping its
/// processes behind its back would only see them restarted. Returns whether it stopped
/// everything itself; if it does not stop in time it is killed, and `down` stops what it left.
fn stop_up(record: &record::Record) -> bool {
    if !record.is_running() {
        return false;
    }
    println!(
        "==> asking `cargo xtask up` (pid {}) to stop its stack",
        record.pid
    );
    send_signal(record.pid, "TERM");
    // It stops its processes one after the other, each within STOP_TIMEOUT.
    let deadline = Instant::now() + STOP_TIMEOUT * 3;
    while process_alive(record.pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    if process_alive(record.pid) {
        eprintln!("==> `cargo xtask up` did not stop; killing it and stopping what it left");
        send_signal(record.pid, "KILL");
        return false;
    }
    true
}
