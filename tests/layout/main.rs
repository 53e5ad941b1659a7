//! Prints the layout of libivcs's `#[repr(C)]` mirrors of the C headers in
//! the format of `tests/c/layout.c`; `make check-layout` builds both for
//! x86_64 and i686 and compares the output.

#[path = "../../libivcs/src/abi.rs"]
mod abi;

fn main() {
    use std::io::Write;
    let _ = std::io::stdout().write_all(abi::layout().as_bytes());
}
