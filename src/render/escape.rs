//! Text from traced processes (argv, comm, paths) is untrusted: a process must not be able to
//! send terminal escape sequences to the user's screen through us. Everything such text passes
//! through here before it is printed.

use std::fmt::Write;

/// Appends `bytes` to `out`: printable text as it is; control characters (C0, DEL, C1) and bytes
/// that are not valid UTF-8 as `\xNN`; the backslash itself as `\\`, so that every printed
/// string maps back to exactly one byte string (a literal `\x1b` in argv is not an ESC byte).
pub fn escape_into(out: &mut String, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid();
        if !valid.chars().any(|c| c.is_control() || c == '\\') {
            out.push_str(valid);
        } else {
            for c in valid.chars() {
                if c == '\\' {
                    out.push_str("\\\\");
                } else if c.is_control() {
                    let mut utf8 = [0u8; 4];
                    for b in c.encode_utf8(&mut utf8).bytes() {
                        push_hex(out, b);
                    }
                } else {
                    out.push(c);
                }
            }
        }
        for &b in chunk.invalid() {
            push_hex(out, b);
        }
    }
}

/// The escaped form of `bytes` as a new string.
pub fn escaped(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    escape_into(&mut s, bytes);
    s
}

/// A path as printed: file names come from traced processes too (/proc/PID/maps), and a name
/// the user typed must not break a one-line error either.
pub fn path(path: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    escaped(path.as_os_str().as_bytes())
}

/// A C `char`: i8 in the BPF skeletons' types (BPF's char is signed) and in libc's on x86-64,
/// u8 in libc's on arm64 (`libc::c_char`). Sealed: only these two.
pub trait CChar: Copy + sealed::OneByte {}
impl CChar for i8 {}
impl CChar for u8 {}
mod sealed {
    pub trait OneByte {}
    impl OneByte for i8 {}
    impl OneByte for u8 {}
}

/// The bytes of a fixed-size, NUL-padded C string (a `comm`), up to the first NUL.
pub fn c_str_bytes<T: CChar>(raw: &[T]) -> &[u8] {
    // SAFETY: T is i8 or u8 (CChar is sealed): one byte, alignment 1, any bit pattern valid.
    let bytes: &[u8] = unsafe { std::slice::from_raw_parts(raw.as_ptr().cast(), raw.len()) };
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

fn push_hex(out: &mut String, b: u8) {
    let _ = write!(out, "\\x{b:02x}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(escaped(b"ls -l /tmp"), "ls -l /tmp");
        assert_eq!(escaped("grüße".as_bytes()), "grüße");
    }

    #[test]
    fn control_bytes_are_escaped() {
        assert_eq!(escaped(b"\x1b[31mred\x1b[0m"), "\\x1b[31mred\\x1b[0m");
        assert_eq!(escaped(b"a\nb\tc\x7f"), "a\\x0ab\\x09c\\x7f");
        // U+009B is CSI on terminals that honour C1 controls.
        assert_eq!(escaped("x\u{9b}2J".as_bytes()), "x\\xc2\\x9b2J");
    }

    #[test]
    fn backslash_is_escaped_so_output_maps_back_to_one_byte_string() {
        assert_eq!(escaped(b"a\\b"), "a\\\\b");
        // The four characters `\x1b` and the ESC byte print differently.
        assert_eq!(escaped(b"\\x1b"), "\\\\x1b");
        assert_eq!(escaped(b"\x1b"), "\\x1b");
        assert_ne!(escaped(b"\\x1b"), escaped(b"\x1b"));
    }

    #[test]
    fn invalid_utf8_is_escaped() {
        assert_eq!(escaped(b"a\xffb"), "a\\xffb");
    }

    #[test]
    fn comm_stops_at_nul() {
        let raw: [i8; 6] = [
            b'b' as i8, b'a' as i8, b's' as i8, b'h' as i8, 0, b'x' as i8,
        ];
        assert_eq!(c_str_bytes(&raw), b"bash");
    }
}
