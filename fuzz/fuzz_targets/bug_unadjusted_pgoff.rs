//! Demonstration target: the same differential check as `differential`, but
//! against the implementation with the May 2023 pgoff bug put back
//! (docs/kernel-rules.md §7 b). It is expected to crash: the fuzzer finds the bug on
//! its own, from an empty corpus, in about a minute.

#![no_main]

use libfuzzer_sys::fuzz_target;
use uffd_check::runner::check_fuzz_input;
use uffd_impl::{Bugs, Switch};
use uffd_vocab::Op;

fuzz_target!(|input: (u8, Vec<Op>)| {
    let bugs = Bugs::of(&[Switch::UnadjustedPgoff]);
    if let Err(failure) = check_fuzz_input(input.0, input.1, bugs) {
        panic!("{failure}");
    }
});
