//! PromQL templates: `{{namespace}}`, `{{pipeline}}`, `{{revision}}` and `{{color}}` in a metric's
//! query become the values of the run, escaped for the PromQL string they stand in.
//!
//! A template is parsed once, when the spec is compiled, so an unknown placeholder or one that
//! stands outside a quoted string is reported against the field before any query runs. Values
//! are Kubernetes names and hashes today; escaping them anyway keeps a query from ever being
//! reshaped by a value.

use std::fmt::Write as _;

use crate::api::Color;

/// The placeholders a query may use, in the order the error message lists them.
pub const PLACEHOLDERS: [&str; 4] = ["namespace", "pipeline", "revision", "color"];

/// What the placeholders stand for in one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vars<'a> {
    pub namespace: &'a str,
    pub pipeline: &'a str,
    pub revision: &'a str,
    pub color: Color,
}

impl Vars<'_> {
    fn get(&self, var: Var) -> &str {
        match var {
            Var::Namespace => self.namespace,
            Var::Pipeline => self.pipeline,
            Var::Revision => self.revision,
            Var::Color => self.color.as_str(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Var {
    Namespace,
    Pipeline,
    Revision,
    Color,
}

impl Var {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "namespace" => Some(Var::Namespace),
            "pipeline" => Some(Var::Pipeline),
            "revision" => Some(Var::Revision),
            "color" => Some(Var::Color),
            _ => None,
        }
    }
}

/// The PromQL string a placeholder stands in: `"…"`, `'…'` or the raw `` `…` ``.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Quote {
    Double,
    Single,
    Raw,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Text(String),
    Value(Var, Quote),
}

/// Why a template cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "unknown placeholder {}: a query can use {{{{namespace}}}}, {{{{pipeline}}}}, \
         {{{{revision}}}} and {{{{color}}}}",
        .0.iter().map(|n| format!("{{{{{n}}}}}")).collect::<Vec<_>>().join(", ")
    )]
    Unknown(Vec<String>),
    #[error(
        "placeholder {{{{{0}}}}} stands outside a quoted string; write it inside one, for \
         example label=\"{{{{{0}}}}}\""
    )]
    Unquoted(String),
    #[error("a placeholder opened with {{{{ is not closed with }}}}")]
    Unterminated,
    #[error("placeholder {{{{{name}}}}} is {value:?}, which a raw `…` string cannot hold")]
    NotRaw { name: &'static str, value: String },
}

/// A parsed query template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
}

impl Template {
    /// Parses `source`, checking every placeholder is known and quoted.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let mut parser = Parser::default();
        let mut rest = source;
        while let Some(c) = rest.chars().next() {
            if let Some(after) = rest.strip_prefix("{{") {
                let end = after.find("}}").ok_or(TemplateError::Unterminated)?;
                parser.placeholder(after[..end].trim());
                rest = &after[end + 2..];
            } else {
                parser.char(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        parser.finish()
    }

    /// The query with the run's values in place.
    pub fn render(&self, vars: &Vars<'_>) -> Result<String, TemplateError> {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.push_str(text),
                Segment::Value(var, quote) => escape_into(&mut out, vars.get(*var), *quote)
                    .map_err(|value| TemplateError::NotRaw {
                        name: PLACEHOLDERS[*var as usize],
                        value,
                    })?,
            }
        }
        Ok(out)
    }
}

/// Walks the template, tracking which string (or comment) each character is in.
#[derive(Default)]
struct Parser {
    segments: Vec<Segment>,
    text: String,
    quote: Option<Quote>,
    escaped: bool,
    comment: bool,
    unknown: Vec<String>,
    unquoted: Option<String>,
}

impl Parser {
    fn char(&mut self, c: char) {
        self.text.push(c);
        if self.comment {
            self.comment = c != '\n';
            return;
        }
        if self.escaped {
            self.escaped = false;
            return;
        }
        self.quote = match (self.quote, c) {
            (None, '"') => Some(Quote::Double),
            (None, '\'') => Some(Quote::Single),
            (None, '`') => Some(Quote::Raw),
            (None, '#') => {
                self.comment = true;
                None
            }
            (Some(Quote::Double), '"') | (Some(Quote::Single), '\'') | (Some(Quote::Raw), '`') => {
                None
            }
            (Some(q @ (Quote::Double | Quote::Single)), '\\') => {
                self.escaped = true;
                Some(q)
            }
            (q, _) => q,
        };
    }

    fn placeholder(&mut self, name: &str) {
        let Some(var) = Var::parse(name) else {
            self.unknown.push(name.to_string());
            return;
        };
        match self.quote.filter(|_| !self.comment) {
            Some(quote) => {
                self.segments
                    .push(Segment::Text(std::mem::take(&mut self.text)));
                self.segments.push(Segment::Value(var, quote));
            }
            None => {
                self.unquoted.get_or_insert_with(|| name.to_string());
            }
        }
    }

    fn finish(mut self) -> Result<Template, TemplateError> {
        if !self.unknown.is_empty() {
            return Err(TemplateError::Unknown(self.unknown));
        }
        if let Some(name) = self.unquoted {
            return Err(TemplateError::Unquoted(name));
        }
        if !self.text.is_empty() {
            self.segments.push(Segment::Text(self.text));
        }
        Ok(Template {
            segments: self.segments,
        })
    }
}

/// Appends `value` escaped for a PromQL string opened by `quote`; a raw string has no escapes, so
/// a value with a backtick is refused (returned).
fn escape_into(out: &mut String, value: &str, quote: Quote) -> Result<(), String> {
    let delimiter = match quote {
        Quote::Double => '"',
        Quote::Single => '\'',
        Quote::Raw if value.contains('`') => return Err(value.to_string()),
        Quote::Raw => {
            out.push_str(value);
            return Ok(());
        }
    };
    for c in value.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '\n' => out.push_str(r"\n"),
            '\r' => out.push_str(r"\r"),
            '\t' => out.push_str(r"\t"),
            c if c == delimiter => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
