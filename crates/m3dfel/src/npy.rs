//! Minimal reader and writer for NumPy `.npy` arrays of floats (C order), used for
//! `m3dfel predict --tensor` and the parity fixtures.

use std::path::Path;

/// A float array read from an `.npy` file.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// Why an `.npy` file could not be used; the message names the file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct NpyError {
    pub path: String,
    pub reason: String,
}

const MAGIC: &[u8] = b"\x93NUMPY";

impl NpyArray {
    /// Reads a little-endian `float32` or `float64` array (widened to f32).
    pub fn read(path: impl AsRef<Path>) -> Result<Self, NpyError> {
        let path = path.as_ref();
        let fail = |reason: String| NpyError { path: path.display().to_string(), reason };
        let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read the file: {e}")))?;
        Self::parse(&bytes).map_err(fail)
    }

    /// Parses the bytes of an `.npy` file.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        if !bytes.starts_with(MAGIC) || bytes.len() < 10 {
            return Err("not a NumPy .npy file (missing the \\x93NUMPY signature)".into());
        }
        let (header_len, header_start) = match bytes[6] {
            1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
            2 | 3 if bytes.len() >= 12 => {
                (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
            }
            v => return Err(format!("unsupported .npy format version {v}")),
        };
        let header = bytes
            .get(header_start..header_start + header_len)
            .ok_or("the .npy header is truncated")?;
        let header = std::str::from_utf8(header).map_err(|_| "the .npy header is not text")?;
        let descr = dict_value(header, "descr").ok_or("the .npy header has no 'descr'")?;
        let fortran = dict_value(header, "fortran_order").ok_or("the .npy header has no 'fortran_order'")?;
        if fortran.starts_with("True") {
            return Err("Fortran-ordered arrays are not supported; save with np.ascontiguousarray".into());
        }
        let shape = parse_shape(header)?;
        let data = &bytes[header_start + header_len..];
        let element = |size: usize| {
            // A shape whose size does not even fit in a number is data no file holds.
            let needed = shape.iter().try_fold(size, |n, &d| n.checked_mul(d));
            match needed {
                Some(needed) if needed <= data.len() => Ok(&data[..needed]),
                _ => Err(format!(
                    "the data is truncated: shape {shape:?} needs {} bytes, the file has {}",
                    needed.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string()),
                    data.len()
                )),
            }
        };
        let values = match descr.trim_matches(|c| c == '\'' || c == '"') {
            "<f4" => element(4)?
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            "<f8" => element(8)?
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                .collect(),
            other => return Err(format!("element type {other} is not supported; use float32")),
        };
        Ok(Self { shape, values })
    }

    /// Writes a little-endian `float32` array.
    pub fn write(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        let shape = match self.shape.as_slice() {
            [one] => format!("({one},)"),
            dims => format!("({})", dims.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
        };
        let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
        // Pad so that the data starts on a 64-byte boundary, ending with a newline.
        let unpadded = MAGIC.len() + 4 + header.len() + 1;
        header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
        header.push('\n');
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[1, 0]);
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend(self.values.iter().flat_map(|v| v.to_le_bytes()));
        std::fs::write(path, bytes)
    }
}

/// The text after `'key':` in a Python dict literal, up to the next comma at depth 0.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let start = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[start..].trim_start().strip_prefix(':')?.trim_start();
    let mut depth = 0usize;
    let end = rest
        .char_indices()
        .find(|&(_, c)| {
            match c {
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                _ => {}
            }
            depth == 0 && (c == ',' || c == '}')
        })
        .map_or(rest.len(), |(i, _)| i);
    Some(rest[..end].trim())
}

fn parse_shape(header: &str) -> Result<Vec<usize>, String> {
    let rest = dict_value(header, "shape").ok_or("the .npy header has no 'shape'")?;
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or("the .npy shape is not a tuple")?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| format!("bad dimension '{s}' in the .npy shape")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_array_reads_back_identically() {
        let dir = std::env::temp_dir().join(format!("m3dfel-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.npy");
        let array = NpyArray { shape: vec![2, 3], values: vec![0.5, -1.0, 2.0, 3.5, 1e-7, 7.0] };
        array.write(&path).unwrap();
        assert_eq!(NpyArray::read(&path).unwrap(), array);
    }

    #[test]
    fn truncated_data_is_reported_with_the_sizes() {
        let array = NpyArray { shape: vec![4], values: vec![1.0; 4] };
        let path = std::env::temp_dir().join(format!("m3dfel-npy-trunc-{}.npy", std::process::id()));
        array.write(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let err = NpyArray::parse(&bytes[..bytes.len() - 3]).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
        assert!(NpyArray::parse(b"hello world").unwrap_err().contains("signature"));
    }
}
