//! Plain line diffs, for a failure's `layout diff` and the `expect layout`
//! invariant.

use uffd_vocab::{ptes_text, Layout, Unobserved};

/// A plain line diff of two layouts: ` ` common, `<` only in `a`, `>` only
/// in `b`; no colour, no header, so it survives a mail client. Compared on
/// what both observe, the uffd-wp pages as a last `uffd-wp PAGES` line
/// when both observe them and either has some.
pub fn layout_diff(a: &Layout, b: &Layout) -> String {
    let both = a.unobserved().union(b.unobserved());
    let some_ptes = !a.ptes().is_empty() || !b.ptes().is_empty();
    let lines = |l: &Layout| {
        let mut v = l.project(both).lines();
        if some_ptes && !both.contains(Unobserved::PTES) {
            v.push(format!("ptes {}", ptes_text(l.ptes())));
        }
        v
    };
    line_diff(&lines(a), &lines(b))
}

/// A longest-common-subsequence line diff; past 1,000 lines a side it
/// pairs lines by position (bounded memory).
pub fn line_diff(a: &[String], b: &[String]) -> String {
    let mut out = String::new();
    if a.len() > 1000 || b.len() > 1000 {
        for i in 0..a.len().max(b.len()) {
            match (a.get(i), b.get(i)) {
                (Some(x), Some(y)) if x == y => out.push_str(&format!(" {x}\n")),
                (x, y) => {
                    if let Some(x) = x {
                        out.push_str(&format!("<{x}\n"));
                    }
                    if let Some(y) = y {
                        out.push_str(&format!(">{y}\n"));
                    }
                }
            }
        }
        return out;
    }
    // lcs[i][j]: the LCS length of a[i..] and b[j..].
    let mut lcs = vec![vec![0u16; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!(" {}\n", a[i]));
            i += 1;
            j += 1;
        } else if j == b.len() || (i < a.len() && lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("<{}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!(">{}\n", b[j]));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_line_diff_is_plain() {
        let d = line_diff(&l(&["a", "b", "c"]), &l(&["a", "x", "c", "d"]));
        assert_eq!(d, " a\n<b\n>x\n c\n>d\n");
        assert!(!d.contains('\x1b'));
    }
}
