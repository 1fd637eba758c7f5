//! "Did you mean" suggestions for misspelt keys, names and values.

/// The candidate closest to `input`, if one is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let input_l = input.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&input_l, &c.to_ascii_lowercase()), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn finds_typos_only() {
        let keys = ["platforms", "registries", "tags"];
        assert_eq!(did_you_mean("platfroms", keys), Some("platforms"));
        assert_eq!(did_you_mean("registry", keys), Some("registries"));
        assert_eq!(did_you_mean("zzz", keys), None);
    }
}
