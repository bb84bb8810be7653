//! The in-memory caches, built from their configured [`CacheLimits`] (`cache.*`): the one
//! place that turns a size and a lifetime into a moka cache, so no cache carries a literal.
//!
//! A value that knows how long it may be kept (an OAuth token, valid until its expiry) goes
//! in a cache built with [`CacheLimits::build_keeping_for`]: it leaves the cache at its own
//! time or after the configured lifetime, whichever comes first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;

use crate::config::CacheLimits;

impl CacheLimits {
    /// The configured lifetime of an entry.
    pub fn ttl(&self) -> Duration {
        Duration::from_secs(self.ttl_seconds)
    }

    /// A cache of at most `max_entries` entries, each kept `ttl_seconds` after it was stored.
    pub fn build<K, V>(&self) -> Cache<K, V>
    where
        K: std::hash::Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        Cache::builder()
            .max_capacity(self.max_entries)
            .time_to_live(self.ttl())
            .build()
    }

    /// Like [`CacheLimits::build`], and each entry also leaves when its value says
    /// ([`KeepFor`]): `ttl_seconds` is then a ceiling, never a reason to keep a value longer.
    pub fn build_keeping_for<K, V>(&self) -> Cache<K, V>
    where
        K: std::hash::Hash + Eq + Send + Sync + 'static,
        V: KeepFor + Clone + Send + Sync + 'static,
    {
        // moka expires an entry at the earlier of the cache's time to live and the entry's own.
        Cache::builder()
            .max_capacity(self.max_entries)
            .time_to_live(self.ttl())
            .expire_after(ItsOwnTime)
            .build()
    }
}

/// A value that knows how long a cache may keep it.
pub trait KeepFor {
    /// How long after it was stored the value is still good to hand out; `None` when the value
    /// does not know (the cache's configured lifetime alone applies).
    fn keep_for(&self) -> Option<Duration>;
}

impl<T: KeepFor> KeepFor for Arc<T> {
    fn keep_for(&self) -> Option<Duration> {
        (**self).keep_for()
    }
}

/// The moka expiry policy of [`CacheLimits::build_keeping_for`].
struct ItsOwnTime;

impl<K, V: KeepFor> Expiry<K, V> for ItsOwnTime {
    fn expire_after_create(&self, _key: &K, value: &V, _created_at: Instant) -> Option<Duration> {
        value.keep_for()
    }

    fn expire_after_update(
        &self,
        _key: &K,
        value: &V,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        // A replaced value brings its own lifetime; the old one's says nothing about it.
        value.keep_for()
    }
}

/// How long to keep an OAuth access token that is valid for `lifetime`: until 5 minutes
/// before it expires (or half its life, if shorter), so a token handed out never expires in
/// the middle of a call.
pub fn renewal_horizon(lifetime: Duration) -> Duration {
    let margin = Duration::from_secs(300).min(lifetime / 2);
    lifetime.saturating_sub(margin).max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_renewed_before_they_expire() {
        assert_eq!(
            renewal_horizon(Duration::from_secs(3599)),
            Duration::from_secs(3299)
        );
        assert_eq!(
            renewal_horizon(Duration::from_secs(60)),
            Duration::from_secs(30)
        );
        assert_eq!(
            renewal_horizon(Duration::from_secs(0)),
            Duration::from_secs(1)
        );
    }

    #[derive(Clone)]
    struct Token(Option<Duration>);

    impl KeepFor for Token {
        fn keep_for(&self) -> Option<Duration> {
            self.0
        }
    }

    #[test]
    fn a_value_brings_its_own_lifetime_when_stored_and_when_replaced() {
        let expiry = ItsOwnTime;
        let now = Instant::now();
        let short = Token(Some(Duration::from_secs(5)));
        assert_eq!(
            Expiry::<&str, Token>::expire_after_create(&expiry, &"key", &short, now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            Expiry::<&str, Token>::expire_after_update(
                &expiry,
                &"key",
                &Token(None),
                now,
                Some(Duration::from_secs(5))
            ),
            None,
            "a replacement that states no lifetime is not held to the old one's"
        );
    }

    #[tokio::test]
    async fn a_value_leaves_at_its_own_time_or_the_configured_one_whichever_is_first() {
        let limits = CacheLimits {
            max_entries: 10,
            ttl_seconds: 2,
        };
        let cache: Cache<&str, Token> = limits.build_keeping_for();
        cache
            .insert("short", Token(Some(Duration::from_millis(50))))
            .await;
        cache
            .insert("long", Token(Some(Duration::from_secs(3600))))
            .await;
        cache.insert("unknown", Token(None)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(cache.get("short").await.is_none(), "its own time was first");
        assert!(cache.get("long").await.is_some());
        assert!(cache.get("unknown").await.is_some());
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            cache.get("long").await.is_none(),
            "the configured lifetime is a ceiling"
        );
        assert!(cache.get("unknown").await.is_none());
    }
}
