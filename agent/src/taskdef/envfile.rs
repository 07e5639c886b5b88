//! `environmentFiles`: `KEY=VALUE` files on this host. ECS fetches them from S3; berth
//! takes an absolute path or a file:// URL. Parsing is pure; `read_environment_files`
//! is the one function in `taskdef` that touches the filesystem.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::model::TaskDefinition;

/// Where an `environmentFiles[].value` points on this host.
pub fn environment_file_path(value: &str) -> Result<PathBuf, String> {
    if value.is_empty() {
        return Err("is required".to_string());
    }
    if value.starts_with("arn:") || value.starts_with("s3://") {
        return Err(format!(
            "{value:?}: S3 is not reachable from berth; give an absolute path or a file:// URL \
             on this host"
        ));
    }
    let path = match value.strip_prefix("file://") {
        Some(rest) if rest.starts_with('/') => rest,
        Some(_) => {
            return Err(format!(
                "{value:?}: a file:// URL must name a local absolute path (file:///etc/app.env)"
            ));
        }
        None => value,
    };
    if !path.starts_with('/') {
        return Err(format!("{value:?} must be an absolute path"));
    }
    Ok(PathBuf::from(path))
}

/// Reads `KEY=VALUE` lines. Blank lines and lines starting with `#` are skipped; the
/// value is everything after the first `=`, quotes included, as ECS passes it. On error,
/// returns the 1-based line number and what is wrong.
pub fn parse_environment_file(text: &str) -> Result<Vec<(String, String)>, (usize, String)> {
    let mut vars = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            return Err((n + 1, format!("{trimmed:?} is not KEY=VALUE")));
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err((n + 1, format!("{key:?} is not a variable name")));
        }
        vars.push((key.to_string(), value.to_string()));
    }
    Ok(vars)
}

/// An environment file could not be read or parsed.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {}: {reason}", file.display())]
pub struct EnvFileError {
    /// JSON path of the entry, `containerDefinitions[0].environmentFiles[1].value`.
    pub field: String,
    /// The file on this host.
    pub file: PathBuf,
    /// Why.
    pub reason: String,
}

/// Reads every container's environment files, in order, into one list per container
/// name: the `environment_files` input of the plan. Later files win over earlier ones
/// when the plan merges them.
pub fn read_environment_files(
    def: &TaskDefinition,
) -> Result<BTreeMap<String, Vec<(String, String)>>, EnvFileError> {
    read_with(def, |path| {
        std::fs::read_to_string(path).map_err(|e| e.to_string())
    })
}

fn read_with(
    def: &TaskDefinition,
    read: impl Fn(&Path) -> Result<String, String>,
) -> Result<BTreeMap<String, Vec<(String, String)>>, EnvFileError> {
    let mut all = BTreeMap::new();
    for (i, c) in def.container_definitions.iter().enumerate() {
        let mut vars = Vec::new();
        for (j, f) in c.environment_files.iter().enumerate() {
            let field = format!("containerDefinitions[{i}].environmentFiles[{j}].value");
            let file = environment_file_path(&f.value).map_err(|reason| EnvFileError {
                field: field.clone(),
                file: PathBuf::from(&f.value),
                reason,
            })?;
            let text = read(&file).map_err(|reason| EnvFileError {
                field: field.clone(),
                file: file.clone(),
                reason,
            })?;
            let parsed = parse_environment_file(&text).map_err(|(line, why)| EnvFileError {
                field: field.clone(),
                file: file.clone(),
                reason: format!("line {line}: {why}"),
            })?;
            vars.extend(parsed);
        }
        all.insert(c.name.clone(), vars);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taskdef::model::{ContainerDefinition, EnvironmentFile};

    #[test]
    fn paths_and_urls() {
        assert_eq!(
            environment_file_path("/etc/app.env"),
            Ok(PathBuf::from("/etc/app.env"))
        );
        assert_eq!(
            environment_file_path("file:///etc/app.env"),
            Ok(PathBuf::from("/etc/app.env"))
        );
        assert!(environment_file_path("app.env").is_err());
        assert!(environment_file_path("file://server/app.env").is_err());
        assert!(
            environment_file_path("arn:aws:s3:::bucket/app.env")
                .unwrap_err()
                .contains("S3 is not reachable")
        );
    }

    #[test]
    fn key_value_lines_comments_and_blanks() {
        let text = "# settings\n\nA=1\r\n  B=two words \nC=x=y\nEMPTY=\nQUOTED=\"q\"\n";
        assert_eq!(
            parse_environment_file(text),
            Ok(vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words ".into()),
                ("C".into(), "x=y".into()),
                ("EMPTY".into(), "".into()),
                ("QUOTED".into(), "\"q\"".into()),
            ])
        );
    }

    #[test]
    fn malformed_lines_name_their_number() {
        assert_eq!(
            parse_environment_file("A=1\nno equals\n"),
            Err((2, "\"no equals\" is not KEY=VALUE".to_string()))
        );
        assert_eq!(
            parse_environment_file("A=1\n\nB C=2\n"),
            Err((3, "\"B C\" is not a variable name".to_string()))
        );
        assert_eq!(
            parse_environment_file("=1\n"),
            Err((1, "\"\" is not a variable name".to_string()))
        );
    }

    #[test]
    fn files_are_read_in_order_per_container() {
        let def = TaskDefinition {
            container_definitions: vec![ContainerDefinition {
                name: "web".into(),
                environment_files: vec![
                    EnvironmentFile {
                        value: "/a.env".into(),
                        kind: Some("s3".into()),
                    },
                    EnvironmentFile {
                        value: "file:///b.env".into(),
                        kind: None,
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        let files = read_with(&def, |p| match p.to_str() {
            Some("/a.env") => Ok("X=1\nY=1\n".into()),
            Some("/b.env") => Ok("X=2\n".into()),
            _ => Err("No such file or directory".into()),
        })
        .unwrap();
        assert_eq!(
            files["web"],
            vec![
                ("X".to_string(), "1".to_string()),
                ("Y".to_string(), "1".to_string()),
                ("X".to_string(), "2".to_string()),
            ]
        );

        let err = read_with(&def, |_| Err("No such file or directory".into())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "containerDefinitions[0].environmentFiles[0].value: /a.env: No such file or directory"
        );
    }
}
