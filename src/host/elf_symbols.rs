//! The one reader of ELF files for the tools that attach uprobes: which functions a program or
//! library defines and where each starts in the file (what a uprobe is attached at), whether it
//! still has its full symbol table, and which program interpreter it names. uprobe-lat lists,
//! globs and attaches with it; kmemleak-lite finds the allocator with it.
//!
//! Built on the `object` crate's ELF layer (no DWARF) over a memory map of the file, so only the
//! pages of the headers and the symbol and string tables are read.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use object::elf::{FileHeader64, SHT_DYNSYM, SHT_NOBITS, SHT_SYMTAB, STT_FUNC};
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader, Sym};
use object::Endianness;

/// A function defined in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    pub name: String,
    /// Virtual address, as in the symbol table.
    pub addr: u64,
    pub size: u64,
    /// Offset of the first instruction in the file: what a uprobe is attached at (the same for
    /// PIE and non-PIE files: it does not depend on where the file is loaded).
    pub offset: u64,
}

/// What one ELF file says about itself.
#[derive(Debug, Default)]
pub struct Elf {
    /// Sorted by name, one entry per name (.symtab preferred over .dynsym). Only plain
    /// functions (STT_FUNC): an IFUNC symbol names the resolver that picks the real function
    /// once, at load time, so a probe on it would never fire.
    pub functions: Vec<Function>,
    /// False when the file is stripped: only its exported (.dynsym) functions are known.
    pub has_symtab: bool,
    /// The program interpreter (PT_INTERP) of a dynamically linked executable; None for a
    /// static executable and for most libraries (glibc's libc.so.6, which runs, has one).
    pub interpreter: Option<PathBuf>,
}

impl Elf {
    /// The function of that exact name.
    pub fn get(&self, name: &str) -> Option<&Function> {
        self.functions
            .binary_search_by(|f| f.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.functions[i])
    }
}

/// ELF's EI_DATA of this machine's byte order (1 little-endian, 2 big-endian, as on s390x): a
/// program of the other order does not run here, so it has nothing to probe.
const NATIVE_EI_DATA: u8 = if cfg!(target_endian = "little") { 1 } else { 2 };
const NATIVE_ORDER: &str = if cfg!(target_endian = "little") {
    "little-endian"
} else {
    "big-endian"
};

/// Reads the functions and the interpreter of the 64-bit ELF file at `path`, of this machine's
/// byte order.
pub fn read(path: &Path) -> Result<Elf> {
    let shown = crate::render::escape::path(path);
    let file = File::open(path).with_context(|| format!("cannot open {shown}"))?;
    // The identification first, read plainly: files that cannot be mapped (procfs) are not ELF.
    let mut ident = [0u8; 16];
    if file.read_exact_at(&mut ident, 0).is_err() || &ident[..4] != b"\x7fELF" {
        bail!("{shown} is not an ELF binary or library");
    }
    if ident[4] != 2 || ident[5] != NATIVE_EI_DATA {
        bail!("{shown} is not a 64-bit {NATIVE_ORDER} ELF file: only those run, and can be probed, here");
    }
    // SAFETY: the map is only read, and dropped before this function returns. A file truncated
    // meanwhile could fault (as it would for the dynamic loader or for blazesym, which maps
    // files the same way); binaries are replaced by rename, which leaves this mapping whole.
    let map =
        unsafe { memmap2::Mmap::map(&file) }.with_context(|| format!("cannot read {shown}"))?;
    let data: &[u8] = &map;
    parse(data).with_context(|| format!("{shown}: malformed ELF file"))
}

fn parse(data: &[u8]) -> object::read::Result<Elf> {
    let header = FileHeader64::<Endianness>::parse(data)?;
    let endian = header.endian()?;
    let sections = header.sections(endian, data)?;
    let mut by_name: HashMap<&[u8], Function> = HashMap::new();
    let mut has_symtab = false;
    // .symtab last, so its entries replace .dynsym's.
    for kind in [SHT_DYNSYM, SHT_SYMTAB] {
        for (index, table) in sections.enumerate() {
            if table.sh_type(endian) != kind {
                continue;
            }
            has_symtab |= kind == SHT_SYMTAB;
            let Some(symbols) = table.symbols(endian, data, &sections, index)? else {
                continue;
            };
            for (i, sym) in symbols.enumerate() {
                let value = sym.st_value(endian);
                if sym.st_type() != STT_FUNC || value == 0 {
                    continue;
                }
                // Undefined (imported) and absolute symbols have no section: nothing to probe.
                let Some(sec) = symbols
                    .symbol_section(endian, sym, i)
                    .ok()
                    .flatten()
                    .and_then(|s| sections.section(s).ok())
                else {
                    continue;
                };
                let sec_addr = sec.sh_addr(endian);
                if sec.sh_type(endian) == SHT_NOBITS || value < sec_addr {
                    continue;
                }
                let name = symbols.symbol_name(endian, sym).unwrap_or_default();
                if name.is_empty() {
                    continue;
                }
                by_name.insert(
                    name,
                    Function {
                        name: String::from_utf8_lossy(name).into_owned(),
                        addr: value,
                        size: sym.st_size(endian),
                        offset: value - sec_addr + sec.sh_offset(endian),
                    },
                );
            }
        }
    }
    let mut functions: Vec<Function> = by_name.into_values().collect();
    functions.sort_by(|a, b| a.name.cmp(&b.name));

    let mut interpreter = None;
    for segment in header.program_headers(endian, data)? {
        if let Some(interp) = segment.interpreter(endian, data)? {
            interpreter = Some(PathBuf::from(std::ffi::OsStr::from_bytes(interp)));
        }
    }
    Ok(Elf {
        functions,
        has_symtab,
        interpreter,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This marker is in the test binary's own symbol table.
    #[no_mangle]
    #[inline(never)]
    pub extern "C" fn coretrace_elf_test_marker() -> u32 {
        std::hint::black_box(7)
    }

    #[test]
    fn finds_own_function_at_its_file_offset() {
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let elf = read(&exe).unwrap();
        assert!(elf.has_symtab);
        let f = elf.get("coretrace_elf_test_marker").expect("marker symbol");
        // The bytes at the file offset are the bytes the function runs.
        let code = std::fs::read(&exe).unwrap();
        let at = f.offset as usize;
        // SAFETY: the marker function's first bytes (at most its size) are mapped code of this test binary.
        let running: &[u8] = unsafe {
            std::slice::from_raw_parts(
                coretrace_elf_test_marker as *const u8,
                8.min(f.size as usize),
            )
        };
        assert_eq!(&code[at..at + running.len()], running);
    }

    /// The libc this test maps (every Linux test host has one).
    fn own_libc() -> PathBuf {
        crate::host::proc_maps::files(&crate::host::proc_maps::read(std::process::id()).unwrap())
            .into_iter()
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("libc.so"))
            })
            .expect("the test maps a libc")
    }

    #[test]
    fn libc_exports_malloc_but_not_its_ifuncs() {
        let libc = read(&own_libc()).unwrap();
        assert!(libc.get("malloc").is_some());
        // glibc picks strlen's implementation at load time: its symbol is an IFUNC resolver.
        assert!(libc.get("strlen").is_none());
    }

    #[test]
    fn the_interpreter_of_a_dynamic_executable_is_read() {
        let elf = read(&std::env::current_exe().unwrap()).unwrap();
        let interp = elf.interpreter.expect("the test binary is dynamic");
        assert!(interp.is_absolute() && interp.exists(), "{interp:?}");
    }

    #[test]
    fn not_elf_is_one_line() {
        let err = read(Path::new("/proc/self/status")).unwrap_err();
        assert!(format!("{err:#}").contains("not an ELF"), "{err:#}");
        assert!(!format!("{err:#}").contains('\n'));
    }
}
