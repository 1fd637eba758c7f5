//! The planner.

/// Entry point of `multiarch plan`.
pub fn command(_cli: &crate::cli::Cli, _args: &crate::cli::PlanArgs) -> crate::error::Result<i32> {
    Err(crate::error::Error::failed(crate::error::Problem::new(
        "`multiarch plan` is not built yet in this version",
    )))
}
