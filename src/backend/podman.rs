//! The podman backend, daemonless: one `podman build --platform X` per platform into local
//! storage, a local manifest list per registry (`podman manifest create` / `add`, so a registry
//! that takes fewer platforms gets a narrower list), and `podman manifest push --all` per
//! immutable tag. Floating tags are registry copies of the verified index.

use crate::error::Result;
use crate::plan::Steps;

use super::Context;

/// Plans a release (or a `--load` try-out) with podman.
pub fn plan(ctx: &Context, steps: &mut Steps) -> Result<()> {
    super::docker::per_platform_plan(ctx, steps, "podman")
}
