//! The kernel worker on its own (`uffd-kernel-worker __worker PAGES`), for
//! this crate's tests; the harness runs the same worker as
//! `uffd-check __worker PAGES`.

fn main() {
    uffd_kernel::worker_main()
}
