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
            write_spaced(out, items)?;
            out.push(']');
        }
        Item::Set(items) => {
            out.push_str("#{");
            write_spaced(out, items)?;
            out.push('}');
        }
        Item::Tagged(name, value) => {
            out.push('#');
            out.push_str(name);
            out.push(' ');
            write_item(out, value)?;
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

fn write_spaced(out: &mut String, items: &[Item]) -> Result<(), TranslateError> {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_item(out, item)?;
    }
    Ok(())
}

/// A float as Clojure prints a double (Java's `Double.toString`), so it reads back as a
/// float and a Clojure peer sees its own text: plain decimals with at least one fraction
/// digit from 10^-3 up to 10^7 (`1.0`, `0.001`, `1234567.5`), otherwise the shortest digits
/// in scientific form with a capital `E` (`1.0E7`, `1.5E-7`); EDN spells the non-finite
/// values `##NaN`, `##Inf`, `##-Inf`.
pub(crate) fn float_text(f: f64) -> String {
    if f.is_nan() {
        "##NaN".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { "##Inf" } else { "##-Inf" }.to_owned()
    } else if f == 0.0 || (1e-3..1e7).contains(&f.abs()) {
        // Debug prints the shortest digits that read back, always with a `.` in this range.
        format!("{f:?}")
    } else {
        // LowerExp prints the same shortest digits as `1.5e-7` or `1e7`.
        let exp = format!("{f:e}");
        let (mantissa, exponent) = exp.split_once('e').unwrap_or((&exp, "0"));
        if mantissa.contains('.') {
            format!("{mantissa}E{exponent}")
        } else {
            format!("{mantissa}.0E{exponent}")
        }
    }
}

/// A string literal as `pr-str` writes it: `\"`, `\\`, `\n`, `\t`, `\r`, `\b` and `\f`
/// escaped, every other character (other control characters too) as itself.
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
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_clojure_prints_doubles() {
        // Each pair is (value, what `(pr-str value)` prints in Clojure).
        for (f, want) in [
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (0.001, "0.001"),
            (0.1, "0.1"),
            (1_234_567.5, "1234567.5"),
            (9_999_999.0, "9999999.0"),
            (1e7, "1.0E7"),
            (-1.5e300, "-1.5E300"),
            (1e-7, "1.0E-7"),
            (0.000_999, "9.99E-4"),
            (1.234_567_8e21, "1.2345678E21"),
            (f64::MAX, "1.7976931348623157E308"),
            (f64::NAN, "##NaN"),
            (f64::INFINITY, "##Inf"),
            (f64::NEG_INFINITY, "##-Inf"),
        ] {
            assert_eq!(float_text(f), want, "{f:e}");
        }
    }

    #[test]
    fn strings_are_escaped_as_pr_str_does() {
        let mut out = String::new();
        write_string(&mut out, "a\"b\\c\nd\te\r\u{8}\u{c}\u{1}\u{7f}é😀");
        assert_eq!(out, "\"a\\\"b\\\\c\\nd\\te\\r\\b\\f\u{1}\u{7f}é😀\"");
    }
}
