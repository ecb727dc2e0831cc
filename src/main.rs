fn main() {
    if std::env::args().nth(1).as_deref() == Some("__worker") {
        uffd_check::kernel::worker_main();
    }
}
