//! The executor: the only module that spawns processes.

/// Entry point of `multiarch apply`.
pub fn command(_cli: &crate::cli::Cli, _args: &crate::cli::ApplyArgs) -> crate::error::Result<i32> {
    Err(crate::error::Error::failed(crate::error::Problem::new(
        "`multiarch apply` is not built yet in this version",
    )))
}
