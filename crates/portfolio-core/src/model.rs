//! Portfolio items and the declarations that describe each resource.

use chrono::{DateTime, Utc};
use kernel::UserId;
use kernel::record::{Record, Schema};

kernel::typed_id!(
    /// Identifies a portfolio item of any resource.
    ItemId
);

/// How a resource's lists are ordered. Ties always break by creation time, then id, so pages
/// are stable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ordering {
    /// By the owner's manual `order` (set by reorder), oldest first among equals.
    Manual,
    /// By a date field, latest first; items without it last.
    LatestBy(&'static str),
    /// Newest first.
    Newest,
}

/// Rules a resource adds to the generic owned-collection path.
#[derive(Clone, Copy, Debug)]
pub struct Features {
    /// `PATCH /reorder` is offered and lists follow the manual order.
    pub reorder: bool,
    /// Items get a unique per-owner `slug` from this field and can be found by it.
    pub slug_from: Option<&'static str>,
    /// Items carry `published` / `publishedAt`, set by the publish action.
    pub publishing: bool,
    /// `?grouped=true` groups lists by this field.
    pub group_by: Option<&'static str>,
    /// Only items whose boolean field is true appear publicly (besides publishing).
    pub public_when: Option<&'static str>,
}

impl Features {
    /// The plain owned-collection path, nothing added.
    pub const NONE: Self = Self {
        reorder: false,
        slug_from: None,
        publishing: false,
        group_by: None,
        public_when: None,
    };
}

/// Everything that makes one resource what it is; see `resources.rs`.
#[derive(Debug)]
pub struct ResourceSpec {
    /// The URL segment (`/portfolio/<name>`), also the SQLite discriminator.
    pub name: &'static str,
    /// The MongoDB collection.
    pub collection: &'static str,
    /// A singular label for messages ("Project").
    pub label: &'static str,
    /// The portfolio profile flag that shows the section publicly.
    pub section_flag: &'static str,
    pub schema: Schema,
    pub ordering: Ordering,
    pub features: Features,
}

/// One stored item of any resource.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub id: ItemId,
    pub owner: UserId,
    pub resource: &'static ResourceSpec,
    pub fields: Record,
    /// The manual order (0 for resources without reordering).
    pub position: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl PartialEq for ResourceSpec {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

/// An item with the items it links to (an experience's company), for reading.
#[derive(Clone, Debug, PartialEq)]
pub struct ItemView {
    pub item: Item,
    /// `(reference field, linked item)`: shown in place of the id, as the NestJS version's
    /// populated references were.
    pub linked: Vec<(&'static str, Item)>,
}
