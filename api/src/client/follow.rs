//! Turns watch lines into a [`CatalogSnapshot`]: the pure core of a catalog
//! follower (the gateway adds reconnects, back-off and persistence).

use crate::model::CatalogSnapshot;
use crate::wire::WatchLine;

/// What the follower must do after a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Follow {
    /// The snapshot changed; resume from `revision` after a disconnect.
    Changed {
        /// The last applied revision.
        revision: u64,
    },
    /// Nothing changed (bookmark or a stale event).
    Unchanged {
        /// The last known revision.
        revision: u64,
    },
    /// The revision was compacted: reconnect without `since` and replace
    /// the snapshot with the next one.
    Relist,
    /// The stream failed: reconnect with `since` = the last revision.
    Resume,
}

/// Applies one watch line to `snapshot` (a `Snapshot` line replaces it).
pub fn apply_line(snapshot: &mut CatalogSnapshot, line: WatchLine) -> Follow {
    match line {
        WatchLine::Snapshot {
            revision,
            resources,
        } => {
            *snapshot = CatalogSnapshot::from_resources(revision, resources);
            Follow::Changed { revision }
        }
        WatchLine::Bookmark { revision } => {
            snapshot.revision = snapshot.revision.max(revision);
            Follow::Unchanged {
                revision: snapshot.revision,
            }
        }
        WatchLine::Error { status: 410, .. } => Follow::Relist,
        WatchLine::Error { .. } => Follow::Resume,
        line @ (WatchLine::Put { .. } | WatchLine::Delete { .. }) => {
            match line.to_catalog_event() {
                Some(ev) => match snapshot.apply(&ev) {
                    crate::model::Applied::Changed => Follow::Changed {
                        revision: snapshot.revision,
                    },
                    crate::model::Applied::Stale => Follow::Unchanged {
                        revision: snapshot.revision,
                    },
                },
                None => Follow::Unchanged {
                    revision: snapshot.revision,
                },
            }
        }
    }
}
