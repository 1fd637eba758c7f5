//! The OCI distribution client: auth, manifests, blobs, copy, verify.

/// Entry point of `multiarch verify`.
pub fn verify_command(_cli: &crate::cli::Cli, _args: &crate::cli::VerifyArgs) -> crate::error::Result<i32> {
    Err(crate::error::Error::failed(crate::error::Problem::new(
        "`multiarch verify` is not built yet in this version",
    )))
}

/// Entry point of `multiarch inspect`.
pub fn inspect_command(_cli: &crate::cli::Cli, _args: &crate::cli::InspectArgs) -> crate::error::Result<i32> {
    Err(crate::error::Error::failed(crate::error::Problem::new(
        "`multiarch inspect` is not built yet in this version",
    )))
}

/// Entry point of `multiarch copy`.
pub fn copy_command(_cli: &crate::cli::Cli, _args: &crate::cli::CopyArgs) -> crate::error::Result<i32> {
    Err(crate::error::Error::failed(crate::error::Problem::new(
        "`multiarch copy` is not built yet in this version",
    )))
}
