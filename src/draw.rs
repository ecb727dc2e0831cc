//! Layouts drawn the way the 2023 LKML thread drew them: one letter per page
//! under a column ruler, `.` for a hole, then a legend naming each letter.
//!
//! ```text
//!           1
//! 01234567890123456789
//! AAAAABBBBBBBBBBBBBBB
//! A [0,5) rw- anon@0 account maywrite uffd=missing ctx=0
//! B [5,20) rw- anon@5 account maywrite
//! ```

use std::fmt::Write;

use uffd_vocab::{Layout, Page};

/// The widest drawing; a larger arena is drawn one column per `scale` pages.
pub const MAX_COLUMNS: u64 = 128;

fn letter(i: usize) -> char {
    const LETTERS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    LETTERS.get(i).map(|&b| b as char).unwrap_or('#')
}

/// Draws `layout` over an arena of `pages` pages, each line prefixed by `indent`.
pub fn draw(layout: &Layout, pages: Page, indent: &str) -> String {
    let scale = pages.div_ceil(MAX_COLUMNS).max(1);
    let columns = pages.div_ceil(scale);
    let mut out = String::new();
    if scale > 1 {
        let _ = writeln!(out, "{indent}(one column per {scale} pages)");
    }
    // Tens ruler, then units ruler (in columns).
    let mut tens = String::new();
    let mut units = String::new();
    for c in 0..columns {
        tens.push(if c % 10 == 0 && c > 0 {
            char::from_digit(((c / 10) % 10) as u32, 10).unwrap()
        } else {
            ' '
        });
        units.push(char::from_digit((c % 10) as u32, 10).unwrap());
    }
    if columns > 10 {
        let _ = writeln!(out, "{indent}{}", tens.trim_end());
    }
    let _ = writeln!(out, "{indent}{units}");
    let mut row = String::new();
    for c in 0..columns {
        let page = c * scale;
        let ch = layout
            .vmas()
            .iter()
            .position(|v| v.start <= page && page < v.end)
            .map(letter)
            .unwrap_or('.');
        row.push(ch);
    }
    let _ = writeln!(out, "{indent}{row}");
    if layout.is_empty() {
        let _ = writeln!(out, "{indent}(no VMAs)");
    }
    for (i, v) in layout.lines().iter().enumerate() {
        let _ = writeln!(out, "{indent}{} {v}", letter(i));
    }
    if !layout.ptes().is_empty() {
        let _ = writeln!(out, "{indent}ptes {}", uffd_vocab::ptes_text(layout.ptes()));
    }
    out
}

/// The layout as one letter a page (`A`, `B`, … in address order, `.` for a
/// hole), unscaled: the form of a trace's `expect draw` line.
pub fn row(layout: &Layout, pages: Page) -> String {
    (0..pages)
        .map(|p| {
            layout
                .vmas()
                .iter()
                .position(|v| v.start <= p && p < v.end)
                .map(letter)
                .unwrap_or('.')
        })
        .collect()
}

/// Do two rows draw the same VMA boundaries and holes, whatever the letters?
/// A VMA ends where the letter changes or a hole starts.
pub fn same_boundaries(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len()
        && (0..a.len()).all(|i| {
            (a[i] == b'.') == (b[i] == b'.') && (i == 0 || (a[i] == a[i - 1]) == (b[i] == b[i - 1]))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use uffd_model::PageModel;
    use uffd_vocab::{Backend, Op};

    #[test]
    fn boundaries_compare_whatever_the_letters() {
        assert!(same_boundaries("PPPPNNNN..CC", "AAAABBBB..CC"));
        assert!(!same_boundaries("PPPPPPPP", "AAAABBBB"));
        assert!(!same_boundaries("AAAA.", "AAAAA"));
        assert!(!same_boundaries("AAA", "AAAA"));
    }

    #[test]
    fn draws_letters_under_a_ruler() {
        let mut m = PageModel::new(12);
        for l in ["map 0 4 rw- anon", "map 6 6 r-- anon"] {
            m.step(&l.parse::<Op>().unwrap()).unwrap().result.unwrap();
        }
        let d = draw(&m.layout(), 12, "");
        let lines: Vec<&str> = d.lines().collect();
        assert_eq!(lines[0], "          1");
        assert_eq!(lines[1], "012345678901");
        assert_eq!(lines[2], "AAAA..BBBBBB");
        assert_eq!(lines[3], "A [0,4) rw- anon@0 account maywrite");
    }
}
