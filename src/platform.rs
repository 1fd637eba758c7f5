//! Target platforms (`os/arch[/variant]`), parsed and normalised the way containerd does.
//!
//! Users write platforms in many spellings: `linux/aarch64`, `linux/arm64/v8`, `linux/armhf`,
//! `linux/x86_64`. The registry, the engine and QEMU only agree on the normalised form
//! (`linux/arm64`, `linux/arm/v7`, `linux/amd64`), so every platform is normalised once, when the
//! project file is read, and compared in that form everywhere else. Two spellings of the same
//! platform in one list are therefore a duplicate, which `check` reports.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Operating systems an OCI image may declare (Go's `GOOS` values, as the OCI image spec says).
pub const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "illumos",
    "ios",
    "js",
    "linux",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "wasip1",
    "windows",
];

/// Architectures an OCI image may declare (Go's `GOARCH` values), after normalisation.
pub const KNOWN_ARCH: &[&str] = &[
    "386", "amd64", "arm", "arm64", "loong64", "mips", "mips64", "mips64le", "mipsle", "ppc64",
    "ppc64le", "riscv64", "s390x", "wasm",
];

/// A normalised target platform, e.g. `linux/arm64` or `linux/arm/v7`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    /// Operating system (`linux`).
    pub os: String,
    /// Architecture in OCI spelling (`amd64`, `arm64`, `arm`, ...).
    pub arch: String,
    /// Variant where it matters (`v7` for `arm`), `None` where the normal form has none.
    pub variant: Option<String>,
}

/// Why a platform string was refused; `help` says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformError {
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl fmt::Display for PlatformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PlatformError {}

fn err(message: String, help: Option<String>) -> PlatformError {
    PlatformError { message, help }
}

/// Normalises an architecture and variant as containerd's `platforms.Normalize` does.
/// Returns `None` for an architecture that is not known at all.
fn normalize_arch(arch: &str, variant: Option<&str>) -> Option<(String, Option<String>)> {
    let v = variant.map(str::to_ascii_lowercase);
    let v = v.as_deref();
    let (a, v): (&str, Option<String>) = match arch {
        "i386" | "i686" | "386" => ("386", None),
        "x86_64" | "x86-64" | "amd64" => match v {
            None | Some("v1") => ("amd64", None),
            Some(other) => ("amd64", Some(other.to_string())),
        },
        "aarch64" | "arm64" => match v {
            None | Some("8") | Some("v8") => ("arm64", None),
            Some(other) => ("arm64", Some(other.to_string())),
        },
        "armhf" => ("arm", Some("v7".into())),
        "armel" => ("arm", Some("v6".into())),
        "arm" => match v {
            None | Some("7") | Some("v7") => ("arm", Some("v7".into())),
            Some(n @ ("5" | "6" | "8")) => ("arm", Some(format!("v{n}"))),
            Some(other) => ("arm", Some(other.to_string())),
        },
        other if KNOWN_ARCH.contains(&other) => (other, v.map(str::to_string)),
        _ => return None,
    };
    Some((a.to_string(), v))
}

/// Spellings people use for an architecture with no OS in front (`arm64`, `x86_64`).
fn looks_like_arch(s: &str) -> bool {
    normalize_arch(s, None).is_some()
}

impl Platform {
    /// Builds a platform from parts that are already in normal form.
    pub fn new(os: &str, arch: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.to_string(),
            arch: arch.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// Normalises a platform as found in an image index or config (`os`, `architecture`,
    /// `variant`), so that `arm64/v8` in a registry matches `linux/arm64` in the project file.
    /// Unknown values are kept as written: a registry may hold anything.
    pub fn from_parts(os: &str, arch: &str, variant: Option<&str>) -> Platform {
        let variant = variant.filter(|v| !v.is_empty());
        match normalize_arch(&arch.to_ascii_lowercase(), variant) {
            Some((a, v)) => Platform {
                os: os.to_ascii_lowercase(),
                arch: a,
                variant: v,
            },
            None => Platform::new(os, arch, variant),
        }
    }

    /// The platform this process runs on, as the engine would call it.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "arm" => "arm",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        Platform::from_parts("linux", arch, None)
    }

    /// A short, tag-safe suffix for this platform: `amd64`, `arm64`, `arm-v7`.
    pub fn tag_suffix(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}-{}", self.arch, v),
            None => self.arch.clone(),
        }
    }

    /// The name QEMU's user-mode emulator and its binfmt_misc entry use for this platform
    /// (`aarch64` for `linux/arm64`), or `None` where QEMU has no emulator for it.
    pub fn qemu_name(&self) -> Option<&'static str> {
        Some(match self.arch.as_str() {
            "amd64" => "x86_64",
            "386" => "i386",
            "arm64" => "aarch64",
            "arm" => "arm",
            "ppc64le" => "ppc64le",
            "ppc64" => "ppc64",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            "mips64le" => "mips64el",
            "mips64" => "mips64",
            "mipsle" => "mipsel",
            "mips" => "mips",
            "loong64" => "loongarch64",
            _ => return None,
        })
    }

    /// True when a machine of platform `self` runs binaries of `other` without emulation
    /// (amd64 runs 386; arm64 usually runs arm/v7 and arm/v6).
    pub fn runs_natively(&self, other: &Platform) -> bool {
        if self.os != other.os {
            return false;
        }
        self.arch == other.arch
            || (self.arch == "amd64" && other.arch == "386")
            || (self.arch == "arm64" && other.arch == "arm")
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = PlatformError;

    fn from_str(input: &str) -> Result<Platform, PlatformError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(err(
                "a platform cannot be empty".into(),
                Some("write it as os/arch, e.g. \"linux/amd64\"".into()),
            ));
        }
        if s != s.to_ascii_lowercase() {
            return Err(err(
                format!("platform \"{input}\" must be lowercase"),
                Some(format!("write \"{}\"", s.to_ascii_lowercase())),
            ));
        }
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) || parts.len() > 3 {
            return Err(err(
                format!("\"{input}\" is not a platform"),
                Some("write it as os/arch or os/arch/variant, e.g. \"linux/arm/v7\"".into()),
            ));
        }
        if parts.len() == 1 {
            let help = if looks_like_arch(parts[0]) {
                let p = Platform::from_parts("linux", parts[0], None);
                format!("a platform names its OS too: write \"{p}\"")
            } else {
                "write it as os/arch, e.g. \"linux/amd64\"".to_string()
            };
            return Err(err(
                format!("platform \"{input}\" has no operating system"),
                Some(help),
            ));
        }
        let (os, arch, variant) = (parts[0], parts[1], parts.get(2).copied());
        if !KNOWN_OS.contains(&os) {
            let help = if looks_like_arch(os) && parts.len() == 2 && KNOWN_OS.contains(&arch) {
                // "arm64/linux": the two parts swapped.
                format!(
                    "the OS comes first: write \"{}\"",
                    Platform::from_parts(arch, os, None)
                )
            } else if looks_like_arch(os) && parts.len() == 2 {
                format!(
                    "the OS comes first: write \"{}\"",
                    Platform::from_parts("linux", os, Some(arch))
                )
            } else {
                match crate::suggest::did_you_mean(os, KNOWN_OS.iter().copied()) {
                    Some(s) => format!("did you mean \"{s}\"? Known: {}", KNOWN_OS.join(", ")),
                    None => format!("known operating systems: {}", KNOWN_OS.join(", ")),
                }
            };
            return Err(err(
                format!("unknown operating system \"{os}\" in platform \"{input}\""),
                Some(help),
            ));
        }
        match normalize_arch(arch, variant) {
            Some((a, v)) => Ok(Platform {
                os: os.to_string(),
                arch: a,
                variant: v,
            }),
            None => {
                let aliases = ["x86_64", "aarch64", "armhf", "armel", "i386"];
                let help = match crate::suggest::did_you_mean(
                    arch,
                    KNOWN_ARCH.iter().copied().chain(aliases),
                ) {
                    Some(s) => format!("did you mean \"{s}\"? Known: {}", KNOWN_ARCH.join(", ")),
                    None => format!("known architectures: {}", KNOWN_ARCH.join(", ")),
                };
                Err(err(
                    format!("unknown architecture \"{arch}\" in platform \"{input}\""),
                    Some(help),
                ))
            }
        }
    }
}

impl Serialize for Platform {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Platform {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Platform, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Platform {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Platform".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A target platform, os/arch[/variant], e.g. linux/amd64, linux/arm64, linux/arm/v7.",
            "pattern": "^[a-z0-9]+/[a-z0-9_-]+(/[a-z0-9]+)?$",
            "examples": ["linux/amd64", "linux/arm64", "linux/arm/v7"]
        })
    }
}

/// Joins platforms the way `--platform` takes them: `linux/amd64,linux/arm64`.
pub fn join(platforms: &[Platform]) -> String {
    platforms
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> String {
        s.parse::<Platform>().unwrap().to_string()
    }

    #[test]
    fn normalises_like_containerd() {
        assert_eq!(p("linux/amd64"), "linux/amd64");
        assert_eq!(p("linux/x86_64"), "linux/amd64");
        assert_eq!(p("linux/x86-64"), "linux/amd64");
        assert_eq!(p("linux/amd64/v1"), "linux/amd64");
        assert_eq!(p("linux/amd64/v3"), "linux/amd64/v3");
        assert_eq!(p("linux/aarch64"), "linux/arm64");
        assert_eq!(p("linux/arm64/v8"), "linux/arm64");
        assert_eq!(p("linux/arm64/8"), "linux/arm64");
        assert_eq!(p("linux/arm"), "linux/arm/v7");
        assert_eq!(p("linux/armhf"), "linux/arm/v7");
        assert_eq!(p("linux/armel"), "linux/arm/v6");
        assert_eq!(p("linux/arm/6"), "linux/arm/v6");
        assert_eq!(p("linux/i386"), "linux/386");
        assert_eq!(p("linux/ppc64le"), "linux/ppc64le");
        assert_eq!(p("linux/s390x"), "linux/s390x");
        assert_eq!(p("linux/riscv64"), "linux/riscv64");
        assert_eq!(p("windows/amd64"), "windows/amd64");
    }

    #[test]
    fn equal_after_normalisation() {
        let a: Platform = "linux/aarch64".parse().unwrap();
        let b: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(
            Platform::from_parts("linux", "arm64", Some("v8")),
            "linux/arm64".parse().unwrap()
        );
        assert_eq!(
            Platform::from_parts("linux", "arm", None),
            "linux/arm/v7".parse().unwrap()
        );
    }

    #[test]
    fn refuses_missing_os_with_hint() {
        let e = "arm64".parse::<Platform>().unwrap_err();
        assert!(e.message.contains("no operating system"), "{e}");
        assert_eq!(
            e.help.unwrap(),
            "a platform names its OS too: write \"linux/arm64\""
        );
        let e = "x86_64".parse::<Platform>().unwrap_err();
        assert!(e.help.unwrap().contains("linux/amd64"));
    }

    #[test]
    fn refuses_unknown_parts() {
        let e = "linux/arm65".parse::<Platform>().unwrap_err();
        assert!(e.message.contains("unknown architecture \"arm65\""));
        assert!(e.help.unwrap().contains("did you mean \"arm64\""));
        let e = "linx/amd64".parse::<Platform>().unwrap_err();
        assert!(e.help.unwrap().contains("did you mean \"linux\""));
        let e = "arm64/linux".parse::<Platform>().unwrap_err();
        assert_eq!(e.help.unwrap(), "the OS comes first: write \"linux/arm64\"");
        let e = "aarch64/linux".parse::<Platform>().unwrap_err();
        assert_eq!(e.help.unwrap(), "the OS comes first: write \"linux/arm64\"");
        assert!("linux//amd64".parse::<Platform>().is_err());
        assert!("linux/amd64/v2/x".parse::<Platform>().is_err());
        assert!("Linux/AMD64".parse::<Platform>().is_err());
        assert!("".parse::<Platform>().is_err());
    }

    #[test]
    fn native_and_qemu() {
        let amd: Platform = "linux/amd64".parse().unwrap();
        let arm: Platform = "linux/arm64".parse().unwrap();
        let v7: Platform = "linux/arm/v7".parse().unwrap();
        assert!(amd.runs_natively(&amd));
        assert!(!amd.runs_natively(&arm));
        assert!(arm.runs_natively(&v7));
        assert_eq!(arm.qemu_name(), Some("aarch64"));
        assert_eq!(v7.tag_suffix(), "arm-v7");
        assert_eq!(join(&[amd, arm]), "linux/amd64,linux/arm64");
    }
}
