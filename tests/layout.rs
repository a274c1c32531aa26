//! The repository's layout habit (STYLE.md "One file per operator, the same name
//! everywhere"): every operator file of the macro (`flow-macros/src/ops/<op>.rs`: its spec and
//! emitters) has a runtime twin of the same name (`flow-runtime/src/operator/<op>.rs`: the
//! operator and its port check), and the other way round.

use std::collections::BTreeSet;
use std::path::Path;

fn rust_files(dir: &str) -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| {
            p.file_stem()
                .expect("a file name")
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name != "mod")
        .collect()
}

#[test]
fn every_operator_has_one_spec_file_and_one_runtime_file_of_the_same_name() {
    let mut specs = rust_files("flow-macros/src/ops");
    let runtime = rust_files("flow-runtime/src/operator");
    // The desugaring of `sum`, `min`, ... into `reduce`'s (and the window's) function: no
    // operator of its own (its field traits live in the runtime's reduce.rs).
    assert!(specs.remove("aggregations"), "ops/aggregations.rs moved?");
    assert_eq!(
        specs.symmetric_difference(&runtime).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "ops/ and operator/ differ"
    );
}
