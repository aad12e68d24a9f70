use super::*;

fn q(query: &str, ids: &[&str]) -> GoldenQuery {
    GoldenQuery {
        query: query.into(),
        expect_source_ids: ids.iter().map(|s| s.to_string()).collect(),
    }
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn parses_json_lines_and_yaml_lists() {
    let jsonl = "# golden set\n{\"query\": \"a\", \"expectSourceIDs\": [\"x.md\"]}\n\n\
                 {\"query\": \"b\", \"expectSourceIDs\": [\"y.md\", \"z.md\"]}\n";
    let yaml = "# golden set\n- query: a\n  expectSourceIDs: [x.md]\n- query: b\n  \
                expectSourceIDs:\n  - y.md\n  - z.md\n";
    let want = GoldenSet {
        queries: vec![q("a", &["x.md"]), q("b", &["y.md", "z.md"])],
    };
    assert_eq!(parse(jsonl), Ok(want.clone()));
    assert_eq!(parse(yaml), Ok(want));
}

#[test]
fn errors_name_the_line() {
    let cases: [(&str, &str, &str); 7] = [
        ("", "", "the set has no queries"),
        ("# only\n\n", "", "the set has no queries"),
        (
            "{\"query\": \"a\", \"expectSourceIDs\": [\"x\"]}\n{\"query\": \"b\"\n",
            "line 2: ",
            "EOF",
        ),
        (
            "{\"query\": \"a\", \"expectSourceIDs\": []}\n",
            "line 1: ",
            "expectSourceIDs is empty",
        ),
        (
            "{\"query\": \" \", \"expectSourceIDs\": [\"x\"]}\n",
            "line 1: ",
            "query is empty",
        ),
        (
            "- query: a\n  expectSourceIDs: [x]\n- query: b\n  expectSourceIDs: []\n",
            "line 3: ",
            "expectSourceIDs is empty",
        ),
        (
            "- query: a\n  expectSourceIDs: [x]\n  expectSourceIds: [y]\n",
            "line 3: ",
            "unknown field",
        ),
    ];
    for (text, prefix, contains) in cases {
        let e = parse(text).expect_err(text).to_string();
        assert!(
            e.starts_with(prefix) && e.contains(contains),
            "{text:?}: {e}"
        );
    }
}

#[test]
fn scores_rank_and_recall_in_the_top_k() {
    let two = q("two", &["a", "b"]);
    let cases: [(&[&str], usize, Option<u32>, u32); 6] = [
        (&["a", "b"], 5, Some(1), 2),
        (&["x", "b", "a"], 5, Some(2), 2),
        (&["x", "b", "a"], 2, Some(2), 1),
        (&["x", "y", "a"], 2, None, 0),
        // A document found as two chunks counts once.
        (&["a", "a", "x"], 5, Some(1), 1),
        (&[], 5, None, 0),
    ];
    for (sources, k, rank, found) in cases {
        let s = score(&two, &ids(sources), k);
        assert_eq!(
            (s.rank, s.found, s.expected),
            (rank, found, 2),
            "{sources:?}"
        );
    }
    let s = score(&two, &ids(&["x", "b"]), 5);
    assert_eq!((s.recall(), s.reciprocal_rank()), (0.5, 0.5));
}

fn scores(list: &[(Option<u32>, u32, u32)]) -> Scores {
    Scores {
        queries: list
            .iter()
            .enumerate()
            .map(|(i, (rank, found, expected))| QueryScore {
                query: format!("q{i}"),
                rank: *rank,
                found: *found,
                expected: *expected,
            })
            .collect(),
    }
}

#[test]
fn recall_and_mrr_are_means_over_queries() {
    let s = scores(&[
        (Some(1), 1, 1),
        (Some(2), 1, 2),
        (None, 0, 1),
        (Some(4), 1, 1),
    ]);
    assert!((s.recall_at_k() - 0.625).abs() < 1e-12);
    assert!((s.mrr() - (1.0 + 0.5 + 0.0 + 0.25) / 4.0).abs() < 1e-12);
    assert_eq!(Scores::default().recall_at_k(), 0.0);
}

#[test]
fn judges_against_the_bar_and_the_active_colour() {
    let bar = Bar {
        min_recall_at_k: 0.5,
        max_regression: 0.1,
    };
    let perfect = scores(&[(Some(1), 1, 1); 10]);
    // One query of ten lost: recall 0.9, MRR 0.9, a drop of exactly maxRegression.
    let mut one_lost = perfect.clone();
    one_lost.queries[3] = QueryScore {
        rank: None,
        found: 0,
        ..one_lost.queries[3].clone()
    };
    let mut two_lost = one_lost.clone();
    two_lost.queries[7].rank = None;
    two_lost.queries[7].found = 0;
    // Same recall, every first hit at rank 2: MRR 0.5.
    let ranked_lower = scores(&[(Some(2), 1, 1); 10]);
    let none = scores(&[(None, 0, 1); 10]);
    let cases: [(&str, &Scores, Option<&Scores>, Verdict, usize); 7] = [
        (
            "first deploy, above the minimum",
            &one_lost,
            None,
            Verdict::Pass,
            0,
        ),
        (
            "first deploy, below it",
            &none,
            None,
            Verdict::BelowMinimum,
            0,
        ),
        ("no change", &perfect, Some(&perfect), Verdict::Pass, 0),
        (
            "a drop of maxRegression",
            &one_lost,
            Some(&perfect),
            Verdict::Pass,
            1,
        ),
        (
            "more than that",
            &two_lost,
            Some(&perfect),
            Verdict::Regressed,
            2,
        ),
        (
            "MRR alone fell",
            &ranked_lower,
            Some(&perfect),
            Verdict::Regressed,
            10,
        ),
        (
            "better than active",
            &perfect,
            Some(&two_lost),
            Verdict::Pass,
            0,
        ),
    ];
    for (name, new, active, verdict, regressed) in cases {
        let j = judge(bar, new, active);
        assert_eq!(
            (j.verdict, j.regressed.len()),
            (verdict, regressed),
            "{name}: {j:?}"
        );
    }
    let j = judge(bar, &two_lost, Some(&perfect));
    assert_eq!(
        j.message,
        "recall@K 0.800 (active 1.000), MRR 0.800 (active 1.000): more than maxRegression 0.100 \
         below the active colour; 2 of 10 queries regressed: \"q3\", \"q7\""
    );
    let j = judge(bar, &none, None);
    assert!(
        j.message.starts_with("recall@K 0.000, MRR 0.000 is below minRecallAtK 0.500; 10 of 10 queries missed expected documents: \"q0\", \"q1\", \"q2\", \"q3\", \"q4\", ..."),
        "{}",
        j.message
    );
}

#[test]
fn long_queries_are_shortened_in_messages() {
    let long = "é".repeat(100);
    assert_eq!(short(&long).chars().count(), 83);
    assert_eq!(short("short"), "short");
}
