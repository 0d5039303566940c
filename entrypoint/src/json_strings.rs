//! Reading the two JSON shapes a typed step result holds: an array of
//! strings and an object of strings. Written by hand because serde_json's
//! deserializer would add a quarter to the size of the binary that every
//! pod carries, for two shapes this small.

use alloc::string::String;
use alloc::vec::Vec;

/// `["a", "b"]`: the elements, in order.
pub fn parse_array(text: &[u8]) -> Result<Vec<String>, String> {
    let mut reader = Reader { text, at: 0 };
    reader.expect(b'[')?;
    let mut elements = Vec::new();
    if !reader.take(b']') {
        loop {
            elements.push(reader.string()?);
            if reader.take(b']') {
                break;
            }
            reader.expect(b',')?;
        }
    }
    reader.end()?;
    Ok(elements)
}

/// `{"k": "v"}`: the members, in order (a repeated key: the last wins when
/// looked up from the end, as JSON parsers usually do).
pub fn parse_object(text: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut reader = Reader { text, at: 0 };
    reader.expect(b'{')?;
    let mut members = Vec::new();
    if !reader.take(b'}') {
        loop {
            let key = reader.string()?;
            reader.expect(b':')?;
            members.push((key, reader.string()?));
            if reader.take(b'}') {
                break;
            }
            reader.expect(b',')?;
        }
    }
    reader.end()?;
    Ok(members)
}

struct Reader<'a> {
    text: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn skip_space(&mut self) {
        while self
            .text
            .get(self.at)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.at += 1;
        }
    }

    /// Consumes `byte` (after white space) if it is next.
    fn take(&mut self, byte: u8) -> bool {
        self.skip_space();
        let found = self.text.get(self.at) == Some(&byte);
        if found {
            self.at += 1;
        }
        found
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        if self.take(byte) {
            return Ok(());
        }
        Err(format!("expected '{}' at byte {}", char::from(byte), self.at))
    }

    fn end(&mut self) -> Result<(), String> {
        self.skip_space();
        match self.at == self.text.len() {
            true => Ok(()),
            false => Err(format!("unexpected text after the value at byte {}", self.at)),
        }
    }

    fn next(&mut self) -> Result<u8, String> {
        let byte = *self.text.get(self.at).ok_or("unexpected end of the text")?;
        self.at += 1;
        Ok(byte)
    }

    /// A JSON string, unescaped; any other value is an error.
    fn string(&mut self) -> Result<String, String> {
        self.skip_space();
        if self.text.get(self.at) != Some(&b'"') {
            return Err(format!("expected a string at byte {}", self.at));
        }
        self.at += 1;
        let mut out = Vec::new();
        loop {
            match self.next()? {
                b'"' => break,
                b'\\' => self.escape(&mut out)?,
                byte if byte < 0x20 => return Err(format!("a control character in a string at byte {}", self.at - 1)),
                byte => out.push(byte),
            }
        }
        String::from_utf8(out).map_err(|_| "a string is not valid UTF-8".into())
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        let plain = match self.next()? {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let c = self.unicode_escape()?;
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                return Ok(());
            }
            _ => return Err(format!("an unknown escape at byte {}", self.at - 1)),
        };
        out.push(plain);
        Ok(())
    }

    /// `XXXX` after `\u`, with a second `\uXXXX` for a surrogate pair.
    fn unicode_escape(&mut self) -> Result<char, String> {
        let high = self.hex4()?;
        if !(0xD800..0xDC00).contains(&high) {
            return char::from_u32(high).ok_or_else(|| format!("a lone surrogate before byte {}", self.at));
        }
        if self.next()? != b'\\' || self.next()? != b'u' {
            return Err(format!("a lone surrogate before byte {}", self.at));
        }
        let low = self.hex4()?;
        if !(0xDC00..0xE000).contains(&low) {
            return Err(format!("a lone surrogate before byte {}", self.at));
        }
        char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
            .ok_or_else(|| format!("a bad surrogate pair before byte {}", self.at))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let mut value = 0;
        for _ in 0..4 {
            let digit = char::from(self.next()?)
                .to_digit(16)
                .ok_or_else(|| format!("a bad \\u escape at byte {}", self.at - 1))?;
            value = value * 16 + digit;
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn reads_what_serde_json_reads() {
        for text in [
            r#"[]"#,
            r#" [ "a" , "b c" ] "#,
            r#"["\"q\" \\ \/ \b\f\n\r\t", "\u00e9\u4e16", "\ud83d\ude80", "héllo"]"#,
        ] {
            let expected: Vec<String> = serde_json::from_str(text).expect(text);
            assert_eq!(parse_array(text.as_bytes()), Ok(expected), "{text}");
        }
        let text = r#"{ "url" : "r/a", "esc": "a\nb", "k": "x", "k": "y" }"#;
        let members = parse_object(text.as_bytes()).expect("object");
        assert_eq!(members[0], ("url".to_string(), "r/a".to_string()));
        assert_eq!(members[1].1, "a\nb");
        assert_eq!(members.len(), 4);
        assert_eq!(parse_object(b"{}"), Ok(Vec::new()));
    }

    #[test]
    fn refuses_other_shapes_saying_where() {
        for (text, needle) in [
            ("v1,v2", "expected '['"),
            ("[1]", "expected a string at byte 1"),
            ("[\"a\",]", "expected a string"),
            ("[\"a\"", "expected ','"),
            ("[\"a\"] x", "unexpected text after the value"),
            ("[\"\\x\"]", "unknown escape"),
            ("[\"\\ud800\"]", "lone surrogate"),
            ("[\"a\nb\"]", "control character"),
            ("[\"\u{1}\"]", "control character"),
            ("{\"a\": [\"b\"]}", "expected a string"),
        ] {
            let problem = match text.starts_with('{') {
                true => parse_object(text.as_bytes()).map(|_| ()),
                false => parse_array(text.as_bytes()).map(|_| ()),
            };
            let problem = problem.expect_err(text);
            assert!(problem.contains(needle), "{text}: {problem}");
        }
    }
}
