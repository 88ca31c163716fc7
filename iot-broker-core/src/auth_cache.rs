//! The authorizer's answers about one connection, remembered per topic: whether it may publish
//! there (with and without RETAIN) and whether it may receive from there.
//!
//! Bounded: at most [`AUTH_CACHE_TOPICS`] topics per connection. When a new topic finds the
//! cache full, the cache is emptied and refills (O(1) amortized; a connection that cycles
//! through more topics than that is asked about each, as without a cache). Valid for one
//! [`AuthVersion`]: when the authorizer's [`generation`](crate::auth::Authorizer::generation)
//! or the broker's count of [`authorizer_mut`](crate::Broker::authorizer_mut) calls differs from
//! the one the answers were given under, they are all dropped before the next question.
//!
//! A lookup has to cost less than the policy evaluation it saves, so entries are keyed by a
//! small multiplicative hash of the topic (computed once per question) and the topic itself is
//! compared only on a hash hit; two topics with one hash share an entry, the newer replacing
//! the older, so an answer is never given for the wrong topic. With at most 64 keys, even
//! topics chosen to collide cost a bounded probe. A connection that never asked holds an
//! empty map (no allocation).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Most topics whose answers one connection keeps.
pub(crate) const AUTH_CACHE_TOPICS: usize = 64;

/// What the answers were given under: the authorizer's generation and the broker's count of
/// mutable borrows of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct AuthVersion {
    pub generation: u64,
    pub epoch: u64,
}

/// A question about one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Question {
    /// `Authorizer::publish` with this RETAIN flag.
    Publish { retain: bool },
    /// `Authorizer::receive`.
    Receive,
}

/// The answers known for one topic.
#[derive(Debug)]
struct Answers {
    topic: Box<str>,
    publish: Option<bool>,
    publish_retained: Option<bool>,
    receive: Option<bool>,
}

impl Answers {
    fn slot(&mut self, question: Question) -> &mut Option<bool> {
        match question {
            Question::Publish { retain: false } => &mut self.publish,
            Question::Publish { retain: true } => &mut self.publish_retained,
            Question::Receive => &mut self.receive,
        }
    }
}

/// A multiply-rotate hash over 8-byte words: a few cycles for a topic name. Computed once per
/// message and kept with each queued delivery, so a fan-out hashes its topic once.
#[inline]
pub(crate) fn topic_hash(topic: &str) -> u64 {
    /// An odd constant with well-mixed bits (2^64 divided by the golden ratio).
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mix = |state: u64, word: u64| (state.rotate_left(5) ^ word).wrapping_mul(K);
    let bytes = topic.as_bytes();
    let mut chunks = bytes.chunks_exact(8);
    let mut state = bytes.len() as u64;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        state = mix(state, u64::from_le_bytes(word));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        if let Some(head) = word.get_mut(..rest.len()) {
            head.copy_from_slice(rest);
        }
        state = mix(state, u64::from_le_bytes(word));
    }
    state
}

/// Passes a [`topic_hash`] through: the map's keys are hashes already.
#[derive(Debug, Default, Clone, Copy)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed here; fold anything else in rather than ignore it.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// One connection's cached answers.
#[derive(Debug, Default)]
pub(crate) struct AuthCache {
    version: AuthVersion,
    topics: HashMap<u64, Answers, BuildHasherDefault<PassThrough>>,
}

impl AuthCache {
    /// The answer to `question` about `topic` (whose [`topic_hash`] is `hash`) under
    /// `version`: cached, or `ask`ed and remembered.
    pub fn answer(
        &mut self,
        version: AuthVersion,
        topic: &str,
        hash: u64,
        question: Question,
        ask: impl FnOnce() -> bool,
    ) -> bool {
        if self.version != version {
            self.version = version;
            self.topics.clear();
        }
        if let Some(answers) = self.topics.get_mut(&hash) {
            if &*answers.topic == topic {
                return *answers.slot(question).get_or_insert_with(ask);
            }
        }
        let allowed = ask();
        if self.topics.len() >= AUTH_CACHE_TOPICS && !self.topics.contains_key(&hash) {
            self.topics.clear();
        }
        let mut answers = Answers {
            topic: topic.into(),
            publish: None,
            publish_retained: None,
            receive: None,
        };
        *answers.slot(question) = Some(allowed);
        self.topics.insert(hash, answers);
        allowed
    }

    /// Topics with a cached answer.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.topics.len()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    const V0: AuthVersion = AuthVersion {
        generation: 0,
        epoch: 0,
    };

    #[test]
    fn a_cached_answer_is_not_asked_again() {
        let mut cache = AuthCache::default();
        let asked = Cell::new(0);
        let ask = |answer| {
            asked.set(asked.get() + 1);
            answer
        };
        assert!(cache.answer(V0, "a", topic_hash("a"), Question::Receive, || ask(true)));
        assert!(cache.answer(V0, "a", topic_hash("a"), Question::Receive, || ask(false)));
        assert_eq!(asked.get(), 1);
        // Another question about the same topic is asked once, then known.
        assert!(!cache.answer(
            V0,
            "a",
            topic_hash("a"),
            Question::Publish { retain: true },
            || ask(false)
        ));
        assert!(!cache.answer(
            V0,
            "a",
            topic_hash("a"),
            Question::Publish { retain: true },
            || ask(true)
        ));
        assert!(cache.answer(
            V0,
            "a",
            topic_hash("a"),
            Question::Publish { retain: false },
            || ask(true)
        ));
        assert_eq!(asked.get(), 3);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_new_version_drops_every_answer() {
        let mut cache = AuthCache::default();
        assert!(cache.answer(V0, "a", topic_hash("a"), Question::Receive, || true));
        let v1 = AuthVersion {
            generation: 1,
            ..V0
        };
        assert!(!cache.answer(v1, "a", topic_hash("a"), Question::Receive, || false));
        let e1 = AuthVersion { epoch: 1, ..v1 };
        assert!(cache.answer(e1, "a", topic_hash("a"), Question::Receive, || true));
    }

    #[test]
    fn full_cache_empties_and_refills() {
        let mut cache = AuthCache::default();
        for i in 0..AUTH_CACHE_TOPICS {
            cache.answer(
                V0,
                &format!("t/{i}"),
                topic_hash(&format!("t/{i}")),
                Question::Receive,
                || true,
            );
        }
        assert_eq!(cache.len(), AUTH_CACHE_TOPICS);
        // A known topic is answered without emptying.
        cache.answer(V0, "t/0", topic_hash("t/0"), Question::Receive, || {
            panic!("cached")
        });
        cache.answer(V0, "new", topic_hash("new"), Question::Receive, || true);
        assert_eq!(cache.len(), 1);
        let asked = Cell::new(false);
        cache.answer(V0, "t/0", topic_hash("t/0"), Question::Receive, || {
            asked.set(true);
            true
        });
        assert!(asked.get(), "t/0 went with the rest");
    }

    #[test]
    fn topics_sharing_a_hash_never_share_an_answer() {
        let mut cache = AuthCache::default();
        // Force a collision: the same key for two topics.
        cache.answer(V0, "a", topic_hash("a"), Question::Receive, || true);
        let hash = topic_hash("a");
        if let Some(answers) = cache.topics.get_mut(&hash) {
            answers.topic = "b".into(); // as if "b" had taken the slot
        }
        assert!(!cache.answer(V0, "a", topic_hash("a"), Question::Receive, || false));
        assert!(
            !cache.answer(V0, "a", topic_hash("a"), Question::Receive, || panic!(
                "cached"
            ))
        );
    }

    #[test]
    fn the_hash_tells_short_and_long_topics_apart() {
        let long = "x".repeat(300);
        let topics = [
            "",
            "a",
            "a/",
            "cars/1/speed",
            "cars/1/speed/",
            "cars/12/speed",
            &long,
        ];
        let mut hashes: Vec<u64> = topics.iter().map(|t| topic_hash(t)).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), topics.len());
    }
}
