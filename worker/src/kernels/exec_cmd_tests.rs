use super::*;

const HOSTILE: &str = "it's; echo INJECTED";

fn argv(cmd: &str, value: &str) -> Vec<String> {
    CmdTemplate::parse(cmd).expect("parses").argv(value).expect("renders")
}

/// What `sh` prints running the script of `cmd` with `value`: the proof of the quoting.
fn shell_out(cmd: &str, value: &str) -> String {
    let argv = argv(cmd, value);
    let out = std::process::Command::new(&argv[0]).args(&argv[1..]).output().expect("runs");
    assert!(out.status.success(), "{argv:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_plain_word_gets_the_value_as_it_is() {
    assert_eq!(argv("echo {} x{}y", HOSTILE), ["echo", HOSTILE, &format!("x{HOSTILE}y")]);
    assert_eq!(argv("printf %s {raw}", "a b"), ["printf", "%s", "a b"]);
    // The arguments after a shell's script are positional parameters, not code.
    assert_eq!(argv("sh -c 'echo \"$1\"' sh {}", HOSTILE)[4], HOSTILE);
}

#[test]
fn a_value_in_a_shell_script_is_quoted_where_it_stands() {
    let script = |cmd: &str, value: &str| argv(cmd, value)[2].clone();
    assert_eq!(script("sh -c 'echo {} | rev'", HOSTILE), r"echo 'it'\''s; echo INJECTED' | rev");
    assert_eq!(script(r#"sh -c "echo '{}'""#, "a b"), "echo '''a b'''");
    assert_eq!(script(r#"sh -c 'echo "<{}>"'"#, "$HOME"), r#"echo "<"'$HOME'">""#);
    // Plain values, every index among them, go in as they are, so arithmetic keeps working.
    assert_eq!(script("sh -c 'exit $(( {} % 2 ))'", "17"), "exit $(( 17 % 2 ))");
    assert_eq!(script("sh -c 'echo {raw}'", "$HOME"), "echo $HOME");
    assert_eq!(script("sh -c 'echo {}'", ""), "echo ''");
}

#[test]
fn the_shell_runs_the_quoted_value_as_data_in_every_spot() {
    for value in [HOSTILE, "a'b\"c$(echo X)`echo Y`\\d", "  two  spaces ", "*", ""] {
        let want = format!("{value}\n");
        assert_eq!(shell_out(r#"sh -c "printf '%s\n' {} | cat""#, value), want, "{value:?}");
        assert_eq!(shell_out(r#"sh -c "printf '%s\n' '{}'""#, value), want, "{value:?}");
        assert_eq!(shell_out(r#"sh -c 'printf "%s\n" "{}"'"#, value), want, "{value:?}");
        assert_eq!(shell_out(r#"bash -ec 'printf "%s\n" "x{}y"'"#, value), format!("x{value}y\n"));
        let wrapped = r#"env FOO=1 timeout 5 sh -o errexit -c 'printf "%s\n" {}'"#;
        assert_eq!(shell_out(wrapped, value), want, "{value:?}");
    }
}

#[test]
fn a_value_that_needs_quotes_past_an_unfollowed_construct_fails_its_run() {
    for cmd in [
        "sh -c 'x=$(echo {}); echo $x'",
        "sh -c 'echo `echo {}`'",
        "sh -c 'echo ${X:-{}}'",
        "sh -c '# comment\necho {}'",
        "sh -c 'cat <<EOF\n{}\nEOF'",
    ] {
        let template = CmdTemplate::parse(cmd).expect("parses");
        let err = template.argv(HOSTILE).expect_err(cmd);
        assert!(err.contains("use \"$FARM_INPUT\" there"), "{err}");
        assert!(template.argv("42").is_ok(), "a plain value needs no quotes: {cmd}");
    }
}

#[test]
fn the_script_is_the_operand_after_a_shells_c_option() {
    let words = |cmd: &str| shlex::split(cmd).expect("splits");
    assert_eq!(script_index(&words("sh -c s")), Some(2));
    assert_eq!(script_index(&words("/bin/bash -e -o pipefail -c s a")), Some(5));
    assert_eq!(script_index(&words("busybox sh -xc s")), Some(3));
    assert_eq!(script_index(&words("busybox wc -c {}")), None);
    assert_eq!(script_index(&words("sh script.sh {}")), None);
    assert_eq!(script_index(&words("echo {}")), None);
    assert_eq!(script_index(&words("sh -c")), None);
}

#[test]
fn bad_commands_are_bad_params() {
    let bad = |cmd: &str| match CmdTemplate::parse(cmd) {
        Err(KernelError::BadParam(m)) => m,
        other => panic!("expected BadParam, got {other:?}"),
    };
    assert_eq!(bad("''"), "bad param cmd: names no program");
    assert!(bad("echo \"abc").starts_with("bad param cmd: cannot split"));
}
