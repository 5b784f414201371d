//! The Terraform checks. No Terraform binary or provider can be installed where CI runs, so
//! `terraform validate` and `terraform fmt -check` cannot run; instead:
//!
//! - every `.tf` file under `infra/terraform` is parsed (hcl-edit), and what `validate` would
//!   refuse without providers is checked from the parsed files: every `var.*` and `local.*` a
//!   module uses is declared in it; every call of a local module passes each of its required
//!   variables and nothing it does not declare; every `module.<name>.<output>` exists; a
//!   validation refers to its own variable only (Terraform 1.6); every provider is pinned;
//!   every variable and output has a description; the tfvars example sets what it must;
//! - the layout `terraform fmt` writes: two-space indentation by bracket and block, `=`
//!   aligned across consecutive one-line attributes, no trailing blanks;
//! - every service in `apps/services.toml` is in the production environment's generated
//!   `local.services`, so each one whose state is in PostgreSQL gets its database;
//! - checkov (`--framework terraform`, with `infra/terraform/.checkov.yaml`) fails the check on
//!   any failed check and on any file it could not parse, and every skip carries its reason.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail, ensure};
use hcl_edit::expr::{Expression, ObjectKey, TraversalOperator};
use hcl_edit::structure::{Block, Body};
use hcl_edit::visit::{Visit, visit_traversal};

use super::tools;
use crate::layout::Layout;
use crate::services::{self, ServiceEntry};

/// Where the Terraform lives, relative to the workspace root.
const TERRAFORM_DIR: &str = "infra/terraform";
/// The environment whose generated `local.services` gives each service its database.
const PRODUCTION: &str = "infra/terraform/environments/production";
/// checkov's configuration: the framework and the skipped checks with their reasons.
const CHECKOV_CONFIG: &str = "infra/terraform/.checkov.yaml";
/// The arguments of a `module` block that are not the module's variables.
const MODULE_META_ARGUMENTS: &[&str] = &[
    "source",
    "version",
    "providers",
    "depends_on",
    "count",
    "for_each",
];

/// The example of the operator's values, beside the production environment.
const TFVARS_EXAMPLE: &str = "infra/terraform/environments/production/terraform.tfvars.example";

pub fn check(layout: &Layout) -> anyhow::Result<()> {
    let root = layout.root();
    let modules = load_modules(root, &root.join(TERRAFORM_DIR))?;
    let problems = structural_problems(root, &modules)?;
    ensure!(
        problems.is_empty(),
        "{} problem(s) in the Terraform:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
    println!(
        "terraform: {} modules, {} files: declarations, module calls, providers, layout and databases agree",
        modules.len(),
        modules.values().map(|m| m.files.len()).sum::<usize>()
    );
    run_checkov(layout)
}

/// Everything but checkov, over the parsed Terraform of the workspace at `root`.
fn structural_problems(
    root: &Path,
    modules: &BTreeMap<PathBuf, Module>,
) -> anyhow::Result<Vec<String>> {
    ensure!(
        !modules.is_empty(),
        "no Terraform found under {TERRAFORM_DIR}"
    );
    let mut problems = Vec::new();
    for module in modules.values() {
        for file in &module.files {
            problems.extend(format_problems(&file.shown, &file.text));
            problems.extend(inline_skip_problems(&file.shown, &file.text));
        }
    }
    problems.extend(reference_problems(modules));
    problems.extend(provider_problems(modules));
    problems.extend(description_problems(modules));
    let production = modules
        .get(Path::new(PRODUCTION))
        .with_context(|| format!("{PRODUCTION} has no Terraform"))?;
    problems.extend(database_problems(&services::load(root)?, production));
    let example = std::fs::read_to_string(root.join(TFVARS_EXAMPLE))
        .with_context(|| format!("reading {TFVARS_EXAMPLE}"))?;
    problems.extend(format_problems(TFVARS_EXAMPLE, &example));
    problems.extend(tfvars_problems(TFVARS_EXAMPLE, &example, production));
    let config = std::fs::read_to_string(root.join(CHECKOV_CONFIG))
        .with_context(|| format!("reading {CHECKOV_CONFIG}"))?;
    problems.extend(config_skip_problems(&config));
    Ok(problems)
}

/// A values file sets only variables the environment declares, and every one it requires:
/// what `terraform plan -var-file` would refuse first.
fn tfvars_problems(shown: &str, text: &str, environment: &Module) -> Vec<String> {
    let body = match hcl_edit::parser::parse_body(text) {
        Ok(body) => body,
        Err(error) => return vec![format!("{shown}: not valid HCL:\n{error}")],
    };
    let declared = Declarations::of(environment);
    let set: BTreeSet<&str> = body.attributes().map(|attr| attr.key.as_str()).collect();
    let mut problems = Vec::new();
    for name in &set {
        if !declared.variables.contains_key(name) {
            problems.push(format!(
                "{shown}: sets {name}, which the environment does not declare"
            ));
        }
    }
    for (name, has_default) in &declared.variables {
        if !has_default && !set.contains(name) {
            problems.push(format!(
                "{shown}: does not set {name}, which the environment requires"
            ));
        }
    }
    problems
}

/// One parsed `.tf` file.
struct TfFile {
    /// Its path relative to the workspace root, for messages.
    shown: String,
    text: String,
    body: Body,
}

/// The `.tf` files of one directory: a Terraform module (or root module).
#[derive(Default)]
struct Module {
    files: Vec<TfFile>,
}

/// Every directory under `dir` holding `.tf` files, by its path relative to `root`, each file
/// parsed; fails naming every file that does not parse.
fn load_modules(root: &Path, dir: &Path) -> anyhow::Result<BTreeMap<PathBuf, Module>> {
    let mut files = Vec::new();
    tf_files(dir, &mut files)?;
    files.sort();
    let mut modules: BTreeMap<PathBuf, Module> = BTreeMap::new();
    let mut errors = Vec::new();
    for path in files {
        let relative = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
        let shown = relative.display().to_string();
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {shown}"))?;
        match hcl_edit::parser::parse_body(&text) {
            Ok(body) => modules
                .entry(relative.parent().unwrap_or(Path::new("")).to_path_buf())
                .or_default()
                .files
                .push(TfFile { shown, text, body }),
            Err(error) => errors.push(format!("{shown}: not valid HCL:\n{error}")),
        }
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }
    Ok(modules)
}

/// The `.tf` files under `dir`, leaving out Terraform's own `.terraform/` working directories.
fn tf_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|name| name != ".terraform") {
                tf_files(&path, out)?;
            }
        } else if path.extension().is_some_and(|e| e == "tf") {
            out.push(path);
        }
    }
    Ok(())
}

/// A block's labels as strings.
fn labels(block: &Block) -> Vec<&str> {
    block.labels.iter().map(|label| label.as_str()).collect()
}

/// The blocks `kind` with one label in every file of `module`: (label, block).
fn labelled<'a>(module: &'a Module, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Block)> {
    module.files.iter().flat_map(move |file| {
        file.body
            .get_blocks(kind)
            .filter_map(|block| Some((*labels(block).first()?, block)))
    })
}

/// What a module declares: its variables (and whether each has a default), its outputs,
/// its locals and its module calls.
struct Declarations<'a> {
    variables: BTreeMap<&'a str, bool>,
    outputs: BTreeSet<&'a str>,
    locals: BTreeSet<&'a str>,
    calls: BTreeMap<&'a str, &'a Block>,
}

impl<'a> Declarations<'a> {
    fn of(module: &'a Module) -> Self {
        let variables = labelled(module, "variable")
            .map(|(name, block)| (name, block.body.get_attribute("default").is_some()))
            .collect();
        let outputs = labelled(module, "output").map(|(name, _)| name).collect();
        let locals = module
            .files
            .iter()
            .flat_map(|file| file.body.get_blocks("locals"))
            .flat_map(|block| block.body.attributes().map(|attr| attr.key.as_str()))
            .collect();
        let calls = labelled(module, "module").collect();
        Self {
            variables,
            outputs,
            locals,
            calls,
        }
    }
}

/// A reference to `var.*`, `local.*` or `module.*.*` somewhere in a file.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Reference {
    root: String,
    name: String,
    attribute: Option<String>,
}

/// Collects the references of a body, in expressions and string templates alike.
#[derive(Default)]
struct References(BTreeSet<Reference>);

impl Visit for References {
    fn visit_traversal(&mut self, node: &hcl_edit::expr::Traversal) {
        if let Expression::Variable(root) = &node.expr {
            let root = root.as_str();
            if matches!(root, "var" | "local" | "module") {
                let mut names = node
                    .operators
                    .iter()
                    .map(|operator| match operator.value() {
                        TraversalOperator::GetAttr(name) => Some(name.as_str().to_owned()),
                        _ => None,
                    });
                if let Some(Some(name)) = names.next() {
                    self.0.insert(Reference {
                        root: root.to_owned(),
                        name,
                        attribute: names.next().flatten(),
                    });
                }
            }
        }
        visit_traversal(self, node);
    }
}

/// `a/b/../c` as `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// What `terraform validate` would refuse in the references between and within modules.
fn reference_problems(modules: &BTreeMap<PathBuf, Module>) -> Vec<String> {
    let declarations: BTreeMap<&Path, Declarations> = modules
        .iter()
        .map(|(dir, module)| (dir.as_path(), Declarations::of(module)))
        .collect();
    let mut problems = Vec::new();
    for (dir, module) in modules {
        let declared = &declarations[dir.as_path()];
        let shown = dir.display();
        // Each call of a local module: its source exists, every required variable is given,
        // every argument is a variable of the module.
        let mut called: BTreeMap<&str, &Declarations> = BTreeMap::new();
        for (name, block) in &declared.calls {
            let Some(source) = block
                .body
                .get_attribute("source")
                .and_then(|attr| attr.value.as_str())
            else {
                problems.push(format!("{shown}: module \"{name}\" has no literal source"));
                continue;
            };
            if !(source.starts_with("./") || source.starts_with("../")) {
                continue;
            }
            let target = normalize(&dir.join(source));
            let Some(target_declared) = declarations.get(target.as_path()) else {
                problems.push(format!(
                    "{shown}: module \"{name}\": its source {source} ({}) has no Terraform",
                    target.display()
                ));
                continue;
            };
            called.insert(name, target_declared);
            let given: BTreeSet<&str> = block
                .body
                .attributes()
                .map(|attr| attr.key.as_str())
                .collect();
            for (variable, has_default) in &target_declared.variables {
                if !has_default && !given.contains(variable) {
                    problems.push(format!(
                        "{shown}: module \"{name}\" does not set {variable}, which {} requires",
                        target.display()
                    ));
                }
            }
            for argument in given {
                if !MODULE_META_ARGUMENTS.contains(&argument)
                    && !target_declared.variables.contains_key(argument)
                {
                    problems.push(format!(
                        "{shown}: module \"{name}\" sets {argument}, which {} does not declare",
                        target.display()
                    ));
                }
            }
        }
        for file in &module.files {
            // The modules say they run on Terraform 1.6, where a variable's validation may
            // refer to that variable only (1.9 allows more).
            for variable in file.body.get_blocks("variable") {
                let Some(name) = labels(variable).first().copied() else {
                    continue;
                };
                let mut references = References::default();
                for validation in variable.body.get_blocks("validation") {
                    references.visit_body(&validation.body);
                }
                for reference in references.0 {
                    if reference.root != "var" || reference.name != name {
                        problems.push(format!(
                            "{}: the validation of var.{name} refers to {}.{}: before Terraform 1.9 a validation may refer to its own variable only",
                            file.shown, reference.root, reference.name
                        ));
                    }
                }
            }
            let mut references = References::default();
            references.visit_body(&file.body);
            for reference in references.0 {
                let name = reference.name.as_str();
                let problem = match reference.root.as_str() {
                    "var" if !declared.variables.contains_key(name) => {
                        Some(format!("var.{name} is not declared in {shown}"))
                    }
                    "local" if !declared.locals.contains(name) => {
                        Some(format!("local.{name} is not declared in {shown}"))
                    }
                    "module" if !declared.calls.contains_key(name) => {
                        Some(format!("module.{name} is not called in {shown}"))
                    }
                    "module" => match (called.get(name), reference.attribute.as_deref()) {
                        (Some(target), Some(output)) if !target.outputs.contains(output) => Some(
                            format!("module.{name}.{output}: module \"{name}\" has no such output"),
                        ),
                        _ => None,
                    },
                    _ => None,
                };
                if let Some(problem) = problem {
                    problems.push(format!("{}: {problem}", file.shown));
                }
            }
        }
    }
    problems
}

/// Every module says which Terraform it needs and pins every provider it uses: a
/// `terraform` block with `required_version` and, in `required_providers`, a `source` and a
/// `version` for the provider of each resource and data source (its type's first word).
fn provider_problems(modules: &BTreeMap<PathBuf, Module>) -> Vec<String> {
    let mut problems = Vec::new();
    for (dir, module) in modules {
        let shown = dir.display();
        let settings: Vec<&Block> = module
            .files
            .iter()
            .flat_map(|file| file.body.get_blocks("terraform"))
            .collect();
        if !settings
            .iter()
            .any(|block| block.body.get_attribute("required_version").is_some())
        {
            problems.push(format!(
                "{shown}: no terraform {{ required_version = ... }}"
            ));
        }
        let mut pinned = BTreeSet::new();
        for required in settings
            .iter()
            .flat_map(|block| block.body.get_blocks("required_providers"))
        {
            for provider in required.body.attributes() {
                let name = provider.key.as_str();
                let entry = provider.value.as_object();
                let has = |wanted: &str| {
                    entry.is_some_and(|entry| {
                        entry.iter().any(|(key, value)| {
                            let key = match key {
                                ObjectKey::Ident(ident) => ident.as_str(),
                                ObjectKey::Expression(expr) => expr.as_str().unwrap_or(""),
                            };
                            key == wanted && value.expr().as_str().is_some_and(|v| !v.is_empty())
                        })
                    })
                };
                if has("source") && has("version") {
                    pinned.insert(name.to_owned());
                } else {
                    problems.push(format!(
                        "{shown}: required_providers.{name} needs a source and a version"
                    ));
                }
            }
        }
        let used: BTreeSet<&str> = module
            .files
            .iter()
            .flat_map(|file| {
                file.body
                    .get_blocks("resource")
                    .chain(file.body.get_blocks("data"))
            })
            .filter_map(|block| labels(block).first().copied())
            .filter_map(|kind| kind.split('_').next())
            .collect();
        for provider in used {
            if !pinned.contains(provider) {
                problems.push(format!(
                    "{shown}: uses the {provider} provider without pinning it in required_providers"
                ));
            }
        }
    }
    problems
}

/// Every variable and output says what it is: the module's interface is read from them.
fn description_problems(modules: &BTreeMap<PathBuf, Module>) -> Vec<String> {
    let mut problems = Vec::new();
    for module in modules.values() {
        for file in &module.files {
            for kind in ["variable", "output"] {
                for block in file.body.get_blocks(kind) {
                    let described = block
                        .body
                        .get_attribute("description")
                        .and_then(|attr| attr.value.as_str())
                        .is_some_and(|text| !text.trim().is_empty());
                    if !described {
                        problems.push(format!(
                            "{}: {kind} \"{}\" has no description",
                            file.shown,
                            labels(block).first().copied().unwrap_or("?")
                        ));
                    }
                }
            }
        }
    }
    problems
}

/// The services of the environment's `locals { services = { ... } }`: name and store.
fn environment_services(environment: &Module) -> Option<BTreeMap<String, String>> {
    let services = environment
        .files
        .iter()
        .flat_map(|file| file.body.get_blocks("locals"))
        .find_map(|block| block.body.get_attribute("services"))?;
    let object = services.value.as_object()?;
    let mut out = BTreeMap::new();
    for (key, value) in object.iter() {
        let name = match key {
            ObjectKey::Ident(ident) => ident.as_str().to_owned(),
            ObjectKey::Expression(expr) => expr.as_str()?.to_owned(),
        };
        let store = value
            .expr()
            .as_object()
            .and_then(|entry| {
                entry.iter().find_map(|(key, value)| {
                    let is_store = match key {
                        ObjectKey::Ident(ident) => ident.as_str() == "store",
                        ObjectKey::Expression(expr) => expr.as_str() == Some("store"),
                    };
                    is_store.then(|| value.expr().as_str()).flatten()
                })
            })
            .unwrap_or_default()
            .to_owned();
        out.insert(name, store);
    }
    Some(out)
}

/// Every service of the list is in the environment's services with its store, so each one
/// whose state is in PostgreSQL gets a database; and nothing else is there.
fn database_problems(services: &[ServiceEntry], environment: &Module) -> Vec<String> {
    let Some(listed) = environment_services(environment) else {
        return vec![format!(
            "{PRODUCTION}: no `locals {{ services = {{ ... }} }}` (the generated section of services.tf)"
        )];
    };
    let mut problems = Vec::new();
    for service in services {
        match listed.get(&service.name) {
            None if service.store.uses_postgres() => problems.push(format!(
                "{PRODUCTION}: {} keeps its state in PostgreSQL but has no database: it is missing from local.services (run `cargo xtask sync-services`)",
                service.name
            )),
            None => problems.push(format!(
                "{PRODUCTION}: {} is missing from local.services (run `cargo xtask sync-services`)",
                service.name
            )),
            Some(store) if store != service.store.as_str() => problems.push(format!(
                "{PRODUCTION}: local.services says {}'s store is {store:?}, {} says {:?}",
                service.name,
                services::LIST,
                service.store.as_str()
            )),
            Some(_) => {}
        }
    }
    for name in listed.keys() {
        if !services.iter().any(|service| &service.name == name) {
            problems.push(format!(
                "{PRODUCTION}: local.services has {name}, which {} does not list",
                services::LIST
            ));
        }
    }
    problems
}

/// The characters of a line outside string literals and comments, with their byte offsets:
/// what brackets and `=` are counted from. Interpolations (`${...}`) stay inside the string.
fn code_characters(line: &str) -> Vec<(usize, char)> {
    let mut out = Vec::new();
    let mut chars = line.char_indices().peekable();
    let mut in_string = false;
    let mut interpolation = 0usize;
    while let Some((index, c)) = chars.next() {
        if in_string {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' if interpolation == 0 => in_string = false,
                '$' if chars.peek().is_some_and(|(_, next)| *next == '{') => {
                    chars.next();
                    interpolation += 1;
                }
                '}' if interpolation > 0 => interpolation -= 1,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '#' => break,
            '/' if chars.peek().is_some_and(|(_, next)| *next == '/') => break,
            _ => out.push((index, c)),
        }
    }
    out
}

fn bracket_change(c: char) -> i32 {
    match c {
        '{' | '[' | '(' => 1,
        '}' | ']' | ')' => -1,
        _ => 0,
    }
}

/// Where `terraform fmt` would lay out `text` differently, as hclwrite does: each line
/// indented two spaces per line with a net opening bracket still open (a line starting with
/// a closing one a level less); the `=` of consecutive one-line attributes aligned one space
/// after the longest name (a blank line, a comment line or a line opening a multi-line value
/// ends such a run); no trailing blanks, one newline at the end. Heredocs are not used here.
fn format_problems(shown: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if !text.ends_with('\n') || text.ends_with("\n\n") {
        problems.push(format!("{shown}: must end with exactly one newline"));
    }
    // The open levels: how many brackets each opening line left open.
    let mut open: Vec<i32> = Vec::new();
    // The current run of one-line attributes: (line number, name width, `=` column).
    let mut run: Vec<(usize, usize, usize)> = Vec::new();
    let close_run = |run: &mut Vec<(usize, usize, usize)>, problems: &mut Vec<String>| {
        let width = run.iter().map(|(_, width, _)| *width).max().unwrap_or(0);
        for (number, _, column) in run.drain(..) {
            if column != width + 1 {
                problems.push(format!(
                    "{shown}:{number}: `=` in column {}, terraform fmt puts it in column {} (aligned with the attributes around it)",
                    column + 1,
                    width + 2
                ));
            }
        }
    };
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim_end() != line {
            problems.push(format!("{shown}:{number}: trailing blanks"));
        }
        let trimmed = line.trim();
        if trimmed.is_empty() {
            close_run(&mut run, &mut problems);
            continue;
        }
        let code = code_characters(line);
        let starts_closed = trimmed.starts_with(['}', ']', ')']);
        let depth = open.len().saturating_sub(usize::from(starts_closed));
        let indent = line.len() - line.trim_start_matches(' ').len();
        if indent != 2 * depth {
            problems.push(format!(
                "{shown}:{number}: indented {indent} spaces, terraform fmt indents {}",
                2 * depth
            ));
        }
        let net: i32 = code.iter().map(|(_, c)| bracket_change(*c)).sum();
        if net > 0 {
            open.push(net);
        } else {
            let mut closing = -net;
            while closing > 0 {
                let Some(top) = open.pop() else { break };
                if top > closing {
                    open.push(top - closing);
                    closing = 0;
                } else {
                    closing -= top;
                }
            }
        }
        // The attribute's `=`: not `==`, `=>`, `!=`, `<=`, `>=`.
        let bytes = line.as_bytes();
        let equals = code.iter().position(|(offset, c)| {
            *c == '='
                && !matches!(bytes.get(offset + 1), Some(b'=' | b'>'))
                && !matches!(
                    offset.checked_sub(1).map(|o| bytes[o]),
                    Some(b'=' | b'!' | b'<' | b'>')
                )
        });
        let one_line_attribute = equals.and_then(|position| {
            let (offset, _) = code[position];
            let name = line[..offset].trim_end();
            let rest: i32 = code[position..]
                .iter()
                .map(|(_, c)| bracket_change(*c))
                .sum();
            (!name.trim().is_empty() && rest == 0).then_some((offset, name.len()))
        });
        match one_line_attribute {
            Some((offset, width)) => run.push((number, width, offset)),
            None => close_run(&mut run, &mut problems),
        }
    }
    close_run(&mut run, &mut problems);
    if !open.is_empty() {
        problems.push(format!("{shown}: brackets left open at the end"));
    }
    problems
}

/// `#checkov:skip=<ID>:<reason>` comments must give a reason.
fn inline_skip_problems(shown: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if let Some((_, skip)) = line.split_once("checkov:skip=") {
            let reason = skip.split_once(':').map_or("", |(_, reason)| reason.trim());
            if reason.split_whitespace().count() < 3 {
                problems.push(format!(
                    "{shown}:{}: a checkov skip needs its reason: #checkov:skip=<ID>:<why>",
                    index + 1
                ));
            }
        }
    }
    problems
}

/// Every check skipped in the checkov configuration has its reason in the comment above it,
/// which names the check.
fn config_skip_problems(config: &str) -> Vec<String> {
    let lines: Vec<&str> = config.lines().collect();
    let mut problems = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let Some(id) = line.trim().strip_prefix("- ") else {
            continue;
        };
        let id = id.trim();
        if !id.starts_with("CKV") {
            continue;
        }
        let comment: Vec<&str> = lines[..index]
            .iter()
            .rev()
            .take_while(|line| line.trim_start().starts_with('#'))
            .copied()
            .collect();
        let explained = comment.iter().any(|line| line.contains(id))
            && comment
                .iter()
                .map(|line| line.split_whitespace().count())
                .sum::<usize>()
                >= 8;
        if !explained {
            problems.push(format!(
                "{CHECKOV_CONFIG}:{}: {id} is skipped without its reason in a comment above it that names it",
                index + 1
            ));
        }
    }
    problems
}

/// Runs checkov over the Terraform and fails on any failed check or unparsed file.
fn run_checkov(layout: &Layout) -> anyhow::Result<()> {
    let checkov = tools::python_tool(layout, "checkov", &["checkov==3.3.30"], "checkov")?;
    let output = Command::new(&checkov)
        .current_dir(layout.root())
        .args(["--config-file", CHECKOV_CONFIG])
        .args(["--framework", "terraform", "-d", TERRAFORM_DIR])
        .args(["--output", "json", "--skip-download"])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", checkov.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout).with_context(|| {
        format!(
            "checkov did not write its JSON report ({}):\n{stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    let verdict = judge_checkov_report(&report)?;
    println!("terraform: checkov: {verdict}");
    Ok(())
}

/// What checkov's JSON report says: a summary when everything passed; an error listing each
/// failed check and each file it could not parse otherwise.
fn judge_checkov_report(report: &serde_json::Value) -> anyhow::Result<String> {
    // One framework gives one object; several give a list.
    let reports: Vec<&serde_json::Value> = match report {
        serde_json::Value::Array(reports) => reports.iter().collect(),
        report => vec![report],
    };
    let mut problems = Vec::new();
    let (mut passed, mut skipped, mut resources) = (0, 0, 0);
    for report in reports {
        let summary = &report["summary"];
        let count = |key: &str| summary[key].as_u64().unwrap_or(0);
        passed += count("passed");
        skipped += count("skipped");
        resources += count("resource_count");
        let results = &report["results"];
        for failed in results["failed_checks"].as_array().into_iter().flatten() {
            problems.push(format!(
                "{} failed: {} ({} in {}:{})",
                failed["check_id"].as_str().unwrap_or("?"),
                failed["check_name"].as_str().unwrap_or("?"),
                failed["resource"].as_str().unwrap_or("?"),
                failed["file_path"].as_str().unwrap_or("?"),
                failed["file_line_range"][0]
            ));
        }
        let unparsed: Vec<&str> = results["parsing_errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|file| file.as_str())
            .collect();
        for file in &unparsed {
            problems.push(format!("checkov could not parse {file}"));
        }
        // The count is there even when the list is not.
        let unlisted = count("parsing_errors").saturating_sub(unparsed.len() as u64);
        if unlisted > 0 {
            problems.push(format!("checkov could not parse {unlisted} file(s)"));
        }
        let failed_unlisted = count("failed").saturating_sub(
            results["failed_checks"]
                .as_array()
                .map_or(0, |failed| failed.len() as u64),
        );
        if failed_unlisted > 0 {
            problems.push(format!("{failed_unlisted} more failed check(s)"));
        }
    }
    ensure!(problems.is_empty(), "checkov:\n  {}", problems.join("\n  "));
    ensure!(
        resources > 0 && passed > 0,
        "checkov checked no resource: it did not read the Terraform"
    );
    Ok(format!(
        "{passed} checks passed, {skipped} skipped (with their reasons), on {resources} resources"
    ))
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

    /// A directory of Terraform under the system's temp dir, removed on drop.
    struct Tree(PathBuf);

    impl Tree {
        fn new(files: &[(&str, &str)]) -> Self {
            let root =
                std::env::temp_dir().join(format!("xtask-terraform-{}", uuid::Uuid::new_v4()));
            for (path, text) in files {
                let path = root.join(path);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, text).unwrap();
            }
            Self(root)
        }

        fn modules(&self) -> BTreeMap<PathBuf, Module> {
            load_modules(&self.0, &self.0).unwrap()
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const BUCKET_MODULE: &str = r#"variable "name" {
  type = string

  validation {
    condition     = length(var.name) < 40
    error_message = "At most 39 characters."
  }
}

variable "versioning" {
  type    = bool
  default = true
}

resource "aws_s3_bucket" "main" {
  bucket = "${var.name}-data"
}

output "arn" {
  value = aws_s3_bucket.main.arn
}
"#;

    fn environment(call: &str) -> String {
        format!(
            "locals {{\n  name = \"shop\"\n}}\n\nmodule \"bucket\" {{\n  source = \"../../modules/bucket\"\n\n{call}}}\n\noutput \"bucket\" {{\n  value = module.bucket.arn\n}}\n"
        )
    }

    fn problems_of(call: &str) -> Vec<String> {
        let tree = Tree::new(&[
            ("modules/bucket/main.tf", BUCKET_MODULE),
            ("environments/prod/main.tf", &environment(call)),
        ]);
        reference_problems(&tree.modules())
    }

    #[test]
    fn a_module_call_with_its_required_variables_has_no_problems() {
        assert_eq!(problems_of("  name = local.name\n"), Vec::<String>::new());
        assert_eq!(
            problems_of("  name       = local.name\n  versioning = false\n"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_module_call_missing_a_required_variable_is_a_problem() {
        assert_eq!(
            problems_of("  versioning = false\n"),
            [
                "environments/prod: module \"bucket\" does not set name, which modules/bucket requires"
            ]
        );
    }

    #[test]
    fn a_module_call_setting_an_undeclared_variable_is_a_problem() {
        assert_eq!(
            problems_of("  name   = local.name\n  region = \"eu-west-1\"\n"),
            [
                "environments/prod: module \"bucket\" sets region, which modules/bucket does not declare"
            ]
        );
    }

    #[test]
    fn undeclared_variables_locals_modules_and_outputs_are_problems() {
        let tree = Tree::new(&[
            ("modules/bucket/main.tf", BUCKET_MODULE),
            (
                "modules/bucket/extra.tf",
                "output \"policy\" {\n  value = \"${var.policy}-${local.suffix}\"\n}\n",
            ),
            (
                "environments/prod/main.tf",
                &environment("  name = local.name\n")
                    .replace("module.bucket.arn", "module.bucket.id"),
            ),
            (
                "environments/prod/more.tf",
                "output \"other\" {\n  value = [module.buckets.arn, local.missing]\n}\n",
            ),
        ]);
        assert_eq!(
            reference_problems(&tree.modules()),
            [
                "environments/prod/main.tf: module.bucket.id: module \"bucket\" has no such output",
                "environments/prod/more.tf: local.missing is not declared in environments/prod",
                "environments/prod/more.tf: module.buckets is not called in environments/prod",
                "modules/bucket/extra.tf: local.suffix is not declared in modules/bucket",
                "modules/bucket/extra.tf: var.policy is not declared in modules/bucket",
            ]
        );
    }

    #[test]
    fn a_validation_referring_to_another_variable_is_a_problem() {
        let tree = Tree::new(&[(
            "main.tf",
            "variable \"low\" {\n  type = number\n}\n\nvariable \"high\" {\n  type = number\n\n  validation {\n    condition     = var.high >= var.low\n    error_message = \"high must be at least low.\"\n  }\n}\n",
        )]);
        assert_eq!(
            reference_problems(&tree.modules()),
            [
                "main.tf: the validation of var.high refers to var.low: before Terraform 1.9 a validation may refer to its own variable only"
            ]
        );
    }

    #[test]
    fn every_provider_a_module_uses_is_pinned() {
        let versions = "terraform {\n  required_version = \">= 1.6\"\n\n  required_providers {\n    aws = {\n      source  = \"hashicorp/aws\"\n      version = \"~> 5.80\"\n    }\n    random = {\n      source = \"hashicorp/random\"\n    }\n  }\n}\n";
        let main = "resource \"aws_s3_bucket\" \"a\" {\n  bucket = \"a\"\n}\n\ndata \"tls_certificate\" \"b\" {\n  url = \"https://example.com\"\n}\n";
        let tree = Tree::new(&[("m/versions.tf", versions), ("m/main.tf", main)]);
        assert_eq!(
            provider_problems(&tree.modules()),
            [
                "m: required_providers.random needs a source and a version",
                "m: uses the tls provider without pinning it in required_providers",
            ]
        );
        let tree = Tree::new(&[("m/main.tf", main)]);
        let problems = provider_problems(&tree.modules());
        assert!(
            problems[0].contains("no terraform { required_version"),
            "{problems:?}"
        );
    }

    #[test]
    fn variables_and_outputs_without_a_description_are_problems() {
        let tree = Tree::new(&[(
            "m/main.tf",
            "variable \"a\" {\n  description = \"The a.\"\n}\n\nvariable \"b\" {\n  type = string\n}\n\noutput \"c\" {\n  description = \"\"\n  value       = var.b\n}\n",
        )]);
        assert_eq!(
            description_problems(&tree.modules()),
            [
                "m/main.tf: variable \"b\" has no description",
                "m/main.tf: output \"c\" has no description",
            ]
        );
    }

    #[test]
    fn a_module_source_without_terraform_is_a_problem() {
        let tree = Tree::new(&[(
            "environments/prod/main.tf",
            "module \"bucket\" {\n  source = \"../../modules/bucket\"\n}\n",
        )]);
        assert_eq!(
            reference_problems(&tree.modules()),
            [
                "environments/prod: module \"bucket\": its source ../../modules/bucket (modules/bucket) has no Terraform"
            ]
        );
    }

    #[test]
    fn a_file_that_is_not_hcl_fails_with_its_name() {
        let tree = Tree::new(&[("main.tf", "resource \"a\" \"b\" {\n  x = \n")]);
        let error = load_modules(&tree.0, &tree.0).err().unwrap().to_string();
        assert!(error.starts_with("main.tf: not valid HCL"), "{error}");
    }

    fn entry(name: &str, store: &str) -> ServiceEntry {
        services::parse(&format!(
            "[[service]]\nname = \"{name}\"\nstore = \"{store}\"\nadmin_port = 1\ndescription = \"x\"\n"
        ))
        .unwrap()
        .remove(0)
    }

    fn environment_with(services: &str) -> Tree {
        Tree::new(&[(
            "main.tf",
            &format!(
                "# BEGIN generated services\nlocals {{\n  services = {{\n{services}  }}\n}}\n"
            ),
        )])
    }

    #[test]
    fn every_listed_service_must_have_its_database_in_the_environment() {
        let tree = environment_with(
            "    \"product\" = {\n      name  = \"product\"\n      store = \"postgres\"\n    }\n    \"wish-list\" = {\n      store = \"redis\"\n    }\n",
        );
        let modules = tree.modules();
        let environment = modules.values().next().unwrap();
        let in_step = [entry("product", "postgres"), entry("wish-list", "redis")];
        assert_eq!(
            database_problems(&in_step, environment),
            Vec::<String>::new()
        );

        let with_more = [
            entry("product", "postgres"),
            entry("wish-list", "redis"),
            entry("gift-card", "mongo"),
        ];
        let problems = database_problems(&with_more, environment);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("gift-card keeps its state in PostgreSQL but has no database"),
            "{problems:?}"
        );

        let changed = [entry("product", "mongo"), entry("wish-list", "redis")];
        let problems = database_problems(&changed, environment);
        assert!(
            problems[0].contains("product's store is \"postgres\""),
            "{problems:?}"
        );

        let fewer = [entry("product", "postgres")];
        let problems = database_problems(&fewer, environment);
        assert!(
            problems[0].contains("local.services has wish-list"),
            "{problems:?}"
        );
    }

    #[test]
    fn an_environment_without_generated_services_is_a_problem() {
        let tree = Tree::new(&[("main.tf", "locals {\n  name = \"x\"\n}\n")]);
        let modules = tree.modules();
        let problems = database_problems(
            &[entry("product", "postgres")],
            modules.values().next().unwrap(),
        );
        assert!(problems[0].contains("no `locals"), "{problems:?}");
    }

    #[test]
    fn the_layout_terraform_fmt_writes_passes() {
        let text = r#"resource "aws_kms_key" "main" {
  description         = "a = b, \"quoted\", ${var.name}"
  enable_key_rotation = true
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect = "Allow" # == and => are not attributes
      Action = [for a in var.actions : a if a != "x"]
    }]
  })

  tags = merge(var.tags, { Name = "x" })
}
"#;
        assert_eq!(format_problems("a.tf", text), Vec::<String>::new());
    }

    #[test]
    fn misaligned_equals_and_wrong_indentation_are_problems() {
        let text = "resource \"a\" \"b\" {\n  name = 1\n  longer_name = 2\n   other = {\n  }\n}";
        assert_eq!(
            format_problems("a.tf", text),
            [
                "a.tf: must end with exactly one newline",
                "a.tf:4: indented 3 spaces, terraform fmt indents 2",
                "a.tf:2: `=` in column 8, terraform fmt puts it in column 15 (aligned with the attributes around it)",
            ]
        );
        let text = "locals {\n  a = 1\n\n  bb = 2 \n}\n";
        assert_eq!(format_problems("a.tf", text), ["a.tf:4: trailing blanks"]);
    }

    #[test]
    fn every_skip_needs_its_reason() {
        let explained = "skip-check:\n  # CKV2_AWS_57: the values are rotated through Terraform, which changes the pods too.\n  - CKV2_AWS_57\n";
        assert_eq!(config_skip_problems(explained), Vec::<String>::new());
        let bare = "skip-check:\n  - CKV2_AWS_57\n";
        assert_eq!(config_skip_problems(bare).len(), 1);
        let other = "skip-check:\n  # CKV_AWS_1: a reason about another check, long enough to count.\n  - CKV2_AWS_57\n";
        assert_eq!(config_skip_problems(other).len(), 1);

        assert_eq!(
            inline_skip_problems(
                "a.tf",
                "  #checkov:skip=CKV_AWS_293:A replica holds a copy of the primary's data.\n"
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            inline_skip_problems("a.tf", "  #checkov:skip=CKV_AWS_293\n"),
            ["a.tf:1: a checkov skip needs its reason: #checkov:skip=<ID>:<why>"]
        );
    }

    #[test]
    fn checkov_reports_fail_on_failed_checks_and_unparsed_files() {
        let clean = serde_json::json!({
            "check_type": "terraform",
            "results": { "passed_checks": [], "failed_checks": [], "skipped_checks": [], "parsing_errors": [] },
            "summary": { "passed": 158, "failed": 0, "skipped": 6, "parsing_errors": 0, "resource_count": 90 }
        });
        assert_eq!(
            judge_checkov_report(&clean).unwrap(),
            "158 checks passed, 6 skipped (with their reasons), on 90 resources"
        );

        let failed = serde_json::json!({
            "check_type": "terraform",
            "results": {
                "failed_checks": [{
                    "check_id": "CKV_AWS_27",
                    "check_name": "Ensure all data stored in the SQS queue is encrypted",
                    "resource": "aws_sqs_queue.q",
                    "file_path": "/ok.tf",
                    "file_line_range": [1, 3]
                }],
                "parsing_errors": ["/work/infra/terraform/bad.tf"]
            },
            "summary": { "passed": 2, "failed": 1, "skipped": 0, "parsing_errors": 1, "resource_count": 1 }
        });
        let error = judge_checkov_report(&failed).unwrap_err().to_string();
        assert!(
            error.contains("CKV_AWS_27 failed: Ensure all data stored in the SQS queue is encrypted (aws_sqs_queue.q in /ok.tf:1)"),
            "{error}"
        );
        assert!(
            error.contains("checkov could not parse /work/infra/terraform/bad.tf"),
            "{error}"
        );

        // Counts without lists (checkov's --quiet) still fail.
        let counted = serde_json::json!([{
            "results": {},
            "summary": { "passed": 2, "failed": 1, "skipped": 0, "parsing_errors": 2, "resource_count": 1 }
        }]);
        let error = judge_checkov_report(&counted).unwrap_err().to_string();
        assert!(error.contains("could not parse 2 file(s)"), "{error}");
        assert!(error.contains("1 more failed check(s)"), "{error}");

        let nothing = serde_json::json!({
            "results": {},
            "summary": { "passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 0 }
        });
        assert!(judge_checkov_report(&nothing).is_err());
    }

    #[test]
    fn a_values_file_sets_declared_variables_and_every_required_one() {
        let tree = Tree::new(&[(
            "main.tf",
            "variable \"region\" {\n  type = string\n}\n\nvariable \"size\" {\n  type    = number\n  default = 3\n}\n",
        )]);
        let modules = tree.modules();
        let environment = modules.values().next().unwrap();
        assert_eq!(
            tfvars_problems("x.tfvars", "region = \"eu-west-1\"\n", environment),
            Vec::<String>::new()
        );
        assert_eq!(
            tfvars_problems("x.tfvars", "size  = 5\nzones = 3\n", environment),
            [
                "x.tfvars: sets zones, which the environment does not declare",
                "x.tfvars: does not set region, which the environment requires",
            ]
        );
    }

    /// The Terraform in the repository passes everything but checkov (which `cargo xtask
    /// check-infra` runs).
    #[test]
    fn the_repository_terraform_is_consistent() {
        let root = workspace_root();
        let modules = load_modules(&root, &root.join(TERRAFORM_DIR)).unwrap();
        let problems = structural_problems(&root, &modules).unwrap();
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        for module in [
            "network", "eks", "postgres", "redis", "secrets", "nats", "emporium",
        ] {
            assert!(
                modules.contains_key(&Path::new(TERRAFORM_DIR).join("modules").join(module)),
                "modules/{module} is missing"
            );
        }
    }
}
