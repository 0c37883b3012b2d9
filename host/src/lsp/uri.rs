//! URI remapping between the client's virtual root (`source://`, say) and the server's
//! `file://` root.
//!
//! Instead of a list of fields (`uri`, `targetUri`, `rootUri`, `scopeUri`, the keys of a
//! `WorkspaceEdit`'s `changes`, links inside hover markdown …), every string and object key
//! in a message is rewritten where it holds the root, so fields a list would miss are
//! covered too. Only document text is left alone (`text`, `newText`, `insertText`): source
//! code that happens to contain the root's spelling must reach the server unchanged.

use serde_json::{Map, Value};

/// Keys whose string values are document content, never rewritten.
const CONTENT_KEYS: [&str; 3] = ["text", "newText", "insertText"];

/// A pair of roots; each ends in `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriMap {
    client: String,
    server: String,
}

/// Which way a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Editor to language server: client root → server root.
    ToServer,
    /// Language server to editor: server root → client root.
    ToClient,
}

impl UriMap {
    /// Maps `client` (a virtual root like `source://` or `source:///proj`) onto `server`
    /// (a `file://` URI). Both are given a trailing `/` if they lack one, so `file:///a`
    /// does not match `file:///ab`. `source://` already ends in one.
    pub fn new(client: &str, server: &str) -> Self {
        Self {
            client: with_slash(client),
            server: with_slash(server),
        }
    }

    /// The client's root.
    pub fn client_root(&self) -> &str {
        &self.client
    }

    /// The server's root.
    pub fn server_root(&self) -> &str {
        &self.server
    }

    /// One URI, or any text, rewritten.
    pub fn map_str(&self, text: &str, direction: Direction) -> Option<String> {
        let (from, to) = self.pair(direction);
        // The root without its slash is the root itself (`rootUri` is often sent bare).
        if text == from.trim_end_matches('/') {
            return Some(to.to_owned());
        }
        text.contains(from).then(|| text.replace(from, to))
    }

    /// Rewrites every string and key of `value` in place.
    pub fn map_value(&self, value: &mut Value, direction: Direction) {
        let mut stack = vec![value];
        while let Some(value) = stack.pop() {
            match value {
                Value::String(s) => {
                    if let Some(mapped) = self.map_str(s, direction) {
                        *s = mapped;
                    }
                }
                Value::Array(items) => stack.extend(items.iter_mut()),
                Value::Object(map) => {
                    self.map_keys(map, direction);
                    for (key, item) in map.iter_mut() {
                        if !(CONTENT_KEYS.contains(&key.as_str()) && item.is_string()) {
                            stack.push(item);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn map_keys(&self, map: &mut Map<String, Value>, direction: Direction) {
        let (from, _) = self.pair(direction);
        if !map.keys().any(|k| k.contains(from)) {
            return;
        }
        let old = std::mem::take(map);
        for (key, item) in old {
            let key = self.map_str(&key, direction).unwrap_or(key);
            map.insert(key, item);
        }
    }

    fn pair(&self, direction: Direction) -> (&str, &str) {
        match direction {
            Direction::ToServer => (&self.client, &self.server),
            Direction::ToClient => (&self.server, &self.client),
        }
    }
}

fn with_slash(root: &str) -> String {
    if root.ends_with('/') {
        root.to_owned()
    } else {
        format!("{root}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_uri_field_and_key_is_mapped_but_not_document_text() {
        let map = UriMap::new("source://", "file:///srv/p");
        let mut msg = json!({
            "textDocument": {"uri": "source://a.py", "text": "x = 'source://a.py'"},
            "rootUri": "source://",
            "edit": {"changes": {"source://b.py": [{"newText": "source://"}]}},
            "targetUri": "source://c.py",
        });
        map.map_value(&mut msg, Direction::ToServer);
        assert_eq!(
            msg,
            json!({
                "textDocument": {"uri": "file:///srv/p/a.py", "text": "x = 'source://a.py'"},
                "rootUri": "file:///srv/p/",
                "edit": {"changes": {"file:///srv/p/b.py": [{"newText": "source://"}]}},
                "targetUri": "file:///srv/p/c.py",
            })
        );
        let mut back = json!({"uri": "file:///srv/p/a.py", "value": "see [a](file:///srv/p/a.py#L1)", "root": "file:///srv/p", "other": "file:///srv/pq"});
        map.map_value(&mut back, Direction::ToClient);
        assert_eq!(
            back,
            json!({"uri": "source://a.py", "value": "see [a](source://a.py#L1)", "root": "source://", "other": "file:///srv/pq"})
        );
    }
}
