//! Compile-time behaviour of the macros: what compiles (`ui/pass`, which also runs) and what is
//! refused with which message (`ui/fail`, checked against the `.stderr` files next to each case).
//! Regenerate the expected messages with `TRYBUILD=overwrite cargo test -p rustyray-macros-ui`.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
