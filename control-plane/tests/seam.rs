//! The tenant seam, checked by the compiler: handler code cannot call a cross-tenant lookup,
//! forge a scope, reach the system store through the application state or a backend directly
//! (`tests/seam/*.rs` must fail to compile, with the errors in their `.stderr` files), while
//! scoped access compiles (`tests/seam-ok/`). Regenerate the expected errors after a compiler
//! upgrade with `TRYBUILD=overwrite cargo test -p luach-control-plane --test seam`.

#[test]
fn handler_code_cannot_reach_past_its_scope() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/seam-ok/*.rs");
    cases.compile_fail("tests/seam/*.rs");
}
