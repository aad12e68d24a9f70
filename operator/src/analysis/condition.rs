//! Success and failure conditions: CEL expressions over the number `result`, such as
//! `result >= 0.95`.
//!
//! CEL because it is the language users already write in the CRDs' `x-kubernetes-validations`
//! (and kube-rs' own CEL support is built on the same `cel` crate); evalexpr, the other maintained
//! candidate, is AGPL-3.0 since version 12. An expression is compiled and tried once, when the spec
//! is compiled, so a typo, a variable other than `result` or an expression that is not a boolean
//! is reported against its field instead of making every measurement inconclusive.

use cel::{Context, Program, Value};

/// The one variable a condition sees.
pub const RESULT: &str = "result";

/// Deepest nesting of brackets a condition may have. The `cel` parser (ANTLR, recursive descent)
/// takes around 170 KiB of stack per level in a debug build, so some 12 levels overflow a tokio
/// worker's 2 MiB and abort the process: a spec must never be able to do that.
pub const MAX_NESTING: usize = 32;
/// Stack of the thread that parses: room for [`MAX_NESTING`] levels many times over (reserved,
/// not committed, memory). Evaluating the parsed program is shallow and runs anywhere.
const PARSER_STACK: usize = 64 << 20;

/// Why an expression cannot be a condition.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    #[error("{0}")]
    Syntax(String),
    #[error("unknown variable {}: a condition can only use `result`", .0.join(", "))]
    Variables(Vec<String>),
    #[error("does not evaluate: {0}")]
    Evaluation(String),
    #[error("evaluates to a {0}, not true or false")]
    NotBoolean(&'static str),
    #[error("brackets nest deeper than {MAX_NESTING} levels")]
    TooDeep,
}

/// Parses on a thread of its own with a large stack, after refusing deep nesting; a panic in the
/// parser is an error, not a crash.
fn parse(source: &str) -> Result<Program, ConditionError> {
    // Every bracket counts, inside string literals too: over-counting only refuses odd conditions.
    let mut depth = 0usize;
    let mut deepest = 0;
    for c in source.chars() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        deepest = deepest.max(depth);
    }
    if deepest > MAX_NESTING {
        return Err(ConditionError::TooDeep);
    }
    let owned = source.to_string();
    let parser = std::thread::Builder::new()
        .name("cel-parse".into())
        .stack_size(PARSER_STACK)
        .spawn(move || Program::compile(&owned).map_err(|e| e.to_string()))
        .map_err(|e| ConditionError::Syntax(format!("cannot start the parser: {e}")))?;
    let parsed = parser
        .join()
        .unwrap_or_else(|_| Err("the parser failed on this expression".into()));
    parsed.map_err(|text| {
        // The parser's message is the error line, then the source with a caret under it.
        let first = text.lines().next().unwrap_or_default();
        ConditionError::Syntax(first.trim_start_matches("ERROR: <input>:").to_string())
    })
}

/// A compiled condition.
pub struct Condition {
    source: String,
    program: Program,
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Condition").field(&self.source).finish()
    }
}

impl PartialEq for Condition {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Condition {
    /// Compiles `source` and tries it on sample results.
    pub fn compile(source: &str) -> Result<Self, ConditionError> {
        let program = parse(source)?;
        let references = program.references();
        let mut unknown: Vec<String> = references
            .variables()
            .into_iter()
            .filter(|v| *v != RESULT)
            .map(str::to_string)
            .collect();
        // The references come from a hash set; sorted, the message is the same every time.
        unknown.sort();
        if !unknown.is_empty() {
            return Err(ConditionError::Variables(unknown));
        }
        let condition = Self {
            source: source.to_string(),
            program,
        };
        // An expression that fails on one sample (`int(result)` on +Inf) can still be a fine
        // condition; one that fails or is not a boolean on every sample never is.
        let mut first_error = None;
        for sample in [0.0, 1.0, 0.5] {
            match condition.value(sample) {
                Ok(Value::Bool(_)) => return Ok(condition),
                Ok(other) => return Err(ConditionError::NotBoolean(type_name(&other))),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(ConditionError::Evaluation(first_error.unwrap_or_default()))
    }

    /// `result <= threshold`: a built-in metric's condition.
    pub fn at_most(threshold: f64) -> Self {
        Self::compile(&format!("{RESULT} <= {threshold}"))
            .expect("a comparison with a number always compiles")
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the condition holds for `result`.
    pub fn holds(&self, result: f64) -> Result<bool, String> {
        match self.value(result)? {
            Value::Bool(b) => Ok(b),
            other => Err(format!(
                "`{}` evaluated to a {}, not true or false",
                self.source,
                type_name(&other)
            )),
        }
    }

    fn value(&self, result: f64) -> Result<Value, String> {
        let mut context = Context::default();
        context
            .add_variable(RESULT, result)
            .map_err(|e| e.to_string())?;
        self.program
            .execute(&context)
            .map_err(|e| format!("`{}`: {e}", self.source))
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "boolean",
        Value::Int(_) | Value::UInt(_) => "integer",
        Value::Float(_) => "number",
        Value::String(_) => "string",
        Value::Null => "null",
        _ => "value of another type",
    }
}

/// What the conditions say about one result.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Success,
    /// Failed, with the condition that decided it.
    Failure(String),
    /// A failure condition is set and neither condition held.
    Neither,
}

/// A metric's success condition and optional failure condition.
#[derive(Debug, PartialEq)]
pub struct Conditions {
    pub success: Condition,
    pub failure: Option<Condition>,
}

impl Conditions {
    /// The failure condition wins when both hold; without one, anything but a success fails.
    pub fn judge(&self, result: f64) -> Result<Verdict, String> {
        if let Some(failure) = &self.failure
            && failure.holds(result)?
        {
            return Ok(Verdict::Failure(failure.source().to_string()));
        }
        if self.success.holds(result)? {
            return Ok(Verdict::Success);
        }
        Ok(match self.failure {
            Some(_) => Verdict::Neither,
            None => Verdict::Failure(format!("not ({})", self.success.source())),
        })
    }
}

#[cfg(test)]
#[path = "condition_tests.rs"]
mod tests;
