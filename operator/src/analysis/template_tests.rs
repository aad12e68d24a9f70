use super::*;

const VARS: Vars<'static> = Vars {
    namespace: "team-a",
    pipeline: "docs",
    revision: "5f2c9a",
    color: Color::Green,
};

fn render(source: &str, vars: &Vars<'_>) -> Result<String, TemplateError> {
    Template::parse(source)?.render(vars)
}

#[test]
fn placeholders_become_the_values_of_the_run() {
    let cases = [
        (
            r#"sum(rate(m{namespace="{{namespace}}",ragops_io_pipeline="{{pipeline}}"}[1m]))"#,
            r#"sum(rate(m{namespace="team-a",ragops_io_pipeline="docs"}[1m]))"#,
        ),
        (
            r#"m{ragops_io_revision="{{ revision }}",ragops_io_color='{{color}}'}"#,
            r#"m{ragops_io_revision="5f2c9a",ragops_io_color='green'}"#,
        ),
        (r#"m{a=`{{pipeline}}-x`}"#, r#"m{a=`docs-x`}"#),
        (r#"m{a="{{pipeline}}{{color}}"}"#, r#"m{a="docsgreen"}"#),
        ("vector(1)", "vector(1)"),
        ("", ""),
        (r#"m{a="ünï {{pipeline}}"}"#, r#"m{a="ünï docs"}"#),
    ];
    for (source, want) in cases {
        assert_eq!(render(source, &VARS).as_deref(), Ok(want), "{source}");
    }
}

#[test]
fn values_are_escaped_for_the_string_they_stand_in() {
    let hostile = Vars {
        pipeline: "a\"b\\c'd\ne\tf\u{1}",
        ..VARS
    };
    let cases = [
        (r#"m{p="{{pipeline}}"}"#, r#"m{p="a\"b\\c'd\ne\tf\u0001"}"#),
        (r#"m{p='{{pipeline}}'}"#, r#"m{p='a"b\\c\'d\ne\tf\u0001'}"#),
    ];
    for (source, want) in cases {
        assert_eq!(render(source, &hostile).as_deref(), Ok(want), "{source}");
    }
    let tick = Vars {
        pipeline: "a`b",
        ..VARS
    };
    assert_eq!(
        render("m{p=`{{pipeline}}`}", &tick),
        Err(TemplateError::NotRaw {
            name: "pipeline",
            value: "a`b".into()
        })
    );
}

#[test]
fn quotes_inside_strings_and_escaped_quotes_keep_track_of_where_a_placeholder_stands() {
    // The escaped quote does not close the string; the single quote inside "…" opens nothing.
    let ok = r#"m{a="x\"{{pipeline}}", b="it's {{color}}"}"#;
    assert_eq!(
        render(ok, &VARS).as_deref(),
        Ok(r#"m{a="x\"docs", b="it's green"}"#)
    );
    // After the string closes, a placeholder is outside again.
    let outside = r#"m{a="x"} > {{pipeline}}"#;
    assert_eq!(
        Template::parse(outside),
        Err(TemplateError::Unquoted("pipeline".into()))
    );
}

#[test]
fn bad_templates_are_refused_with_the_placeholder_named() {
    let cases = [
        (
            r#"m{a="{{pod}}",b="{{ Namespace }}",c="{{revision}}"}"#,
            TemplateError::Unknown(vec!["pod".into(), "Namespace".into()]),
        ),
        (
            "m > {{revision}}",
            TemplateError::Unquoted("revision".into()),
        ),
        (
            "m # {{revision}}\n",
            TemplateError::Unquoted("revision".into()),
        ),
        (r#"m{a="{{pipeline"}"#, TemplateError::Unterminated),
        (r#"m{a="{{}}"}"#, TemplateError::Unknown(vec!["".into()])),
    ];
    for (source, want) in cases {
        assert_eq!(Template::parse(source), Err(want), "{source}");
    }
}

#[test]
fn error_messages_name_the_placeholders() {
    let unknown = Template::parse(r#"m{a="{{pod}}"}"#)
        .unwrap_err()
        .to_string();
    assert_eq!(
        unknown,
        "unknown placeholder {{pod}}: a query can use {{namespace}}, {{pipeline}}, \
         {{revision}} and {{color}}"
    );
    let unquoted = Template::parse("m > {{color}}").unwrap_err().to_string();
    assert!(
        unquoted.starts_with("placeholder {{color}} stands outside a quoted string"),
        "{unquoted}"
    );
}

#[test]
fn a_comment_ends_at_the_line_and_hides_no_quote() {
    let source = "# it's a comment\nm{a=\"{{pipeline}}\"}";
    assert_eq!(
        render(source, &VARS).as_deref(),
        Ok("# it's a comment\nm{a=\"docs\"}")
    );
}
