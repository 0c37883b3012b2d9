//! [`Item`] to EDN text, in the layout Clojure's `pr-str` uses (`{:a 1, :b "x"}`, `[1 2]`),
//! so sente-lite peers and their logs see what they would have written themselves.

use core::fmt::Write as _;

use super::TranslateError;
use super::item::{Item, base64_encode, is_keyword_name, uuid_text};

/// Prints a tree (already depth-bounded) as one EDN form.
pub(crate) fn to_edn(item: &Item) -> Result<String, TranslateError> {
    let mut out = String::new();
    write_item(&mut out, item)?;
    Ok(out)
}

fn write_item(out: &mut String, item: &Item) -> Result<(), TranslateError> {
    match item {
        Item::Null => out.push_str("nil"),
        Item::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Item::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Item::Float(f) => out.push_str(&float_text(*f)),
        Item::Text(s) => write_string(out, s),
        Item::Keyword(name) => {
            if !is_keyword_name(name) {
                return Err(TranslateError::InvalidKeyword(name.clone()));
            }
            out.push(':');
            out.push_str(name);
        }
        Item::Bytes(b) => {
            out.push_str("#sentelite/bytes ");
            write_string(out, &base64_encode(b));
        }
        Item::Inst(s) => {
            out.push_str("#inst ");
            write_string(out, s);
        }
        Item::Uuid(b) => {
            out.push_str("#uuid ");
            write_string(out, &uuid_text(b));
        }
        Item::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_item(out, item)?;
            }
            out.push(']');
        }
        Item::Map(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_item(out, k)?;
                out.push(' ');
                write_item(out, v)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// A float that reads back as a float: Rust's `Debug` form always carries a `.` or an
/// exponent (`1.0`, `1e21`), and EDN spells the non-finite values `##NaN`, `##Inf`, `##-Inf`.
pub(crate) fn float_text(f: f64) -> String {
    if f.is_nan() {
        "##NaN".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { "##Inf" } else { "##-Inf" }.to_owned()
    } else {
        format!("{f:?}")
    }
}

/// A string literal with the escapes every EDN reader knows; other control characters as
/// `\uXXXX`, which Clojure and ClojureScript read.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_control() && u32::from(c) < 0x100 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_stay_floats() {
        assert_eq!(float_text(1.0), "1.0");
        assert_eq!(float_text(-0.0), "-0.0");
        assert_eq!(float_text(1.5e300), "1.5e300");
        assert_eq!(float_text(1e-7), "1e-7");
        assert_eq!(float_text(f64::NAN), "##NaN");
        assert_eq!(float_text(f64::NEG_INFINITY), "##-Inf");
    }

    #[test]
    fn strings_are_escaped() {
        let mut out = String::new();
        write_string(&mut out, "a\"b\\c\nd\te\r\u{8}\u{c}\u{1}\u{7f}é");
        assert_eq!(out, r#""a\"b\\c\nd\te\r\b\f\u0001\u007fé""#);
    }
}
