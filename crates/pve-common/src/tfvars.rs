//! Terraform variable files (`terraform.tfvars`, `*.auto.tfvars`) read with a real HCL parser (hcl-rs).
//!
//! The tools take the Proxmox endpoint, node name, SSH user and MinIO credentials from the homelab's
//! variable files, as the bash scripts did with grep and sed. Values must be literals, as Terraform
//! requires in tfvars: strings (heredocs included), numbers, bools, null, lists and maps. A reference or
//! interpolation (`"${var.x}"`) is an error, as it is for Terraform. So is an expression that computes
//! (`4 * 1024`, `a ? b : c`, `for`), which Terraform would evaluate: hcl-rs panics on `5 % 0` and wraps
//! on integer overflow (found by the `tfvars` fuzz target). Values under keys that look secret
//! are registered with [`crate::secret`], so they are masked in every log line and in `Debug`.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use hcl::eval::{Context, Evaluate};
use serde_json::Value;
use thiserror::Error;

use crate::secret::{self, Secret};

/// Checks that `expr` is a literal value (with `-` before a number), before hcl-rs evaluates it: hcl-rs
/// panics on `1 % 0` and wraps integer overflow, and a variable file has no business computing anything.
fn literal(expr: &hcl::Expression) -> Result<(), String> {
    use hcl::Expression as E;
    use hcl::expr::{ObjectKey, Operation};
    match expr {
        E::Null | E::Bool(_) | E::Number(_) | E::String(_) => Ok(()),
        E::Array(items) => items.iter().try_for_each(literal),
        E::Object(map) => map.iter().try_for_each(|(k, v)| {
            if let ObjectKey::Expression(k) = k {
                literal(k)?;
            }
            literal(v)
        }),
        E::Parenthesis(inner) => literal(inner),
        // `-5` is a unary operation in HCL; negation is safe (hcl-rs turns -(2^63) into a float).
        E::Operation(op) => match op.as_ref() {
            Operation::Unary(u) => literal(&u.expr),
            Operation::Binary(b) => Err(format!(
                "`{}` computes a value; write the result instead",
                b.operator
            )),
        },
        E::TemplateExpr(t) => {
            let template = hcl::Template::from_expr(t).map_err(|e| describe_hcl_error(&e))?;
            if template
                .elements()
                .iter()
                .all(|e| matches!(e, hcl::template::Element::Literal(_)))
            {
                Ok(())
            } else {
                Err("an interpolation or template directive (`${...}`, `%{...}`)".to_owned())
            }
        }
        // Neither the word nor the function's name is quoted: a secret written without its quotes
        // (`password = hunter2`) parses as a reference to `hunter2`.
        E::Variable(_) => Err("a reference (a word without quotes: quote a string)".to_owned()),
        E::Traversal(_) => Err("a reference".to_owned()),
        E::FuncCall(_) => Err("a function call".to_owned()),
        E::Conditional(_) => Err("a conditional (`? :`)".to_owned()),
        E::ForExpr(_) => Err("a `for` expression".to_owned()),
        _ => Err("not a literal value".to_owned()),
    }
}

/// Describes an HCL parse or evaluation error by where it is and what was expected, never by the text
/// there: hcl-rs quotes the whole offending line, and in a variable or backend file that line may be
/// `password = "..."`. Every HCL error any tool shows goes through here.
pub fn describe_hcl_error(error: &hcl::Error) -> String {
    match error {
        hcl::Error::Parse(e) => format!(
            "line {}, column {}: {}",
            e.location().line(),
            e.location().column(),
            e.message()
        ),
        // An evaluation error quotes the expression and its values.
        hcl::Error::Eval(_) => "the value cannot be read as a literal".to_owned(),
        hcl::Error::Utf8(_) => "not UTF-8 text".to_owned(),
        _ => "not valid HCL".to_owned(),
    }
}

/// Parses HCL text (a variable file, a backend configuration); an error names `path` and the line and
/// column, never the text.
pub fn parse_hcl(text: &str, path: &Path) -> Result<hcl::Body, TfvarsError> {
    hcl::parse(text).map_err(|e| TfvarsError::Syntax {
        path: path.to_owned(),
        message: describe_hcl_error(&e),
    })
}

/// Largest variable file read. Real tfvars are a few KiB; a larger file is a mistake, not configuration.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Why a variable file could not be used.
#[derive(Debug, Error)]
pub enum TfvarsError {
    /// The file could not be read.
    #[error("cannot read {}: {cause}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why (part of the message, not a `source()`).
        cause: std::io::Error,
    },
    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error("{} is {size} bytes; a variable file is at most {MAX_FILE_BYTES} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// The file is not valid HCL, or not valid UTF-8.
    #[error("{} is not valid HCL: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Line, column and what was expected there; never the line's text (see [`describe_hcl_error`]).
        message: String,
    },
    /// A value is not a literal (a reference, a function call, an interpolation).
    #[error("{}: variable `{key}` must be a literal value: {message}", path.display())]
    NotLiteral {
        /// The file.
        path: PathBuf,
        /// The variable.
        key: String,
        /// What was wrong.
        message: String,
    },
    /// A block (`name { ... }`) where only `name = value` is allowed.
    #[error("{}: unexpected block `{name}`; variable files hold only `name = value` lines", path.display())]
    Block {
        /// The file.
        path: PathBuf,
        /// The block's identifier.
        name: String,
    },
    /// A required variable is in none of the files.
    #[error("variable `{key}` is not set in {files}")]
    Missing {
        /// The variable.
        key: String,
        /// The files searched, comma-separated.
        files: String,
    },
    /// A variable has the wrong type.
    #[error("{}: variable `{key}` must be {expected}, found {found}", path.display())]
    WrongType {
        /// The file that set it.
        path: PathBuf,
        /// The variable.
        key: String,
        /// What the caller needs.
        expected: &'static str,
        /// What the file has.
        found: &'static str,
    },
}

/// One variable: its value and the file that set it.
#[derive(Clone)]
pub struct Variable {
    /// The value as JSON (maps keep no order).
    pub value: Value,
    /// The file that set it (the last one, when several do).
    pub file: PathBuf,
    secret: bool,
}

impl fmt::Debug for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Variable");
        if self.secret {
            d.field("value", &secret::MASK);
        } else {
            d.field("value", &secret::mask(&format!("{:?}", self.value)));
        }
        d.field("file", &self.file).finish()
    }
}

/// The variables of one Terraform root module, in file order.
#[derive(Clone, Debug, Default)]
pub struct TfVars {
    files: Vec<PathBuf>,
    vars: Vec<(String, Variable)>,
}

/// Reads `terraform.tfvars` then every `*.auto.tfvars` in lexical order from `dir`, later files overriding
/// earlier ones as Terraform does. A directory with none of them gives an empty set.
pub fn parse_tfvars(dir: &Path) -> Result<TfVars, TfvarsError> {
    let mut files = Vec::new();
    let main = dir.join("terraform.tfvars");
    if main.is_file() {
        files.push(main);
    }
    let entries = std::fs::read_dir(dir).map_err(|source| TfvarsError::Read {
        path: dir.to_owned(),
        cause: source,
    })?;
    let mut auto: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(".auto.tfvars"))
        })
        .collect();
    auto.sort();
    files.extend(auto);
    let mut all = TfVars::default();
    for file in files {
        all.merge(parse_tfvars_file(&file)?);
    }
    Ok(all)
}

/// Reads one variable file (any name, as `-var-file` allows).
pub fn parse_tfvars_file(path: &Path) -> Result<TfVars, TfvarsError> {
    let read_err = |source| TfvarsError::Read {
        path: path.to_owned(),
        cause: source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(TfvarsError::TooLarge {
            path: path.to_owned(),
            size: meta.len(),
        });
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        crate::warn!(
            "{} is readable by group or others (mode {:04o}); variable files hold secrets: chmod 600 {}",
            path.display(),
            mode & 0o7777,
            path.display()
        );
    }
    let bytes = std::fs::read(path).map_err(read_err)?;
    let text = String::from_utf8(bytes).map_err(|e| TfvarsError::Syntax {
        path: path.to_owned(),
        message: format!("not UTF-8 text ({e})"),
    })?;
    parse_tfvars_str(&text, path)
}

/// Parses variable-file text; `path` is used in messages only.
pub fn parse_tfvars_str(text: &str, path: &Path) -> Result<TfVars, TfvarsError> {
    let body = parse_hcl(text, path)?;
    if let Some(block) = body.blocks().next() {
        return Err(TfvarsError::Block {
            path: path.to_owned(),
            name: block.identifier().to_owned(),
        });
    }
    let ctx = Context::new();
    let mut vars: Vec<(String, Variable)> = Vec::new();
    for attr in body.attributes() {
        let key = attr.key().to_owned();
        literal(attr.expr()).map_err(|message| TfvarsError::NotLiteral {
            path: path.to_owned(),
            key: key.clone(),
            message,
        })?;
        // Neither error's text is shown: both can quote the value.
        let value = attr
            .expr()
            .evaluate(&ctx)
            .map_err(|e| TfvarsError::NotLiteral {
                path: path.to_owned(),
                key: key.clone(),
                message: describe_hcl_error(&hcl::Error::from(e)),
            })?;
        let value = serde_json::to_value(&value).map_err(|_| TfvarsError::NotLiteral {
            path: path.to_owned(),
            key: key.clone(),
            message: "the value cannot be converted".to_owned(),
        })?;
        let is_secret = secret::is_secret_name(&key);
        if is_secret {
            register_strings(&value);
        } else {
            // `minio = { root_password = "..." }`: a secret can sit inside a block.
            register_nested_secrets(&value);
        }
        vars.push((
            key,
            Variable {
                value,
                file: path.to_owned(),
                secret: is_secret,
            },
        ));
    }
    Ok(TfVars {
        files: vec![path.to_owned()],
        vars,
    })
}

fn register_strings(value: &Value) {
    match value {
        Value::String(s) => secret::register(s),
        Value::Array(items) => items.iter().for_each(register_strings),
        Value::Object(map) => map.values().for_each(register_strings),
        _ => {}
    }
}

fn register_nested_secrets(value: &Value) {
    match value {
        Value::Array(items) => items.iter().for_each(register_nested_secrets),
        Value::Object(map) => {
            for (k, v) in map {
                if secret::is_secret_name(k) {
                    register_strings(v);
                } else {
                    register_nested_secrets(v);
                }
            }
        }
        _ => {}
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

impl TfVars {
    fn merge(&mut self, other: TfVars) {
        self.files.extend(other.files);
        for (key, var) in other.vars {
            match self.vars.iter_mut().find(|(k, _)| *k == key) {
                Some((_, existing)) => *existing = var,
                None => self.vars.push((key, var)),
            }
        }
    }

    /// The files read, in order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The variable names, in file order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.vars.iter().map(|(k, _)| k.as_str())
    }

    /// A variable, if set.
    pub fn get(&self, key: &str) -> Option<&Variable> {
        self.vars.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn typed<'a, T>(
        &'a self,
        key: &str,
        expected: &'static str,
        convert: impl Fn(&'a Value) -> Option<T>,
    ) -> Result<Option<T>, TfvarsError> {
        match self.get(key) {
            None => Ok(None),
            Some(var) => convert(&var.value)
                .map(Some)
                .ok_or_else(|| TfvarsError::WrongType {
                    path: var.file.clone(),
                    key: key.to_owned(),
                    expected,
                    found: type_name(&var.value),
                }),
        }
    }

    /// A string variable; `Ok(None)` when unset; an error naming file and key when it is not a string.
    pub fn get_str(&self, key: &str) -> Result<Option<&str>, TfvarsError> {
        self.typed(key, "a string", Value::as_str)
    }

    /// A non-negative whole number.
    pub fn get_u64(&self, key: &str) -> Result<Option<u64>, TfvarsError> {
        self.typed(key, "a whole number", Value::as_u64)
    }

    /// A bool.
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, TfvarsError> {
        self.typed(key, "a bool", Value::as_bool)
    }

    /// A list of strings.
    pub fn get_str_list(&self, key: &str) -> Result<Option<Vec<&str>>, TfvarsError> {
        self.typed(key, "a list of strings", |v| {
            v.as_array()?.iter().map(Value::as_str).collect()
        })
    }

    /// A map (its values untyped).
    pub fn get_map(
        &self,
        key: &str,
    ) -> Result<Option<&serde_json::Map<String, Value>>, TfvarsError> {
        self.typed(key, "a map", Value::as_object)
    }

    /// A string that must be set.
    pub fn require_str(&self, key: &str) -> Result<&str, TfvarsError> {
        self.get_str(key)?.ok_or_else(|| self.missing(key))
    }

    /// A secret string (password, token, key), wrapped so it never prints.
    pub fn get_secret(&self, key: &str) -> Result<Option<Secret>, TfvarsError> {
        Ok(self.get_str(key)?.map(Secret::new))
    }

    fn missing(&self, key: &str) -> TfvarsError {
        let files = if self.files.is_empty() {
            "any variable file (none found)".to_owned()
        } else {
            self.files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        TfvarsError::Missing {
            key: key.to_owned(),
            files,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: "cannot read x: No such file or directory (os error 2): No such file or directory (os
    /// error 2)". The cause is part of the message, so the error chain must not repeat it.
    #[test]
    fn unreadable_file_names_its_cause_once() {
        let err = parse_tfvars_file(Path::new("/nonexistent/terraform.tfvars")).unwrap_err();
        // What `{:#}` prints: the message, then each source().
        let mut chain = err.to_string();
        let mut next = std::error::Error::source(&err);
        while let Some(cause) = next {
            chain = format!("{chain}: {cause}");
            next = cause.source();
        }
        assert_eq!(
            chain.matches("No such file or directory").count(),
            1,
            "{chain}"
        );
    }

    const HOMELAB: &str = r#"
# Proxmox connection
proxmox_endpoint = "https://pve.home.arpa:8006/"
proxmox_api_token = "terraform@pve!provider=5f0c9a2e-1111-2222-3333-444455556666"
node_name        = "pve"   // the only node
ssh_user         = "root"
/* MinIO holds the Terraform state */
minio_endpoint   = "http://192.0.2.20:9000"
minio_access_key = "terraform"
minio_secret_key = "Sup3rSecretMinioKey"
vm_defaults = {
  memory = 2048
  cores  = 2,
  "on_boot" = true
}
dns_servers = ["192.0.2.53", "192.0.2.54",]
backup_retention = null
ratio = 1.5
ssh_public_keys = <<-EOT
  ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample ops@homelab
  EOT
literal_dollar = "cost: $${price}"
"#;

    fn homelab() -> TfVars {
        parse_tfvars_str(HOMELAB, Path::new("terraform.tfvars")).unwrap()
    }

    #[test]
    fn reads_a_realistic_homelab_file() {
        let v = homelab();
        assert_eq!(
            v.require_str("proxmox_endpoint").unwrap(),
            "https://pve.home.arpa:8006/"
        );
        assert_eq!(v.require_str("node_name").unwrap(), "pve");
        assert_eq!(v.get_str("ssh_user").unwrap(), Some("root"));
        assert_eq!(
            v.get_str_list("dns_servers").unwrap().unwrap(),
            vec!["192.0.2.53", "192.0.2.54"]
        );
        let defaults = v.get_map("vm_defaults").unwrap().unwrap();
        assert_eq!(defaults["memory"], 2048);
        assert_eq!(defaults["on_boot"], true);
        assert_eq!(v.get("backup_retention").unwrap().value, Value::Null);
        assert_eq!(v.get("ratio").unwrap().value.as_f64(), Some(1.5));
        assert_eq!(
            v.get_str("ssh_public_keys").unwrap().unwrap(),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample ops@homelab\n"
        );
        assert_eq!(
            v.get_str("literal_dollar").unwrap().unwrap(),
            "cost: ${price}"
        );
        assert_eq!(v.keys().next(), Some("proxmox_endpoint"), "file order kept");
    }

    #[test]
    fn secrets_are_masked_in_debug_and_logs() {
        let v = homelab();
        let debug = format!("{v:?}");
        assert!(!debug.contains("Sup3rSecretMinioKey"), "{debug}");
        assert!(!debug.contains("5f0c9a2e"), "{debug}");
        assert!(!debug.contains("terraform@pve!provider"), "{debug}");
        assert!(
            debug.contains("pve.home.arpa"),
            "non-secret values stay visible"
        );
        assert_eq!(
            crate::secret::mask("key=Sup3rSecretMinioKey"),
            format!("key={}", crate::secret::MASK)
        );
        let s = v.get_secret("minio_secret_key").unwrap().unwrap();
        assert_eq!(format!("{s}"), crate::secret::MASK);
    }

    #[test]
    fn wrong_type_names_file_key_and_type() {
        let v = homelab();
        let err = v.get_u64("node_name").unwrap_err().to_string();
        assert_eq!(
            err,
            "terraform.tfvars: variable `node_name` must be a whole number, found a string"
        );
        let err = v.require_str("nope").unwrap_err().to_string();
        assert_eq!(err, "variable `nope` is not set in terraform.tfvars");
    }

    #[test]
    fn rejects_what_terraform_rejects() {
        let p = Path::new("x.tfvars");
        let interp = parse_tfvars_str("a = \"${var.x}-y\"\n", p).unwrap_err();
        assert!(matches!(interp, TfvarsError::NotLiteral { .. }), "{interp}");
        let reference = parse_tfvars_str("a = var.x\n", p).unwrap_err();
        assert!(
            matches!(reference, TfvarsError::NotLiteral { .. }),
            "{reference}"
        );
        // Found by the `tfvars_errors` fuzz target: a secret without its quotes is a reference, and the
        // error quoted it.
        for unquoted in ["a = hunter2-Secret\n", "a = hunter2-Secret(1)\n"] {
            let err = parse_tfvars_str(unquoted, p).unwrap_err();
            assert!(
                matches!(err, TfvarsError::NotLiteral { .. })
                    && !err.to_string().contains("hunter2"),
                "{unquoted}: {err}"
            );
        }
        // Found by the `tfvars` fuzz target: hcl-rs panicked on a remainder by zero and wraps overflow.
        for computed in [
            "a = 5 % 0\n",
            "a = 1 / 0\n",
            "a = -9223372036854775808 % -1\n",
            "a = 18446744073709551615 + 1\n",
            "a = [1, { b = 2 * 3 }]\n",
            "a = true ? 1 : 2\n",
            "a = [for x in [1] : x % 0]\n",
            "a = \"${5 % 0}\"\n",
            "htso=-- 555%---0---55-55--- 554%-------5555-4-ve_ho\n",
        ] {
            let err = parse_tfvars_str(computed, p).unwrap_err();
            assert!(
                matches!(err, TfvarsError::NotLiteral { .. }),
                "{computed}: {err}"
            );
        }
        let ok =
            parse_tfvars_str("a = -5\nb = - -3\nc = (-2.5)\nd = { (\"k\") = -1 }\n", p).unwrap();
        assert_eq!(ok.keys().count(), 4);
        assert_eq!(ok.get_u64("b").unwrap(), Some(3));
        let block = parse_tfvars_str("provider \"x\" {\n  a = 1\n}\n", p).unwrap_err();
        assert!(matches!(block, TfvarsError::Block { .. }), "{block}");
        // hcl-rs rejects a repeated attribute itself, naming the line.
        let dup = parse_tfvars_str("a = 1\na = 2\n", p).unwrap_err();
        assert!(
            matches!(dup, TfvarsError::Syntax { .. }) && dup.to_string().contains("line 2"),
            "{dup}"
        );
        let truncated = parse_tfvars_str("a = {\n  b = 1\n", p).unwrap_err();
        assert!(
            matches!(truncated, TfvarsError::Syntax { .. }),
            "{truncated}"
        );
    }

    #[test]
    fn auto_files_override_in_lexical_order_and_modes_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str, mode: u32| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        write(
            "terraform.tfvars",
            "node_name = \"pve\"\nssh_user = \"root\"\n",
            0o600,
        );
        write("b.auto.tfvars", "node_name = \"pve2\"\n", 0o600);
        write("a.auto.tfvars", "node_name = \"pve1\"\n", 0o644);
        write("ignored.tfvars", "node_name = \"nope\"\n", 0o600);
        let (v, lines) = crate::log::capture(|| parse_tfvars(dir.path()).unwrap());
        assert_eq!(v.require_str("node_name").unwrap(), "pve2");
        assert_eq!(
            v.get("node_name").unwrap().file,
            dir.path().join("b.auto.tfvars")
        );
        assert_eq!(v.files().len(), 3);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains("a.auto.tfvars is readable by group or others (mode 0644)"),
            "{lines:?}"
        );
    }

    #[test]
    fn binary_and_oversized_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin.tfvars");
        std::fs::write(&bin, [0xff, 0xfe, 0x00, 0x01]).unwrap();
        assert!(matches!(
            parse_tfvars_file(&bin),
            Err(TfvarsError::Syntax { .. })
        ));
        let big = dir.path().join("big.tfvars");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_FILE_BYTES + 1).unwrap();
        assert!(matches!(
            parse_tfvars_file(&big),
            Err(TfvarsError::TooLarge { .. })
        ));
    }
}
