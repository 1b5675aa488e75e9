//! Shell completions and the man page, generated from the command-line
//! definitions so that they can never describe other commands than the binary
//! has. Packagers run `herald completions SHELL` and `herald man` on the built
//! binary; nothing here needs a configuration or a database.

use clap::Command;
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};

/// The completion script for `shell`.
///
/// Rendered into memory: clap_complete panics when its writer fails, and
/// stdout may be a closed pipe.
pub fn completions(shell: Shell, mut command: Command) -> Vec<u8> {
    let name = command.get_name().to_owned();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, name, &mut script);
    script
}

/// The man page (section 1, roff): name, synopsis, options, each subcommand,
/// then where herald looks for its configuration and what its exit codes mean.
pub fn man_page(command: Command) -> std::io::Result<Vec<u8>> {
    let command = command
        .disable_help_subcommand(true)
        .long_about(env!("CARGO_PKG_DESCRIPTION"));
    let mut page = Vec::new();
    let man = Man::new(command.clone());
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    commands_section(&command).to_writer(&mut page)?;
    appendix().to_writer(&mut page)?;
    man.render_version_section(&mut page)?;
    Ok(page)
}

/// Every subcommand, nested ones as `alerts retry`, with its synopsis and the
/// help of its arguments: clap_mangen alone lists only the first level by
/// name, and `herald search` is what a reader of the page looks for.
fn commands_section(command: &Command) -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    for sub in command.get_subcommands() {
        subcommand(&mut roff, sub, command.get_name());
    }
    roff
}

fn subcommand(roff: &mut Roff, command: &Command, parent: &str) {
    let path = format!("{parent} {}", command.get_name());
    let mut synopsis = vec![bold(path.clone())];
    for arg in command.get_arguments() {
        if arg.is_hide_set() || arg.is_global_set() {
            continue;
        }
        let id = arg.get_id().as_str();
        if id == "help" || id == "version" {
            continue;
        }
        synopsis.push(roman(" "));
        synopsis.push(roman(if arg.is_required_set() {
            usage(arg)
        } else {
            format!("[{}]", usage(arg))
        }));
    }
    if command.is_subcommand_required_set() {
        synopsis.push(roman(" COMMAND"));
    } else if command.has_subcommands() {
        synopsis.push(roman(" [COMMAND]"));
    }
    roff.control("TP", []);
    roff.text(synopsis);
    if let Some(about) = command.get_about() {
        roff.text([roman(about.to_string())]);
    }
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        if arg.is_hide_set() || arg.is_global_set() || id == "help" || id == "version" {
            continue;
        }
        if let Some(help) = arg.get_help() {
            let mut help = help.to_string();
            let choices: Vec<String> = arg
                .get_possible_values()
                .iter()
                .filter(|value| !value.is_hide_set())
                .map(|value| value.get_name().to_owned())
                .collect();
            if !choices.is_empty() && arg.get_action().takes_values() {
                help.push_str(&format!(" [one of: {}]", choices.join(", ")));
            }
            let defaults: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|value| value.to_string_lossy().into_owned())
                .collect();
            if !defaults.is_empty() {
                help.push_str(&format!(" [default: {}]", defaults.join(", ")));
            }
            roff.control("RS", []);
            roff.control("TP", []);
            roff.text([bold(usage(arg))]);
            roff.text([roman(help)]);
            roff.control("RE", []);
        }
    }
    for sub in command.get_subcommands() {
        subcommand(roff, sub, &path);
    }
}

/// `--since <SINCE>`, `QUERY`, `--json`: one argument as a synopsis shows it.
fn usage(arg: &clap::Arg) -> String {
    let value = arg
        .get_value_names()
        .and_then(|names| names.first())
        .map(|name| name.to_string())
        .unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
    let takes_value = arg.get_action().takes_values();
    match (arg.get_long(), arg.get_short()) {
        (Some(long), _) if takes_value => format!("--{long} <{value}>"),
        (Some(long), _) => format!("--{long}"),
        (None, Some(short)) if takes_value => format!("-{short} <{value}>"),
        (None, Some(short)) => format!("-{short}"),
        (None, None) => value,
    }
}

fn appendix() -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", ["FILES"]);
    roff.control("TP", []);
    roff.text([bold("/etc/herald/herald.toml")]);
    roff.text([roman(
        "The configuration when neither --config nor HERALD_CONFIG names one and \
         ./herald.toml does not exist: feeds, rules, sinks, the database URL.",
    )]);
    roff.control("TP", []);
    roff.text([bold("/etc/herald/herald.env")]);
    roff.text([roman(
        "Read by the systemd unit: the environment variables that ${VAR} in the \
         configuration names (webhook URLs, tokens, database passwords).",
    )]);
    roff.control("TP", []);
    roff.text([bold("/var/lib/herald")]);
    roff.text([roman(
        "The systemd unit's state directory, where a SQLite database lives.",
    )]);
    roff.control("SH", ["ENVIRONMENT"]);
    for (name, meaning) in [
        (
            "HERALD_CONFIG",
            "The configuration file, unless --config is given.",
        ),
        (
            "HERALD_DATABASE_URL",
            "Overrides database.url: sqlite://PATH or postgres://USER@HOST/DB.",
        ),
        (
            "RUST_LOG",
            "Log filter, e.g. herald=debug (default warn,herald=info).",
        ),
    ] {
        roff.control("TP", []);
        roff.text([bold(name)]);
        roff.text([roman(meaning)]);
    }
    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in [
        ("0", "Success."),
        (
            "1",
            "A runtime failure: a feed that could not be fetched or an alert that \
             could not be delivered (herald poll), an unreachable or damaged database.",
        ),
        ("2", "Bad usage or an invalid configuration."),
    ] {
        roff.control("TP", []);
        roff.text([bold(code)]);
        roff.text([roman(meaning)]);
    }
    roff
}
