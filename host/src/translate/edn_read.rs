//! A reader for the EDN subset sente-lite peers write (see the module docs of
//! [`super`]), producing an [`Item`] tree. Recursive descent with an explicit depth bound;
//! every failure is an [`EdnErrorKind`] with its position.

use super::item::{
    CBOR_INT_MAX, CBOR_INT_MIN, Item, TagFault, first_duplicate, is_keyword_name, is_reader_char,
    tagged,
};
use super::{EdnErrorKind, MAX_DEPTH, TranslateError};

/// Reads exactly one form from `text`.
pub(crate) fn parse(text: &str) -> Result<Item, TranslateError> {
    let mut reader = Reader { text, pos: 0 };
    reader.document().map_err(|fail| match fail {
        Fail::At(pos, kind) => locate(text, pos, kind),
        Fail::TooDeep => TranslateError::TooDeep { limit: MAX_DEPTH },
    })
}

/// Failures inside the reader: a kind at a byte offset, or the depth limit.
enum Fail {
    At(usize, EdnErrorKind),
    TooDeep,
}

type Read<T> = Result<T, Fail>;

struct Reader<'a> {
    text: &'a str,
    /// Byte offset; always on a char boundary because it only stops before ASCII bytes or
    /// advances by whole chars.
    pos: usize,
}

impl<'a> Reader<'a> {
    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.text.as_bytes().get(self.pos + ahead).copied()
    }

    fn fail<T>(&self, kind: EdnErrorKind) -> Read<T> {
        Err(Fail::At(self.pos, kind))
    }

    /// The whole input: one form between optional space.
    fn document(&mut self) -> Read<Item> {
        self.skip_space(0)?;
        if self.at_end() {
            return self.fail(EdnErrorKind::Empty);
        }
        let item = self.form(0)?;
        self.skip_space(0)?;
        if !self.at_end() {
            return self.fail(EdnErrorKind::TrailingInput);
        }
        Ok(item)
    }

    /// Skips whitespace, commas, `;` comments and `#_` discarded forms.
    fn skip_space(&mut self, depth: usize) -> Read<()> {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | b',' => self.pos += 1,
                b';' => {
                    let rest = &self.text.as_bytes()[self.pos..];
                    self.pos += rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
                }
                b'#' if self.peek_at(1) == Some(b'_') => {
                    self.pos += 2;
                    let depth = deeper(depth)?;
                    self.skip_space(depth)?;
                    if self.at_end() {
                        return self.fail(EdnErrorKind::UnexpectedEnd);
                    }
                    self.form(depth)?;
                }
                _ => break,
            }
        }
        Ok(())
    }

    /// One form; the caller has skipped space and checked there is input left.
    fn form(&mut self, depth: usize) -> Read<Item> {
        let Some(b) = self.peek() else {
            return self.fail(EdnErrorKind::UnexpectedEnd);
        };
        match b {
            b'(' => self.sequence(b')', depth).map(Item::Array),
            b'[' => self.sequence(b']', depth).map(Item::Array),
            b'{' => self.map(depth),
            b')' | b']' | b'}' => self.fail(EdnErrorKind::UnmatchedDelimiter(char::from(b))),
            b'"' => self.string().map(Item::Text),
            b':' => self.keyword(),
            b'\\' => self.character(),
            b'#' => self.dispatch(depth),
            b'^' => self.fail(EdnErrorKind::Unsupported("metadata")),
            b'\'' | b'`' | b'~' | b'@' => self.fail(EdnErrorKind::Unsupported("a reader macro")),
            _ => self.token_form(),
        }
    }

    /// The forms up to `close`, which must follow; `self` is at the opening delimiter.
    fn sequence(&mut self, close: u8, depth: usize) -> Read<Vec<Item>> {
        let depth = deeper(depth)?;
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_space(depth)?;
            match self.peek() {
                None => return self.fail(EdnErrorKind::UnexpectedEnd),
                Some(b) if b == close => {
                    self.pos += 1;
                    return Ok(items);
                }
                Some(_) => items.push(self.form(depth)?),
            }
        }
    }

    fn map(&mut self, depth: usize) -> Read<Item> {
        let at = self.pos;
        let entries = self.map_entries(depth)?;
        self.distinct_map(at, entries)
    }

    /// A map's entries, keys not yet checked for repeats (a namespaced map checks after
    /// expanding them).
    fn map_entries(&mut self, depth: usize) -> Read<Vec<(Item, Item)>> {
        let start = self.pos;
        let forms = self.sequence(b'}', depth)?;
        if forms.len() % 2 != 0 {
            return Err(Fail::At(start, EdnErrorKind::OddMap));
        }
        let mut entries = Vec::with_capacity(forms.len() / 2);
        let mut forms = forms.into_iter();
        while let (Some(k), Some(v)) = (forms.next(), forms.next()) {
            entries.push((k, v));
        }
        Ok(entries)
    }

    /// `entries` as a map, refusing a repeated key the way Clojure's reader does.
    fn distinct_map(&self, at: usize, entries: Vec<(Item, Item)>) -> Read<Item> {
        match first_duplicate(entries.iter().map(|(k, _)| k)) {
            Some(i) => Err(Fail::At(
                at,
                EdnErrorKind::DuplicateMapKey(shown(&entries[i].0)),
            )),
            None => Ok(Item::Map(entries)),
        }
    }

    /// `#{…}`; `self` is at the `#`.
    fn set(&mut self, depth: usize) -> Read<Item> {
        let at = self.pos;
        self.pos += 1;
        let items = self.sequence(b'}', depth)?;
        match first_duplicate(&items) {
            Some(i) => Err(Fail::At(
                at,
                EdnErrorKind::DuplicateSetElement(shown(&items[i])),
            )),
            None => Ok(Item::Set(items)),
        }
    }

    /// A string literal; `self` is at the opening quote.
    fn string(&mut self) -> Read<String> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.pos..];
            let Some(special) = rest.find(['"', '\\']) else {
                self.pos = start;
                return self.fail(EdnErrorKind::UnexpectedEnd);
            };
            out.push_str(&rest[..special]);
            self.pos += special;
            if self.peek() == Some(b'"') {
                self.pos += 1;
                return Ok(out);
            }
            out.push(self.escape()?);
        }
    }

    /// One escape inside a string; `self` is at the backslash.
    fn escape(&mut self) -> Read<char> {
        let at = self.pos;
        let Some(code) = self.peek_at(1) else {
            return self.fail(EdnErrorKind::UnexpectedEnd);
        };
        self.pos += 2;
        let c = match code {
            b'"' => '"',
            b'\\' => '\\',
            b'n' => '\n',
            b't' => '\t',
            b'r' => '\r',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'u' => return self.unicode_escape(at),
            b'0'..=b'7' => {
                self.pos -= 1;
                return self.octal_escape(at);
            }
            _ => {
                let shown: String = self.text[at..].chars().take(2).collect();
                return Err(Fail::At(at, EdnErrorKind::InvalidEscape(shown)));
            }
        };
        Ok(c)
    }

    /// `\uXXXX`, joining a UTF-16 surrogate pair written as two escapes.
    fn unicode_escape(&mut self, at: usize) -> Read<char> {
        let invalid = |r: &Self| {
            let shown = r.text[at..].chars().take(6).collect();
            Err(Fail::At(at, EdnErrorKind::InvalidEscape(shown)))
        };
        let Some(unit) = self.hex4() else {
            return invalid(self);
        };
        if (0xd800..0xdc00).contains(&unit) && self.text[self.pos..].starts_with("\\u") {
            self.pos += 2;
            if let Some(low) = self.hex4().filter(|l| (0xdc00..0xe000).contains(l)) {
                let code = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
                if let Some(c) = char::from_u32(code) {
                    return Ok(c);
                }
            }
            return invalid(self);
        }
        char::from_u32(unit).map_or_else(|| invalid(self), Ok)
    }

    /// `\0` … `\377`: one to three octal digits, as Clojure's reader takes them.
    fn octal_escape(&mut self, at: usize) -> Read<char> {
        let rest = &self.text.as_bytes()[self.pos..];
        let len = rest
            .iter()
            .take(3)
            .take_while(|b| matches!(b, b'0'..=b'7'))
            .count();
        let digits = &self.text[self.pos..self.pos + len];
        self.pos += len;
        match u32::from_str_radix(digits, 8) {
            Ok(code) if code <= 0o377 => char::from_u32(code).map_or_else(
                || {
                    Err(Fail::At(
                        at,
                        EdnErrorKind::InvalidEscape(format!("\\{digits}")),
                    ))
                },
                Ok,
            ),
            _ => Err(Fail::At(
                at,
                EdnErrorKind::InvalidEscape(format!("\\{digits}")),
            )),
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.get(self.pos..self.pos + 4)?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.pos += 4;
        u32::from_str_radix(digits, 16).ok()
    }

    /// Characters up to the next delimiter (whitespace or reader syntax).
    fn token(&mut self) -> &'a str {
        let start = self.pos;
        let rest = &self.text[start..];
        let len = rest
            .find(|c: char| c.is_whitespace() || is_reader_char(c))
            .unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    fn keyword(&mut self) -> Read<Item> {
        let at = self.pos;
        self.pos += 1;
        let name = self.token().to_owned();
        if !is_keyword_name(&name) {
            return Err(Fail::At(
                at,
                EdnErrorKind::InvalidKeyword(format!(":{name}")),
            ));
        }
        Ok(Item::Keyword(name))
    }

    /// `\c`, `\newline`, `\uXXXX` …, read as one-character text.
    fn character(&mut self) -> Read<Item> {
        let at = self.pos;
        self.pos += 1;
        let Some(first) = self.text[self.pos..].chars().next() else {
            return self.fail(EdnErrorKind::UnexpectedEnd);
        };
        self.pos += first.len_utf8();
        let rest = self.token();
        let name = format!("{first}{rest}");
        let c = match name.as_str() {
            _ if rest.is_empty() => Some(first),
            "newline" => Some('\n'),
            "space" => Some(' '),
            "tab" => Some('\t'),
            "return" => Some('\r'),
            "backspace" => Some('\u{8}'),
            "formfeed" => Some('\u{c}'),
            _ if first == 'u' && rest.len() == 4 => {
                u32::from_str_radix(rest, 16).ok().and_then(char::from_u32)
            }
            _ if first == 'o' && (1..=3).contains(&rest.len()) => u32::from_str_radix(rest, 8)
                .ok()
                .filter(|&c| c <= 0o377)
                .and_then(char::from_u32),
            _ => None,
        };
        c.map(|c| Item::Text(c.to_string())).ok_or(Fail::At(
            at,
            EdnErrorKind::InvalidCharacter(format!("\\{name}")),
        ))
    }

    /// Everything after `#`.
    fn dispatch(&mut self, depth: usize) -> Read<Item> {
        let at = self.pos;
        match self.peek_at(1) {
            Some(b'{') => self.set(depth),
            Some(b'#') => {
                self.pos += 2;
                match self.token() {
                    "Inf" => Ok(Item::Float(f64::INFINITY)),
                    "-Inf" => Ok(Item::Float(f64::NEG_INFINITY)),
                    "NaN" => Ok(Item::Float(f64::NAN)),
                    other => {
                        let detail = format!("##{other}");
                        Err(Fail::At(at, EdnErrorKind::InvalidNumber(detail)))
                    }
                }
            }
            Some(b':') => self.namespaced_map(depth),
            Some(b'"') => self.fail(EdnErrorKind::Unsupported("a regex literal")),
            Some(b'(') => self.fail(EdnErrorKind::Unsupported("an anonymous function")),
            Some(b'\'') => self.fail(EdnErrorKind::Unsupported("a var quote")),
            Some(b'?') => self.fail(EdnErrorKind::Unsupported("a reader conditional")),
            Some(b'=') => self.fail(EdnErrorKind::Unsupported("an eval reader")),
            None => self.fail(EdnErrorKind::UnexpectedEnd),
            Some(_) => self.tagged(depth),
        }
    }

    /// `#tag form`: the tags the model knows become their items, any other is kept as a
    /// tagged literal (see [`tagged`]).
    fn tagged(&mut self, depth: usize) -> Read<Item> {
        let at = self.pos;
        self.pos += 1;
        let tag = self.token().to_owned();
        if tag.is_empty() {
            return Err(Fail::At(at, EdnErrorKind::Unsupported("a lone #")));
        }
        // The tags the model reads as scalars take a string and are no level of nesting, as
        // in CBOR (tags 0 and 37, a byte string); any other tagged literal is one level.
        let scalar = matches!(tag.as_str(), "inst" | "uuid" | "sentelite/bytes");
        let depth = if scalar { depth } else { deeper(depth)? };
        self.skip_space(depth)?;
        if self.at_end() {
            return self.fail(EdnErrorKind::UnexpectedEnd);
        }
        if scalar && self.peek() != Some(b'"') {
            let detail = "expected a string".to_owned();
            return Err(Fail::At(at, EdnErrorKind::InvalidTagged { tag, detail }));
        }
        let value = self.form(depth)?;
        tagged(tag.clone(), value).map_err(|fault| match fault {
            TagFault::Name => Fail::At(at, EdnErrorKind::UnsupportedTag(tag)),
            TagFault::Value(detail) => Fail::At(at, EdnErrorKind::InvalidTagged { tag, detail }),
        })
    }

    /// `#:ns{:a 1, :_/b 2}` = `{:ns/a 1, :b 2}`, as Clojure prints maps whose keys share a
    /// namespace when `*print-namespace-maps*` is on.
    fn namespaced_map(&mut self, depth: usize) -> Read<Item> {
        let at = self.pos;
        self.pos += 2;
        let ns = self.token().to_owned();
        if ns.is_empty() || ns.starts_with(':') || ns.contains('/') {
            return Err(Fail::At(
                at,
                EdnErrorKind::Unsupported("an auto-resolved map"),
            ));
        }
        self.skip_space(depth)?;
        if self.peek() != Some(b'{') {
            return self.fail(EdnErrorKind::Unsupported(
                "a namespace map prefix without a map",
            ));
        }
        let entries = self
            .map_entries(depth)?
            .into_iter()
            .map(|(k, v)| {
                let k = match k {
                    Item::Keyword(name) if name.starts_with("_/") => {
                        Item::Keyword(name[2..].to_owned())
                    }
                    Item::Keyword(name) if !name.contains('/') => {
                        Item::Keyword(format!("{ns}/{name}"))
                    }
                    other => other,
                };
                (k, v)
            })
            .collect();
        self.distinct_map(at, entries)
    }

    /// A number, `nil`, `true`, `false` or a symbol (read as text).
    fn token_form(&mut self) -> Read<Item> {
        let at = self.pos;
        let token = self.token();
        if token.is_empty() {
            let c = self.text[at..].chars().next().unwrap_or('?');
            return Err(Fail::At(at, EdnErrorKind::InvalidCharacter(c.to_string())));
        }
        let bytes = token.as_bytes();
        let numeric = bytes[0].is_ascii_digit()
            || (matches!(bytes[0], b'+' | b'-') && bytes.get(1).is_some_and(u8::is_ascii_digit));
        if numeric {
            return number(token).map_err(|kind| Fail::At(at, kind));
        }
        Ok(match token {
            "nil" => Item::Null,
            "true" => Item::Bool(true),
            "false" => Item::Bool(false),
            symbol if is_keyword_name(symbol) => Item::Text(symbol.to_owned()),
            symbol => {
                return Err(Fail::At(at, EdnErrorKind::InvalidSymbol(symbol.to_owned())));
            }
        })
    }
}

/// Integers (optional `N`), floats (optional `M`) and ratios (as doubles).
fn number(token: &str) -> Result<Item, EdnErrorKind> {
    let invalid = || EdnErrorKind::InvalidNumber(token.to_owned());
    if let Some((num, den)) = token.split_once('/') {
        let num = integer(num).ok_or_else(invalid)?;
        let den = integer(den).filter(|d| *d > 0).ok_or_else(invalid)?;
        return Ok(Item::Float(num as f64 / den as f64));
    }
    let is_float = token.contains(['.', 'e', 'E']) || token.ends_with('M');
    if is_float {
        let body = token.strip_suffix('M').unwrap_or(token);
        let digits_only = body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
        if !digits_only {
            return Err(invalid());
        }
        return body.parse::<f64>().map(Item::Float).map_err(|_| invalid());
    }
    let body = token.strip_suffix('N').unwrap_or(token);
    let digits = body.trim_start_matches(['+', '-']);
    if digits.len() > 1 && digits.starts_with('0') {
        // Clojure would read this as octal; no EDN writer produces it.
        return Err(invalid());
    }
    match integer(body) {
        Some(n) if (CBOR_INT_MIN..=CBOR_INT_MAX).contains(&n) => Ok(Item::Int(n)),
        Some(_) => Err(EdnErrorKind::IntegerOutOfRange(token.to_owned())),
        None if body.bytes().skip(1).all(|b| b.is_ascii_digit()) => {
            Err(EdnErrorKind::IntegerOutOfRange(token.to_owned()))
        }
        None => Err(invalid()),
    }
}

/// A decimal integer with an optional sign, if it fits an i128.
fn integer(text: &str) -> Option<i128> {
    let digits = text.trim_start_matches(['+', '-']);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// An item for an error message: its EDN text (its debug form when it has none), cut short
/// so a message stays readable however large the repeated element is.
fn shown(item: &Item) -> String {
    const LIMIT: usize = 80;
    let text = super::edn_write::to_edn(item).unwrap_or_else(|_| format!("{item:?}"));
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

fn deeper(depth: usize) -> Read<usize> {
    if depth >= MAX_DEPTH {
        return Err(Fail::TooDeep);
    }
    Ok(depth + 1)
}

/// The public error for `kind` at byte `pos`, with a 1-based line and column.
fn locate(text: &str, pos: usize, kind: EdnErrorKind) -> TranslateError {
    let before = text.get(..pos).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    TranslateError::Edn {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
        kind,
    }
}
