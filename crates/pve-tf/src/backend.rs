//! Where an environment keeps its state: the `backend "s3"` block of its `*.tf` files, its `backend.hcl`
//! and any `--backend-config` file, read with a real HCL parser, later sources overriding earlier ones as
//! `terraform init -backend-config` does; then the command-line overrides.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hcl::eval::{Context as EvalContext, Evaluate};
use pve_common::homelab::{EnvSettings, Minio};
use pve_common::s3::{S3Credentials, S3Location};
use pve_common::secret::Secret;
use serde_json::{Map, Value};

/// The override file `--to-local` writes; never read as part of the S3 configuration.
pub const LOCAL_OVERRIDE_FILE: &str = "pve_local_backend_override.tf";
/// The environment's backend file, which `--fallback` rewrites.
pub const BACKEND_FILE: &str = "backend.tf";
/// Where `--fallback` keeps the original [`BACKEND_FILE`] (read instead of it while it exists).
pub const BACKEND_BACKUP_FILE: &str = "backend.tf.minio-backup";

/// The S3 backend settings of one environment.
#[derive(Clone, Debug)]
pub struct Backend {
    /// Bucket name.
    pub bucket: String,
    /// The state object key of the default workspace.
    pub key: String,
    /// Region (signatures only, for MinIO).
    pub region: String,
    /// `endpoints.s3` (or the older `endpoint`).
    pub endpoint: String,
    /// `use_path_style` (or the older `force_path_style`).
    pub path_style: bool,
    /// `use_lockfile`: Terraform locks with a `<key>.tflock` object.
    pub use_lockfile: bool,
    /// `dynamodb_table`: a DynamoDB lock table (not supported here).
    pub dynamodb_table: Option<String>,
    /// `access_key` from the configuration.
    pub access_key: Option<Secret>,
    /// `secret_key` from the configuration.
    pub secret_key: Option<Secret>,
    /// Backend configuration files read, to hand to `terraform init -backend-config`.
    pub config_files: Vec<PathBuf>,
    /// The location came from the tfvars' `minio` block: no backend block is active, so Terraform
    /// itself keeps a local state in the environment.
    pub from_minio_block: bool,
}

impl Backend {
    /// `s3://<bucket>/<key>`: how messages name the state.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    /// Where its bucket is, for an S3 client.
    pub fn location(&self) -> S3Location {
        S3Location {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            bucket: self.bucket.clone(),
            path_style: self.path_style,
        }
    }
}

/// Command-line overrides.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--bucket`.
    pub bucket: Option<String>,
    /// `--key`.
    pub key: Option<String>,
    /// `--endpoint`.
    pub endpoint: Option<String>,
    /// `--region`.
    pub region: Option<String>,
}

// Neither HCL's nor serde's error text is shown: they quote the value, which may be `secret_key`.
fn evaluate(expr: &hcl::Expression, file: &Path, key: &str) -> Result<Value> {
    let value = expr.evaluate(&EvalContext::new()).map_err(|e| {
        anyhow::anyhow!(
            "{}: backend setting `{key}` must be a literal ({})",
            file.display(),
            pve_common::tfvars::describe_hcl_error(&hcl::Error::from(e))
        )
    })?;
    serde_json::to_value(value).map_err(|_| {
        anyhow::anyhow!(
            "{}: backend setting `{key}` cannot be converted",
            file.display()
        )
    })
}

fn parse_file(path: &Path) -> Result<hcl::Body> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(pve_common::tfvars::parse_hcl(&text, path)?)
}

/// A `backend "<kind>"` block: its kind, the file it is in, and its attributes.
type BackendBlock = (String, PathBuf, Map<String, Value>);

/// The `backend` block in the environment's `*.tf` files; while `--fallback` is in force, its copy of
/// backend.tf stands for backend.tf.
fn backend_block(env_dir: &Path) -> Result<Option<BackendBlock>> {
    let fallen_back = env_dir.join(BACKEND_BACKUP_FILE).is_file();
    let mut files: Vec<PathBuf> = std::fs::read_dir(env_dir)
        .with_context(|| format!("cannot read {}", env_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "tf")
                && p.file_name().is_some_and(|n| {
                    n != LOCAL_OVERRIDE_FILE && !(fallen_back && n == BACKEND_FILE)
                })
        })
        .collect();
    if fallen_back {
        files.push(env_dir.join(BACKEND_BACKUP_FILE));
    }
    files.sort();
    for file in files {
        let body = parse_file(&file)?;
        let backend = body
            .blocks()
            .filter(|b| b.identifier() == "terraform")
            .find_map(|t| t.body().blocks().find(|b| b.identifier() == "backend"));
        if let Some(backend) = backend {
            let kind = backend
                .labels()
                .first()
                .map(|l| l.as_str().to_owned())
                .unwrap_or_default();
            let mut attrs = Map::new();
            for attr in backend.body().attributes() {
                attrs.insert(
                    attr.key().to_owned(),
                    evaluate(attr.expr(), &file, attr.key())?,
                );
            }
            return Ok(Some((kind, file, attrs)));
        }
    }
    Ok(None)
}

fn config_file_attrs(path: &Path) -> Result<Map<String, Value>> {
    let body = parse_file(path)?;
    let mut attrs = Map::new();
    for attr in body.attributes() {
        attrs.insert(
            attr.key().to_owned(),
            evaluate(attr.expr(), path, attr.key())?,
        );
    }
    Ok(attrs)
}

/// Reads the environment's S3 backend settings.
pub fn discover(
    env_dir: &Path,
    extra_config: &[PathBuf],
    overrides: &Overrides,
) -> Result<Backend> {
    let Some((kind, file, mut attrs)) = backend_block(env_dir)? else {
        return from_minio_block(env_dir, overrides);
    };
    if kind != "s3" {
        bail!(
            "{} uses backend \"{kind}\"; restore-tfstate needs an S3 backend",
            file.display()
        );
    }
    let mut config_files = Vec::new();
    let auto = env_dir.join("backend.hcl");
    if auto.is_file() {
        config_files.push(auto);
    }
    config_files.extend(extra_config.iter().cloned());
    for path in &config_files {
        attrs.extend(config_file_attrs(path)?);
    }
    let text = |k: &str| attrs.get(k).and_then(Value::as_str).map(str::to_owned);
    let flag = |k: &str| attrs.get(k).and_then(Value::as_bool);
    let endpoint = attrs
        .get("endpoints")
        .and_then(|e| e.get("s3"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| text("endpoint"));
    let required = |value: Option<String>, name: &str| {
        value.with_context(|| {
            format!("the S3 backend of {} sets no `{name}` (in *.tf, backend.hcl or --backend-config); give --{name}", env_dir.display())
        })
    };
    let mut key = required(overrides.key.clone().or_else(|| text("key")), "key")?;
    // A non-default workspace lives under <workspace_key_prefix>/<workspace>/<key>; tools act on the
    // default workspace, which is what a homelab uses, unless TF_WORKSPACE says otherwise.
    if let Ok(ws) = std::env::var("TF_WORKSPACE")
        && !ws.is_empty()
        && ws != "default"
        && overrides.key.is_none()
    {
        pve_common::s3::check_workspace(&ws).context("TF_WORKSPACE")?;
        let prefix = text("workspace_key_prefix").unwrap_or_else(|| "env:".to_owned());
        key = format!("{prefix}/{ws}/{key}");
    }
    // Checked once resolved, whatever set it (`--key`, the block, backend.hcl, --backend-config,
    // workspace): every tool reading a backend gets its key from here.
    pve_common::s3::check_key(&key).with_context(|| {
        format!(
            "the S3 backend of {} names an unusable state key",
            env_dir.display()
        )
    })?;
    Ok(Backend {
        bucket: required(
            overrides.bucket.clone().or_else(|| text("bucket")),
            "bucket",
        )?,
        key,
        region: overrides
            .region
            .clone()
            .or_else(|| text("region"))
            .unwrap_or_else(|| "us-east-1".to_owned()),
        endpoint: required(overrides.endpoint.clone().or(endpoint), "endpoint")?,
        path_style: flag("use_path_style")
            .or_else(|| flag("force_path_style"))
            .unwrap_or(false),
        use_lockfile: flag("use_lockfile").unwrap_or(false),
        dynamodb_table: text("dynamodb_table"),
        access_key: text("access_key").map(Secret::new),
        secret_key: text("secret_key").map(Secret::new),
        config_files,
        from_minio_block: false,
    })
}

/// The tfvars files that may hold the homelab's `minio = {...}` block, in the order they are read: the
/// environment's own, then prod's, then monitoring's.
pub fn minio_tfvars_candidates(env_dir: &Path) -> Vec<PathBuf> {
    let mut files = vec![env_dir.join("terraform.tfvars")];
    if let Some(root) = env_dir.parent() {
        for env in ["prod", "monitoring"] {
            let f = root.join(env).join("terraform.tfvars");
            if !files.contains(&f) {
                files.push(f);
            }
        }
    }
    files
}

/// The S3 location of an environment without an active backend block: the `minio` block of the
/// environments' tfvars ([`minio_tfvars_candidates`]), bucket `tfstate-<env>`, key `terraform.tfstate`.
fn from_minio_block(env_dir: &Path, overrides: &Overrides) -> Result<Backend> {
    let env = env_dir
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} has no environment name", env_dir.display()))?;
    let mut block = None;
    for file in minio_tfvars_candidates(env_dir) {
        if !file.is_file() {
            continue;
        }
        let vars = pve_common::tfvars::parse_tfvars_file(&file)?;
        let of = file
            .parent()
            .and_then(|d| d.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(m) = EnvSettings::from_vars(&of, &vars)?.minio {
            block = Some(m);
            break;
        }
    }
    let Some(minio) = block else {
        bail!(
            "{} has no active `backend \"s3\"` block in its *.tf files, and no `minio = {{ ... }}` block is in \
             the environments' terraform.tfvars; restore-tfstate needs one of them (or --endpoint, --bucket)",
            env_dir.display()
        );
    };
    let endpoint = overrides
        .endpoint
        .clone()
        .unwrap_or_else(|| minio.endpoint());
    let key = overrides
        .key
        .clone()
        .unwrap_or_else(|| pve_common::homelab::STATE_KEY.to_owned());
    Ok(Backend {
        bucket: overrides
            .bucket
            .clone()
            .unwrap_or_else(|| Minio::bucket(env)),
        key,
        region: overrides
            .region
            .clone()
            .unwrap_or_else(|| "us-east-1".to_owned()),
        endpoint,
        path_style: true,
        use_lockfile: false,
        dynamodb_table: None,
        access_key: minio.root_user.clone().map(Secret::new),
        secret_key: minio.root_password.clone(),
        config_files: Vec::new(),
        from_minio_block: true,
    })
}

/// S3 credentials for a backend, the one chain every tool uses: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
/// (and AWS_SESSION_TOKEN), else the backend's access_key/secret_key, else the tfvars'
/// minio_access_key/minio_secret_key.
pub fn s3_credentials(backend: &Backend, tfvars: Option<&Path>) -> Result<S3Credentials> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let token = env("AWS_SESSION_TOKEN").map(Secret::new);
    if let (Some(a), Some(s)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        return Ok(S3Credentials {
            access_key: Secret::new(a),
            secret_key: Secret::new(s),
            session_token: token,
        });
    }
    if let (Some(a), Some(s)) = (&backend.access_key, &backend.secret_key) {
        return Ok(S3Credentials {
            access_key: a.clone(),
            secret_key: s.clone(),
            session_token: token,
        });
    }
    if let Some(file) = tfvars {
        let vars = pve_common::tfvars::parse_tfvars_file(file)?;
        if let (Some(a), Some(s)) = (
            vars.get_secret("minio_access_key")?,
            vars.get_secret("minio_secret_key")?,
        ) {
            return Ok(S3Credentials {
                access_key: a,
                secret_key: s,
                session_token: token,
            });
        }
    }
    bail!(
        "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or access_key/secret_key in the \
         backend configuration, or minio_access_key/minio_secret_key in {}",
        tfvars.map_or_else(
            || "the homelab's terraform.tfvars (--tfvars)".to_owned(),
            |p| p.display().to_string()
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minio_block_stands_in_for_a_commented_out_backend() {
        let root = tempfile::tempdir().unwrap();
        let lab = root.path().join("lab");
        let prod = root.path().join("prod");
        std::fs::create_dir_all(&lab).unwrap();
        std::fs::create_dir_all(&prod).unwrap();
        std::fs::write(
            lab.join("backend.tf"),
            "# terraform {\n#   backend \"s3\" {\n#     bucket = \"x\"\n#   }\n# }\n",
        )
        .unwrap();
        std::fs::write(
            prod.join("terraform.tfvars"),
            "minio = {\n  ip = \"192.0.2.10\"\n  root_user = \"admin\"\n  root_password = \"pw-123456\"\n}\n",
        )
        .unwrap();
        let b = discover_ok(&lab);
        assert_eq!(b.endpoint, "http://192.0.2.10:9000");
        assert_eq!(
            (b.bucket.as_str(), b.key.as_str()),
            ("tfstate-lab", "terraform.tfstate")
        );
        assert!(b.path_style);
        assert_eq!(b.access_key.unwrap().expose(), "admin");
        assert_eq!(b.secret_key.unwrap().expose(), "pw-123456");
        // The environment's own block wins, with its port.
        std::fs::write(
            lab.join("terraform.tfvars"),
            "minio = { ip = \"127.0.0.1\", port = 19000 }\n",
        )
        .unwrap();
        let b = discover_ok(&lab);
        assert_eq!(b.endpoint, "http://127.0.0.1:19000");
        // While --fallback is in force, backend.tf.minio-backup stands for backend.tf.
        std::fs::write(
            lab.join(BACKEND_BACKUP_FILE),
            "terraform {\n  backend \"s3\" {\n    bucket = \"b\"\n    key = \"k\"\n    endpoint = \"http://127.0.0.1:1\"\n  }\n}\n",
        )
        .unwrap();
        std::fs::write(
            lab.join(BACKEND_FILE),
            "terraform {\n  backend \"local\" {}\n}\n",
        )
        .unwrap();
        assert_eq!(discover_ok(&lab).bucket, "b");
    }

    fn env(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn reads_block_then_backend_hcl_then_flags() {
        let dir = env(&[
            (
                "versions.tf",
                r#"terraform {
  required_version = ">= 1.10"
  backend "s3" {
    bucket       = "tfstate"
    key          = "prod/terraform.tfstate"
    region       = "main"
    use_lockfile = true
    endpoints    = { s3 = "http://minio.home.arpa:9000" }
    use_path_style = true
    skip_credentials_validation = true
  }
}"#,
            ),
            (
                "backend.hcl",
                "endpoints = { s3 = \"http://127.0.0.1:9000\" }\nsecret_key = \"minio-secret-123\"\n",
            ),
        ]);
        let b = discover_ok(dir.path());
        assert_eq!(
            (b.bucket.as_str(), b.key.as_str(), b.region.as_str()),
            ("tfstate", "prod/terraform.tfstate", "main")
        );
        assert_eq!(
            b.endpoint, "http://127.0.0.1:9000",
            "backend.hcl overrides the block"
        );
        assert!(b.path_style && b.use_lockfile);
        assert_eq!(b.secret_key.unwrap().expose(), "minio-secret-123");
        assert_eq!(b.config_files, vec![dir.path().join("backend.hcl")]);
        let o = Overrides {
            bucket: Some("other".into()),
            ..Overrides::default()
        };
        assert_eq!(discover(dir.path(), &[], &o).unwrap().bucket, "other");
    }

    #[test]
    fn older_names_and_partial_configuration() {
        let dir = env(&[("main.tf", "terraform {\n  backend \"s3\" {}\n}\n")]);
        let extra = dir.path().join("prod.s3.tfbackend");
        std::fs::write(&extra, "bucket = \"b\"\nkey = \"k\"\nendpoint = \"http://h:9000\"\nforce_path_style = true\ndynamodb_table = \"locks\"\n").unwrap();
        let b = discover(dir.path(), &[extra], &Overrides::default()).unwrap();
        assert_eq!(b.endpoint, "http://h:9000");
        assert!(b.path_style);
        assert_eq!(b.dynamodb_table.as_deref(), Some("locks"));
    }

    /// The backend of `dir` (with no override).
    fn discover_ok(dir: &Path) -> Backend {
        discover(dir, &[], &Overrides::default()).unwrap()
    }

    /// Why `dir` has no usable backend (with no override).
    fn discover_err(dir: &Path) -> String {
        discover(dir, &[], &Overrides::default())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn not_s3_or_incomplete_is_a_clear_error() {
        let local = env(&[(
            "main.tf",
            "terraform {\n  backend \"local\" {\n    path = \"x\"\n  }\n}\n",
        )]);
        let err = discover_err(local.path());
        assert!(err.contains("uses backend \"local\""), "{err}");
        let none = env(&[("main.tf", "resource \"terraform_data\" \"x\" {\n}\n")]);
        assert!(discover_err(none.path()).contains("no active `backend \"s3\"` block"));
        let partial = env(&[(
            "main.tf",
            "terraform {\n  backend \"s3\" {\n    bucket = \"b\"\n  }\n}\n",
        )]);
        let err = discover_err(partial.path());
        assert!(err.contains("sets no `key`"), "{err}");
    }

    #[test]
    fn the_local_override_is_not_read() {
        let dir = env(&[
            (
                "main.tf",
                "terraform {\n  backend \"s3\" {\n    bucket = \"b\"\n    key = \"k\"\n    endpoint = \"http://h\"\n  }\n}\n",
            ),
            (
                LOCAL_OVERRIDE_FILE,
                "terraform {\n  backend \"local\" {}\n}\n",
            ),
        ]);
        assert_eq!(discover_ok(dir.path()).bucket, "b");
    }

    #[test]
    fn keys_leaving_the_bucket_are_refused_whatever_sets_them() {
        let dir = env(&[(
            "main.tf",
            "terraform {\n  backend \"s3\" {\n    bucket = \"b\"\n    key = \"../victim/terraform.tfstate\"\n    endpoint = \"http://h\"\n  }\n}\n",
        )]);
        let err = format!(
            "{:#}",
            discover(dir.path(), &[], &Overrides::default()).unwrap_err()
        );
        assert!(err.contains("`..` segment"), "{err}");
        let o = Overrides {
            key: Some("/prod/terraform.tfstate".into()),
            ..Overrides::default()
        };
        let err = format!("{:#}", discover(dir.path(), &[], &o).unwrap_err());
        assert!(err.contains("starts with `/`"), "{err}");
        let extra = dir.path().join("x.tfbackend");
        std::fs::write(&extra, "key = \"prod/./terraform.tfstate\"\n").unwrap();
        assert!(discover(dir.path(), &[extra], &Overrides::default()).is_err());
    }
}
