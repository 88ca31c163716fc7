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
        ObjectWriter {
            buf: b"{".to_vec(),
            empty: true,
        }
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
        String::from_utf8(self.finish()).unwrap_or_default()
    }
}

/// Serialize `value` onto `buf`. Serializing JSON values and strings into memory cannot fail.
fn write_value(buf: &mut Vec<u8>, value: &(impl serde::Serialize + ?Sized)) {
    let _ = serde_json::to_writer(&mut *buf, value);
}

/// Serialize a value to a string through serde_json's writer (faster than `Display`).
pub(crate) fn to_json(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// `{"desired":…,"reported":…}` from optional sections.
pub(crate) fn sections(
    desired: Option<&impl serde::Serialize>,
    reported: Option<&impl serde::Serialize>,
) -> Vec<u8> {
    let mut w = ObjectWriter::new();
    w.optional("desired", desired)
        .optional("reported", reported);
    w.finish()
}
