//! Near misses, for did-you-mean suggestions: a mistyped verb (`gte`), a mistyped ACR
//! login server (`myacr.azureccr.io`, `myacr.azurecr.com`). Pure functions, no I/O.

/// Levenshtein distance, with adjacent transpositions counted as one edit.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len() > 64 {
        return usize::MAX;
    }
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("get", "get"), 0);
        assert_eq!(
            edit_distance("gte", "get"),
            1,
            "a transposition is one edit"
        );
        assert_eq!(edit_distance("azurecr.com", "azurecr.io"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance(&"x".repeat(65), "x"), usize::MAX);
    }
}
