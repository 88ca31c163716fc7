//! Reading the retained messages: one by topic, or a page of summaries in topic order (AWS's
//! `GetRetainedMessage` and `ListRetainedMessages`).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::Broker;
use crate::auth::Authorizer;
use crate::message::RetainedMessage;
use crate::persist::Persistence;
use crate::retained::{RetainedPage, RetainedSummary};
use crate::service::ReservedTopicService;

/// A candidate for a page, ordered by its topic (one retained message per topic, so no ties).
struct ByTopic<'a>(&'a RetainedMessage);

impl ByTopic<'_> {
    fn topic(&self) -> &str {
        self.0.message.topic.as_str()
    }
}

impl PartialEq for ByTopic<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.topic() == other.topic()
    }
}

impl Eq for ByTopic<'_> {}

impl PartialOrd for ByTopic<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByTopic<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.topic().cmp(other.topic())
    }
}

impl<A: Authorizer, R: ReservedTopicService, P: Persistence> Broker<A, R, P> {
    /// The retained message on exactly `topic`, with the time it was set (AWS's
    /// `GetRetainedMessage`).
    pub fn retained(&self, topic: &str) -> Option<&RetainedMessage> {
        self.retained.get(topic)
    }

    /// A page of retained messages (AWS's `ListRetainedMessages`): the summaries of the first
    /// `max` topics, in ascending byte order, that sort strictly after `after` (all topics when
    /// `None`). When more remain, [`RetainedPage::next`] is the last topic returned: pass it as
    /// `after` for the next page. A `max` of 0 is taken as 1, so paging always moves on.
    ///
    /// One pass over the store keeping the `max` smallest candidates: O(n log max).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use iot_broker_core::{Broker, profile::Profile, topic::TopicName};
    /// use iot_broker_core::codec::QoS;
    ///
    /// let mut broker = Broker::builder(Profile::aws_iot()).build(0);
    /// for (i, topic) in ["c", "a", "b"].into_iter().enumerate() {
    ///     let topic = TopicName::new(topic, broker.profile()).unwrap();
    ///     broker.publish(topic, Bytes::from_static(b"on"), QoS::AtMostOnce, true, 1000 + i as u64);
    /// }
    /// let first = broker.list_retained(None, 2);
    /// let topics: Vec<&str> = first.topics.iter().map(|s| s.topic.as_str()).collect();
    /// assert_eq!(topics, ["a", "b"]);
    /// assert_eq!(first.next.as_deref(), Some("b"));
    /// let rest = broker.list_retained(first.next.as_deref(), 2);
    /// assert_eq!((rest.topics[0].topic.as_str(), rest.topics[0].modified_ms), ("c", 1000));
    /// assert_eq!(rest.next, None);
    /// ```
    pub fn list_retained(&self, after: Option<&str>, max: usize) -> RetainedPage {
        let max = max.max(1);
        // The smallest `max + 1` candidates: the extra one tells whether more remain.
        let keep = max.saturating_add(1);
        let mut heap: BinaryHeap<ByTopic<'_>> =
            BinaryHeap::with_capacity(keep.min(self.retained.len()));
        for retained in self.retained.values() {
            let topic = retained.message.topic.as_str();
            if after.is_some_and(|after| topic <= after) {
                continue;
            }
            if heap.len() < keep {
                heap.push(ByTopic(retained));
            } else if let Some(mut largest) = heap.peek_mut() {
                if topic < largest.topic() {
                    // Replaces the largest kept; the heap settles when `largest` drops.
                    *largest = ByTopic(retained);
                }
            }
        }
        let more = heap.len() > max;
        if more {
            heap.pop();
        }
        let topics: Vec<RetainedSummary> = heap
            .into_sorted_vec()
            .into_iter()
            .map(|ByTopic(retained)| RetainedSummary {
                topic: retained.message.topic.as_str().to_owned(),
                payload_size: retained.message.payload.len(),
                qos: retained.message.qos,
                modified_ms: retained.modified_ms,
            })
            .collect();
        let next = if more {
            topics.last().map(|last| last.topic.clone())
        } else {
            None
        };
        RetainedPage { topics, next }
    }
}
