//! Generates the contracts crate from proto/: prost message types, their canonical proto3 JSON
//! (pbjson, proto field names, defaults emitted), and from each service's platform options the
//! method types and descriptors (NATS subjects), server traits, typed clients, the HTTP route
//! table and the OpenAPI document; from each message's `(emporium.options.event)` option the
//! event descriptors and the AsyncAPI event catalogue. No protoc is needed: protox compiles the
//! protos in-process.
//!
//! One module per output: [`contracts`] reads and checks the options into a model, [`rust`]
//! generates the Rust, [`openapi`] and [`asyncapi`] the two documents, both using [`schema`]
//! for message schemas. Everything lands in OUT_DIR; src/lib.rs includes `api.rs`, the root of
//! the generated tree.

mod asyncapi;
mod contracts;
mod openapi;
mod rust;
mod schema;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::contracts::{Contracts, OPTIONS_PACKAGE};

fn main() -> Result<()> {
    let proto_root = PathBuf::from("proto");
    println!("cargo:rerun-if-changed=proto");
    let mut files = Vec::new();
    collect_protos(&proto_root, &mut files)?;
    files.sort();
    let relative: Vec<PathBuf> = files
        .iter()
        .map(|f| f.strip_prefix(&proto_root).map(Path::to_path_buf))
        .collect::<Result<_, _>>()?;

    let mut compiler = protox::Compiler::new([&proto_root])?;
    compiler.include_imports(true).include_source_info(true);
    compiler
        .open_files(&relative)
        .map_err(|e| anyhow::anyhow!("compiling protos: {e}"))?;
    let pool = compiler.descriptor_pool();
    let descriptor_bytes = compiler.encode_file_descriptor_set();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    prost_build::Config::new()
        // Well-known types come from pbjson_types, which carries their canonical JSON.
        .compile_well_known_types()
        .extern_path(".google.protobuf", "::pbjson_types")
        .out_dir(&out_dir)
        .compile_fds(compiler.file_descriptor_set())
        .context("generating message types")?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_bytes)?
        .out_dir(&out_dir)
        .preserve_proto_field_names()
        .emit_fields()
        .build(&[".emporium"])
        .context("generating JSON impls")?;

    let contracts = Contracts::read(&pool)?;
    let packages: Vec<String> = pool
        .files()
        .map(|f| f.package_name().to_owned())
        .filter(|p| p.starts_with("emporium.") && p != OPTIONS_PACKAGE)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();

    for package in &packages {
        let code = rust::pretty(rust::package(&contracts, package))?;
        std::fs::write(out_dir.join(format!("{package}.rpc.rs")), code)?;
    }
    let root = rust::pretty(rust::root(&contracts, &packages))?;
    std::fs::write(out_dir.join("api.rs"), root)?;
    let openapi = serde_json::to_string_pretty(&openapi::document(&contracts))?;
    std::fs::write(out_dir.join("openapi.json"), openapi + "\n")?;
    let asyncapi = serde_json::to_string_pretty(&asyncapi::document(&contracts))?;
    std::fs::write(out_dir.join("asyncapi.json"), asyncapi + "\n")?;
    Ok(())
}

fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
