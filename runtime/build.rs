//! Links the `berth-runtime` binary as a fixed-address (non-PIE) executable.
//!
//! A position-independent Rust binary of this size carries about 13,000 relative
//! relocations; the dynamic loader applies them at every start, writing (and so copying)
//! every page of `.data.rel.ro`. The runtime is started once per container operation,
//! so that work was about a third of its start-up time (`--version`: 2.6 ms against
//! 1.8 ms on our machines). Shared libraries, the heap, the stack and mmaps stay
//! randomised; only the binary's own base address is fixed, as in most Go binaries.
fn main() {
    println!("cargo:rustc-link-arg-bin=berth-runtime=-no-pie");
}
