//! The targeted apply of the rebuild tools: `terraform plan -target=T -out=FILE`, the saved plan read back
//! with `terraform show -json`, a refusal when it would destroy or replace anything outside `T`, then the
//! operator's yes and `terraform apply FILE`, so what is applied is exactly what was checked. The plan file
//! lives in a private folder: it holds sensitive values in clear.

use std::path::PathBuf;

use pve_common::confirm::ConfirmError;
use pve_common::rundir::{PrivateDir, RunDirError};
use pve_common::runner::{Access, LocalCommand, RunError, Runner};
use pve_common::terraform::TerraformError;
use thiserror::Error;

use crate::plan::{self, Change, NotAPlan};

/// Why a targeted plan or apply failed. Messages are those the tools have always printed.
#[derive(Debug, Error)]
pub enum TfError {
    /// No usable Terraform binary.
    #[error(transparent)]
    Bin(#[from] TerraformError),
    /// The private folder for the plan could not be made.
    #[error("cannot create a private folder for the plan")]
    PlanDir(#[source] RunDirError),
    /// The plan file could not be created.
    #[error("cannot create the plan file")]
    PlanFile(#[source] RunDirError),
    /// Terraform could not be run.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The runner skipped a command this step needs (a dry run contacts nothing).
    #[error("terraform {0} did not run")]
    NotRun(&'static str),
    /// `terraform plan` exited unsuccessfully.
    #[error("terraform plan -target={target} failed: {stderr}")]
    PlanFailed {
        /// The `-target`.
        target: String,
        /// The first lines of its stderr.
        stderr: String,
    },
    /// `terraform show -json` printed no plan.
    #[error(transparent)]
    NotAPlan(#[from] NotAPlan),
    /// The plan destroys or replaces resources outside its target; nothing was applied.
    #[error(
        "refused: the plan would destroy or replace resources outside {target}: {}; nothing was applied",
        outside.join(", ")
    )]
    Refused {
        /// The `-target`.
        target: String,
        /// Each refused change, as `address (actions)`.
        outside: Vec<String>,
    },
    /// `terraform apply PLAN` failed.
    #[error("terraform apply of {target} failed")]
    ApplyFailed {
        /// The `-target`.
        target: String,
        /// What failed.
        #[source]
        source: RunError,
    },
}

/// A saved plan limited to one target, checked, not yet applied.
#[derive(Debug)]
pub struct TargetedPlan {
    target: String,
    file: PathBuf,
    /// The folder holding `file`; it must outlive the apply.
    _dir: PrivateDir,
    /// Every change of the plan, within the target or not.
    pub changes: Vec<Change>,
}

impl TargetedPlan {
    /// Plans `-target=target` into a file named `plan_name` in a private folder, logs Terraform's text of
    /// the plan on stderr, and reads the plan back.
    /// `terraform` builds the command line for given arguments (see [`crate::command`]).
    pub fn create(
        runner: &Runner,
        terraform: &dyn Fn(Vec<String>) -> Result<LocalCommand, TerraformError>,
        target: &str,
        plan_name: &str,
    ) -> Result<Self, TfError> {
        let dir = pve_common::rundir::private_dir("plan").map_err(TfError::PlanDir)?;
        let file = dir.empty_file(plan_name).map_err(TfError::PlanFile)?;
        let plan_args = vec![
            "plan".into(),
            "-input=false".into(),
            "-no-color".into(),
            format!("-target={target}"),
            format!("-out={}", file.display()),
        ];
        let out = runner
            .run(Access::ReadOnly, &terraform(plan_args)?)?
            .ok_or(TfError::NotRun("plan"))?;
        if !out.status.success() {
            return Err(TfError::PlanFailed {
                target: target.to_owned(),
                stderr: pve_common::runner::stderr_excerpt(&out.stderr, 15),
            });
        }
        // The plan is for people: stderr, never stdout.
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            pve_common::info!("  {line}");
        }
        let show_args = vec![
            "show".into(),
            "-json".into(),
            "-no-color".into(),
            file.display().to_string(),
        ];
        let show = runner
            .run_checked(Access::ReadOnly, &terraform(show_args)?)?
            .ok_or(TfError::NotRun("show"))?;
        Ok(TargetedPlan {
            target: target.to_owned(),
            changes: plan::parse(&show.stdout)?,
            file,
            _dir: dir,
        })
    }

    /// The `-target`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The changes within the target that do something.
    pub fn within(&self) -> Vec<&Change> {
        plan::effective_within(&self.changes, &self.target)
    }

    /// The destructive changes outside the target: when there is any, the plan must not be applied.
    pub fn destructive_outside(&self) -> Vec<&Change> {
        plan::destructive_outside(&self.changes, &self.target)
    }

    /// The operator's yes for this plan in `env` (the terminal, else stdin; `assume_yes` skips).
    pub fn confirm(&self, env: &str, assume_yes: bool) -> Result<(), ConfirmError> {
        pve_common::confirm::ask(
            &format!("Apply this plan of {} in {env}?", self.target),
            &format!("terraform apply -target={}", self.target),
            assume_yes,
        )
    }

    /// Applies exactly this saved plan. Refuses a plan with destructive changes outside the target, which
    /// the caller should have reported without calling this.
    pub fn apply(
        &self,
        runner: &Runner,
        terraform: &dyn Fn(Vec<String>) -> Result<LocalCommand, TerraformError>,
    ) -> Result<(), TfError> {
        if !self.destructive_outside().is_empty() {
            return Err(TfError::Refused {
                target: self.target.clone(),
                outside: self
                    .destructive_outside()
                    .iter()
                    .map(|c| c.to_string())
                    .collect(),
            });
        }
        let args = vec![
            "apply".into(),
            "-input=false".into(),
            "-no-color".into(),
            self.file.display().to_string(),
        ];
        runner
            .run_checked(Access::Mutating, &terraform(args)?)
            .map_err(|source| TfError::ApplyFailed {
                target: self.target.clone(),
                source,
            })?;
        Ok(())
    }
}
