//! The accumulator: sums, joined lists, declared shapes, the inline limit and the spill. It is
//! tested alone, with no core and no outbox: nothing is sent, so no test checks `assert_quiet`.

use super::*;
use farm_proto::ExecRun;

#[test]
fn counts_are_summed_and_lists_joined_in_shard_order() {
    let mut acc = Accumulator::new(OutputShape::Any);
    acc.add(1, &Output::Count(2)).expect("count");
    acc.add(0, &Output::Count(3)).expect("count");
    assert!(acc.add(2, &Output::Lines(vec![])).is_err());
    assert_eq!(acc.finish().expect("inline"), "5");

    let mut acc = Accumulator::new(OutputShape::Any);
    acc.add(1, &Output::Lines(vec!["c".into()])).expect("lines");
    acc.add(0, &Output::Lines(vec!["a".into(), "b".into()])).expect("lines");
    assert_eq!(acc.finish().expect("inline"), r#"["a","b","c"]"#);

    let mut acc = Accumulator::new(OutputShape::Any);
    acc.add(0, &Output::Exec(vec![ExecRun { exit_code: 1, stdout: "x".into() }])).expect("exec");
    assert_eq!(acc.finish().expect("inline"), r#"[{"exit_code":1,"stdout":"x"}]"#);
}

#[test]
fn fractions_reduce_to_a_scaled_estimate_and_overflow_is_an_error() {
    let mut acc = Accumulator::new(OutputShape::Fraction { scale: 4.0 });
    acc.add(0, &Output::Fraction { hits: 3, samples: 4 }).expect("pi");
    acc.add(1, &Output::Fraction { hits: 3, samples: 4 }).expect("pi");
    let v: serde_json::Value = serde_json::from_str(&acc.finish().expect("inline")).expect("json");
    assert_eq!(v["hits"], 6);
    assert_eq!(v["estimate"], 3.0);

    let mut acc = Accumulator::new(OutputShape::Any);
    acc.add(0, &Output::Count(u64::MAX)).expect("count");
    assert!(acc.add(1, &Output::Count(1)).is_err());
}

#[test]
fn a_declared_shape_refuses_other_outputs() {
    let mut acc = Accumulator::new(OutputShape::Count);
    let err = acc.add(0, &Output::Lines(vec![])).unwrap_err();
    assert!(err.contains("another kind of output than its kernel declares"), "{err}");
    let mut acc = Accumulator::new(OutputShape::Any);
    acc.add(0, &Output::Fraction { hits: 1, samples: 2 }).expect("fraction");
    // Undeclared, a fraction's estimate is the plain ratio.
    let v: serde_json::Value = serde_json::from_str(&acc.finish().expect("inline")).expect("json");
    assert_eq!(v["estimate"], 0.5);
}

#[test]
fn a_list_past_the_inline_limit_spills_to_the_store_and_gives_its_bytes_back() {
    let meter = Meter::default();
    let limits = ByteLimits { meter: meter.clone(), budget: usize::MAX, max_result: 10 << 10 };
    let mut acc = Accumulator::limited(OutputShape::Lines, limits);
    let line = "x".repeat(100);
    acc.add(0, &Output::Lines(vec![line.clone(); 50])).expect("inline");
    assert!(meter.get() > 5000, "an inline list is counted");
    acc.add(1, &Output::Lines(vec![line.clone(); 50])).expect("spills");
    assert_eq!(meter.get(), 0, "the spilled fragments are given back");
    acc.add(2, &Output::Lines(vec![line; 50])).expect("no longer kept");
    assert_eq!(meter.get(), 0);
    assert!(acc.add(3, &Output::Count(1)).is_err(), "still checked against its shape");
    assert_eq!(acc.finish(), None, "the result is in the store only");

    let limits = ByteLimits { budget: usize::MAX, max_result: 1 << 20, ..Default::default() };
    let mut acc = Accumulator::limited(OutputShape::Lines, limits);
    let big = "y".repeat((1 << 20) / 2);
    acc.add(0, &Output::Lines(vec![big.clone()])).expect("inline");
    acc.add(1, &Output::Lines(vec![big])).expect("spills at the inline limit");
    assert_eq!(acc.finish(), None);
}

#[test]
fn an_undeclared_shape_becomes_the_shape_its_outputs_had() {
    let shape = |outputs: &[Output]| {
        let mut acc = Accumulator::new(OutputShape::Any);
        for (shard, output) in outputs.iter().enumerate() {
            acc.add(shard as u64, output).expect("fits");
        }
        acc.shape()
    };
    assert_eq!(shape(&[Output::Count(1)]), OutputShape::Count);
    assert_eq!(shape(&[Output::Lines(vec!["[x]".into()])]), OutputShape::Lines);
    assert_eq!(shape(&[Output::Rows(vec![vec![1]])]), OutputShape::Rows);
    let run = ExecRun { exit_code: 0, stdout: "[x]".into() };
    assert_eq!(shape(&[Output::Exec(vec![run])]), OutputShape::Exec);
    let fraction = Output::Fraction { hits: 1, samples: 2 };
    assert_eq!(shape(&[fraction]), OutputShape::Fraction { scale: 1.0 });
    // No output came: the result is `[]`, an empty list.
    assert_eq!(shape(&[]), OutputShape::Lines);
    // A declared shape stays what it is.
    assert_eq!(Accumulator::new(OutputShape::Rows).shape(), OutputShape::Rows);
}
