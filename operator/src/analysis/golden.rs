//! Retrieval regression analysis on a golden set, pure: parse the set (JSON Lines or a YAML
//! list), score one colour's answers (per query, the rank of the first expected document in the
//! top K and the share of expected documents found), and judge the new colour against the bar
//! and against the active colour.
//!
//! recall@K is the mean over queries of found / expected; MRR the mean of 1 / rank (0 when no
//! expected document is in the top K). Regression is measured in absolute points: with
//! `maxRegression: 0.05`, an active recall@K of 0.90 lets the new colour go down to 0.85.

use serde::Deserialize;

/// Most queries a set may hold: a run sends each to both colours.
pub const MAX_QUERIES: usize = 5000;
/// Queries named in a message; the rest are counted.
pub const NAMED: usize = 5;
/// Scores are compared after rounding away float noise.
const EPSILON: f64 = 1e-9;

/// One line of the set.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoldenQuery {
    pub query: String,
    #[serde(rename = "expectSourceIDs")]
    pub expect_source_ids: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct GoldenSet {
    pub queries: Vec<GoldenQuery>,
}

/// What is wrong with a set, naming the line (or the YAML item) when one is at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("{0}")]
    Whole(String),
}

/// Parses JSON Lines (the first line that is not blank or a `#` comment starts with `{`) or a
/// YAML list.
pub fn parse(text: &str) -> Result<GoldenSet, ParseError> {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    let queries = match first {
        None => return Err(ParseError::Whole("the set has no queries".into())),
        Some(l) if l.starts_with('{') => json_lines(text)?,
        Some(_) => yaml_list(text)?,
    };
    if queries.is_empty() {
        return Err(ParseError::Whole("the set has no queries".into()));
    }
    if queries.len() > MAX_QUERIES {
        return Err(ParseError::Whole(format!(
            "the set has {} queries; at most {MAX_QUERIES} are run",
            queries.len()
        )));
    }
    Ok(GoldenSet { queries })
}

fn json_lines(text: &str) -> Result<Vec<GoldenQuery>, ParseError> {
    let mut out = vec![];
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let at = |message: String| ParseError::Line {
            line: i + 1,
            message,
        };
        let q: GoldenQuery = serde_json::from_str(l).map_err(|e| at(e.to_string()))?;
        check(&q).map_err(at)?;
        out.push(q);
    }
    Ok(out)
}

fn yaml_list(text: &str) -> Result<Vec<GoldenQuery>, ParseError> {
    let queries: Vec<GoldenQuery> = serde_yaml::from_str(text).map_err(|e| match e.location() {
        Some(at) => ParseError::Line {
            line: at.line(),
            message: e.to_string(),
        },
        None => ParseError::Whole(e.to_string()),
    })?;
    // The line of each item: the lines that open a top-level list item.
    let starts: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with('-'))
        .map(|(i, _)| i + 1)
        .collect();
    for (i, q) in queries.iter().enumerate() {
        check(q).map_err(|message| match starts.get(i) {
            Some(line) => ParseError::Line {
                line: *line,
                message,
            },
            None => ParseError::Whole(format!("item {}: {message}", i + 1)),
        })?;
    }
    Ok(queries)
}

fn check(q: &GoldenQuery) -> Result<(), String> {
    if q.query.trim().is_empty() {
        return Err("query is empty".into());
    }
    if q.expect_source_ids.is_empty() {
        return Err(format!("query {:?}: expectSourceIDs is empty", q.query));
    }
    if q.expect_source_ids.iter().any(|id| id.trim().is_empty()) {
        return Err(format!(
            "query {:?}: expectSourceIDs has an empty id",
            q.query
        ));
    }
    Ok(())
}

/// How one colour answered one query.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryScore {
    pub query: String,
    /// Position (from 1) of the first source in the top K that is an expected document.
    pub rank: Option<u32>,
    /// Expected documents among the top K.
    pub found: u32,
    pub expected: u32,
}

impl QueryScore {
    pub fn recall(&self) -> f64 {
        if self.expected == 0 {
            return 1.0;
        }
        f64::from(self.found) / f64::from(self.expected)
    }

    pub fn reciprocal_rank(&self) -> f64 {
        self.rank.map_or(0.0, |r| 1.0 / f64::from(r.max(1)))
    }
}

/// Scores `q` on the document ids of an answer's sources, best first (a document may come back
/// as several chunks).
pub fn score(q: &GoldenQuery, sources: &[String], k: usize) -> QueryScore {
    let top = &sources[..sources.len().min(k)];
    let expected = |id: &String| q.expect_source_ids.contains(id);
    let rank = top
        .iter()
        .position(expected)
        .and_then(|p| u32::try_from(p + 1).ok());
    let mut ids: Vec<&String> = q.expect_source_ids.iter().collect();
    ids.sort();
    ids.dedup();
    let found = ids.iter().filter(|id| top.contains(id)).count();
    QueryScore {
        query: q.query.clone(),
        rank,
        found: u32::try_from(found).unwrap_or(u32::MAX),
        expected: u32::try_from(ids.len()).unwrap_or(u32::MAX),
    }
}

/// One colour's scores on the whole set, in the set's order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Scores {
    pub queries: Vec<QueryScore>,
}

impl Scores {
    fn mean(&self, f: impl Fn(&QueryScore) -> f64) -> f64 {
        if self.queries.is_empty() {
            return 0.0;
        }
        self.queries.iter().map(f).sum::<f64>() / self.queries.len() as f64
    }

    pub fn recall_at_k(&self) -> f64 {
        self.mean(QueryScore::recall)
    }

    pub fn mrr(&self) -> f64 {
        self.mean(QueryScore::reciprocal_rank)
    }
}

/// The bar of `spec.rollout.goldenSet`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bar {
    pub min_recall_at_k: f64,
    pub max_regression: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// recall@K under `minRecallAtK`.
    BelowMinimum,
    /// recall@K or MRR more than `maxRegression` below the active colour's.
    Regressed,
}

/// The verdict, the queries the new colour answers worse than the active one (indices into the
/// set), and a message naming the first few.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    pub verdict: Verdict,
    pub regressed: Vec<usize>,
    pub message: String,
}

/// Judges the new colour's scores against the bar, and against the active colour's on the same
/// set when there is one (a first deploy has none).
pub fn judge(bar: Bar, new: &Scores, active: Option<&Scores>) -> Judgement {
    let (recall, mrr) = (new.recall_at_k(), new.mrr());
    let regressed: Vec<usize> = active.map_or_else(Vec::new, |a| worse(new, a));
    let mut message = format!("recall@K {recall:.3}, MRR {mrr:.3}");
    if let Some(a) = active {
        let (was_recall, was_mrr) = (a.recall_at_k(), a.mrr());
        message = format!(
            "recall@K {recall:.3} (active {was_recall:.3}), MRR {mrr:.3} (active {was_mrr:.3})"
        );
    }
    let fell = |was: f64, now: f64| was - now > bar.max_regression + EPSILON;
    let verdict = if recall + EPSILON < bar.min_recall_at_k {
        message = format!("{message} is below minRecallAtK {:.3}", bar.min_recall_at_k);
        Verdict::BelowMinimum
    } else if active.is_some_and(|a| fell(a.recall_at_k(), recall) || fell(a.mrr(), mrr)) {
        message = format!(
            "{message}: more than maxRegression {:.3} below the active colour",
            bar.max_regression
        );
        Verdict::Regressed
    } else {
        Verdict::Pass
    };
    if verdict != Verdict::Pass {
        message = format!("{message}; {}", misses(new, active.is_some(), &regressed));
    }
    Judgement {
        verdict,
        regressed,
        message,
    }
}

/// Queries with a lower recall, or a first expected document ranked lower, than on the active
/// colour.
fn worse(new: &Scores, active: &Scores) -> Vec<usize> {
    new.queries
        .iter()
        .zip(&active.queries)
        .enumerate()
        .filter(|(_, (n, a))| {
            n.recall() + EPSILON < a.recall() || n.reciprocal_rank() + EPSILON < a.reciprocal_rank()
        })
        .map(|(i, _)| i)
        .collect()
}

/// The queries to name: those that regressed, or (with nothing to compare) those that missed.
fn misses(new: &Scores, compared: bool, regressed: &[usize]) -> String {
    let (what, picked): (&str, Vec<usize>) = if compared {
        ("regressed", regressed.to_vec())
    } else {
        let missed = new.queries.iter().enumerate();
        let missed = missed.filter(|(_, q)| q.found < q.expected).map(|(i, _)| i);
        ("missed expected documents", missed.collect())
    };
    let named: Vec<String> = picked
        .iter()
        .take(NAMED)
        .filter_map(|i| new.queries.get(*i))
        .map(|q| format!("{:?}", short(&q.query)))
        .collect();
    let mut text = format!("{} of {} queries {what}", picked.len(), new.queries.len());
    if !named.is_empty() {
        text = format!("{text}: {}", named.join(", "));
        if picked.len() > NAMED {
            text.push_str(", ...");
        }
    }
    text
}

/// A query as a message names it: at most 80 characters.
fn short(query: &str) -> String {
    match query.char_indices().nth(80) {
        Some((end, _)) => format!("{}...", &query[..end]),
        None => query.to_string(),
    }
}

#[cfg(test)]
#[path = "golden_tests.rs"]
mod tests;
