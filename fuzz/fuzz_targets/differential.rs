//! Differential target: the page model and the interval implementation run
//! the same op sequence in lock step; every invariant of
//! `uffd_check::check::INVARIANTS` is checked after every step. A failure
//! panics with the `Failure`'s Display, which prints the trace to save under
//! `cases/`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use uffd_check::runner::check_fuzz_input;
use uffd_impl::Bugs;
use uffd_vocab::Op;

fuzz_target!(|input: (u8, Vec<Op>)| {
    if let Err(failure) = check_fuzz_input(input.0, input.1, Bugs::default()) {
        panic!("{failure}");
    }
});
