use super::*;

fn vma(start: Page, end: Page, backing: Backing) -> Vma {
    Vma {
        start,
        end,
        prot: Prot::RW,
        backing,
        pgoff: 0,
        flags: VmFlags(VmFlags::SHARED | VmFlags::MAYSHARE | VmFlags::MAYWRITE),
        uffd: Mode::NONE,
        ctx: None,
        anon_vma: None,
    }
}

#[test]
fn shmem_objects_are_renumbered_by_first_appearance() {
    let a = Layout::new(vec![
        vma(4, 6, Backing::Shmem(77)),
        vma(0, 2, Backing::Shmem(9)),
        vma(2, 4, Backing::Shmem(77)),
    ]);
    let b = Layout::new(vec![
        vma(0, 2, Backing::Shmem(1)),
        vma(2, 4, Backing::Shmem(0)),
        vma(4, 6, Backing::Shmem(0)),
    ]);
    assert_eq!(a, b);
    assert_eq!(a.vmas()[0].backing, Backing::Shmem(0));
    assert_eq!(a.vmas()[2].backing, Backing::Shmem(1));
}

#[test]
fn many_objects_are_renumbered_past_the_short_list() {
    // 40 objects, ids falling, each mapped twice: the names count up in
    // order of first appearance, past the first 16 kept in a short list.
    let vmas: Vec<Vma> = (0..80)
        .map(|i| vma(i, i + 1, Backing::Shmem(1000 - (i as u32 % 40))))
        .collect();
    let l = Layout::new(vmas);
    for (i, v) in l.vmas().iter().enumerate() {
        assert_eq!(v.backing, Backing::Shmem(i as u32 % 40), "{}", v.start);
    }
}

#[test]
fn smaps_flags_decode_through_the_tables() {
    let d = SmapsFlags::decode("rd wr mr mw me ac um uw").unwrap();
    assert_eq!(d.prot, Prot::RW);
    assert_eq!(d.flags, VmFlags(VmFlags::ACCOUNT | VmFlags::MAYWRITE));
    assert_eq!(d.uffd, Mode(3));
    let d = SmapsFlags::decode("rd ex sh mr mw me ms nr ui").unwrap();
    assert_eq!(d.prot, Prot::from_bits(5));
    assert_eq!(d.uffd, Mode::MINOR);
    assert!(SmapsFlags::decode("rd io").unwrap_err().contains("`io`"));
    // 6.1 prints `??` for VM_LOCKONFAULT: on a locked VMA, that is it.
    assert_eq!(
        SmapsFlags::decode("rd wr mr mw me lo ?? ac").unwrap(),
        SmapsFlags::decode("rd wr mr mw me lo lf ac").unwrap()
    );
    assert!(SmapsFlags::decode("rd wr ??").is_err());
    assert!(SmapsFlags::decode("rd wr lo lf ??").is_err());
    // Soft-dirty (Debian's kernels) decides nothing.
    assert_eq!(
        SmapsFlags::decode("rd wr mr mw me ac sd").unwrap(),
        SmapsFlags::decode("rd wr mr mw me ac").unwrap()
    );
    let d = SmapsFlags::decode("rd wr dc wf dd hg nh mg").unwrap();
    assert_eq!(
        d.flags.names(),
        [
            "dontcopy",
            "wipeonfork",
            "dontdump",
            "hugepage",
            "nohugepage",
            "mergeable"
        ]
    );
}

#[test]
fn text_form_round_trips() {
    for s in [
        "[0,5) rw- anon@0 account maywrite uffd=missing ctx=0",
        "[3,9) r-- shmem#1@4 shared mayshare maywrite",
        "[3,9) r-x file=2@7 mayshare uffd=missing+wp ctx=3",
    ] {
        let (v, u) = Vma::parse(s).unwrap();
        assert!(u.is_empty());
        assert_eq!(v.to_string(), s);
    }
    let (v, u) = Vma::parse("[2,4) rw- anon@? account maywrite").unwrap();
    assert_eq!(u, Unobserved::ANON_PGOFF);
    assert_eq!(
        v.display(u).to_string(),
        "[2,4) rw- anon@? account maywrite"
    );
    assert!(Vma::parse("[2,4) rw- file=1@? maywrite").is_err());
    assert_eq!(Vma::parse("[0,1) rw- anon@0 bogus").unwrap_err().0, 17);
}

#[test]
fn unobserved_fields_are_unknown_not_equal() {
    let mut v = vma(0, 4, Backing::Anon);
    v.pgoff = 7;
    let model = Layout::new(vec![v]);
    let kernel = Layout::observed(vec![v], Unobserved::ANON_PGOFF);
    assert_ne!(
        model, kernel,
        "a blanked field is not equal by construction"
    );
    assert!(model.agrees_with(&kernel));
    assert_eq!(
        kernel.lines(),
        ["[0,4) rw- anon@? shared mayshare maywrite"]
    );
    assert_eq!(kernel.to_json()[0]["pgoff"], serde_json::Value::Null);
    let mut w = v;
    w.prot = Prot::NONE;
    assert!(
        !Layout::new(vec![w]).agrees_with(&kernel),
        "observed fields still count"
    );
    // Two anon neighbours whose pgoffs are unknown are not judged mergeable.
    let (a, b) = (vma(0, 2, Backing::Anon), vma(2, 4, Backing::Anon));
    let mut b2 = b;
    b2.pgoff = 2;
    assert!(a.mergeable_with(&b2));
    assert!(!a.surely_mergeable_with(&b2, Unobserved::ANON_PGOFF));
    assert!(a.surely_mergeable_with(&b2, Unobserved::NONE));
}

#[test]
fn display_is_the_expect_form() {
    let mut v = vma(0, 5, Backing::Anon);
    v.flags = VmFlags(VmFlags::ACCOUNT | VmFlags::MAYWRITE);
    v.uffd = Mode::MISSING;
    v.ctx = Some(0);
    assert_eq!(
        v.to_string(),
        "[0,5) rw- anon@0 account maywrite uffd=missing ctx=0"
    );
}

#[test]
fn ptes_text_and_parse_are_inverses() {
    for text in ["none", "0-3:a 5:f+wp 7:a=8", "1:w 2:z 3:p 4-5:a+wp=9"] {
        let ptes = parse_ptes(text).unwrap();
        assert_eq!(ptes_text(&ptes), text);
    }
    let marker = parse_ptes("3:w").unwrap();
    assert_eq!(marker, vec![(3, PteState::MARKER)]);
    for bad in ["3", "x:a", "3:q", "3:ab", "5-2:a", "3:a=x"] {
        assert!(parse_ptes(bad).is_err(), "{bad}");
    }
}

#[test]
fn layout_keeps_the_last_entry_of_a_page_and_hides_unobserved_ptes() {
    let l = Layout::new(vec![]).with_ptes(vec![
        (4, PteState::page(PteKind::Anon)),
        (2, PteState::MARKER),
        (4, PteState::page(PteKind::Zero)),
    ]);
    assert_eq!(ptes_text(l.ptes()), "2:w 4:z");
    assert_eq!(l.wp_pages(), vec![2]);
    assert_eq!(l.pte(4), Some(PteState::page(PteKind::Zero)));
    assert!(l.project(Unobserved::PTES).ptes().is_empty());
}
