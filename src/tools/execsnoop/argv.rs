//! What an exec's row shows of its arguments: the path (given, or joined from the names the
//! kernel side read for an exec by descriptor), argv[1..] (a script's own, not its
//! interpreter's), cut at --max-args, escaped, quoted with -q.

use crate::render::escape::escape_into;
use crate::skel::execsnoop::defs::{
    EXEC_ARGV0, EXEC_PATH_HEAD_CUT, EXEC_PATH_SLOTS, EXE_DEPTH, EXE_NAME,
};

/// Writes into `out` the argument bytes a row shows, and says whether some were cut: the path,
/// then argv[1..], at most `max_args` pieces in all (--max-args). With EXEC_ARGV0 (a successful
/// exec, read from the new program's argument area) argv[0] follows the path in `raw` and is
/// left out, as libbpf-tools shows an exec; with EXEC_PATH_SLOTS the path comes as names (see
/// [`write_slot_path`]). `out` is the printer's reused buffer.
pub fn shown_args(out: &mut Vec<u8>, raw: &[u8], flags: u32, max_args: usize) -> bool {
    out.clear();
    let mut rest = raw;
    if flags & EXEC_PATH_SLOTS != 0 {
        let (slots, after) = raw.split_at(raw.len().min((EXE_DEPTH * EXE_NAME) as usize));
        write_slot_path(out, slots, flags & EXEC_PATH_HEAD_CUT != 0);
        out.push(0);
        rest = after;
    }
    let mut pieces = split_args(rest);
    let mut path: &[u8] = &[];
    if flags & EXEC_PATH_SLOTS == 0 {
        if let Some(p) = pieces.next() {
            path = p;
            out.extend_from_slice(p);
            out.push(0);
        }
    }
    if flags & EXEC_ARGV0 != 0 {
        skip_argv0(&mut pieces, path);
    }
    for (i, arg) in pieces.enumerate() {
        if i + 1 >= max_args {
            return true;
        }
        out.extend_from_slice(arg);
        out.push(0);
    }
    false
}

/// Moves `pieces` past argv[0] of the new program, and past what the kernel put in front of a
/// script's own arguments: for `#!INTERP [ARG]` it runs INTERP with argv `INTERP [ARG] PATH
/// argv[1..]` (binfmt_misc does the same). Taken as a script when argv[0] is an absolute path
/// other than `path` and `path` follows it within two places, so the row shows `PATH
/// argv[1..]` as the caller passed them.
fn skip_argv0<'a>(pieces: &mut (impl Iterator<Item = &'a [u8]> + Clone), path: &[u8]) {
    let Some(argv0) = pieces.next() else { return };
    if path.is_empty() || !argv0.starts_with(b"/") || argv0 == path {
        return;
    }
    let mut ahead = pieces.clone();
    for _ in 0..2 {
        match ahead.next() {
            Some(arg) if arg == path => {
                *pieces = ahead;
                return;
            }
            Some(_) => {}
            None => return,
        }
    }
}

/// The path of a program exec'd by descriptor: EXE_DEPTH slots of EXE_NAME bytes, each a
/// NUL-terminated name, leaf first, an empty slot after the last. Joined root first, "..." in
/// front when the kernel side stopped before the root.
fn write_slot_path(out: &mut Vec<u8>, slots: &[u8], head_cut: bool) {
    let name = |slot: &[u8]| -> usize { slot.iter().position(|&b| b == 0).unwrap_or(slot.len()) };
    let chunks = slots.chunks(EXE_NAME as usize);
    let depth = chunks.clone().take_while(|slot| name(slot) > 0).count();
    if head_cut {
        out.extend_from_slice(b"...");
    }
    // Root first: the slots are leaf first. No collecting: this runs per event.
    for slot in chunks.take(depth).rev() {
        out.push(b'/');
        out.extend_from_slice(&slot[..name(slot)]);
    }
    if depth == 0 {
        out.push(b'/');
    }
}

/// The NUL-separated arguments, without the empty piece after the last NUL.
pub fn split_args(args: &[u8]) -> impl Iterator<Item = &[u8]> + Clone {
    args.strip_suffix(&[0])
        .unwrap_or(args)
        .split(|&b| b == 0)
        .filter(move |_| !args.is_empty())
}

/// Arguments as one line: space-separated, escaped, optionally quoted, "..." when cut.
pub fn render_args(out: &mut String, args: &[u8], quote: bool, truncated: bool) {
    for (i, arg) in split_args(args).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if quote {
            out.push('"');
            let start = out.len();
            escape_into(out, arg);
            if out[start..].contains('"') {
                let quoted = out[start..].replace('"', "\\\"");
                out.truncate(start);
                out.push_str(&quoted);
            }
            out.push('"');
        } else {
            escape_into(out, arg);
        }
    }
    if truncated {
        out.push_str(" ...");
    }
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(args: &[u8], quote: bool, truncated: bool) -> String {
        let mut s = String::new();
        render_args(&mut s, args, quote, truncated);
        s
    }

    #[test]
    fn args_are_joined_with_spaces() {
        assert_eq!(
            render(b"/bin/echo\0hello world\0x\0", false, false),
            "/bin/echo hello world x"
        );
    }

    #[test]
    fn quoting_escapes_inner_quotes() {
        assert_eq!(
            render(b"/bin/echo\0say \"hi\"\0", true, false),
            "\"/bin/echo\" \"say \\\"hi\\\"\""
        );
    }

    #[test]
    fn truncation_is_visible() {
        assert_eq!(render(b"/bin/true\0a\0", false, true), "/bin/true a ...");
    }

    #[test]
    fn control_bytes_in_args_are_escaped() {
        assert_eq!(
            render(b"/bin/echo\0\x1b[2J\0", false, false),
            "/bin/echo \\x1b[2J"
        );
    }

    #[test]
    fn empty_args() {
        assert_eq!(render(b"", false, false), "");
    }

    fn shown(raw: &[u8], argv0: bool, max_args: usize) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let flags = if argv0 { EXEC_ARGV0 } else { 0 };
        let cut = shown_args(&mut out, raw, flags, max_args);
        (out, cut)
    }

    #[test]
    fn a_path_from_names_is_joined_root_first() {
        let mut raw = vec![0u8; (EXE_DEPTH * EXE_NAME) as usize];
        for (i, name) in ["true", "bin", "usr"].iter().enumerate() {
            let at = i * EXE_NAME as usize;
            raw[at..at + name.len()].copy_from_slice(name.as_bytes());
        }
        raw.extend_from_slice(b"true\0a\0");
        let mut out = Vec::new();
        shown_args(&mut out, &raw, EXEC_PATH_SLOTS | EXEC_ARGV0, 20);
        assert_eq!(out, b"/usr/bin/true\0a\0");
        shown_args(
            &mut out,
            &raw,
            EXEC_PATH_SLOTS | EXEC_PATH_HEAD_CUT | EXEC_ARGV0,
            20,
        );
        assert_eq!(out, b".../usr/bin/true\0a\0");
    }

    #[test]
    fn argv0_after_the_path_is_left_out() {
        let raw = b"/bin/true\0true\0a\0\0b\0";
        assert_eq!(
            shown(raw, true, 20),
            (b"/bin/true\0a\0\0b\0".to_vec(), false)
        );
        assert_eq!(shown(raw, true, 2), (b"/bin/true\0a\0".to_vec(), true));
        assert_eq!(shown(raw, true, 1), (b"/bin/true\0".to_vec(), true));
    }

    #[test]
    fn a_script_shows_its_own_arguments_not_its_interpreter() {
        // #!/bin/sh: argv became "/bin/sh PATH a"; #!/usr/bin/env bash: "/usr/bin/env bash PATH".
        let sh = b"/x/run.sh\0/bin/sh\0/x/run.sh\0a\0";
        assert_eq!(shown(sh, true, 20), (b"/x/run.sh\0a\0".to_vec(), false));
        let env = b"/x/run\0/usr/bin/env\0bash\0/x/run\0-\0";
        assert_eq!(shown(env, true, 20), (b"/x/run\0-\0".to_vec(), false));
        // A program given its own path as an argument, argv[0] as shells set it: kept.
        let file = b"/usr/bin/file\0file\0/usr/bin/file\0";
        assert_eq!(
            shown(file, true, 20),
            (b"/usr/bin/file\0/usr/bin/file\0".to_vec(), false)
        );
    }

    #[test]
    fn args_read_at_entry_are_kept_whole() {
        let raw = b"/bin/true\0a\0b\0";
        assert_eq!(shown(raw, false, 20), (raw.to_vec(), false));
    }

    #[test]
    fn an_argument_cut_without_its_nul_is_kept() {
        assert_eq!(
            shown(b"/bin/x\0x\0abc", true, 20),
            (b"/bin/x\0abc\0".to_vec(), false)
        );
        assert_eq!(shown(b"/bin/x\0", true, 20), (b"/bin/x\0".to_vec(), false));
        assert_eq!(shown(b"", true, 20), (Vec::new(), false));
    }

    #[test]
    fn substring_filter() {
        assert!(contains(b"bash", b"as"));
        assert!(!contains(b"sh", b"bash"));
    }
}
