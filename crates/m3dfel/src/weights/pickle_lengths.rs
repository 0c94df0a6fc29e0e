//! A check of a PyTorch file's length fields before burn-store reads it.
//!
//! burn-store's readers size their buffers from the lengths a file states (a pickle string's
//! length, a zip entry's size) and only then read, so a damaged length makes them ask for
//! gigabytes, and the process aborts: fuzzing found a 41 KB `.pth` that asked for 808 MB
//! (`scripts/fuzz.sh`, target `weights`). Here every such length is compared with the bytes
//! that really follow it, without interpreting the pickle: its opcodes are only walked
//! (Python's `pickletools.genops` does the same), which needs each opcode's argument format.

use std::io::Read;

/// How an opcode's argument is laid out (pickle protocols 0–5).
enum Argument {
    None,
    Fixed(usize),
    /// Text up to a newline; `GLOBAL` and `INST` have two such lines.
    Lines(usize),
    /// A little-endian length of this many bytes, then that many bytes.
    Counted(usize),
}

fn argument(opcode: u8) -> Option<Argument> {
    use Argument::*;
    Some(match opcode {
        b'(' | b'.' | b'0' | b'1' | b'2' | b'a' | b'b' | b'd' | b'}' | b'e' | b'l' | b']' | b'o' | b'R' | b's'
        | b't' | b')' | b'u' | b'N' | b'Q' => None,
        0x81 | 0x85 | 0x86 | 0x87 | 0x88 | 0x89 | 0x8f | 0x90 | 0x91 | 0x92 | 0x93 | 0x94 | 0x97 | 0x98 => None,
        b'K' | b'h' | b'q' | 0x82 | 0x80 => Fixed(1),
        b'M' | 0x83 => Fixed(2),
        b'J' | b'j' | b'r' | 0x84 => Fixed(4),
        b'G' | 0x95 => Fixed(8),
        b'I' | b'L' | b'S' | b'V' | b'F' | b'g' | b'p' | b'P' => Lines(1),
        b'c' | b'i' => Lines(2),
        b'U' | 0x8c | b'C' | 0x8a => Counted(1),
        b'T' | b'X' | b'B' | 0x8b => Counted(4),
        0x8d | 0x8e | 0x96 => Counted(8),
        _ => return Option::None,
    })
}

/// PROTO 2, then LONG1 of 10 bytes holding PyTorch's legacy magic number 0x1950a86a20f9469cfc6c.
const LEGACY_MAGIC: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";

/// Walks one pickle starting at `start` up to its `STOP`; returns the offset after it.
fn walk(bytes: &[u8], start: usize) -> Result<usize, String> {
    let mut at = start;
    loop {
        let Some(&opcode) = bytes.get(at) else {
            return Err(format!("the pickle starting at byte {start} ends without its STOP opcode"));
        };
        let argument = argument(opcode).ok_or_else(|| format!("unknown pickle opcode 0x{opcode:02x} at byte {at}"))?;
        at += 1;
        let rest = bytes.len() - at;
        let skip = match argument {
            Argument::None => 0,
            Argument::Fixed(n) => n,
            Argument::Lines(lines) => {
                let mut end = at;
                for _ in 0..lines {
                    let newline = bytes[end..].iter().position(|&b| b == b'\n').ok_or_else(|| {
                        format!("the text argument of opcode 0x{opcode:02x} at byte {} has no end", at - 1)
                    })?;
                    end += newline + 1;
                }
                end - at
            }
            Argument::Counted(width) => {
                let field = bytes.get(at..at + width).ok_or("the pickle ends inside a length field")?;
                let mut little_endian = [0u8; 8];
                little_endian[..width].copy_from_slice(field);
                let length = u64::from_le_bytes(little_endian);
                // 4-byte lengths of BINSTRING and LONG4 are signed.
                let negative = width == 4 && matches!(opcode, b'T' | 0x8b) && length >= 1 << 31;
                if negative || length > (rest - width) as u64 {
                    return Err(format!(
                        "opcode 0x{opcode:02x} at byte {} states {length} bytes, but {} follow",
                        at - 1,
                        rest - width
                    ));
                }
                width + length as usize
            }
        };
        if skip > rest {
            return Err(format!("the pickle ends inside the argument of opcode 0x{opcode:02x} at byte {}", at - 1));
        }
        at += skip;
        if opcode == b'.' {
            return Ok(at);
        }
    }
}

/// Checks the length fields of a PyTorch file: every zip entry's size and every pickle
/// length against the bytes that are there. The error says what is wrong.
pub(super) fn check(bytes: &[u8]) -> Result<(), String> {
    if bytes.starts_with(b"PK\x03\x04") {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| format!("not a readable zip archive: {e}"))?;
        for index in 0..archive.len() {
            let mut entry = archive.by_index(index).map_err(|e| format!("zip entry {index}: {e}"))?;
            // PyTorch stores its entries uncompressed, so none can be larger than the file.
            if entry.size() > bytes.len() as u64 {
                return Err(format!("zip entry `{}` states {} bytes, more than the whole file", entry.name(), entry.size()));
            }
            if entry.name().ends_with(".pkl") {
                let mut pickle = Vec::new();
                entry.read_to_end(&mut pickle).map_err(|e| format!("zip entry `{}`: {e}", entry.name()))?;
                walk(&pickle, 0).map_err(|e| format!("`{}`: {e}", entry.name()))?;
            }
        }
        return Ok(());
    }
    // PyTorch's legacy format is five pickles (magic number, protocol, system information,
    // the object, its storage keys) followed by the storages' raw bytes, and starts with its
    // magic number as a pickled LONG1; a plain pickle is one.
    let pickles = if bytes.starts_with(LEGACY_MAGIC) { 5 } else { 1 };
    let mut at = 0;
    for _ in 0..pickles {
        at = walk(bytes, at)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_that_fit_pass_and_one_past_the_end_is_named() {
        // PROTO 2, SHORT_BINUNICODE "ab", BINUNICODE "xyz", TUPLE2, STOP.
        let good = b"\x80\x02\x8c\x02abX\x03\x00\x00\x00xyz\x86.";
        assert_eq!(walk(good, 0), Ok(good.len()));
        assert!(check(good).is_ok());
        // The same with BINUNICODE claiming 0x30000000 bytes (what burn-store would allocate).
        let long = b"\x80\x02\x8c\x02abX\x00\x00\x00\x30xyz\x86.";
        let error = check(long).unwrap_err();
        assert!(error.contains("805306368 bytes, but 5 follow"), "{error}");
        assert!(check(b"\x80\x02\xff.").unwrap_err().contains("unknown pickle opcode 0xff"));
        assert!(check(b"\x80\x02N").unwrap_err().contains("without its STOP"));
    }
}
