//! The error accumulator: collect every independent error of a phase, then stop.

use proc_macro2::Span;
use std::fmt::Display;

/// Errors of one expansion. Must be consumed with [`Diagnostics::finish`]: dropping it with
/// errors unreported is a bug in the macro (as serde_derive's `Ctxt`).
#[derive(Default)]
pub struct Diagnostics {
    errors: Option<syn::Error>,
    finished: bool,
}

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an error at `span`.
    pub fn error(&mut self, span: Span, message: impl Display) {
        self.push(syn::Error::new(span, message));
    }

    /// Records an error spanning `tokens`.
    pub fn error_spanned(&mut self, tokens: impl quote::ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    pub fn push(&mut self, err: syn::Error) {
        match &mut self.errors {
            Some(e) => e.combine(err),
            None => self.errors = Some(err),
        }
    }

    pub fn has_errors(&self) -> bool {
        self.errors.is_some()
    }

    /// Ends the phase: all errors so far, combined.
    pub fn finish(mut self) -> Result<(), syn::Error> {
        self.finished = true;
        match self.errors.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Diagnostics {
    fn drop(&mut self) {
        if !self.finished && self.errors.is_some() && !std::thread::panicking() {
            panic!("flow-macros: diagnostics dropped without being reported");
        }
    }
}

/// Tokens as a user would write them (`Vec<String>`, not `Vec < String >`), for messages.
pub fn tidy(tokens: &impl quote::ToTokens) -> String {
    let mut s = quote::quote!(#tokens).to_string();
    for (from, to) in [
        (" < ", "<"),
        ("< ", "<"),
        (" <", "<"),
        (" >", ">"),
        (" ,", ","),
        ("& ", "&"),
        (" :: ", "::"),
        (" : ", ": "),
        ("( ", "("),
        (" )", ")"),
    ] {
        s = s.replace(from, to);
    }
    s
}

/// The closest candidate to `word`, if close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = levenshtein(word, c);
        if d <= (word.len().max(c.len()) / 3).max(1) && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Edit distance where swapping two adjacent letters (`wrods`) is one edit, as in most typos
/// (optimal string alignment).
fn levenshtein(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // d[i][j]: distance between a[..i] and b[..j].
    let mut d = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_words_only() {
        assert_eq!(did_you_mean("mapp", ["map", "filter"]), Some("map"));
        assert_eq!(did_you_mean("keyby", ["key_by", "reduce"]), Some("key_by"));
        assert_eq!(did_you_mean("frobnicate", ["map", "filter"]), None);
        assert_eq!(did_you_mean("wrods", ["words", "lines"]), Some("words"));
    }
}
