//! Base64 (RFC 4648's standard alphabet): scripts reach `init` encoded,
//! and a registry login's `auth` in config.json is encoded.

use alloc::string::String;
use alloc::vec::Vec;

/// Standard base64 (RFC 4648 alphabet), padded.
pub fn encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 (RFC 4648 alphabet), padding optional, ASCII whitespace
/// ignored (line-wrapped encoders).
pub fn decode(input: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut padding = 0;
    for (i, c) in input.bytes().enumerate() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                padding += 1;
                continue;
            }
            c if c.is_ascii_whitespace() => continue,
            _ => {
                return Err(format!("unexpected character {:?} at offset {i}", c as char));
            }
        };
        if padding > 0 {
            return Err(format!("data after padding at offset {i}"));
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // A lone trailing 6-bit group cannot encode a byte; more than two '='
    // is never valid.
    if bits >= 6 || padding > 2 {
        return Err("truncated input".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_with_padding_as_the_standard_says() {
        assert_eq!(encode(b""), "");
        assert_eq!(encode(b"a"), "YQ==");
        assert_eq!(encode(b"ab"), "YWI=");
        assert_eq!(encode(b"abc"), "YWJj");
        assert_eq!(encode(b"user:pass"), "dXNlcjpwYXNz");
    }

    #[test]
    fn decodes_padded_unpadded_and_wrapped_text() {
        assert_eq!(decode("").unwrap_or_default(), b"");
        assert_eq!(decode("Zg==").as_deref(), Ok(&b"f"[..]));
        assert_eq!(decode("Zm8=").as_deref(), Ok(&b"fo"[..]));
        assert_eq!(decode("Zm9v").as_deref(), Ok(&b"foo"[..]));
        assert_eq!(decode("Zm9vYg").as_deref(), Ok(&b"foob"[..]));
        assert_eq!(decode("Zm9v\nYmFy").as_deref(), Ok(&b"foobar"[..]));
        assert_eq!(
            decode("ZWNobyAiJChWQVIpIiDDqQo=").as_deref(),
            Ok("echo \"$(VAR)\" é\n".as_bytes())
        );
        assert!(decode("Zm9v!").is_err());
        assert!(decode("Zg==Zg").is_err());
        assert!(decode("Z").is_err());
    }
}
