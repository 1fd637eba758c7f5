//! `multiarch doctor`: checks this machine against the project before a build starts.

/// Entry point of `multiarch doctor`.
pub fn command(_cli: &crate::cli::Cli, _args: &crate::cli::DoctorArgs) -> crate::error::Result<i32> {
    Err(crate::error::Error::failed(crate::error::Problem::new(
        "`multiarch doctor` is not built yet in this version",
    )))
}
