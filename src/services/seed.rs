//! Demo and benchmark data: realistic accounts with profiles and roles, inserted in batches.
//! The volume and shape match the benchmark peer's (`bench/`): every account has a profile
//! and one to three of five roles.

use chrono::TimeDelta;

use super::shared::DEFAULT_ROLE;
use super::shared::Services;
use crate::db::clock::now;
use crate::db::roles::{self, NewRole, UserRole};
use crate::db::transaction;
use crate::db::users::{self, Profile, SeedUser};
use crate::db::{self as database, unique_violation};
use crate::domain::Password;
use crate::error::{AppError, AppResult};
use crate::ids::{RoleId, UserId};

/// The password of every seeded account.
pub const SEED_PASSWORD: &str = "seeded account password";

/// Roles besides `user` that seeded accounts hold; they grant nothing.
const DEMO_ROLES: &[&str] = &["editor", "moderator", "support", "viewer"];

/// Rows per insert statement: well under both backends' bind-parameter limits.
const BATCH: usize = 1_000;

const FIRST: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Margaret",
    "Ken",
    "Dennis",
    "Frances",
    "Niklaus",
    "John",
    "Radia",
    "Tim",
    "Hedy",
    "Katherine",
    "Linus",
    "Guido",
    "Bjarne",
    "Sophie",
    "Émile",
    "Zoë",
    "Øystein",
    "Chloé",
    "Jürgen",
    "Aiko",
    "Mateo",
    "Priya",
    "Wei",
    "Olu",
];
const LAST: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Hamilton",
    "Thompson",
    "Ritchie",
    "Allen",
    "Wirth",
    "McCarthy",
    "Perlman",
    "Berners-Lee",
    "Lamarr",
    "Johnson",
    "Torvalds",
    "van Rossum",
    "Stroustrup",
    "Wilson",
    "Durand",
    "Nakamura",
    "García",
    "Patel",
];

impl Services {
    /// Adds `count` accounts (`first.last.xxxx@example.test`, password [`SEED_PASSWORD`])
    /// with profiles, the `user` role and up to two of the demo roles (created when
    /// missing); one in ten is inactive, one in eight has no display name. Refreshes the
    /// planner's statistics afterwards. Returns how many were added.
    pub async fn seed_users(&self, count: usize) -> AppResult<usize> {
        let hash = self
            .passwords
            .hash(&Password::verified(SEED_PASSWORD))
            .await?;
        let mut db = self.db.get().await?;
        let mut role_ids = vec![seed_role(&mut db, DEFAULT_ROLE).await?];
        for name in DEMO_ROLES {
            role_ids.push(seed_role(&mut db, name).await?);
        }
        let start = now() - TimeDelta::days(365);
        let mut done = 0;
        while done < count {
            let n = BATCH.min(count - done);
            let batch: Vec<Seeded> = (done..done + n).map(|i| Seeded::new(i, start)).collect();
            let inserted = self.insert_batch(&mut db, &batch, &hash, &role_ids).await?;
            done += inserted;
        }
        database::analyze(&mut db.conn()).await?;
        Ok(done)
    }

    async fn insert_batch(
        &self,
        db: &mut crate::db::DbConn,
        batch: &[Seeded],
        hash: &str,
        role_ids: &[RoleId],
    ) -> AppResult<usize> {
        let at = now();
        let new_users: Vec<SeedUser> = batch
            .iter()
            .map(|s| SeedUser {
                id: s.id,
                email: s.email.clone(),
                password_hash: hash.to_owned(),
                is_active: s.active,
                created_at: s.at,
                updated_at: s.at,
            })
            .collect();
        let profiles: Vec<Profile> = batch
            .iter()
            .map(|s| Profile {
                user_id: s.id,
                display_name: s.name.clone(),
                year_of_birth: s.year,
                description: Some(s.description.clone()),
                avatar_url: Some(s.avatar_url.clone()),
                updated_at: s.at,
            })
            .collect();
        let grants = grants(batch, role_ids, at);
        transaction!(db, |conn| {
            let inserted = users::insert_users(conn, new_users.clone()).await?;
            users::insert_profiles(conn, profiles.clone()).await?;
            roles::assign_many(conn, grants.clone()).await?;
            Ok::<_, AppError>(inserted)
        })
    }
}

/// The roles of a batch: `user` for everyone (`role_ids[0]`), then zero to two demo roles
/// in turn.
fn grants(batch: &[Seeded], role_ids: &[RoleId], at: chrono::NaiveDateTime) -> Vec<UserRole> {
    batch
        .iter()
        .flat_map(|s| {
            let extra = s.index % 3;
            std::iter::once(role_ids[0])
                .chain((0..extra).map(move |k| role_ids[1 + (s.index + k) % DEMO_ROLES.len()]))
                .map(move |role_id| UserRole {
                    user_id: s.id,
                    role_id,
                    created_at: at,
                })
        })
        .collect()
}

/// The role named `name`, created (granting nothing) when missing.
async fn seed_role(db: &mut crate::db::DbConn, name: &str) -> AppResult<RoleId> {
    if let Some(role) = roles::find_role_by_name(&mut db.conn(), name).await? {
        return Ok(role.id);
    }
    let new = NewRole {
        id: RoleId::new(),
        name,
        description: Some("Demo role of seeded accounts"),
        permissions: "[]",
        created_at: now(),
    };
    match roles::insert_role(&mut db.conn(), &new).await {
        Ok(role) => Ok(role.id),
        // Another seeding run created it meanwhile.
        Err(e) if unique_violation(&e).is_some() => roles::find_role_by_name(&mut db.conn(), name)
            .await?
            .map(|r| r.id)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("role `{name}` vanished"))),
        Err(e) => Err(e.into()),
    }
}

/// One generated account.
struct Seeded {
    index: usize,
    id: UserId,
    email: String,
    name: Option<String>,
    year: Option<i32>,
    description: String,
    avatar_url: String,
    at: chrono::NaiveDateTime,
    active: bool,
}

impl Seeded {
    fn new(i: usize, start: chrono::NaiveDateTime) -> Self {
        let first = FIRST[i % FIRST.len()];
        let last = LAST[(i / FIRST.len()) % LAST.len()];
        let unique = uuid::Uuid::now_v7().simple().to_string();
        // Many accounts share a name and, in runs of seven, a creation time: the listing's
        // tie-breaking by id gets exercised.
        let minutes = i64::try_from(i / 7).unwrap_or(0);
        Self {
            index: i,
            id: UserId::new(),
            email: format!(
                "{}.{}.{}@example.test",
                first.to_lowercase(),
                last.to_lowercase().replace(' ', ""),
                &unique[unique.len() - 10..]
            ),
            name: (!i.is_multiple_of(8)).then(|| format!("{first} {last}")),
            year: (!i.is_multiple_of(3)).then(|| 1950 + i32::try_from(i % 60).unwrap_or(0)),
            description: format!(
                "Profile description of seeded account {i}. {}",
                "lorem ipsum ".repeat(1 + i % 8).trim_end()
            ),
            avatar_url: format!("https://avatars.example.test/{i}.png"),
            at: start + TimeDelta::minutes(minutes),
            active: i % 10 != 9,
        }
    }
}
