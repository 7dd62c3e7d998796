//! Files a built-in processor needs (an Avro schema, `.proto` definitions), read by the host under the operator's
//! path policy and handed to the component in its configuration, since a component reads no file itself.
//!
//! A built-in's config schema marks such options with `"x-airtruct-read"`: `"file"` for one path (the file is
//! handed over under the path as written), or `"tree:.EXT"` for a list of folders and files (every file ending in
//! `.EXT` under a folder, by its path below that folder, as an `import` names it; a file by its own name). The
//! component finds them under `$files` in its configuration.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::kind::Check;

/// The most bytes read for one processor, all files together.
const MAX_BYTES: usize = 16 << 20;
/// The most files read for one processor.
const MAX_FILES: usize = 1000;
/// How deep a folder is walked.
const MAX_DEPTH: usize = 16;

/// What the component's schema says of one option.
enum Read<'a> {
    File,
    Tree { ext: &'a str },
}

/// The options with the files they name added as `$files`; unchanged when the schema marks nothing. Problems
/// (refused by the policy, missing, not text, too much) are reported at the option.
pub fn with_files(config_schema: &Value, options: &Value, check: &mut Check<'_>) -> Value {
    let (Some(props), Some(given)) = (
        config_schema.get("properties").and_then(Value::as_object),
        options.as_object(),
    ) else {
        return options.clone();
    };
    let mut files = Files::default();
    for (name, prop) in props {
        let read = match prop.get("x-airtruct-read").and_then(Value::as_str) {
            Some("file") => Read::File,
            Some(mark) => match mark.strip_prefix("tree:") {
                Some(ext) => Read::Tree { ext },
                None => continue,
            },
            None => continue,
        };
        match (read, given.get(name)) {
            (Read::File, Some(Value::String(path))) => {
                files.file(check, name, path, path.clone());
            }
            (Read::Tree { ext }, Some(Value::Array(paths))) => {
                for (i, path) in paths.iter().enumerate() {
                    if let Some(path) = path.as_str() {
                        files.tree(check, &format!("{name}[{i}]"), Path::new(path), ext);
                    }
                }
            }
            _ => {}
        }
    }
    if files.read.is_empty() {
        return options.clone();
    }
    let mut out = given.clone();
    out.insert("$files".into(), Value::Object(files.read));
    Value::Object(out)
}

#[derive(Default)]
struct Files {
    read: Map<String, Value>,
    bytes: usize,
}

impl Files {
    /// Reads one file under `name`; false when it could not (reported).
    fn file(&mut self, check: &mut Check<'_>, field: &str, path: &str, name: String) -> bool {
        if !check.path(field, Path::new(path)) {
            return false;
        }
        if self.read.len() >= MAX_FILES {
            check.problem(field, format!("more than {MAX_FILES} files to read"));
            return false;
        }
        let text = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => {
                check.problem(field, format!("cannot read {path:?}: {e}"));
                return false;
            }
        };
        self.bytes += text.len();
        if self.bytes > MAX_BYTES {
            check.problem(
                field,
                format!("more than {} MiB of files to read", MAX_BYTES >> 20),
            );
            return false;
        }
        match String::from_utf8(text) {
            Ok(text) => {
                // The first of two files with one name wins, as with protoc's import paths.
                self.read.entry(name).or_insert(Value::String(text));
                true
            }
            Err(_) => {
                check.problem(field, format!("{path:?} is not UTF-8 text"));
                false
            }
        }
    }

    /// A folder's files ending in `ext`, by their path below it, or a single file by its name.
    fn tree(&mut self, check: &mut Check<'_>, field: &str, root: &Path, ext: &str) {
        if !check.path(field, root) {
            return;
        }
        if root.is_file() {
            let name = root.file_name().map(|n| n.to_string_lossy().into_owned());
            self.file(
                check,
                field,
                &root.to_string_lossy(),
                name.unwrap_or_default(),
            );
            return;
        }
        let mut stack: Vec<(PathBuf, usize)> = vec![(root.to_path_buf(), 0)];
        while let Some((dir, depth)) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) => {
                    check.problem(field, format!("cannot read {:?}: {e}", dir.display()));
                    return;
                }
            };
            let mut entries: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
            entries.sort();
            for path in entries {
                if path.is_dir() {
                    if depth + 1 < MAX_DEPTH {
                        stack.push((path, depth + 1));
                    }
                } else if path.to_string_lossy().ends_with(ext) {
                    let Ok(below) = path.strip_prefix(root) else {
                        continue;
                    };
                    let name = below.to_string_lossy().replace('\\', "/");
                    // Each file is checked on its own: a link inside the folder may point anywhere.
                    if !self.file(check, field, &path.to_string_lossy(), name) {
                        return;
                    }
                }
            }
        }
    }
}
