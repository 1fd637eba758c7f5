//! GitHub Actions workflows.

/// Entry point of `multiarch ci github`.
pub fn command(
    _cli: &crate::cli::Cli,
    _args: &crate::cli::GithubArgs,
) -> crate::error::Result<i32> {
    Err(crate::error::Error::failed(crate::error::Problem::new(
        "`multiarch ci github` is not built yet in this version",
    )))
}
