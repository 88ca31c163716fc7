//! The authorizer's answers about one connection, remembered per topic: whether it may publish
//! there (with and without RETAIN) and whether it may receive from there.
//!
//! Bounded: at most [`AUTH_CACHE_TOPICS`] topics per connection. When full, the topic cached
//! first is forgotten to make room (first in, first out). Valid for one [`AuthVersion`]: when the
//! authorizer's [`generation`](crate::auth::Authorizer::generation) or the broker's count of
//! [`authorizer_mut`](crate::Broker::authorizer_mut) calls differs from the one the answers were
//! given under, they are all dropped before the next question. An idle connection that never
//! asked holds one null pointer.

use std::collections::HashMap;

/// Most topics whose answers one connection keeps.
pub(crate) const AUTH_CACHE_TOPICS: usize = 64;

/// What the answers were given under: the authorizer's generation and the broker's count of
/// mutable borrows of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
#[derive(Debug, Clone, Copy, Default)]
struct Answers {
    publish: Option<bool>,
    publish_retained: Option<bool>,
    receive: Option<bool>,
    /// Insertion order, for first-in-first-out eviction.
    stamp: u64,
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

#[derive(Debug)]
struct Known {
    version: AuthVersion,
    topics: HashMap<Box<str>, Answers>,
    next_stamp: u64,
}

/// One connection's cached answers (allocated at the first question).
#[derive(Debug, Default)]
pub(crate) struct AuthCache {
    known: Option<Box<Known>>,
}

impl AuthCache {
    /// The answer to `question` about `topic` under `version`: cached, or `ask`ed and
    /// remembered.
    pub fn answer(
        &mut self,
        version: AuthVersion,
        topic: &str,
        question: Question,
        ask: impl FnOnce() -> bool,
    ) -> bool {
        let known = self.known.get_or_insert_with(|| {
            Box::new(Known {
                version,
                topics: HashMap::new(),
                next_stamp: 0,
            })
        });
        if known.version != version {
            known.version = version;
            known.topics.clear();
        }
        if let Some(answers) = known.topics.get_mut(topic) {
            let slot = answers.slot(question);
            return *slot.get_or_insert_with(ask);
        }
        let allowed = ask();
        if known.topics.len() >= AUTH_CACHE_TOPICS {
            let oldest = known.topics.values().map(|a| a.stamp).min();
            known.topics.retain(|_, a| Some(a.stamp) != oldest);
        }
        let mut answers = Answers {
            stamp: known.next_stamp,
            ..Answers::default()
        };
        known.next_stamp = known.next_stamp.wrapping_add(1);
        *answers.slot(question) = Some(allowed);
        known.topics.insert(topic.into(), answers);
        allowed
    }

    /// Topics with a cached answer.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.known.as_ref().map_or(0, |k| k.topics.len())
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
        assert!(cache.answer(V0, "a", Question::Receive, || ask(true)));
        assert!(cache.answer(V0, "a", Question::Receive, || ask(false)));
        assert_eq!(asked.get(), 1);
        // Another question about the same topic is asked once, then known.
        assert!(!cache.answer(V0, "a", Question::Publish { retain: true }, || ask(false)));
        assert!(!cache.answer(V0, "a", Question::Publish { retain: true }, || ask(true)));
        assert!(cache.answer(V0, "a", Question::Publish { retain: false }, || ask(true)));
        assert_eq!(asked.get(), 3);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_new_version_drops_every_answer() {
        let mut cache = AuthCache::default();
        assert!(cache.answer(V0, "a", Question::Receive, || true));
        let v1 = AuthVersion {
            generation: 1,
            ..V0
        };
        assert!(!cache.answer(v1, "a", Question::Receive, || false));
        let e1 = AuthVersion { epoch: 1, ..v1 };
        assert!(cache.answer(e1, "a", Question::Receive, || true));
    }

    #[test]
    fn full_cache_forgets_the_first_topic_cached() {
        let mut cache = AuthCache::default();
        for i in 0..AUTH_CACHE_TOPICS {
            cache.answer(V0, &format!("t/{i}"), Question::Receive, || true);
        }
        assert_eq!(cache.len(), AUTH_CACHE_TOPICS);
        cache.answer(V0, "new", Question::Receive, || true);
        assert_eq!(cache.len(), AUTH_CACHE_TOPICS);
        let asked = Cell::new(false);
        cache.answer(V0, "t/0", Question::Receive, || {
            asked.set(true);
            true
        });
        assert!(asked.get(), "t/0 was the oldest and went");
        let asked = Cell::new(false);
        cache.answer(V0, "t/2", Question::Receive, || {
            asked.set(true);
            true
        });
        assert!(!asked.get(), "t/2 is still known");
    }
}
