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
    // No early exit: keys are short, and a branch-free scan is cheaper than one per byte.
    let plain = !text.bytes().fold(false, |escape, b| {
        escape | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if plain {
        buf.reserve(text.len() + 2);
        buf.push(b'"');
        buf.extend_from_slice(text.as_bytes());
        buf.push(b'"');
    } else {
        write_value(buf, text);
    }
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
