//! What a lexical model sees and an embedding blurs: whether the item's text holds the query's
//! own words. A pooled MiniLM embedding places "iphone 12 case" near "iphone 13 case"; the
//! words say one of them is the item asked for. The students' heads read these beside the
//! embeddings, and the teacher's prompt can name the words the item lacks.

use std::collections::HashSet;

use crate::domain::prompt::PASSAGE_FIELD_SEPARATOR;
use crate::domain::text::normalise;

/// How many values `features` gives a pair.
pub const WIDTH: usize = 3;

/// A word as matched: lower case, a plural's `s` dropped, so "belts" finds "belt".
fn stem(word: &str) -> &str {
    match word.strip_suffix('s') {
        Some(s) if s.len() >= 3 && !s.ends_with('s') => s,
        _ => word,
    }
}

fn words(text: &str) -> Vec<String> {
    normalise(text)
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(|w| stem(w).to_string())
        .collect()
}

/// The share of `query`'s words found among `have`; 0 for a query without words.
fn coverage(query: &[String], have: &HashSet<&str>) -> f32 {
    if query.is_empty() {
        return 0.0;
    }
    query.iter().filter(|w| have.contains(w.as_str())).count() as f32 / query.len() as f32
}

/// A pair's lexical features: the share of the query's words in the item's title (the
/// passage's first field), in its whole passage, and the share of the query's words
/// holding a digit (sizes, models, counts) that the passage lacks.
pub fn features(query: &str, passage: &str) -> [f32; WIDTH] {
    let query = words(query);
    let title = passage
        .split(PASSAGE_FIELD_SEPARATOR)
        .next()
        .unwrap_or(passage);
    let title_words = words(title);
    let passage_words = words(passage);
    let title: HashSet<&str> = title_words.iter().map(String::as_str).collect();
    let all: HashSet<&str> = passage_words.iter().map(String::as_str).collect();
    let numbers: Vec<String> = query
        .iter()
        .filter(|w| w.chars().any(|c| c.is_ascii_digit()))
        .cloned()
        .collect();
    let numbers_missing = if numbers.is_empty() {
        0.0
    } else {
        1.0 - coverage(&numbers, &all)
    };
    [
        coverage(&query, &title),
        coverage(&query, &all),
        numbers_missing,
    ]
}

/// The query's words (lower-cased, each once, in the query's order) that the item's text
/// lacks, matched as `features` matches them.
pub fn missing_words(query: &str, item_text: &str) -> Vec<String> {
    let have: HashSet<String> = words(item_text).into_iter().collect();
    let mut seen = HashSet::new();
    normalise(query)
        .split(' ')
        .filter(|w| !w.is_empty())
        .filter(|w| !have.contains(stem(w)) && seen.insert(stem(w).to_string()))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_querys_words_are_found_in_the_title_and_passage() {
        let [title, all, missing] = features(
            "Leather Belts 1.75",
            "BBBelts Men Leather Belt | brand: BBBelts | 1.75 inch wide",
        );
        assert_eq!(title, 2.0 / 4.0, "leather and belt of leather, belt, 1, 75");
        assert_eq!(all, 1.0);
        assert_eq!(missing, 0.0);
        let [title, all, missing] = features("iphone 12 case", "Apple iPhone 13 Case | clear");
        assert_eq!(title, 2.0 / 3.0);
        assert_eq!(all, 2.0 / 3.0);
        assert_eq!(missing, 1.0, "the model number is not there");
        assert_eq!(features("", "anything"), [0.0, 0.0, 0.0]);
    }

    #[test]
    fn the_words_an_item_lacks_are_named_once_lower_cased() {
        assert_eq!(
            missing_words("iPhone 12 cases 12", "Apple iPhone 13 Case\nBrand: Apple"),
            ["12"]
        );
        assert!(missing_words("leather belts", "Men's Leather Belt").is_empty());
        assert!(missing_words("", "anything").is_empty());
    }
}
