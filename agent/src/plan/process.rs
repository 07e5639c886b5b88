//! The container's command line, environment and working directory: the definition's
//! fields over the image's, by Docker's rules.

use std::collections::BTreeMap;

use crate::taskdef::{ContainerDefinition, KeyValuePair};

/// The parts of the image's OCI config that decide how its process runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `Env`, as `KEY=VALUE`.
    pub env: Vec<String>,
    /// `WorkingDir`.
    pub working_dir: Option<String>,
    /// `User`.
    pub user: Option<String>,
    /// `Labels`.
    pub labels: BTreeMap<String, String>,
}

/// Docker's PATH for images that set none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The argv: `entryPoint` replaces the image's Entrypoint and, unless `command` is also
/// given, drops the image's Cmd (it was written for the old entrypoint); `command`
/// replaces Cmd.
pub fn command_line(def: &ContainerDefinition, image: &ImageConfig) -> Vec<String> {
    let entrypoint = if def.entry_point.is_empty() {
        &image.entrypoint
    } else {
        &def.entry_point
    };
    let cmd: &[String] = if !def.command.is_empty() {
        &def.command
    } else if !def.entry_point.is_empty() {
        &[]
    } else {
        &image.cmd
    };
    entrypoint.iter().chain(cmd).cloned().collect()
}

/// The process environment, later sources winning by name: PATH (Docker's default,
/// when nothing else sets it), HOSTNAME and, on a pty, TERM=xterm (as Docker sets it),
/// then the image's Env, the environment files in order, and the definition's
/// `environment`; HOME from /etc/passwd last, when nothing set it.
pub fn environment(
    image_env: &[String],
    files: &[(String, String)],
    def_env: &[KeyValuePair],
    hostname: Option<&str>,
    home: &str,
    terminal: bool,
) -> Vec<String> {
    let mut env = Environment::default();
    env.set("PATH", DEFAULT_PATH);
    if let Some(h) = hostname {
        env.set("HOSTNAME", h);
    }
    if terminal {
        env.set("TERM", "xterm");
    }
    for entry in image_env {
        let (k, v) = entry.split_once('=').unwrap_or((entry, ""));
        env.set(k, v);
    }
    for (k, v) in files {
        env.set(k, v);
    }
    for kv in def_env {
        if let Some(name) = kv.name.as_deref().filter(|n| !n.is_empty()) {
            env.set(name, kv.value.as_deref().unwrap_or(""));
        }
    }
    if !env.has("HOME") {
        env.set("HOME", home);
    }
    env.into_list()
}

/// `workingDirectory`, else the image's WorkingDir, else "/".
pub fn working_dir(def: &ContainerDefinition, image: &ImageConfig) -> String {
    def.working_directory
        .as_deref()
        .or(image.working_dir.as_deref())
        .filter(|d| !d.is_empty())
        .unwrap_or("/")
        .to_string()
}

/// Variables in first-set order; setting one again replaces its value in place.
#[derive(Default)]
struct Environment {
    vars: Vec<(String, String)>,
}

impl Environment {
    fn set(&mut self, key: &str, value: &str) {
        match self.vars.iter_mut().find(|(k, _)| k == key) {
            Some(var) => var.1 = value.to_string(),
            None => self.vars.push((key.to_string(), value.to_string())),
        }
    }

    fn has(&self, key: &str) -> bool {
        self.vars.iter().any(|(k, _)| k == key)
    }

    fn into_list(self) -> Vec<String> {
        self.vars
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn image() -> ImageConfig {
        ImageConfig {
            entrypoint: strings(&["/docker-entrypoint.sh"]),
            cmd: strings(&["nginx", "-g", "daemon off;"]),
            env: strings(&["PATH=/opt/bin:/usr/bin", "NGINX_VERSION=1.25", "MODE=image"]),
            working_dir: Some("/srv".into()),
            ..Default::default()
        }
    }

    fn def(entry_point: &[&str], command: &[&str]) -> ContainerDefinition {
        ContainerDefinition {
            entry_point: strings(entry_point),
            command: strings(command),
            ..Default::default()
        }
    }

    #[test]
    fn image_entrypoint_and_cmd_by_default() {
        assert_eq!(
            command_line(&def(&[], &[]), &image()),
            ["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"]
        );
    }

    #[test]
    fn command_replaces_cmd_only() {
        assert_eq!(
            command_line(&def(&[], &["nginx", "-T"]), &image()),
            ["/docker-entrypoint.sh", "nginx", "-T"]
        );
    }

    #[test]
    fn entry_point_replaces_entrypoint_and_drops_cmd() {
        assert_eq!(command_line(&def(&["/bin/sh"], &[]), &image()), ["/bin/sh"]);
    }

    #[test]
    fn entry_point_and_command_replace_both() {
        assert_eq!(
            command_line(&def(&["/bin/sh", "-c"], &["echo hi"]), &image()),
            ["/bin/sh", "-c", "echo hi"]
        );
    }

    #[test]
    fn image_without_entrypoint_runs_cmd() {
        let image = ImageConfig {
            cmd: strings(&["sh"]),
            ..Default::default()
        };
        assert_eq!(command_line(&def(&[], &[]), &image), ["sh"]);
        assert_eq!(command_line(&def(&[], &["ls", "/"]), &image), ["ls", "/"]);
    }

    #[test]
    fn later_sources_win_by_name_and_keep_first_position() {
        let env = environment(
            &image().env,
            &[
                ("MODE".into(), "file".into()),
                ("FROM_FILE".into(), "1".into()),
                ("FROM_FILE".into(), "2".into()),
            ],
            &[
                KeyValuePair::new("MODE", "definition"),
                KeyValuePair::new("HOSTNAME", "custom"),
                KeyValuePair {
                    name: Some("EMPTY".into()),
                    value: None,
                },
            ],
            Some("0123456789ab"),
            "/root",
            false,
        );
        assert_eq!(
            env,
            [
                "PATH=/opt/bin:/usr/bin",
                "HOSTNAME=custom",
                "NGINX_VERSION=1.25",
                "MODE=definition",
                "FROM_FILE=2",
                "EMPTY=",
                "HOME=/root",
            ]
        );
    }

    #[test]
    fn defaults_for_path_and_home_without_hostname_in_host_mode() {
        let env = environment(&[], &[], &[], None, "/", false);
        assert_eq!(env, [format!("PATH={DEFAULT_PATH}"), "HOME=/".to_string()]);
        let env = environment(&strings(&["HOME=/data"]), &[], &[], None, "/root", false);
        assert!(env.contains(&"HOME=/data".to_string()));
        assert!(!env.contains(&"HOME=/root".to_string()));
    }

    #[test]
    fn a_pty_gets_term_xterm_unless_the_image_or_definition_says_otherwise() {
        let env = environment(&[], &[], &[], None, "/", true);
        assert!(env.contains(&"TERM=xterm".to_string()), "{env:?}");
        let env = environment(&strings(&["TERM=vt100"]), &[], &[], None, "/", true);
        assert!(env.contains(&"TERM=vt100".to_string()), "{env:?}");
        let def_term = [KeyValuePair::new("TERM", "dumb")];
        let env = environment(&[], &[], &def_term, None, "/", true);
        assert!(env.contains(&"TERM=dumb".to_string()), "{env:?}");
        let env = environment(&[], &[], &[], None, "/", false);
        assert!(!env.iter().any(|e| e.starts_with("TERM=")), "{env:?}");
    }

    #[test]
    fn working_directory_choice() {
        let mut d = def(&[], &[]);
        assert_eq!(working_dir(&d, &image()), "/srv");
        assert_eq!(working_dir(&d, &ImageConfig::default()), "/");
        d.working_directory = Some("/app".into());
        assert_eq!(working_dir(&d, &image()), "/app");
    }
}
