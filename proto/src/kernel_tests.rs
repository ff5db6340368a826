//! Tests of kernel descriptors: checks, limits, quoting and wire round trips.

use super::*;

fn params(pairs: &[(&str, &str)]) -> Params {
    Params(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

fn sample() -> KernelDescriptor {
    KernelDescriptor::new("k", OutputShape::Lines, "a test kernel")
        .param(ParamSpec::uint("rounds", 1, 1, 100, "rounds"))
        .param(ParamSpec::float("x", 0.5, -2.0, 2.0, "x"))
        .param(ParamSpec::required_text("cmd", "command"))
}

#[test]
fn check_fills_defaults_and_trims_numbers() {
    let checked = sample().check(&params(&[("cmd", "echo {}"), ("rounds", " 7 ")])).unwrap();
    assert_eq!(checked, params(&[("cmd", "echo {}"), ("rounds", "7"), ("x", "0.5")]));
    assert_eq!(checked.uint("rounds"), Ok(7));
    assert_eq!(checked.float("x"), Ok(0.5));
    assert_eq!(checked.text("cmd"), Ok("echo {}"));
}

#[test]
fn check_refuses_each_kind_of_bad_param() {
    let d = sample();
    let err = |p: &[(&str, &str)]| d.check(&params(p)).unwrap_err().0;
    assert_eq!(err(&[]), "missing param cmd");
    assert_eq!(err(&[("cmd", " ")]), "bad param cmd: must not be empty");
    assert_eq!(
        err(&[("cmd", "a"), ("rounds", "0")]),
        "bad param rounds: must be at least 1, got 0"
    );
    assert_eq!(
        err(&[("cmd", "a"), ("rounds", "-1")]),
        r#"bad param rounds: "-1" is not a whole number"#
    );
    assert_eq!(err(&[("cmd", "a"), ("x", "NaN")]), r#"bad param x: "NaN" is not a finite number"#);
    assert_eq!(err(&[("cmd", "a"), ("x", "3")]), "bad param x: must be at most 2, got 3");
    assert_eq!(
        err(&[("cmd", "a"), ("rouds", "2")]),
        "unknown param rouds for kernel k; known: rounds, x, cmd"
    );
}

#[test]
fn errors_quote_at_most_a_few_dozen_bytes() {
    let huge = "é".repeat(1 << 20);
    let msg = sample().check(&params(&[("cmd", "a"), (&huge, "1")])).unwrap_err().0;
    assert!(msg.len() < 300, "{} bytes", msg.len());
    assert!(msg.contains("(2097152 bytes)"), "{msg}");
    let msg = sample().check(&params(&[("cmd", "a"), ("rounds", &huge)])).unwrap_err().0;
    assert!(msg.len() < 300, "{} bytes", msg.len());
}

#[test]
fn registrations_are_bounded() {
    assert_eq!(check_limits(&[sample()]), Ok(()));
    let many: Vec<_> = (0..=MAX_KERNELS).map(|i| KernelDescriptor::open(i.to_string())).collect();
    assert!(check_limits(&many).unwrap_err().0.contains("257 kernels offered"));
    let long = KernelDescriptor::open("x".repeat(MAX_KIND_BYTES + 1));
    let err = check_limits(&[long]).unwrap_err().0;
    assert!(err.ends_with("x\" is over 64 bytes"), "{err}");
    let mut wide = sample();
    for i in 0..MAX_PARAMS {
        wide = wide.param(ParamSpec::uint(&format!("p{i}"), 0, 0, 1, ""));
    }
    assert!(check_limits(&[wide]).is_err());
    let help = sample().param(ParamSpec::uint("n", 0, 0, 1, &"h".repeat(MAX_TEXT_BYTES + 1)));
    assert!(check_limits(&[help]).is_err());
    assert!(check_limits(&[KernelDescriptor::open(" ")]).is_err());
}

#[test]
fn names_are_of_a_safe_character_set() {
    assert_eq!(check_limits(&[KernelDescriptor::open("my-kind_2.v1:fast")]), Ok(()));
    let forged = KernelDescriptor::open("x\"} 1\nfarm_injected_total{a=\"b");
    let err = check_limits(&[forged]).unwrap_err().0;
    assert_eq!(
        err,
        r#"kind "x\"} 1\nfarm_injected_total{a=\"b" may hold only letters, digits, '_', '.', ':' and '-'"#
    );
    for bad in ["", "a b", "tab\t", "é", "a/b", "a\u{1b}[2J"] {
        assert!(check_limits(&[KernelDescriptor::open(bad)]).is_err(), "{bad:?}");
    }
    let param = sample().param(ParamSpec::uint("bad name", 0, 0, 1, ""));
    let err = check_limits(&[param]).unwrap_err().0;
    assert!(err.starts_with("param name \"bad name\" may hold only"), "{err}");
}

#[test]
fn open_descriptors_pass_params_unchecked() {
    let p = params(&[("anything", "goes")]);
    assert_eq!(KernelDescriptor::open("user").check(&p), Ok(p));
}

#[test]
fn descriptors_round_trip_through_the_wire() {
    for d in [
        sample(),
        KernelDescriptor::open("user"),
        KernelDescriptor::new("pi", OutputShape::Fraction { scale: 4.0 }, ""),
    ] {
        let back = KernelDescriptor::try_from(pb::KernelDescriptor::from(&d)).unwrap();
        assert_eq!(back, d);
    }
}

#[test]
fn malformed_wire_descriptors_are_errors() {
    let mut d = pb::KernelDescriptor::from(&sample());
    d.params[0].min = Some("x".into());
    assert!(KernelDescriptor::try_from(d.clone()).is_err());
    d.params[0].min = None;
    d.params[0].r#type = 99;
    assert!(KernelDescriptor::try_from(d).is_err());
}

#[test]
fn long_messages_from_elsewhere_are_truncated_with_their_length() {
    assert_eq!(truncate("short", 10), "short");
    let long = "é".repeat(1000);
    let cut = truncate(&long, 101);
    assert!(cut.ends_with("… (2000 bytes)"), "{cut}");
    assert!(cut.len() < 130, "{} bytes", cut.len());
}

#[test]
fn flags_read_true_and_false_and_refuse_the_rest() {
    let p = params(&[("a", "true"), ("b", " No "), ("c", "1"), ("d", "maybe")]);
    assert_eq!(p.flag("a"), Ok(true));
    assert_eq!(p.flag("b"), Ok(false));
    assert_eq!(p.flag("c"), Ok(true));
    assert_eq!(p.flag("d"), Err(ParamError("bad param d: \"maybe\" is not true or false".into())));
    assert_eq!(p.flag("e"), Err(ParamError("missing param e".into())));
}

#[test]
fn shapes_read_as_their_names_in_logs() {
    assert_eq!(OutputShape::Fraction { scale: 4.0 }.to_string(), "fraction (scale 4)");
    assert_eq!(OutputShape::Count.to_string(), "count");
    assert_eq!(OutputShape::Exec.to_string(), "exec");
}
