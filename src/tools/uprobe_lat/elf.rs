//! The function symbols of an ELF file (.symtab and .dynsym) and where each one starts in the
//! file: all uprobe-lat needs to list, glob and attach. Reads only the headers and the symbol and
//! string tables, not the whole file; no DWARF.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{bail, Context, Result};

const SHT_SYMTAB: u32 = 2;
const SHT_NOBITS: u32 = 8;
const SHT_DYNSYM: u32 = 11;
const STT_FUNC: u8 = 2;
const SHN_LORESERVE: u16 = 0xff00;
/// Symbol and string tables past this size are not a real binary's.
const MAX_TABLE: u64 = 1 << 30;

/// A function defined in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    pub name: String,
    /// Virtual address, as in the symbol table.
    pub addr: u64,
    pub size: u64,
    /// Offset of the first instruction in the file: what a uprobe is attached at.
    pub offset: u64,
}

/// What the file offers to trace.
#[derive(Debug, Default)]
pub struct Functions {
    /// Sorted by name, one entry per name (.symtab preferred over .dynsym).
    pub list: Vec<Function>,
    /// False when the file is stripped: only its exported (.dynsym) functions are known.
    pub has_symtab: bool,
}

impl Functions {
    pub fn get(&self, name: &str) -> Option<&Function> {
        self.list
            .binary_search_by(|f| f.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.list[i])
    }
}

#[derive(Clone, Copy, Debug)]
struct Section {
    kind: u32,
    addr: u64,
    offset: u64,
    size: u64,
    link: u32,
    entsize: u64,
}

/// Reads the function symbols of the 64-bit little-endian ELF file at `path`.
pub fn functions(path: &Path) -> Result<Functions> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut ident = [0u8; 64];
    file.read_exact_at(&mut ident, 0)
        .map_err(|_| anyhow::anyhow!("{} is not an ELF binary or library", path.display()))?;
    if &ident[..4] != b"\x7fELF" {
        bail!("{} is not an ELF binary or library", path.display());
    }
    if ident[4] != 2 || ident[5] != 1 {
        bail!(
            "{} is not a 64-bit little-endian ELF file: uprobe-lat reads only those",
            path.display()
        );
    }
    let shoff = u64le(&ident, 0x28);
    let shentsize = u16le(&ident, 0x3a) as u64;
    let mut shnum = u16le(&ident, 0x3c) as u64;
    if shoff == 0 {
        bail!("{} has no section headers", path.display());
    }
    if shentsize < 64 {
        bail!("{}: malformed ELF section headers", path.display());
    }
    let read_section = |i: u64| -> Result<Section> {
        let mut sh = [0u8; 64];
        file.read_exact_at(&mut sh, shoff + i * shentsize)
            .with_context(|| format!("{}: truncated ELF section headers", path.display()))?;
        Ok(Section {
            kind: u32le(&sh, 4),
            addr: u64le(&sh, 16),
            offset: u64le(&sh, 24),
            size: u64le(&sh, 32),
            link: u32le(&sh, 40),
            entsize: u64le(&sh, 56),
        })
    };
    if shnum == 0 {
        // More than 0xff00 sections: the real count is in section 0.
        shnum = read_section(0)?.size;
    }
    if shnum > 1 << 20 {
        bail!("{}: malformed ELF section headers", path.display());
    }
    let sections: Vec<Section> = (0..shnum).map(read_section).collect::<Result<_>>()?;

    let mut by_name: HashMap<String, Function> = HashMap::new();
    let mut has_symtab = false;
    // .symtab last, so its entries replace .dynsym's.
    for kind in [SHT_DYNSYM, SHT_SYMTAB] {
        for table in sections.iter().filter(|s| s.kind == kind) {
            if kind == SHT_SYMTAB {
                has_symtab = true;
            }
            read_table(&file, path, table, &sections, &mut by_name)?;
        }
    }
    let mut list: Vec<Function> = by_name.into_values().collect();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Functions { list, has_symtab })
}

fn read_table(
    file: &File,
    path: &Path,
    table: &Section,
    sections: &[Section],
    out: &mut HashMap<String, Function>,
) -> Result<()> {
    let strtab = sections
        .get(table.link as usize)
        .with_context(|| format!("{}: symbol table without strings", path.display()))?;
    if table.size > MAX_TABLE || strtab.size > MAX_TABLE || table.entsize < 24 {
        bail!("{}: malformed ELF symbol table", path.display());
    }
    let syms = read_at(file, table.offset, table.size, path)?;
    let strings = read_at(file, strtab.offset, strtab.size, path)?;
    for sym in syms.chunks_exact(table.entsize as usize) {
        let info = sym[4];
        let shndx = u16le(sym, 6);
        let value = u64le(sym, 8);
        if info & 0xf != STT_FUNC || shndx == 0 || shndx >= SHN_LORESERVE || value == 0 {
            continue;
        }
        let Some(sec) = sections.get(shndx as usize) else {
            continue;
        };
        if sec.kind == SHT_NOBITS || value < sec.addr {
            continue;
        }
        let name = cstr_at(&strings, u32le(sym, 0) as usize);
        if name.is_empty() {
            continue;
        }
        let name = String::from_utf8_lossy(name).into_owned();
        out.insert(
            name.clone(),
            Function {
                name,
                addr: value,
                size: u64le(sym, 16),
                offset: value - sec.addr + sec.offset,
            },
        );
    }
    Ok(())
}

fn read_at(file: &File, offset: u64, size: u64, path: &Path) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; size as usize];
    file.read_exact_at(&mut buf, offset)
        .with_context(|| format!("{}: truncated ELF file", path.display()))?;
    Ok(buf)
}

fn cstr_at(strings: &[u8], at: usize) -> &[u8] {
    let rest = strings.get(at..).unwrap_or_default();
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    &rest[..end]
}

fn u16le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}
fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64le(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
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
        let funcs = functions(&exe).unwrap();
        assert!(funcs.has_symtab);
        let f = funcs
            .get("coretrace_elf_test_marker")
            .expect("marker symbol");
        // The bytes at the file offset are the bytes the function runs.
        let code = std::fs::read(&exe).unwrap();
        let at = f.offset as usize;
        let running: &[u8] = unsafe {
            std::slice::from_raw_parts(
                coretrace_elf_test_marker as *const u8,
                8.min(f.size as usize),
            )
        };
        assert_eq!(&code[at..at + running.len()], running);
    }

    #[test]
    fn libc_exports_malloc() {
        let Some(libc) = ["/lib/x86_64-linux-gnu/libc.so.6", "/lib64/libc.so.6"]
            .iter()
            .map(Path::new)
            .find(|p| p.exists())
        else {
            return;
        };
        let funcs = functions(libc).unwrap();
        assert!(funcs.get("malloc").is_some());
    }

    #[test]
    fn not_elf_is_one_line() {
        let err = functions(Path::new("/proc/self/status")).unwrap_err();
        assert!(format!("{err:#}").contains("not an ELF"), "{err:#}");
    }
}
