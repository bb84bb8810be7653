//! The change feed: how every instance learns at once that something pod sessions cache has
//! changed (a PSA connection edited, rotated or deleted, a technician blocked or unblocked, an
//! MSP's settings or logo, a console session ended or a console user disabled or removed),
//! without reading the database on every pod load to find out.
//!
//! Each such change is *announced* by the store, in the transaction that makes it. An
//! announcement bumps the feed's *epoch*; what the pod caches is stamped with the epoch it was
//! read at and used only while the epoch is unchanged. Changes are rare (admin actions) and
//! pod loads are many, so any change simply makes everything cached stale.
//!
//! How announcements reach the other processes depends on the database:
//! - **PostgreSQL** (several instances): `NOTIFY vouch_changes` in the changing transaction,
//!   delivered on commit to every instance's listener ([`Store::watch_changes`]). While an
//!   instance's listener is not connected (starting, or lost), the feed is *not live* and
//!   cached reads are checked against the database on every use, as if there were no feed; a
//!   listener that reconnects makes everything stale first, since notifications sent
//!   meanwhile are lost.
//! - **SQLite in a file** (one `vouch serve`, plus `vouch` commands run beside it): each change
//!   appends one byte to `<database>-changes`; the feed compares that file's length (one
//!   `stat`, no database read) on each use. The file only grows, one byte per admin change.
//! - **SQLite in memory**: one process holds the database, so its own announcements are all
//!   there are.
//!
//! A listener whose connection dies silently (no TCP error) could miss changes until it
//! notices; cached entries still expire with their caches' lifetimes, which bounds that.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The PostgreSQL channel changes are announced on.
pub(crate) const CHANNEL: &str = "vouch_changes";

#[derive(Debug)]
pub struct ChangeFeed {
    epoch: AtomicU64,
    source: Source,
}

#[derive(Debug)]
enum Source {
    /// The database is this process's alone.
    Local,
    /// Other processes append to the stamp file; `seen` is its length when last looked at.
    StampFile { path: PathBuf, seen: AtomicU64 },
    /// PostgreSQL notifications; `live` while this instance's listener is connected.
    Notify { live: AtomicBool },
}

/// A value as read at an epoch of the feed (`None`: read while the feed was not live).
#[derive(Debug, Clone)]
pub struct Stamped<T> {
    pub value: T,
    pub epoch: Option<u64>,
}

impl<T> Stamped<T> {
    /// Whether no change was announced since it was read (`current` from
    /// [`ChangeFeed::epoch`]); `false` when either is unknown.
    pub fn is_current(&self, current: Option<u64>) -> bool {
        matches!((self.epoch, current), (Some(read), Some(now)) if read == now)
    }
}

impl ChangeFeed {
    pub(crate) fn local() -> ChangeFeed {
        ChangeFeed::with(Source::Local)
    }

    pub(crate) fn stamp_file(database_path: &str) -> ChangeFeed {
        let path = PathBuf::from(format!("{database_path}-changes"));
        let feed = ChangeFeed::with(Source::StampFile {
            seen: AtomicU64::new(0),
            path,
        });
        // Whatever the file says now is the starting point.
        feed.epoch();
        feed
    }

    pub(crate) fn notify() -> ChangeFeed {
        ChangeFeed::with(Source::Notify {
            live: AtomicBool::new(false),
        })
    }

    fn with(source: Source) -> ChangeFeed {
        ChangeFeed {
            epoch: AtomicU64::new(0),
            source,
        }
    }

    /// The epoch cached reads must carry to be used without checking the database, or `None`
    /// when changes made elsewhere might go unseen (then read afresh).
    pub fn epoch(&self) -> Option<u64> {
        match &self.source {
            Source::Local => {}
            Source::StampFile { path, seen } => {
                let length = match std::fs::metadata(path) {
                    Ok(meta) => meta.len(),
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => 0,
                    Err(err) => {
                        tracing::warn!(error = %err, "the change stamp file cannot be read");
                        return None;
                    }
                };
                if seen.swap(length, Ordering::AcqRel) != length {
                    self.bump();
                }
            }
            Source::Notify { live } => {
                if !live.load(Ordering::Acquire) {
                    return None;
                }
            }
        }
        Some(self.epoch.load(Ordering::Acquire))
    }

    fn bump(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Called after a change this process made was committed: it is stale here at once, and
    /// other processes on the same SQLite file learn it from the stamp file.
    pub(crate) fn announced_here(&self) {
        self.bump();
        if let Source::StampFile { path, .. } = &self.source {
            use std::io::Write;
            let appended = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut file| file.write_all(b"."));
            if let Err(err) = appended {
                // Other processes then see the change only when their caches expire.
                tracing::error!(error = %err, path = %path.display(), "announcing a change failed");
            }
        }
    }

    /// Whether announcements travel by PostgreSQL notifications (a listener must run).
    pub(crate) fn needs_listener(&self) -> bool {
        matches!(self.source, Source::Notify { .. })
    }

    fn set_live(&self, now_live: bool) {
        if let Source::Notify { live } = &self.source {
            // Either way, what was cached may have missed a notification.
            self.bump();
            live.store(now_live, Ordering::Release);
            self.bump();
        }
    }
}

/// Listens for announcements on PostgreSQL until the process ends, reconnecting when the
/// connection is lost (the feed is not live meanwhile). Uses a connection of its own, not
/// one of the request pool's.
pub(crate) async fn listen(pool: sea_orm::sqlx::PgPool, feed: std::sync::Arc<ChangeFeed>) {
    use sea_orm::sqlx::postgres::{PgListener, PgPoolOptions};
    let own = PgPoolOptions::new()
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_lazy_with((*pool.connect_options()).clone());
    let mut retry = Duration::from_millis(100);
    loop {
        let listening = async {
            let mut listener = PgListener::connect_with(&own).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sea_orm::sqlx::Error>(listener)
        }
        .await;
        match listening {
            Ok(mut listener) => {
                feed.set_live(true);
                tracing::debug!("listening for changes made by other instances");
                retry = Duration::from_millis(100);
                loop {
                    match listener.try_recv().await {
                        Ok(Some(_)) => feed.bump(),
                        // Lost and listening again: notifications meanwhile are lost.
                        Ok(None) => feed.bump(),
                        Err(err) => {
                            feed.set_live(false);
                            tracing::warn!(
                                error = %err,
                                "lost the change listener; pod sessions read the database until it is back"
                            );
                            break;
                        }
                    }
                }
            }
            Err(err) => {
                feed.set_live(false);
                tracing::warn!(error = %err, "cannot listen for changes yet; retrying");
            }
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_file_change_made_by_another_process_is_seen_without_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("v.db");
        let db = db.to_str().unwrap();
        let here = ChangeFeed::stamp_file(db);
        let other = ChangeFeed::stamp_file(db);
        let read = Stamped {
            value: (),
            epoch: here.epoch(),
        };
        assert!(read.is_current(here.epoch()));
        other.announced_here();
        assert!(!read.is_current(here.epoch()), "the other's change is seen");
        let again = Stamped {
            value: (),
            epoch: here.epoch(),
        };
        assert!(again.is_current(here.epoch()));
        here.announced_here();
        assert!(!again.is_current(here.epoch()), "its own change too");
    }

    #[test]
    fn nothing_cached_counts_while_notifications_are_not_heard() {
        let feed = ChangeFeed::notify();
        assert_eq!(feed.epoch(), None, "not live before the listener connects");
        feed.set_live(true);
        let read = Stamped {
            value: (),
            epoch: feed.epoch(),
        };
        assert!(read.is_current(feed.epoch()));
        feed.set_live(false);
        assert!(!read.is_current(feed.epoch()));
        feed.set_live(true);
        assert!(
            !read.is_current(feed.epoch()),
            "a reconnected listener may have missed changes"
        );
    }
}
