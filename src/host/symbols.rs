//! Stack frames to names with blazesym: kernel frames from kallsyms, user frames from the ELF
//! (and DWARF, for file:line) of the files the process maps. The process's mappings are
//! snapshotted while it runs, so frames still resolve after it has exited. Shared by
//! kmemleak-lite's stacks and uprobe-lat's --stack, so both name frames alike (in JSON too:
//! output::frames).

use std::collections::HashMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use blazesym::symbolize::source::{Elf, Kernel, Source};
use blazesym::symbolize::{Input, Symbolized, Symbolizer};
use blazesym::MaybeDefault;

use crate::host::proc_maps::Mapping;
use crate::render::escape::escape_into;

/// A symbolized frame (its JSON form: output::frames).
#[derive(Debug, Clone)]
pub struct Frame {
    pub addr: String,
    pub symbol: Option<String>,
    pub offset: Option<u64>,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub module: Option<String>,
    /// The frame as one line: `leak_big+0x1c (leaky.c:12) [leaky]`.
    pub text: String,
}

/// Names the frames of one process (user) or of the kernel, with a cache by address.
pub struct Symbols {
    symbolizer: Symbolizer,
    kernel: bool,
    maps: Vec<Mapping>,
    cache: HashMap<u64, Frame>,
}

impl Symbols {
    pub fn kernel() -> Self {
        Self::new(true)
    }

    pub fn user() -> Self {
        Self::new(false)
    }

    fn new(kernel: bool) -> Self {
        Symbols {
            symbolizer: Symbolizer::builder()
                .enable_code_info(true)
                .enable_inlined_fns(false)
                .build(),
            kernel,
            maps: Vec::new(),
            cache: HashMap::new(),
        }
    }

    /// Replaces the snapshot of the process's mappings (ignored when empty: a process that has
    /// just exited shows no mappings, and its last snapshot is the one that counts). Files
    /// deleted since they were mapped are left out: their path names nothing, or another file.
    pub fn update_maps(&mut self, mut maps: Vec<Mapping>) {
        maps.retain(|m| !m.deleted);
        if !maps.is_empty() && maps != self.maps {
            self.maps = maps;
        }
    }

    /// The snapshot of the process's mappings.
    pub fn maps(&self) -> &[Mapping] {
        &self.maps
    }

    /// Makes sure every address in `addrs` is in the cache (one blazesym call per file).
    pub fn resolve(&mut self, addrs: &[u64]) {
        let mut todo: Vec<u64> = addrs
            .iter()
            .copied()
            .filter(|a| !self.cache.contains_key(a))
            .collect();
        todo.sort_unstable();
        todo.dedup();
        if todo.is_empty() {
            return;
        }
        if self.kernel {
            let src = Source::Kernel(Kernel {
                vmlinux: MaybeDefault::None,
                debug_syms: false,
                ..Default::default()
            });
            let results = self
                .symbolizer
                .symbolize(&src, Input::AbsAddr(&todo))
                .unwrap_or_default();
            for (i, &addr) in todo.iter().enumerate() {
                let frame = make_frame(addr, results.get(i), None, 0);
                self.cache.insert(addr, frame);
            }
            return;
        }
        // User frames: group by mapped file, symbolize by file offset.
        let mut by_file: HashMap<PathBuf, (Vec<u64>, Vec<u64>)> = HashMap::new();
        for &addr in &todo {
            match self.maps.iter().find(|m| m.contains(addr)) {
                Some(m) => {
                    let entry = by_file.entry(m.path.clone()).or_default();
                    entry.0.push(addr);
                    entry.1.push(addr - m.start + m.offset);
                }
                None => {
                    self.cache.insert(addr, make_frame(addr, None, None, 0));
                }
            }
        }
        for (path, (addrs, offsets)) in by_file {
            let src = Source::Elf(Elf::new(&path));
            let results = self
                .symbolizer
                .symbolize(&src, Input::FileOffset(&offsets))
                .unwrap_or_default();
            for (i, (&addr, &offset)) in addrs.iter().zip(&offsets).enumerate() {
                let frame = make_frame(addr, results.get(i), Some(&path), offset);
                self.cache.insert(addr, frame);
            }
        }
    }

    /// A frame [`Symbols::resolve`] has seen.
    pub fn cached(&self, addr: u64) -> Option<&Frame> {
        self.cache.get(&addr)
    }

    /// A resolved frame (call [`Symbols::resolve`] first).
    pub fn frame(&mut self, addr: u64) -> &Frame {
        if !self.cache.contains_key(&addr) {
            self.resolve(&[addr]);
        }
        &self.cache[&addr]
    }
}

/// `file_offset`: where `addr` is in `module`'s file (a frame without a symbol, in a stripped
/// library's code that .dynsym does not name, is shown as `libfoo.so+0x1234` by it).
fn make_frame(
    addr: u64,
    sym: Option<&Symbolized>,
    module: Option<&Path>,
    file_offset: u64,
) -> Frame {
    let mut frame = Frame {
        addr: format!("{addr:#x}"),
        symbol: None,
        offset: None,
        file: None,
        line: None,
        module: module.map(crate::render::escape::path),
        text: String::new(),
    };
    // Names from the traced process (its mappings, its debug info) are escaped like argv.
    let base = module
        .and_then(|m| m.file_name())
        .map(|n| crate::render::escape::path(Path::new(n)));
    if let Some(Symbolized::Sym(sym)) = sym {
        let mut name = String::new();
        escape_into(&mut name, sym.name.as_bytes());
        let _ = write!(frame.text, "{name}+{:#x}", sym.offset);
        if let Some(info) = &sym.code_info {
            let file = crate::render::escape::path(Path::new(&info.file));
            match info.line {
                Some(line) => {
                    let _ = write!(frame.text, " ({file}:{line})");
                }
                None => {
                    let _ = write!(frame.text, " ({file})");
                }
            }
            frame.file = Some(file);
            frame.line = info.line;
        }
        frame.symbol = Some(name);
        frame.offset = Some(sym.offset as u64);
        if frame.module.is_none() {
            frame.module = sym
                .module
                .as_ref()
                .map(|m| crate::render::escape::path(Path::new(m)));
        }
    } else if let Some(base) = &base {
        let _ = write!(frame.text, "{base}+{file_offset:#x}");
        return frame;
    } else {
        let _ = write!(frame.text, "{addr:#x}");
    }
    if let Some(base) = base {
        let _ = write!(frame.text, " [{base}]");
    }
    frame
}
