//! Hebrew numerals (gematriya) for day and year display, e.g. 15 → ט״ו, 785 → תשפ״ה.

/// Render `n` (1–999, thousands dropped) as Hebrew letters with geresh / gershayim.
pub fn gematriya(n: u32) -> String {
    const ONES: [&str; 10] = ["", "א", "ב", "ג", "ד", "ה", "ו", "ז", "ח", "ט"];
    const TENS: [&str; 10] = ["", "י", "כ", "ל", "מ", "נ", "ס", "ע", "פ", "צ"];
    let mut n = n % 1000;
    let mut letters: Vec<&str> = Vec::new();
    while n >= 400 {
        letters.push("ת");
        n -= 400;
    }
    match n / 100 {
        1 => letters.push("ק"),
        2 => letters.push("ר"),
        3 => letters.push("ש"),
        _ => {}
    }
    n %= 100;
    if n == 15 {
        letters.extend(["ט", "ו"]);
    } else if n == 16 {
        letters.extend(["ט", "ז"]);
    } else {
        letters.push(TENS[(n / 10) as usize]);
        letters.push(ONES[(n % 10) as usize]);
    }
    let letters: Vec<&str> = letters.into_iter().filter(|s| !s.is_empty()).collect();
    match letters.len() {
        0 => String::new(),
        1 => format!("{}׳", letters[0]),
        len => {
            let mut s: String = letters[..len - 1].concat();
            s.push('״');
            s.push_str(letters[len - 1]);
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::gematriya;

    #[test]
    fn numbers() {
        assert_eq!(gematriya(15), "ט״ו");
        assert_eq!(gematriya(1), "א׳");
        assert_eq!(gematriya(785), "תשפ״ה");
        assert_eq!(gematriya(30), "ל׳");
    }
}
