//! Facts about the live kernel (Linux 6.18 x86-64), each a small trace run
//! through the kernel backend with its results and resulting layout. These
//! pin down the rules of docs/kernel-rules.md, and the ones
//! it is silent about, so a kernel that behaves differently shows up here.

mod common;

use pretty_assertions::assert_eq;
use uffd_vocab::Op;

/// Runs the trace on a fresh 32-page worker: each op's result and the final layout.
fn kernel(trace: &str) -> (Vec<String>, Vec<String>) {
    kernel_n(32, trace)
}

fn kernel_n(pages: u64, trace: &str) -> (Vec<String>, Vec<String>) {
    let mut b = common::kernel_backend(pages);
    let mut results = Vec::new();
    for line in trace.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let op: Op = line.parse().unwrap();
        let r = b.run_op(&op);
        results.push(uffd_vocab::result_name(&r));
    }
    let layout = b.layout();
    let report = b.take_report();
    assert!(report.violations.is_empty(), "{report:?}");
    (results, layout.lines())
}

/// The results of the ops after the first `setup` ones.
fn results_after(setup: usize, trace: &str) -> Vec<String> {
    kernel(trace).0.split_off(setup)
}

// ---- UFFDIO_REGISTER ----------------------------------------------------

#[test]
fn register_mode_0_is_einval() {
    if !common::kernel_available() {
        return;
    }
    assert_eq!(
        kernel("map 0 4 rw- anon\nregister 0 0 4 0"),
        (
            vec!["ok".into(), "EINVAL".into()],
            vec!["[0,4) rw- anon@? account maywrite anon_vma=?".into()]
        )
    );
}

#[test]
fn register_unknown_mode_bit_is_einval_even_with_known_bits() {
    if !common::kernel_available() {
        return;
    }
    assert_eq!(
        results_after(
            1,
            "map 0 4 rw- anon\nregister 0 0 4 8\nregister 0 0 4 9\nregister 0 0 4 16"
        ),
        ["EINVAL", "EINVAL", "EINVAL"]
    );
}

#[test]
fn register_minor_on_anon_is_einval() {
    if !common::kernel_available() {
        return;
    }
    assert_eq!(
        results_after(2, "map 0 4 rw- anon\nmap 4 4 rw- anon-noreserve\nregister 0 0 4 minor\nregister 0 4 4 missing+minor"),
        ["EINVAL", "EINVAL"]
    );
}

#[test]
fn register_minor_on_shmem_and_on_memfd_private_or_shared_is_allowed() {
    if !common::kernel_available() {
        return;
    }
    let (r, l) = kernel(
        "map 0 4 rw- shmem\nmap 4 4 rw- shared-file=0@0\nmap 8 4 rw- file=1@0\n\
         register 0 0 4 minor\nregister 0 4 4 minor\nregister 0 8 4 minor",
    );
    assert_eq!(r, ["ok"; 6]);
    assert_eq!(
        l,
        [
            "[0,4) rw- shmem#0@0 shared mayshare maywrite uffd=minor ctx=0",
            "[4,8) rw- file=0@0 shared mayshare maywrite uffd=minor ctx=0",
            "[8,12) rw- file=1@0 account maywrite anon_vma=? uffd=minor ctx=0",
        ]
    );
}

#[test]
fn register_wp_on_shmem_and_memfd_is_allowed() {
    if !common::kernel_available() {
        return;
    }
    let (r, l) = kernel(
        "map 0 4 rw- shmem\nmap 4 4 rw- shared-file=0@0\nmap 8 4 rw- file=1@0\n\
         register 0 0 4 wp\nregister 1 4 4 wp\nregister 2 8 4 missing+wp",
    );
    assert_eq!(r, ["ok"; 6]);
    assert_eq!(
        l,
        [
            "[0,4) rw- shmem#0@0 shared mayshare maywrite uffd=wp ctx=0",
            "[4,8) rw- file=0@0 shared mayshare maywrite uffd=wp ctx=1",
            "[8,12) rw- file=1@0 account maywrite anon_vma=? uffd=missing+wp ctx=2",
        ]
    );
}

#[test]
fn register_on_shared_ro_file_is_eperm_for_every_mode() {
    if !common::kernel_available() {
        return;
    }
    assert_eq!(
        results_after(
            1,
            "map 0 4 r-- shared-ro-file=0@0\nregister 0 0 4 missing\nregister 0 0 4 wp\nregister 0 0 4 minor"
        ),
        ["EPERM", "EPERM", "EPERM"]
    );
}

#[test]
fn register_failing_on_a_later_vma_changes_nothing() {
    if !common::kernel_available() {
        return;
    }
    let (r, l) = kernel("map 0 4 rw- anon\nmap 4 4 r-- shared-ro-file=0@0\nregister 0 0 8 missing");
    assert_eq!(r[2], "EPERM");
    assert_eq!(
        l,
        [
            "[0,4) rw- anon@? account maywrite anon_vma=?",
            "[4,8) r-- file=0@0 mayshare",
        ]
    );
}

#[test]
fn register_on_a_vma_of_another_ctx_is_ebusy_and_changes_nothing() {
    if !common::kernel_available() {
        return;
    }
    let (r, l) = kernel("map 0 8 rw- anon\nregister 0 0 4 missing\nregister 1 2 4 missing");
    assert_eq!(r[2], "EBUSY");
    assert_eq!(
        l,
        [
            "[0,4) rw- anon@? account maywrite anon_vma=? uffd=missing ctx=0",
            "[4,8) rw- anon@? account maywrite anon_vma=?",
        ]
    );
}

#[test]
fn register_skips_holes_but_a_range_of_only_holes_is_einval() {
    if !common::kernel_available() {
        return;
    }
    let (r, l) = kernel(
        "map 0 2 rw- anon\nmap 6 2 rw- anon\nregister 0 10 4 missing\nregister 0 0 8 missing",
    );
    assert_eq!(r[2..], ["EINVAL", "ok"]);
    assert_eq!(
        l,
        [
            "[0,2) rw- anon@? account maywrite anon_vma=? uffd=missing ctx=0",
            "[6,8) rw- anon@? account maywrite anon_vma=? uffd=missing ctx=0",
        ]
    );
}

#[test]
fn register_replaces_the_mode_unless_it_already_contains_it() {
    if !common::kernel_available() {
        return;
    }
    let (_, l) = kernel(
        "map 0 8 rw- anon\nregister 0 0 4 missing\nregister 0 0 4 wp\n\
         register 0 4 4 missing+wp\nregister 0 4 4 missing",
    );
    assert_eq!(
        l,
        [
            "[0,4) rw- anon@? account maywrite anon_vma=? uffd=wp ctx=0",
            "[4,8) rw- anon@? account maywrite anon_vma=? uffd=missing+wp ctx=0",
        ]
    );
}

#[test]
fn register_len_0_is_einval() {
    if !common::kernel_available() {
        return;
    }
    assert_eq!(
        results_after(
            1,
            "map 0 4 rw- anon\nregister 0 0 0 missing\nunregister 0 0 0"
        ),
        ["EINVAL", "EINVAL"]
    );
}

// ---- UFFDIO_UNREGISTER and close ------------------------------------------

#[test]
fn unregister_with_a_foreign_ctx_is_einval_and_changes_nothing() {
    if !common::kernel_available() {
        return;
    }
    let (r, l) = kernel("map 0 10 rw- anon\nregister 0 0 10 missing\nunregister 1 2 3");
    assert_eq!(r[2], "EINVAL");
    assert_eq!(
        l,
        ["[0,10) rw- anon@? account maywrite anon_vma=? uffd=missing ctx=0"]
    );
}

#[test]
fn unregister_of_unregistered_vmas_is_ok_even_on_shared_ro_file() {
    if !common::kernel_available() {
        return;
    }
    // The reference's "not userfault-capable: EINVAL" does not cover a
    // MAP_SHARED read-only memfd: it is capable (shmem), and unregister does
    // not check VM_MAYWRITE.
    assert_eq!(
        results_after(
            2,
            "map 0 4 rw- anon\nmap 4 4 r-- shared-ro-file=0@0\nunregister 0 0 4\nunregister 0 4 4\nunregister 0 10 4"
        ),
        ["ok", "ok", "EINVAL"]
    );
}

#[test]
fn lkml_case_unregister_tail_next_to_plain_gives_two_vmas() {
    if !common::kernel_available() {
        return;
    }
    let (_, l) = kernel("map 0 20 rw- anon\nregister 0 0 10 missing\nunregister 0 5 5");
    assert_eq!(
        l,
        [
            "[0,5) rw- anon@? account maywrite anon_vma=? uffd=missing ctx=0",
            "[5,20) rw- anon@? account maywrite anon_vma=?",
        ]
    );
}

#[test]
fn syzkaller_case_register_inside_a_large_vma_gives_three_vmas() {
    if !common::kernel_available() {
        return;
    }
    let (r, l) = kernel_n(4096, "map 0 4096 rw- anon\nregister 0 16 2 missing");
    assert_eq!(r, ["ok", "ok"]);
    assert_eq!(l.len(), 3, "{l:?}");
}

#[test]
fn close_releases_every_registration_and_re_merges() {
    if !common::kernel_available() {
        return;
    }
    let (r, l) = kernel(
        "map 0 10 rw- anon\nregister 0 2 3 missing\nregister 0 7 1 wp\nregister 1 9 1 missing\nclose 0",
    );
    assert_eq!(r, ["ok"; 5]);
    assert_eq!(
        l,
        [
            "[0,9) rw- anon@? account maywrite anon_vma=?",
            "[9,10) rw- anon@? account maywrite anon_vma=? uffd=missing ctx=1",
        ]
    );
}

#[test]
fn close_of_a_ctx_never_opened_or_already_closed_is_ebadf() {
    if !common::kernel_available() {
        return;
    }
    assert_eq!(
        kernel("close 2\nregister 1 0 1 missing\nclose 1\nclose 1").0,
        ["EBADF", "EINVAL", "ok", "EBADF"]
    );
}

#[test]
fn unregister_opens_the_ctx_on_first_use() {
    if !common::kernel_available() {
        return;
    }
    // `unregister` on a never-used ctx opens it, so a later close is ok.
    assert_eq!(
        kernel("map 0 4 rw- anon\nunregister 3 0 4\nclose 3").0,
        ["ok", "ok", "ok"]
    );
}

// ---- mprotect ---------------------------------------------------------------

#[test]
fn mprotect_applies_up_to_a_hole_then_fails_enomem() {
    if !common::kernel_available() {
        return;
    }
    let (r, l) = kernel("map 0 4 rw- anon\nmap 6 4 rw- anon\nprotect 0 10 r--");
    assert_eq!(r[2], "ENOMEM");
    assert_eq!(
        l,
        [
            "[0,4) r-- anon@? maywrite anon_vma=?",
            "[6,10) rw- anon@? account maywrite anon_vma=?",
        ]
    );
}

#[test]
fn mprotect_starting_in_a_hole_is_enomem_and_changes_nothing() {
    if !common::kernel_available() {
        return;
    }
    let (r, l) = kernel("map 4 4 rw- anon\nprotect 2 6 r--");
    assert_eq!(r[1], "ENOMEM");
    assert_eq!(l, ["[4,8) rw- anon@? account maywrite anon_vma=?"]);
}

#[test]
fn mprotect_len_0_is_ok_anywhere() {
    if !common::kernel_available() {
        return;
    }
    assert_eq!(
        kernel("protect 0 0 rw-\nprotect 32 0 ---\nmap 0 2 rw- anon\nprotect 1 0 ---").0,
        ["ok"; 4]
    );
}

#[test]
fn mprotect_adding_write_to_shared_ro_file_is_eacces_after_earlier_vmas_changed() {
    if !common::kernel_available() {
        return;
    }
    // Partial apply on EACCES too (the reference only says so for ENOMEM).
    let (r, l) = kernel(
        "map 0 4 r-- anon\nmap 4 4 r-- shared-ro-file=0@4\nmap 8 4 r-- anon\nprotect 0 12 rw-",
    );
    assert_eq!(r[3], "EACCES");
    assert_eq!(
        l,
        [
            "[0,4) rw- anon@? account maywrite anon_vma=?",
            "[4,8) r-- file=0@4 mayshare",
            "[8,12) r-- anon@? maywrite anon_vma=?",
        ]
    );
}

#[test]
fn mprotect_exec_on_memfd_mappings_is_allowed_even_read_only() {
    if !common::kernel_available() {
        return;
    }
    let (r, l) = kernel(
        "map 0 4 rw- shared-file=0@0\nmap 4 4 rw- file=1@0\nmap 8 4 r-- shared-ro-file=2@0\n\
         protect 0 2 rwx\nprotect 4 4 r-x\nprotect 8 4 r-x",
    );
    assert_eq!(r, ["ok"; 6]);
    assert_eq!(
        l,
        [
            "[0,2) rwx file=0@0 shared mayshare maywrite",
            "[2,4) rw- file=0@2 shared mayshare maywrite",
            "[4,8) r-x file=1@0 account maywrite anon_vma=?",
            "[8,12) r-x file=2@0 mayshare",
        ]
    );
}

#[test]
fn mprotect_keeps_the_uffd_registration() {
    if !common::kernel_available() {
        return;
    }
    let (_, l) = kernel("map 0 8 rw- anon\nregister 0 0 8 missing\nprotect 2 2 r--");
    assert_eq!(
        l,
        [
            "[0,2) rw- anon@? account maywrite anon_vma=? uffd=missing ctx=0",
            "[2,4) r-- anon@? maywrite anon_vma=? uffd=missing ctx=0",
            "[4,8) rw- anon@? account maywrite anon_vma=? uffd=missing ctx=0",
        ]
    );
}

// ---- VM_ACCOUNT and VM_NORESERVE ----------------------------------------------

#[test]
fn account_at_mmap_only_on_private_writable_without_noreserve() {
    if !common::kernel_available() {
        return;
    }
    let (_, l) = kernel(
        "map 0 2 rw- anon\nmap 3 2 rw- anon-noreserve\nmap 6 2 rw- shmem\nmap 9 2 rw- file=0@0\n\
         map 12 2 rw- shared-file=1@0\nmap 15 2 r-- shared-ro-file=2@0\nmap 18 2 r-- anon\n\
         map 21 2 r-- file=3@0\nmap 24 2 --- anon-noreserve",
    );
    assert_eq!(
        l,
        [
            "[0,2) rw- anon@? account maywrite anon_vma=?",
            "[3,5) rw- anon@? noreserve maywrite anon_vma=?",
            "[6,8) rw- shmem#0@0 shared mayshare maywrite",
            "[9,11) rw- file=0@0 account maywrite anon_vma=?",
            "[12,14) rw- file=1@0 shared mayshare maywrite",
            "[15,17) r-- file=2@0 mayshare",
            "[18,20) r-- anon@? maywrite anon_vma=?",
            "[21,23) r-- file=3@0 maywrite anon_vma=?",
            "[24,26) --- anon@? noreserve maywrite anon_vma=?",
        ]
    );
}

#[test]
fn account_is_dropped_by_mprotect_read_only_on_unfaulted_anon_and_regained() {
    if !common::kernel_available() {
        return;
    }
    let (_, l) = kernel("map 0 2 rw- anon\nprotect 0 2 r--");
    assert_eq!(l, ["[0,2) r-- anon@? maywrite anon_vma=?"]);
    let (_, l) = kernel("map 0 2 rw- anon\nprotect 0 2 r--\nprotect 0 2 rw-");
    assert_eq!(l, ["[0,2) rw- anon@? account maywrite anon_vma=?"]);
    let (_, l) = kernel("map 0 2 r-- anon\nprotect 0 2 rw-");
    assert_eq!(l, ["[0,2) rw- anon@? account maywrite anon_vma=?"]);
}

#[test]
fn account_is_kept_by_mprotect_read_only_on_a_private_file_mapping() {
    if !common::kernel_available() {
        return;
    }
    let (_, l) = kernel("map 4 2 rw- file=0@0\nprotect 4 2 r--");
    assert_eq!(l, ["[4,6) r-- file=0@0 account maywrite anon_vma=?"]);
}

#[test]
fn noreserve_gives_nr_and_mprotect_writable_adds_no_account() {
    if !common::kernel_available() {
        return;
    }
    let (_, l) = kernel("map 0 2 r-- anon-noreserve\nprotect 0 2 rw-\nmap 4 2 rw- shmem\nprotect 4 2 r--\nprotect 4 2 rw-");
    assert_eq!(
        l,
        [
            "[0,2) rw- anon@? noreserve maywrite anon_vma=?",
            "[4,6) rw- shmem#0@0 shared mayshare maywrite",
        ]
    );
}

#[test]
fn account_differences_split_otherwise_equal_anon_neighbours() {
    if !common::kernel_available() {
        return;
    }
    // [0,2) keeps VM_ACCOUNT from mmap; [2,4) was mapped read-only and made
    // writable, which adds it back: equal flags, so they merge.
    let (_, l) = kernel("map 0 2 rw- anon\nmap 2 2 r-- anon\nprotect 2 2 rw-");
    assert_eq!(l, ["[0,4) rw- anon@? account maywrite anon_vma=?"]);
    let (_, l) = kernel("map 0 2 rw- anon\nmap 2 2 rw- anon-noreserve");
    assert_eq!(l.len(), 2, "{l:?}");
}

// ---- mmap and munmap ------------------------------------------------------------

#[test]
fn map_len_0_is_einval_for_every_kind() {
    if !common::kernel_available() {
        return;
    }
    assert_eq!(
        kernel(
            "map 0 0 rw- anon\nmap 0 0 rw- anon-noreserve\nmap 0 0 rw- shmem\nmap 0 0 rw- file=0@0\n\
             map 0 0 rw- shared-file=0@0\nmap 0 0 r-- shared-ro-file=0@0\nmap 32 0 rw- anon"
        )
        .0,
        ["EINVAL"; 7]
    );
}

#[test]
fn map_shared_ro_file_writable_is_eacces() {
    if !common::kernel_available() {
        return;
    }
    assert_eq!(kernel("map 0 2 rw- shared-ro-file=0@0").0, ["EACCES"]);
}

#[test]
fn munmap_len_0_is_einval_and_holes_are_fine() {
    if !common::kernel_available() {
        return;
    }
    let (r, l) = kernel("map 0 4 rw- anon\nunmap 0 0\nunmap 32 0\nunmap 2 10\nunmap 20 4");
    assert_eq!(r, ["ok", "EINVAL", "EINVAL", "ok", "ok"]);
    assert_eq!(l, ["[0,2) rw- anon@? account maywrite anon_vma=?"]);
}

#[test]
fn map_over_a_registered_range_is_unregistered_and_merges() {
    if !common::kernel_available() {
        return;
    }
    let (_, l) = kernel("map 0 8 rw- anon\nregister 0 2 4 missing\nmap 2 4 rw- anon");
    assert_eq!(l, ["[0,8) rw- anon@? account maywrite anon_vma=?"]);
}

#[test]
fn adjacent_private_memfd_mappings_with_linear_pgoff_merge() {
    if !common::kernel_available() {
        return;
    }
    let (_, l) = kernel(
        "map 0 2 rw- file=0@10\nmap 2 2 rw- file=0@12\nmap 4 2 rw- file=0@15\n\
         map 6 2 rw- shared-file=1@0\nmap 8 2 rw- shared-file=1@2\nmap 10 2 rw- file=1@4",
    );
    assert_eq!(
        l,
        [
            "[0,4) rw- file=0@10 account maywrite anon_vma=?",
            "[4,6) rw- file=0@15 account maywrite anon_vma=?",
            "[6,10) rw- file=1@0 shared mayshare maywrite",
            "[10,12) rw- file=1@4 account maywrite anon_vma=?",
        ]
    );
}

#[test]
fn pieces_of_one_shmem_mmap_re_merge_but_two_mmaps_never_do() {
    if !common::kernel_available() {
        return;
    }
    let (_, l) = kernel("map 0 10 rw- shmem\nprotect 3 3 r--");
    assert_eq!(
        l,
        [
            "[0,3) rw- shmem#0@0 shared mayshare maywrite",
            "[3,6) r-- shmem#0@3 shared mayshare maywrite",
            "[6,10) rw- shmem#0@6 shared mayshare maywrite",
        ]
    );
    let (_, l) = kernel(
        "map 0 10 rw- shmem\nprotect 3 3 r--\nprotect 3 3 rw-\nregister 0 2 2 missing\nunregister 0 2 2\nmap 10 4 rw- shmem",
    );
    assert_eq!(
        l,
        [
            "[0,10) rw- shmem#0@0 shared mayshare maywrite",
            "[10,14) rw- shmem#1@0 shared mayshare maywrite",
        ]
    );
}

#[test]
fn adjacent_anon_mappings_merge_whatever_order_they_were_made_in() {
    if !common::kernel_available() {
        return;
    }
    // Anonymous vm_pgoff is the address at mmap time (smaps does not show
    // it: the kernel backend prints `anon@?`), so two adjacent private
    // anonymous mappings with equal flags merge, whatever order they were
    // made in. What is observed here is the boundaries: one VMA.
    let (_, l) =
        kernel("map 4 4 rw- anon\nmap 0 4 rw- anon\nmap 8 4 rw- anon\nunmap 2 2\nmap 2 2 rw- anon");
    assert_eq!(l, ["[0,12) rw- anon@? account maywrite anon_vma=?"]);
}
