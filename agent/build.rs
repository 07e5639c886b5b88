//! Links `berth` and `berth-supervisor` as fixed-address (non-PIE) executables, as
//! `berth-runtime` is (see runtime/build.rs): a supervisor starts with every task, and a
//! position-independent binary of this size has the loader relocate, and so copy, every
//! page of `.data.rel.ro` in every process. Libraries, heap, stack and mmaps stay
//! randomised.
fn main() {
    for bin in ["berth", "berth-supervisor"] {
        println!("cargo:rustc-link-arg-bin={bin}=-no-pie");
    }
}
