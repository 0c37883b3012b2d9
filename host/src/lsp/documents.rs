//! The documents an editor has open in a session, with their current text, so that a
//! session whose editor reconnects can open them in the server afresh (`didClose` +
//! `didOpen`), which makes the server publish their diagnostics again.
//!
//! Text follows `didOpen`, `didChange` (whole-document and ranged changes) and `didClose`.
//! Positions are UTF-16 code units, LSP's default; a position past a line's end is clamped
//! to it, as the specification asks. A change that cannot be applied marks the document's
//! text unknown, and it is then not replayed rather than replayed wrong.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// One open document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The language id the editor gave.
    pub language_id: String,
    /// The editor's version number.
    pub version: i64,
    /// The text, `None` once a change could not be followed.
    pub text: Option<String>,
}

/// Open documents by URI (in the server's URI space).
#[derive(Debug, Default)]
pub struct Documents {
    open: BTreeMap<String, Document>,
}

impl Documents {
    /// Whether `uri` is open.
    pub fn is_open(&self, uri: &str) -> bool {
        self.open.contains_key(uri)
    }

    /// The open URIs.
    pub fn uris(&self) -> impl Iterator<Item = &str> {
        self.open.keys().map(String::as_str)
    }

    /// Follows one notification from the editor (others are ignored).
    pub fn observe(&mut self, method: &str, params: &Value) {
        let doc = &params["textDocument"];
        let Some(uri) = doc["uri"].as_str() else {
            return;
        };
        match method {
            "textDocument/didOpen" => {
                self.open.insert(
                    uri.to_owned(),
                    Document {
                        language_id: doc["languageId"].as_str().unwrap_or("").to_owned(),
                        version: doc["version"].as_i64().unwrap_or(0),
                        text: doc["text"].as_str().map(str::to_owned),
                    },
                );
            }
            "textDocument/didChange" => {
                let Some(open) = self.open.get_mut(uri) else {
                    return;
                };
                if let Some(version) = doc["version"].as_i64() {
                    open.version = version;
                }
                let changes = params["contentChanges"].as_array();
                for change in changes.into_iter().flatten() {
                    open.text = open.text.take().and_then(|text| apply(text, change));
                }
            }
            "textDocument/didClose" => {
                self.open.remove(uri);
            }
            _ => {}
        }
    }

    /// `didClose` + `didOpen` params for every document whose text is known.
    pub fn replay(&self) -> Vec<(Value, Value)> {
        self.open
            .iter()
            .filter_map(|(uri, doc)| {
                let text = doc.text.as_ref()?;
                Some((
                    json!({"textDocument": {"uri": uri}}),
                    json!({"textDocument": {
                        "uri": uri,
                        "languageId": doc.language_id,
                        "version": doc.version,
                        "text": text,
                    }}),
                ))
            })
            .collect()
    }
}

/// Applies one `TextDocumentContentChangeEvent`.
fn apply(mut text: String, change: &Value) -> Option<String> {
    let new_text = change["text"].as_str()?;
    let range = &change["range"];
    if range.is_null() {
        return Some(new_text.to_owned());
    }
    let start = offset(&text, &range["start"])?;
    let end = offset(&text, &range["end"])?;
    if start > end {
        return None;
    }
    text.replace_range(start..end, new_text);
    Some(text)
}

/// The byte offset of an LSP position (line, UTF-16 character) in `text`.
fn offset(text: &str, position: &Value) -> Option<usize> {
    let line = usize::try_from(position["line"].as_u64()?).ok()?;
    let character = usize::try_from(position["character"].as_u64()?).ok()?;
    let mut line_start = 0;
    for _ in 0..line {
        match text[line_start..].find('\n') {
            Some(i) => line_start += i + 1,
            // Past the last line: the end of the document.
            None => return Some(text.len()),
        }
    }
    let rest = &text[line_start..];
    let line_end = rest.find(['\r', '\n']).unwrap_or(rest.len());
    let mut units = 0;
    for (i, c) in rest[..line_end].char_indices() {
        if units >= character {
            return Some(line_start + i);
        }
        units += c.len_utf16();
    }
    Some(line_start + line_end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_follow_utf16_positions_and_clamp() {
        let mut docs = Documents::default();
        let uri = "file:///a.py";
        docs.observe(
            "textDocument/didOpen",
            &json!({"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": "a𝄞b\nxyz\n"}}),
        );
        docs.observe(
            "textDocument/didChange",
            &json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [
                {"range": {"start": {"line": 0, "character": 3}, "end": {"line": 0, "character": 4}}, "text": "B"},
                {"range": {"start": {"line": 1, "character": 1}, "end": {"line": 1, "character": 99}}, "text": "!"},
            ]}),
        );
        let replay = docs.replay();
        assert_eq!(replay[0].1["textDocument"]["text"], "a𝄞B\nx!\n");
        assert_eq!(replay[0].1["textDocument"]["version"], 2);
        docs.observe(
            "textDocument/didChange",
            &json!({"textDocument": {"uri": uri, "version": 3}, "contentChanges": [{"text": "whole"}]}),
        );
        assert_eq!(docs.replay()[0].1["textDocument"]["text"], "whole");
        docs.observe(
            "textDocument/didClose",
            &json!({"textDocument": {"uri": uri}}),
        );
        assert!(docs.replay().is_empty());
    }
}
