//! Writing JSON objects field by field straight from borrowed values, so answers are serialized
//! without first cloning documents into new `Value` trees.

use serde_json::Value;

/// Builds one JSON object in a byte buffer.
pub(crate) struct ObjectWriter {
    buf: Vec<u8>,
    empty: bool,
}

impl ObjectWriter {
    pub(crate) fn new() -> ObjectWriter {
        ObjectWriter::with_capacity(64)
    }

    /// A writer whose buffer starts with room for `capacity` bytes.
    pub(crate) fn with_capacity(capacity: usize) -> ObjectWriter {
        let mut buf = Vec::with_capacity(capacity);
        buf.push(b'{');
        ObjectWriter { buf, empty: true }
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.buf.push(b',');
        }
        self.empty = false;
        write_value(&mut self.buf, key);
        self.buf.push(b':');
    }

    /// Add `key: value`.
    pub(crate) fn field(
        &mut self,
        key: &str,
        value: &(impl serde::Serialize + ?Sized),
    ) -> &mut Self {
        self.key(key);
        write_value(&mut self.buf, value);
        self
    }

    /// Add `key: json` where `json` is already serialized.
    pub(crate) fn raw(&mut self, key: &str, json: &[u8]) -> &mut Self {
        self.key(key);
        self.buf.extend_from_slice(json);
        self
    }

    /// Add `key: value` if there is a value.
    pub(crate) fn optional(
        &mut self,
        key: &str,
        value: Option<&(impl serde::Serialize + ?Sized)>,
    ) -> &mut Self {
        if let Some(value) = value {
            self.field(key, value);
        }
        self
    }

    /// The finished object's bytes.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.buf.push(b'}');
        self.buf
    }

    /// The finished object as a string.
    pub(crate) fn finish_string(self) -> String {
        into_string(self.finish())
    }
}

/// Serialize `value` onto `buf`. Serializing JSON values and strings into memory cannot fail.
pub(crate) fn write_value(buf: &mut Vec<u8>, value: &(impl serde::Serialize + ?Sized)) {
    let _ = serde_json::to_writer(&mut *buf, value);
}

/// Append `text` as a JSON string, escaped exactly as serde_json escapes it.
pub(crate) fn write_str(buf: &mut Vec<u8>, text: &str) {
    if is_plain(text.as_bytes()) {
        buf.reserve(text.len() + 2);
        buf.push(b'"');
        buf.extend_from_slice(text.as_bytes());
        buf.push(b'"');
    } else {
        write_value(buf, text);
    }
}

/// Whether `text` has no byte JSON escapes (a control character, `"` or `\`), checked eight
/// bytes at a time. It may answer `false` for a plain text, never `true` for one that is not
/// (then serde_json writes it, escaping what it must).
fn is_plain(text: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Some byte is below `n` (for `n` up to 0x80).
    let below = |word: u64, n: u64| word.wrapping_sub(ONES * n) & !word & HIGH != 0;
    let escaped = |word: u64| {
        below(word, 0x20)
            || below(word ^ (ONES * u64::from(b'"')), 1)
            || below(word ^ (ONES * u64::from(b'\\')), 1)
    };
    let mut chunks = text.chunks_exact(8);
    for chunk in &mut chunks {
        match <[u8; 8]>::try_from(chunk) {
            Ok(bytes) if !escaped(u64::from_le_bytes(bytes)) => {}
            _ => return false,
        }
    }
    let rest = chunks.remainder();
    let mut last = [b'a'; 8];
    match last.get_mut(..rest.len()) {
        Some(head) => head.copy_from_slice(rest),
        None => return false,
    }
    !escaped(u64::from_le_bytes(last))
}

/// Append `"key":`.
pub(crate) fn write_key(buf: &mut Vec<u8>, key: &str) {
    write_str(buf, key);
    buf.push(b':');
}

/// Writes metadata leaves, `{"timestamp":T}`, keeping the text of the last `T` (most leaves of a
/// document share a few timestamps).
#[derive(Debug, Default)]
pub(crate) struct TimestampText {
    last: Option<u64>,
    text: Vec<u8>,
}

impl TimestampText {
    /// Append `{"timestamp":T}`.
    pub(crate) fn write_leaf(&mut self, buf: &mut Vec<u8>, timestamp: u64) {
        if self.last != Some(timestamp) {
            self.text.clear();
            self.text.extend_from_slice(b"{\"timestamp\":");
            write_value(&mut self.text, &timestamp);
            self.text.push(b'}');
            self.last = Some(timestamp);
        }
        buf.extend_from_slice(&self.text);
    }
}

/// JSON text this crate wrote as a `String`: it is UTF-8 by construction (serde_json's output and
/// ASCII punctuation), so the check never fails.
pub(crate) fn into_string(json: Vec<u8>) -> String {
    String::from_utf8(json).unwrap_or_default()
}

/// Serialize a value to a string through serde_json's writer (faster than `Display`).
pub(crate) fn to_json(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        for text in [
            "",
            "a",
            "plain key",
            "quote\"",
            "back\\slash",
            "tab\t",
            "\u{1f}",
            "\u{7f}é✓",
            "exactly8",
            "sixteen-bytes-ok",
        ] {
            let mut buf = Vec::new();
            write_str(&mut buf, text);
            assert_eq!(
                buf,
                serde_json::to_vec(text).unwrap_or_default(),
                "{text:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn the_word_check_agrees_with_a_byte_check(text in "(.|[\\x00-\\x20\"\\\\]){0,40}") {
            let by_byte = text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
            prop_assert_eq!(is_plain(text.as_bytes()), by_byte);
        }
    }
}
