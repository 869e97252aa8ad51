//! What an isolate remembers of the credentials it refused, so that a flood
//! of bad ones costs as little as possible: a key just refused is refused
//! again from memory (no call to its client's object), and a source that
//! keeps presenting bad keys is slowed down before any storage is asked.
//! Keys admitted a moment ago are remembered too, so that a shop's server or
//! a shopper sharing an address with whoever floods it (a NAT, a mobile
//! carrier's shared address) keeps working while the flood is slowed.
//! Memory only, per isolate and bounded: a refusal must never cost a write.

use std::collections::HashMap;

/// A refused key is refused from memory for this long (a key revoked a
/// moment ago stays refused; a key never valid has nothing to lose).
pub const REFUSAL_MEMORY_MS: u64 = 60_000;
const WINDOW_MS: u64 = 60_000;
/// Bounds on what an isolate keeps (a few hundred KB at most).
const MAX_ENTRIES: usize = 4096;

#[derive(Default)]
pub struct Refusals {
    /// Key hash → until when it is refused from memory.
    keys: HashMap<String, u64>,
    /// Source → (window start, bad credentials in it).
    sources: HashMap<String, (u64, u32)>,
    /// Key hash → until when it counts as just admitted.
    admitted: HashMap<String, u64>,
}

impl Refusals {
    pub fn is_refused(&self, key_hash: &str, now: u64) -> bool {
        self.keys.get(key_hash).is_some_and(|until| *until > now)
    }

    /// Remembers a refused key and counts it against its source.
    pub fn refused(&mut self, key_hash: &str, source: &str, now: u64) {
        prune(&mut self.keys, |until| *until > now);
        self.keys.insert(key_hash.to_string(), now + REFUSAL_MEMORY_MS);
        self.admitted.remove(key_hash);
        self.count(source, now);
    }

    /// Remembers a key its client's object (or D1) just accepted.
    /// Every admitted request calls this: a key already remembered is
    /// refreshed in place, without allocating.
    pub fn admitted(&mut self, key_hash: &str, now: u64) {
        if let Some(until) = self.admitted.get_mut(key_hash) {
            *until = now + REFUSAL_MEMORY_MS;
            return;
        }
        prune(&mut self.admitted, |until| *until > now);
        self.admitted.insert(key_hash.to_string(), now + REFUSAL_MEMORY_MS);
    }

    /// Whether `key_hash` was accepted within the last minute (and not refused since).
    pub fn recently_admitted(&self, key_hash: &str, now: u64) -> bool {
        self.admitted.get(key_hash).is_some_and(|until| *until > now)
    }

    /// Counts a bad credential (malformed or refused) against its source.
    pub fn count(&mut self, source: &str, now: u64) {
        prune(&mut self.sources, |(start, _)| now < start + WINDOW_MS);
        let entry = self.sources.entry(source.to_string()).or_insert((now, 0));
        if now >= entry.0 + WINDOW_MS {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// Seconds until `source` may present credentials again, when it has
    /// presented too many bad ones this minute.
    pub fn throttled(&self, source: &str, now: u64, per_minute: u32) -> Option<u64> {
        let (start, count) = self.sources.get(source)?;
        (now < start + WINDOW_MS && *count >= per_minute).then(|| (start + WINDOW_MS - now).div_ceil(1000))
    }
}

/// Drops expired entries when the map is full; if none expired, the whole
/// map (an attacker filling it only resets what it was tracking).
fn prune<V>(map: &mut HashMap<String, V>, live: impl Fn(&V) -> bool) {
    if map.len() < MAX_ENTRIES {
        return;
    }
    map.retain(|_, v| live(v));
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_key_is_refused_from_memory_for_a_minute() {
        let mut r = Refusals::default();
        r.refused("k", "1.2.3.4", 1_000);
        assert!(r.is_refused("k", 1_000 + REFUSAL_MEMORY_MS - 1));
        assert!(!r.is_refused("k", 1_000 + REFUSAL_MEMORY_MS));
        assert!(!r.is_refused("other", 1_000));
    }

    #[test]
    fn a_source_presenting_many_bad_keys_is_slowed_until_the_minute_ends() {
        let mut r = Refusals::default();
        let max = 30;
        for i in 0..max - 1 {
            r.count("1.2.3.4", 10_000 + u64::from(i));
        }
        assert_eq!(r.throttled("1.2.3.4", 10_100, max), None);
        r.count("1.2.3.4", 10_100);
        assert_eq!(r.throttled("1.2.3.4", 10_100, max), Some(60));
        assert_eq!(r.throttled("5.6.7.8", 10_100, max), None, "other sources are unaffected");
        assert_eq!(r.throttled("1.2.3.4", 10_000 + WINDOW_MS, max), None);
    }

    #[test]
    fn a_key_admitted_a_moment_ago_is_remembered_until_it_is_refused() {
        let mut r = Refusals::default();
        r.admitted("good", 1_000);
        assert!(r.recently_admitted("good", 1_000 + REFUSAL_MEMORY_MS - 1));
        assert!(!r.recently_admitted("good", 1_000 + REFUSAL_MEMORY_MS));
        assert!(!r.recently_admitted("other", 1_000));
        // Revoked meanwhile: the next refusal ends the memory of it at once.
        r.refused("good", "1.2.3.4", 2_000);
        assert!(!r.recently_admitted("good", 2_000));
    }

    #[test]
    fn memory_stays_bounded() {
        let mut r = Refusals::default();
        for i in 0..(MAX_ENTRIES * 2) {
            r.refused(&format!("k{i}"), &format!("s{i}"), 1_000);
            r.admitted(&format!("a{i}"), 1_000);
        }
        assert!(r.keys.len() <= MAX_ENTRIES && r.sources.len() <= MAX_ENTRIES && r.admitted.len() <= MAX_ENTRIES);
    }
}
