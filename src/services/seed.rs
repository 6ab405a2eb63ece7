//! Demo and benchmark data: realistic accounts with profiles and roles, inserted in batches.

use chrono::TimeDelta;

use super::Services;
use super::accounts::DEFAULT_ROLE;
use crate::db::roles::{self, UserRole};
use crate::db::types::{RoleId, UserId, now};
use crate::db::users::{self, Profile, SeedUser};
use crate::domain::Password;
use crate::error::{AppError, AppResult};
use crate::transaction;

/// The password of every seeded account.
pub const SEED_PASSWORD: &str = "seeded account password";

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
    /// with profiles and the `user` role; one in ten is inactive, one in eight has no
    /// display name. Returns how many were added.
    pub async fn seed_users(&self, count: usize) -> AppResult<usize> {
        let hash = self
            .passwords
            .hash(&Password::verified(SEED_PASSWORD))
            .await?;
        let mut db = self.db.get().await?;
        let role = roles::find_role_by_name(&mut db.conn(), DEFAULT_ROLE)
            .await?
            .ok_or_else(|| {
                AppError::internal(anyhow::anyhow!("built-in role `user` is missing"))
            })?;
        let start = now() - TimeDelta::days(365);
        let mut done = 0;
        while done < count {
            let n = BATCH.min(count - done);
            let batch: Vec<Seeded> = (done..done + n).map(|i| Seeded::new(i, start)).collect();
            let inserted = self.insert_batch(&mut db, &batch, &hash, role.id).await?;
            done += inserted;
        }
        Ok(done)
    }

    async fn insert_batch(
        &self,
        db: &mut crate::db::DbConn,
        batch: &[Seeded],
        hash: &str,
        role: RoleId,
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
                description: None,
                avatar_url: None,
                updated_at: s.at,
            })
            .collect();
        let grants: Vec<UserRole> = batch
            .iter()
            .map(|s| UserRole {
                user_id: s.id,
                role_id: role,
                created_at: at,
            })
            .collect();
        transaction!(db, |conn| {
            let inserted = users::insert_users(conn, new_users.clone()).await?;
            users::insert_profiles(conn, profiles.clone()).await?;
            roles::assign_many(conn, grants.clone()).await?;
            Ok::<_, AppError>(inserted)
        })
    }
}

/// One generated account.
struct Seeded {
    id: UserId,
    email: String,
    name: Option<String>,
    year: Option<i32>,
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
            id: UserId::new(),
            email: format!(
                "{}.{}.{}@example.test",
                first.to_lowercase(),
                last.to_lowercase().replace(' ', ""),
                &unique[unique.len() - 10..]
            ),
            name: (!i.is_multiple_of(8)).then(|| format!("{first} {last}")),
            year: (!i.is_multiple_of(3)).then(|| 1950 + i32::try_from(i % 60).unwrap_or(0)),
            at: start + TimeDelta::minutes(minutes),
            active: i % 10 != 9,
        }
    }
}
