//! A JSON array of which only the first `N` items are ever built. The rest
//! are skipped (checked as JSON, never allocated) and only counted, so a
//! 25 MB body of `"",` cannot become millions of strings before a count
//! check refuses it.

use serde::de::{Deserialize, Deserializer, IgnoredAny, SeqAccess, Visitor};
use std::fmt;
use std::marker::PhantomData;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CappedList<T, const N: usize> {
    /// At most `N` items, in order.
    pub kept: Vec<T>,
    /// How many items the array held in all.
    pub total: usize,
}

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for CappedList<T, N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(CappedVisitor::<T, N>(PhantomData))
    }
}

struct CappedVisitor<T, const N: usize>(PhantomData<T>);

impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for CappedVisitor<T, N> {
    type Value = CappedList<T, N>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut kept = Vec::new();
        while kept.len() < N {
            match seq.next_element::<T>()? {
                Some(item) => kept.push(item),
                None => {
                    let total = kept.len();
                    return Ok(CappedList { kept, total });
                }
            }
        }
        let mut total = kept.len();
        while seq.next_element::<IgnoredAny>()?.is_some() {
            total += 1;
        }
        Ok(CappedList { kept, total })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_items_and_counts_the_rest() {
        let small: CappedList<String, 3> = serde_json::from_str(r#"["a","b"]"#).unwrap();
        assert_eq!((small.kept.len(), small.total), (2, 2));
        let body = format!("[{}\"\"]", "\"\",".repeat(200_000));
        let huge: CappedList<String, 3> = serde_json::from_str(&body).unwrap();
        assert_eq!((huge.kept.len(), huge.total), (3, 200_001));
        assert!(serde_json::from_str::<CappedList<String, 3>>("\"not a list\"").is_err());
        assert!(serde_json::from_str::<CappedList<String, 3>>("[1]").is_err());
    }
}
