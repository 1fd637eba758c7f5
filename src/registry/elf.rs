//! What `verify --deep` looks at: the ELF header of the binary an image runs, found by walking
//! its layers as the container runtime would stack them.
//!
//! Metadata (the index's platform, the config's `architecture`) says what the builder *claimed*.
//! The classic bug it cannot see is a Dockerfile that downloads `app-linux-amd64` whatever the
//! `TARGETARCH`: every platform's image then holds an x86-64 binary, and arm64 machines fail
//! with `exec format error`. The ELF header's `e_machine` cannot lie about that.
//!
//! [`LayerFs`] reads each layer's tar stream once, bottom layer first, keeping per path only its
//! kind, link target and first bytes (enough for an ELF header or a `#!` line), and applies
//! whiteouts (`.wh.NAME` deletes NAME, `.wh..wh..opq` hides what lower layers had in the
//! folder). [`LayerFs::resolve`] then follows symlinks, in every path component, the way the
//! kernel does inside the container's root.

use std::collections::BTreeMap;
use std::io::Read;

use crate::platform::Platform;

/// Bytes kept from the start of each regular file.
const HEAD: usize = 128;

/// What an ELF header says about the machine a binary runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElfInfo {
    /// `e_machine`.
    pub machine: u16,
    /// 64-bit (`ELFCLASS64`).
    pub class64: bool,
    /// Little-endian (`ELFDATA2LSB`).
    pub little_endian: bool,
}

/// Reads the ELF identification and `e_machine` from the first bytes of a file.
pub fn read_elf(head: &[u8]) -> Option<ElfInfo> {
    if head.len() < 20 || &head[..4] != b"\x7fELF" {
        return None;
    }
    let class64 = match head[4] {
        1 => false,
        2 => true,
        _ => return None,
    };
    let little_endian = match head[5] {
        1 => true,
        2 => false,
        _ => return None,
    };
    let raw = [head[18], head[19]];
    let machine = if little_endian {
        u16::from_le_bytes(raw)
    } else {
        u16::from_be_bytes(raw)
    };
    Some(ElfInfo {
        machine,
        class64,
        little_endian,
    })
}

impl ElfInfo {
    /// The platform architecture this binary is for, in OCI spelling (`amd64`, `arm64`, ...).
    pub fn arch(&self) -> Option<&'static str> {
        Some(match (self.machine, self.class64, self.little_endian) {
            (3, false, _) => "386",
            (62, true, _) => "amd64",
            (40, false, _) => "arm",
            (183, true, _) => "arm64",
            (21, true, true) => "ppc64le",
            (21, true, false) => "ppc64",
            (22, true, _) => "s390x",
            (243, true, _) => "riscv64",
            (8, true, true) => "mips64le",
            (8, true, false) => "mips64",
            (8, false, true) => "mipsle",
            (8, false, false) => "mips",
            (258, true, _) => "loong64",
            _ => return None,
        })
    }

    /// How people call the machine: `x86-64`, `AArch64`, ...
    pub fn describe(&self) -> String {
        let name = match self.machine {
            3 => "Intel 80386",
            62 => "x86-64",
            40 => "ARM (32-bit)",
            183 => "AArch64",
            21 => "PowerPC64",
            22 => "IBM S/390",
            243 => "RISC-V",
            8 => "MIPS",
            258 => "LoongArch",
            _ => "",
        };
        let bits = if self.class64 { 64 } else { 32 };
        let endian = if self.little_endian { "LSB" } else { "MSB" };
        if name.is_empty() {
            format!("ELF {bits}-bit {endian}, machine {}", self.machine)
        } else {
            format!("ELF {bits}-bit {endian} {name}")
        }
    }

    /// True when a `platform` machine runs this binary natively as the image intends:
    /// its architecture is the platform's.
    pub fn matches(&self, platform: &Platform) -> bool {
        self.arch() == Some(platform.arch.as_str())
    }
}

/// One path in the stacked filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A folder.
    Dir,
    /// A regular file and its first bytes.
    File(Vec<u8>),
    /// A symbolic link and its target.
    Symlink(String),
    /// Something else (device, fifo).
    Other,
}

/// The stacked filesystem of an image's layers: paths (absolute, normalised) to nodes.
#[derive(Debug, Default)]
pub struct LayerFs {
    nodes: BTreeMap<String, (Node, usize)>,
    layers: usize,
}

/// Why a layer could not be read.
#[derive(Debug)]
pub struct LayerError(pub String);

impl std::fmt::Display for LayerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Normalises a tar path into an absolute path without `.`, `..` or doubled slashes.
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn is_under(path: &str, dir: &str) -> bool {
    dir == "/" && path != "/"
        || path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

impl LayerFs {
    /// An empty filesystem.
    pub fn new() -> LayerFs {
        LayerFs::default()
    }

    /// Applies one layer (bottom layers first): a tar stream, gzip-compressed or not.
    pub fn apply(&mut self, stream: impl Read) -> Result<(), LayerError> {
        let mut stream = std::io::BufReader::new(stream);
        let magic = {
            use std::io::BufRead;
            let buf = stream
                .fill_buf()
                .map_err(|e| LayerError(format!("reading the layer: {e}")))?;
            buf.get(..4).map(<[u8]>::to_vec).unwrap_or_default()
        };
        let layer = self.layers;
        self.layers += 1;
        if magic.starts_with(&[0x1f, 0x8b]) {
            self.apply_tar(flate2::read::MultiGzDecoder::new(stream), layer)
        } else if magic == [0x28, 0xb5, 0x2f, 0xfd] {
            Err(LayerError(
                "the layer is zstd-compressed, which --deep cannot read yet".into(),
            ))
        } else {
            self.apply_tar(stream, layer)
        }
    }

    fn apply_tar(&mut self, stream: impl Read, layer: usize) -> Result<(), LayerError> {
        let mut archive = tar::Archive::new(stream);
        let entries = archive
            .entries()
            .map_err(|e| LayerError(format!("reading the layer's tar: {e}")))?;
        for entry in entries {
            let mut entry =
                entry.map_err(|e| LayerError(format!("reading the layer's tar: {e}")))?;
            let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let path = clean(&raw_path);
            let name = path.rsplit('/').next().unwrap_or("");
            if name == ".wh..wh..opq" {
                // Opaque folder: what lower layers had in it is hidden.
                let dir = parent_of(&path).to_string();
                self.nodes
                    .retain(|p, (_, l)| !(*l < layer && is_under(p, &dir)));
                continue;
            }
            if let Some(hidden) = name.strip_prefix(".wh.") {
                let dir = parent_of(&path);
                let target = clean(&format!("{dir}/{hidden}"));
                self.nodes
                    .retain(|p, _| *p != target && !is_under(p, &target));
                continue;
            }
            let kind = entry.header().entry_type();
            let node = match kind {
                tar::EntryType::Directory => Node::Dir,
                tar::EntryType::Symlink => Node::Symlink(
                    entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default(),
                ),
                tar::EntryType::Link => {
                    // A hard link names another path of the archive; it has that file's bytes.
                    let target = entry
                        .link_name_bytes()
                        .map(|b| clean(&String::from_utf8_lossy(&b)))
                        .unwrap_or_default();
                    match self.nodes.get(&target) {
                        Some((n, _)) => n.clone(),
                        None => Node::Other,
                    }
                }
                t if t.is_file() => {
                    let mut head = Vec::with_capacity(HEAD);
                    (&mut entry)
                        .take(HEAD as u64)
                        .read_to_end(&mut head)
                        .map_err(|e| LayerError(format!("reading {path} in the layer: {e}")))?;
                    Node::File(head)
                }
                _ => Node::Other,
            };
            // A non-folder replaces whatever was there, children included.
            if node != Node::Dir {
                self.nodes.retain(|p, _| !is_under(p, &path));
            }
            self.nodes.insert(path, (node, layer));
        }
        Ok(())
    }

    /// The node at `path` (no symlink following).
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(&clean(path)).map(|(n, _)| n)
    }

    /// Follows symlinks in every component of `path`, inside this root (absolute targets start
    /// at the image root, `..` stops at it). Returns the final path and its node.
    pub fn resolve(&self, path: &str) -> Result<(String, &Node), String> {
        let mut hops = 0;
        let mut pending: Vec<String> = clean(path)
            .split('/')
            .filter(|c| !c.is_empty())
            .rev()
            .map(str::to_string)
            .collect();
        let mut current = String::from("/");
        while let Some(comp) = pending.pop() {
            let candidate = if comp == ".." {
                parent_of(&current).to_string()
            } else if current == "/" {
                format!("/{comp}")
            } else {
                format!("{current}/{comp}")
            };
            match self.nodes.get(&candidate).map(|(n, _)| n) {
                Some(Node::Symlink(target)) => {
                    hops += 1;
                    if hops > 40 {
                        return Err(format!("{path}: too many levels of symbolic links"));
                    }
                    if target.starts_with('/') {
                        current = "/".into();
                    }
                    for c in target
                        .split('/')
                        .filter(|c| !c.is_empty() && *c != ".")
                        .rev()
                    {
                        pending.push(c.to_string());
                    }
                }
                Some(_) => current = candidate,
                None if candidate == "/" => current = candidate,
                None => {
                    // A folder may exist only implicitly (files under it, no entry of its own).
                    let implicit = self.nodes.keys().any(|k| is_under(k, &candidate));
                    if implicit && !pending.is_empty() {
                        current = candidate;
                    } else {
                        return Err(format!("{path}: {candidate} does not exist in the image"));
                    }
                }
            }
        }
        match self.nodes.get(&current) {
            Some((n, _)) => Ok((current, n)),
            None => Err(format!("{path}: not found in the image")),
        }
    }

    /// Finds a command as the runtime would: a name with a `/` is a path (relative to
    /// `workdir`), a bare name is looked up in `PATH`.
    pub fn find_command(
        &self,
        cmd: &str,
        path_var: &str,
        workdir: &str,
    ) -> Result<(String, &Node), String> {
        if cmd.contains('/') {
            let p = if cmd.starts_with('/') {
                cmd.to_string()
            } else {
                format!("{}/{cmd}", if workdir.is_empty() { "/" } else { workdir })
            };
            return self.resolve(&p);
        }
        for dir in path_var.split(':').filter(|d| !d.is_empty()) {
            if let Ok((p, n @ Node::File(_))) = self.resolve(&format!("{dir}/{cmd}")) {
                return Ok((p, n));
            }
        }
        Err(format!("\"{cmd}\" is not found in PATH ({path_var})"))
    }
}

/// The interpreter of a `#!` script, if the bytes start with one.
pub fn shebang(head: &[u8]) -> Option<String> {
    let rest = head.strip_prefix(b"#!")?;
    let line = rest.split(|&b| b == b'\n').next()?;
    let line = String::from_utf8_lossy(line);
    line.split_whitespace().next().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf_header(class: u8, data: u8, machine: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = class;
        h[5] = data;
        h[6] = 1;
        let m = if data == 1 {
            machine.to_le_bytes()
        } else {
            machine.to_be_bytes()
        };
        h[18] = m[0];
        h[19] = m[1];
        h
    }

    #[test]
    fn reads_machines() {
        let x = read_elf(&elf_header(2, 1, 62)).unwrap();
        assert_eq!(x.arch(), Some("amd64"));
        assert_eq!(x.describe(), "ELF 64-bit LSB x86-64");
        let a = read_elf(&elf_header(2, 1, 183)).unwrap();
        assert!(a.matches(&Platform::new("linux", "arm64", None)));
        assert!(!x.matches(&Platform::new("linux", "arm64", None)));
        assert_eq!(read_elf(&elf_header(1, 1, 40)).unwrap().arch(), Some("arm"));
        assert_eq!(
            read_elf(&elf_header(2, 2, 22)).unwrap().arch(),
            Some("s390x")
        );
        assert_eq!(
            read_elf(&elf_header(2, 1, 21)).unwrap().arch(),
            Some("ppc64le")
        );
        assert!(read_elf(b"#!/bin/sh\n").is_none());
        assert!(read_elf(b"\x7fELF").is_none());
    }

    #[test]
    fn reads_real_busybox_when_present() {
        for (arch, want) in [("amd64", "amd64"), ("arm64", "arm64")] {
            let p = format!("/var/lib/multiarch-test/busybox/{arch}/busybox");
            if let Ok(bytes) = std::fs::read(&p) {
                assert_eq!(read_elf(&bytes[..64]).unwrap().arch(), Some(want), "{p}");
            }
        }
    }

    struct Tar(tar::Builder<Vec<u8>>);

    impl Tar {
        fn new() -> Tar {
            Tar(tar::Builder::new(Vec::new()))
        }
        fn file(mut self, path: &str, data: &[u8]) -> Tar {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            h.set_entry_type(tar::EntryType::Regular);
            self.0.append_data(&mut h, path, data).unwrap();
            self
        }
        fn dir(mut self, path: &str) -> Tar {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            self.0.append_data(&mut h, path, &[][..]).unwrap();
            self
        }
        fn link(mut self, path: &str, target: &str, kind: tar::EntryType) -> Tar {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_size(0);
            self.0.append_link(&mut h, path, target).unwrap();
            self
        }
        fn gz(self) -> Vec<u8> {
            let raw = self.0.into_inner().unwrap();
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut e, &raw).unwrap();
            e.finish().unwrap()
        }
    }

    #[test]
    fn stacks_layers_with_symlinks_and_whiteouts() {
        let x86 = elf_header(2, 1, 62);
        let arm = elf_header(2, 1, 183);
        let base = Tar::new()
            .dir("bin")
            .file("bin/busybox", &x86)
            .link("bin/sh", "busybox", tar::EntryType::Symlink)
            .dir("usr/lib")
            .file("usr/lib/old", b"x")
            .link("lib", "usr/lib", tar::EntryType::Symlink)
            .gz();
        let top = Tar::new()
            .file("bin/.wh.busybox", b"")
            .file("opt/app/real", &arm)
            .link("opt/app/hard", "opt/app/real", tar::EntryType::Link)
            .link(
                "usr/local/bin/app",
                "../../../opt/app/hard",
                tar::EntryType::Symlink,
            )
            .file("usr/lib/.wh..wh..opq", b"")
            .file("usr/lib/new", b"y")
            .gz();
        let mut fs = LayerFs::new();
        fs.apply(&base[..]).unwrap();
        assert_eq!(fs.resolve("/bin/sh").unwrap().0, "/bin/busybox");
        fs.apply(&top[..]).unwrap();
        // The whiteout removed busybox, so the link dangles.
        assert!(fs.resolve("/bin/sh").is_err());
        let (p, n) = fs.find_command("app", "/usr/local/bin:/bin", "/").unwrap();
        assert_eq!(p, "/opt/app/hard");
        let Node::File(head) = n else { panic!() };
        assert_eq!(read_elf(head).unwrap().arch(), Some("arm64"));
        // The opaque folder hides the lower layer's file, through a symlinked component too.
        assert!(fs.resolve("/lib/old").is_err());
        assert_eq!(fs.resolve("/lib/new").unwrap().0, "/usr/lib/new");
        // Relative commands start at the working directory; `..` stops at the root.
        assert_eq!(
            fs.find_command("./real", "", "/opt/app").unwrap().0,
            "/opt/app/real"
        );
        assert_eq!(
            fs.resolve("/../../opt/app/real").unwrap().0,
            "/opt/app/real"
        );
    }

    #[test]
    fn symlink_loops_end() {
        let t = Tar::new()
            .link("a", "b", tar::EntryType::Symlink)
            .link("b", "a", tar::EntryType::Symlink)
            .0
            .into_inner()
            .unwrap();
        let mut fs = LayerFs::new();
        fs.apply(&t[..]).unwrap();
        assert!(fs.resolve("/a").unwrap_err().contains("too many levels"));
    }

    #[test]
    fn shebangs() {
        assert_eq!(shebang(b"#!/bin/sh -e\necho"), Some("/bin/sh".into()));
        assert_eq!(shebang(b"\x7fELF"), None);
    }
}
