//! Reading accounts and roles.

use std::sync::Arc;

use super::shared::Viewer;
use super::shared::grants::{Authorized, RolesRead, UsersRead};
use super::shared::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Services};
use crate::db::roles::{self, Role};
use crate::db::users::{self, Profile, SortField, SortKey, User, UserFilter, UserListing};
use crate::error::{AppError, AppResult};
use crate::ids::UserId;

/// A page of accounts and whether more lie beyond it.
#[derive(Debug)]
pub struct UserPage {
    /// The accounts, in order, with their profiles.
    pub users: Vec<(User, Profile)>,
    /// The field the page is ordered by (cursors carry it).
    pub field: SortField,
    /// More accounts follow the last one.
    pub has_next: bool,
    /// More accounts precede the first one.
    pub has_previous: bool,
    /// The filter, for `totalCount`.
    pub filter: UserFilter,
}

/// A position in a listing, decoded from a cursor.
pub type Position = (SortField, SortKey, UserId);

/// Which page of accounts to read, from Relay arguments already decoded.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    /// `first`.
    pub first: Option<i64>,
    /// `after`, decoded.
    pub after: Option<Position>,
    /// `last`.
    pub last: Option<i64>,
    /// `before`, decoded.
    pub before: Option<Position>,
    /// Which accounts.
    pub filter: UserFilter,
    /// Ordered by what (creation time when `None`).
    pub field: Option<SortField>,
    /// Largest first.
    pub descending: bool,
}

/// The sort key of an account for `field`.
pub fn sort_key(field: SortField, user: &User, display_name: Option<&str>) -> SortKey {
    match field {
        SortField::CreatedAt => SortKey::CreatedAt(user.created_at),
        SortField::Email => SortKey::Text(user.email.clone()),
        SortField::DisplayName => SortKey::Text(display_name.unwrap_or_default().to_owned()),
    }
}

impl Services {
    /// The account `id`, for the account itself or a holder of `users:read`.
    pub async fn user(&self, viewer: &Viewer, id: UserId) -> AppResult<Option<User>> {
        if viewer.user.id == id {
            return Ok(Some(viewer.user.clone()));
        }
        viewer.authorize::<UsersRead>()?;
        let mut db = self.db.get().await?;
        // Deleted accounts stay visible here (with `deletedAt`), so they can be restored.
        Ok(users::find_user(&mut db.conn(), id).await?)
    }

    /// Like [`user`](Self::user), with the account's profile when it was read along (one
    /// statement for both; not for the caller's own account, which is cached).
    pub async fn user_with_profile(
        &self,
        viewer: &Viewer,
        id: UserId,
    ) -> AppResult<Option<(User, Option<Profile>)>> {
        if viewer.user.id == id {
            return Ok(Some((viewer.user.clone(), None)));
        }
        viewer.authorize::<UsersRead>()?;
        let mut db = self.db.get().await?;
        Ok(users::find_user_with_profile(&mut db.conn(), id).await?)
    }

    /// The account `id` if the caller may see it (its own, or any with `users:read`, soft-
    /// deleted ones included); `None` otherwise.
    pub async fn find_visible_user(&self, viewer: &Viewer, id: UserId) -> AppResult<Option<User>> {
        if !viewer.may_read(id) {
            return Ok(None);
        }
        self.user(viewer, id).await
    }

    /// A page of accounts (the caller holds `users:read`).
    pub async fn list_users(
        &self,
        _: Authorized<'_, UsersRead>,
        page: PageRequest,
    ) -> AppResult<UserPage> {
        let listing = listing_of(page)?;
        // One more than the page: whether it exists tells if more follow.
        let limit = listing.limit - 1;
        let mut db = self.db.get().await?;
        let mut rows = users::list_users(&mut db.conn(), &listing).await?;
        let has_more = rows.len() as i64 > limit;
        if has_more {
            if listing.from_end {
                rows.remove(0);
            } else {
                rows.pop();
            }
        }
        let (has_next, has_previous) = if listing.from_end {
            (listing.before.is_some(), has_more)
        } else {
            (has_more, listing.after.is_some())
        };
        Ok(UserPage {
            users: rows,
            field: listing.field,
            has_next,
            has_previous,
            filter: listing.filter,
        })
    }

    /// How many accounts match `filter`.
    pub async fn count_users(
        &self,
        _: Authorized<'_, UsersRead>,
        filter: &UserFilter,
    ) -> AppResult<i64> {
        let mut db = self.db.get().await?;
        Ok(users::count_users(&mut db.conn(), filter).await?)
    }

    /// Every role.
    pub async fn roles(&self, _: Authorized<'_, RolesRead>) -> AppResult<Vec<Role>> {
        let mut db = self.db.get().await?;
        Ok(roles::list_roles(&mut db.conn()).await?)
    }

    /// Profiles of these accounts, for the dataloader.
    pub async fn profiles_of(&self, ids: &[UserId]) -> AppResult<Vec<Profile>> {
        let mut db = self.db.get().await?;
        Ok(users::profiles_of(&mut db.conn(), ids).await?)
    }

    /// Roles of these accounts, for the dataloader, each account's by name: which roles
    /// each holds from the caller cache (recent pages) or the database, the roles themselves
    /// from the role cache.
    pub async fn roles_of(&self, ids: &[UserId]) -> AppResult<Vec<(UserId, Arc<Role>)>> {
        let pairs = match self.callers.roles_of(ids) {
            Some(pairs) => pairs,
            None => {
                let generation = self.callers.generation();
                let mut db = self.db.get().await?;
                let pairs = roles::role_ids_of_users(&mut db.conn(), ids).await?;
                self.callers.put_roles(ids, &pairs, generation);
                pairs
            }
        };
        if !self.role_cache.has_all(pairs.iter().map(|(_, role)| *role)) {
            let mut db = self.db.get().await?;
            let all = roles::list_roles(&mut db.conn()).await?;
            self.role_cache.replace(all);
        }
        let mut held: Vec<(UserId, Arc<Role>)> = pairs
            .into_iter()
            .filter_map(|(user, role)| Some((user, self.role_cache.get(role)?)))
            .collect();
        held.sort_by(|(a, x), (b, y)| (a, &x.name).cmp(&(b, &y.name)));
        Ok(held)
    }
}

/// The listing a page request asks for, reading one row more than the page; `BAD_USER_INPUT`
/// for sizes out of range, both `first` and `last`, or a cursor from another order.
fn listing_of(page: PageRequest) -> AppResult<UserListing> {
    let size_of = |field: &str, n: Option<i64>| match n {
        Some(n) if !(0..=MAX_PAGE_SIZE).contains(&n) => Err(AppError::bad_field(
            field,
            format!("must be between 0 and {MAX_PAGE_SIZE}"),
        )),
        n => Ok(n),
    };
    let first = size_of("first", page.first)?;
    let last = size_of("last", page.last)?;
    if first.is_some() && last.is_some() {
        return Err(AppError::bad_field(
            "last",
            "give either `first` or `last`, not both",
        ));
    }
    let field = page.field.unwrap_or(SortField::CreatedAt);
    let position = |name: &str, bound: Option<Position>| match bound {
        Some((f, key, id)) if f == field => Ok(Some((key, id))),
        Some(_) => Err(AppError::bad_field(
            name,
            "comes from a listing in another order",
        )),
        None => Ok(None),
    };
    Ok(UserListing {
        after: position("after", page.after)?,
        before: position("before", page.before)?,
        filter: page.filter,
        field,
        descending: page.descending,
        limit: last.or(first).unwrap_or(DEFAULT_PAGE_SIZE) + 1,
        from_end: last.is_some(),
    })
}
