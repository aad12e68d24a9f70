use super::*;

#[test]
fn conditions_hold_or_not_for_a_result() {
    let cases = [
        ("result >= 0.95", 0.96, true),
        ("result >= 0.95", 0.5, false),
        // Integers and doubles compare as numbers.
        ("result < 1", 0.5, true),
        ("result == 0", 0.0, true),
        ("result > 0 && result <= 0.5", 0.25, true),
        ("result > 0 && result <= 0.5", 0.75, false),
        ("result <= 0.5", f64::INFINITY, false),
        ("!(result > 3)", 2.0, true),
    ];
    for (source, result, want) in cases {
        let condition = Condition::compile(source).unwrap();
        assert_eq!(condition.holds(result), Ok(want), "{source} with {result}");
    }
}

#[test]
fn bad_expressions_are_refused_at_compile_time() {
    let syntax = Condition::compile("result >= ").unwrap_err();
    assert!(
        matches!(&syntax, ConditionError::Syntax(m) if m.starts_with("1:11: Syntax error")),
        "{syntax:?}"
    );
    assert!(!syntax.to_string().contains('\n'), "one line: {syntax}");
    assert_eq!(
        Condition::compile("resul > 1 || x < 2").unwrap_err(),
        ConditionError::Variables(vec!["resul".into(), "x".into()])
    );
    assert_eq!(
        Condition::compile("result").unwrap_err(),
        ConditionError::NotBoolean("number")
    );
    assert_eq!(
        Condition::compile("result + 1.0").unwrap_err(),
        ConditionError::NotBoolean("number")
    );
    // CEL compares an integer with a double, but does not add them.
    let mixed = Condition::compile("result + 1 > 2").unwrap_err();
    assert!(
        matches!(&mixed, ConditionError::Evaluation(m) if m.contains("Unsupported binary operator")),
        "{mixed:?}"
    );
    let overload = Condition::compile("result > 'a'").unwrap_err();
    assert!(
        matches!(&overload, ConditionError::Evaluation(m) if m.contains("result > 'a'")),
        "{overload:?}"
    );
    let function = Condition::compile("isNaN(result)").unwrap_err();
    assert!(
        matches!(function, ConditionError::Evaluation(_)),
        "{function:?}"
    );
}

#[test]
fn deep_nesting_is_refused_before_the_parser_sees_it() {
    let nested = |n: usize| format!("{}result > 1{}", "(".repeat(n), ")".repeat(n));
    // At the limit it parses, on a tokio worker's 2 MiB stack too (the parser has its own).
    let at_limit = nested(MAX_NESTING);
    let parsed = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || Condition::compile(&at_limit).map(|c| c.holds(2.0)))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(parsed, Ok(Ok(true)));
    assert_eq!(
        Condition::compile(&nested(MAX_NESTING + 1)).unwrap_err(),
        ConditionError::TooDeep
    );
    for hostile in ["(".repeat(1000), "[".repeat(1000), "{".repeat(1000)] {
        assert_eq!(
            Condition::compile(&hostile).unwrap_err(),
            ConditionError::TooDeep
        );
    }
    assert_eq!(
        ConditionError::TooDeep.to_string(),
        "brackets nest deeper than 32 levels"
    );
}

#[test]
fn error_messages_read_well() {
    assert_eq!(
        ConditionError::Variables(vec!["x".into()]).to_string(),
        "unknown variable x: a condition can only use `result`"
    );
    assert_eq!(
        ConditionError::NotBoolean("string").to_string(),
        "evaluates to a string, not true or false"
    );
}

#[test]
fn a_threshold_is_an_at_most_condition() {
    let c = Condition::at_most(0.05);
    assert_eq!(c.source(), "result <= 0.05");
    assert_eq!(c.holds(0.05), Ok(true));
    assert_eq!(c.holds(0.051), Ok(false));
    assert_eq!(Condition::at_most(1.0).source(), "result <= 1");
    assert_eq!(Condition::at_most(1e-7).holds(0.0), Ok(true));
}

fn conditions(success: &str, failure: Option<&str>) -> Conditions {
    Conditions {
        success: Condition::compile(success).unwrap(),
        failure: failure.map(|f| Condition::compile(f).unwrap()),
    }
}

#[test]
fn the_verdict_of_success_and_failure_conditions() {
    let both = conditions("result >= 0.95", Some("result < 0.5"));
    let only = conditions("result >= 0.95", None);
    // Overlapping conditions: failure wins.
    let overlap = conditions("result >= 0", Some("result > 10"));
    let cases = [
        (&both, 0.99, Verdict::Success),
        (&both, 0.2, Verdict::Failure("result < 0.5".into())),
        (&both, 0.7, Verdict::Neither),
        (&only, 0.99, Verdict::Success),
        (&only, 0.7, Verdict::Failure("not (result >= 0.95)".into())),
        (&overlap, 11.0, Verdict::Failure("result > 10".into())),
        (&overlap, 1.0, Verdict::Success),
    ];
    for (c, result, want) in cases {
        assert_eq!(c.judge(result), Ok(want), "{c:?} with {result}");
    }
}

#[test]
fn a_condition_that_fails_on_one_result_is_an_error_not_a_verdict() {
    // Valid on the samples, an error on +Inf: the measurement will be inconclusive.
    let c = conditions("int(result) < 3", None);
    let err = c.judge(f64::INFINITY).unwrap_err();
    assert!(err.contains("int(result) < 3"), "{err}");
}

#[test]
fn conditions_can_be_shared_across_tasks() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Conditions>();
}
