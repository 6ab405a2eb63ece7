//! Parse-don't-validate newtypes for what clients type in: a value of these types is valid.

use std::collections::HashSet;
use std::sync::LazyLock;
use unicode_normalization::UnicodeNormalization as _;

use crate::error::FieldError;

/// The longest accepted text of each kind, in Unicode characters. Every text a client sends
/// is held to one of these before any database sees it; the richer types below (email,
/// password, display name) have their own rules on top.
pub mod bounds {
    /// An email address (RFC 5321's limit on a path).
    pub const EMAIL: usize = 254;
    /// A password, as typed (NIST SP 800-63B-4 asks for at least 64).
    pub const PASSWORD: usize = 128;
    /// A display name.
    pub const DISPLAY_NAME: usize = 100;
    /// A profile description.
    pub const DESCRIPTION: usize = 2_000;
    /// A role's name.
    pub const ROLE_NAME: usize = 50;
    /// A role's description.
    pub const ROLE_DESCRIPTION: usize = 500;
    /// A permission's name, e.g. `users:read`.
    pub const PERMISSION: usize = 64;
    /// A personal access token's name.
    pub const TOKEN_NAME: usize = 100;
    /// A refresh, reset or personal access token as presented (ours are under 100).
    pub const TOKEN: usize = 256;
    /// A `users` search term.
    pub const SEARCH: usize = 100;
    /// An audit action or target id in a filter.
    pub const AUDIT_KEY: usize = 100;
    /// A page cursor as presented (ours are under 400).
    pub const CURSOR: usize = 1_024;
    /// A second factor's code as typed: six digits, or a recovery code (`xxxxx-xxxxx`).
    pub const CODE: usize = 32;
    /// An operation's name (`operationName`): a GraphQL name, echoed in errors.
    pub const OPERATION_NAME: usize = 256;
}

/// Whether `c` may appear in text a client sends: anything but control characters, tab and
/// line breaks excepted.
fn allowed_char(c: char) -> bool {
    !c.is_control() || matches!(c, '\t' | '\n' | '\r')
}

/// `raw` if it is at most `max` characters long and holds no control characters; the error
/// names `field` and the bound.
pub fn bounded<'a>(field: &str, raw: &'a str, max: usize) -> Result<&'a str, FieldError> {
    // Counting stops past the bound: a megabyte string costs no more than a short one.
    if raw.chars().nth(max).is_some() {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters long"),
        ));
    }
    clean(field, raw)
}

/// `raw` if it holds no control characters (tab and line breaks aside); the error names
/// `field` and the character.
pub fn clean<'a>(field: &str, raw: &'a str) -> Result<&'a str, FieldError> {
    match raw.chars().find(|c| !allowed_char(*c)) {
        None => Ok(raw),
        Some(c) => Err(FieldError::new(
            field,
            format!(
                "must not contain control characters (found U+{:04X})",
                u32::from(c)
            ),
        )),
    }
}

/// The earliest and latest instants accepted as input: what both databases store and
/// compare alike.
const EARLIEST_YEAR: i32 = 1970;
const LATEST_YEAR: i32 = 9999;

/// `at` if it lies in the years 1970 to 9999; the error names `field`.
pub fn bounded_time(
    field: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<chrono::NaiveDateTime, FieldError> {
    use chrono::Datelike as _;
    if (EARLIEST_YEAR..=LATEST_YEAR).contains(&at.year()) {
        Ok(at.naive_utc())
    } else {
        Err(FieldError::new(
            field,
            format!("must lie in the years {EARLIEST_YEAR} to {LATEST_YEAR}"),
        ))
    }
}

/// A syntactically valid email address, trimmed and lower-cased so that letter-case variants
/// are one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Parses `raw` as the input field `field`.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let trimmed = raw.trim();
        let invalid =
            |why: &str| FieldError::new(field, format!("is not a valid email address: {why}"));
        if trimmed.is_empty() {
            return Err(FieldError::new(field, "is required"));
        }
        if trimmed.chars().nth(bounds::EMAIL).is_some() {
            return Err(FieldError::new(
                field,
                format!("must be at most {} characters long", bounds::EMAIL),
            ));
        }
        // Compatibility-composed, then lower-cased: `ｕｓｅｒ@…` and `user@…`, or an accent
        // typed as one character or as two, are one address, not two accounts that look
        // the same.
        let email = trimmed.nfkc().collect::<String>().to_lowercase();
        if email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || is_hidden(c))
        {
            return Err(invalid("contains spaces, control or invisible characters"));
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return Err(invalid("it needs an @"));
        };
        if local.is_empty() || local.contains('@') || local.chars().count() > 64 {
            return Err(invalid(
                "the part before the @ is empty, too long or holds another @",
            ));
        }
        let labels_ok = domain.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
        if !domain.contains('.') || !labels_ok {
            return Err(invalid("the domain after the @ is not valid"));
        }
        Ok(Self(email))
    }

    /// `raw` parsed, if it is an address, and the key attempts on it are counted under (by
    /// the lockout and the rate limits): the normalised address, or the text as typed,
    /// trimmed and lower-cased, when it is none.
    pub fn keyed(raw: &str) -> (Option<Self>, String) {
        let parsed = Self::parse("email", raw).ok();
        let key = parsed
            .as_ref()
            .map_or_else(|| raw.trim().to_lowercase(), |e| e.0.clone());
        (parsed, key)
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the `@`.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or(&self.0, |(local, _)| local)
    }
}

/// The password policy in force: the length bounds of NIST SP 800-63B-4.
#[derive(Debug, Clone, Copy)]
pub struct PasswordPolicy {
    /// Fewest Unicode characters accepted.
    pub min_chars: usize,
    /// Most Unicode characters accepted (passwords are never truncated).
    pub max_chars: usize,
}

/// A password that meets the [`PasswordPolicy`]. Its `Debug` never prints it.
#[derive(Clone)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// The 30,000 most common passwords (zxcvbn's list; see `assets/README.md`), lower-cased.
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../assets/common-passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect()
});

/// Characters that change how text around them reads without being seen: direction marks,
/// embeddings, overrides and isolates, and zero-width spaces and joiners that join nothing.
/// The zero-width joiner and non-joiner stay allowed: emoji sequences and several scripts
/// need them.
fn is_hidden(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// Fewest different characters a password may have: `aaaaaaaaaaaaaaa` or `abababab…` are
/// as long as the rule asks and as easy to guess as a word.
const MIN_DISTINCT_CHARS: usize = 4;

/// Whether `folded` is one run of consecutive letters or digits, up or down (`abcdef…`,
/// `98765…`; digits wrap, `…7890123`).
fn is_sequence(folded: &str) -> bool {
    let step = |a: char, b: char| -> Option<i32> {
        let (a, b) = (u32::from(a), u32::from(b));
        let wrap = |x: u32, y: u32, low: u32, high: u32| {
            (x == high && y == low)
                .then_some(1)
                .or((x == low && y == high).then_some(-1))
        };
        match i64::from(b) - i64::from(a) {
            1 => Some(1),
            -1 => Some(-1),
            _ => wrap(a, b, u32::from('0'), u32::from('9')),
        }
    };
    let chars: Vec<char> = folded.chars().collect();
    if !chars.iter().all(char::is_ascii_alphanumeric) {
        return false;
    }
    let mut steps = chars.windows(2).map(|pair| step(pair[0], pair[1]));
    match steps.next() {
        Some(Some(first)) => steps.all(|s| s == Some(first)),
        _ => false,
    }
}

/// Shortest email local part that a password may not contain: shorter ones (`al@…`) would
/// refuse too many good passwords by chance.
const MIN_LOCAL_PART_CHECKED: usize = 3;

impl Password {
    /// Checks `raw` against `policy` (NIST SP 800-63B-4: length, no composition rules, not a
    /// common password, not built from the account's email). The password is kept exactly
    /// as typed: no trimming, no case folding, no truncation.
    pub fn parse(
        field: &str,
        raw: &str,
        policy: PasswordPolicy,
        email: Option<&Email>,
    ) -> Result<Self, FieldError> {
        let chars = raw.chars().count();
        if chars < policy.min_chars {
            return Err(FieldError::new(
                field,
                format!("must be at least {} characters long", policy.min_chars),
            ));
        }
        if chars > policy.max_chars {
            return Err(FieldError::new(
                field,
                format!("must be at most {} characters long", policy.max_chars),
            ));
        }
        let folded = raw.to_lowercase();
        if COMMON_PASSWORDS.contains(folded.as_str()) {
            return Err(FieldError::new(
                field,
                "is one of the most commonly used passwords; choose one that is harder to guess",
            ));
        }
        let mut distinct: Vec<char> = folded.chars().collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < MIN_DISTINCT_CHARS || is_sequence(&folded) {
            return Err(FieldError::new(
                field,
                "repeats or runs through too few characters (like aaaa… or 1234…); choose one \
                 that is harder to guess",
            ));
        }
        if let Some(local) = email.map(Email::local_part)
            && local.chars().count() >= MIN_LOCAL_PART_CHECKED
            && folded.contains(local)
        {
            return Err(FieldError::new(
                field,
                "must not contain your email address",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// A password nobody is choosing now, so today's policy does not apply: one that just
    /// matched its stored hash (re-hashed with new parameters), or a random one nobody is
    /// told (an invited account's, until its owner chooses one).
    pub fn verified(raw: &str) -> Self {
        Self(raw.to_owned())
    }

    /// The password itself, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A display name of 1 to [`bounds::DISPLAY_NAME`] characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    /// Parses `raw` as the input field `field`.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let name = raw.trim();
        let chars = name.chars().count();
        if chars == 0 {
            return Err(FieldError::new(field, "must not be empty"));
        }
        if chars > bounds::DISPLAY_NAME {
            return Err(FieldError::new(
                field,
                format!("must be at most {} characters long", bounds::DISPLAY_NAME),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(FieldError::new(
                field,
                "must not contain control characters",
            ));
        }
        // A name shown to others must read as it is: no right-to-left override turning
        // `gpj.exe` around, no invisible characters making a second `admin`.
        if let Some(hidden) = name.chars().find(|c| is_hidden(*c)) {
            return Err(FieldError::new(
                field,
                format!(
                    "must not contain invisible or text-direction characters (found U+{:04X})",
                    u32::from(hidden)
                ),
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A role's name: 1 to [`bounds::ROLE_NAME`] of `a-z`, `0-9`, `-`, `_`, `:` and `.`, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleName(String);

impl RoleName {
    /// Parses `raw` as the input field `field`.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let name = raw.trim();
        let valid = (1..=bounds::ROLE_NAME).contains(&name.chars().count())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_:.".contains(c));
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(FieldError::new(field, "use 1 to 50 of a-z, 0-9, - _ : ."))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A personal access token's label: 1 to [`bounds::TOKEN_NAME`] characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenName(String);

impl TokenName {
    /// Parses `raw` as the input field `field`.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(FieldError::new(field, "must not be empty"));
        }
        bounded(field, name, bounds::TOKEN_NAME)?;
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A year of birth, from 1900 to the current year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YearOfBirth(i32);

impl YearOfBirth {
    /// Parses `year` as the input field `field`.
    pub fn parse(field: &str, year: i32) -> Result<Self, FieldError> {
        let this_year = chrono::Datelike::year(&chrono::Utc::now());
        if (1900..=this_year).contains(&year) {
            Ok(Self(year))
        } else {
            Err(FieldError::new(
                field,
                format!("must be between 1900 and {this_year}"),
            ))
        }
    }

    /// The year.
    pub fn get(self) -> i32 {
        self.0
    }
}

/// A profile's free text of up to [`bounds::DESCRIPTION`] characters, stored verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    /// Parses `raw` as the input field `field`.
    pub fn parse(field: &str, raw: String) -> Result<Self, FieldError> {
        bounded(field, &raw, bounds::DESCRIPTION)?;
        Ok(Self(raw))
    }

    /// The text.
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// One list makes the [`Permission`] enum, its names, and a type per permission (in
/// [`grant`]) that services demand proof of.
macro_rules! permissions {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// The permissions of the contract. Roles grant them; the services check them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Permission {
            $($(#[$doc])* $variant,)*
        }

        impl Permission {
            /// Every permission, in the contract's order.
            pub const ALL: &[Self] = &[$(Self::$variant,)*];

            /// The permission's name, e.g. `users:read`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }
        }

        /// Each permission as a type, for signatures that demand proof of it.
        pub mod grant {
            /// A permission as a type.
            pub trait Grant {
                /// The permission the type stands for.
                const PERMISSION: super::Permission;
            }

            $(
                #[doc = concat!("`", $name, "` as a type.")]
                pub struct $variant;

                impl Grant for $variant {
                    const PERMISSION: super::Permission = super::Permission::$variant;
                }
            )*
        }
    };
}

permissions! {
    /// List and read accounts, other people's emails included.
    UsersRead => "users:read",
    /// Create and change accounts.
    UsersWrite => "users:write",
    /// Delete, restore and purge accounts.
    UsersDelete => "users:delete",
    /// List roles.
    RolesRead => "roles:read",
    /// Create and delete roles.
    RolesWrite => "roles:write",
    /// Give and take roles.
    RolesAssign => "roles:assign",
    /// Read the audit log.
    AuditRead => "audit:read",
}

impl Permission {
    /// `BAD_USER_INPUT` on `field` naming those of `names` that are no permission; `None`
    /// when every one is.
    pub fn unknown(field: &str, names: &[String]) -> Option<FieldError> {
        let unknown: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|name| !Self::ALL.iter().any(|p| p.as_str() == *name))
            .collect();
        (!unknown.is_empty()).then(|| {
            FieldError::new(
                field,
                format!("unknown permissions: {}", unknown.join(", ")),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_years_and_texts_parse_once() {
        assert_eq!(
            RoleName::parse("name", " ops-1:read. ").map(|n| n.as_str().to_owned()),
            Ok("ops-1:read.".to_owned())
        );
        for bad in ["", "Ops", "a b", &"x".repeat(51)] {
            assert!(RoleName::parse("name", bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            TokenName::parse("name", "  ci  ").map(|n| n.as_str().to_owned()),
            Ok("ci".to_owned())
        );
        assert!(TokenName::parse("name", "   ").is_err());
        assert!(TokenName::parse("name", &"x".repeat(bounds::TOKEN_NAME + 1)).is_err());
        assert_eq!(
            YearOfBirth::parse("yearOfBirth", 1990).map(YearOfBirth::get),
            Ok(1990)
        );
        assert!(YearOfBirth::parse("yearOfBirth", 1899).is_err());
        assert!(YearOfBirth::parse("yearOfBirth", 9999).is_err());
        let text = " kept\nverbatim ".to_owned();
        assert_eq!(
            Description::parse("description", text.clone()).map(Description::into_inner),
            Ok(text)
        );
        assert!(Description::parse("description", "x".repeat(bounds::DESCRIPTION + 1)).is_err());
        assert!(Description::parse("description", "nul\0".to_owned()).is_err());
    }

    const POLICY: PasswordPolicy = PasswordPolicy {
        min_chars: 15,
        max_chars: 128,
    };

    #[test]
    fn emails_are_normalised() {
        let email = Email::parse("email", "  Ada.Lovelace@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "ada.lovelace@example.com");
        assert_eq!(email.local_part(), "ada.lovelace");
    }

    #[test]
    fn bad_emails_are_refused() {
        for raw in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@-x.com",
        ] {
            assert!(Email::parse("email", raw).is_err(), "{raw:?} was accepted");
        }
    }

    #[test]
    fn password_length_counts_characters_not_bytes() {
        // 15 characters, 41 bytes.
        let pw: String = "€£¥₩".chars().cycle().take(15).collect();
        assert!(Password::parse("password", &pw, POLICY, None).is_ok());
        let short: String = pw.chars().take(14).collect();
        assert!(Password::parse("password", &short, POLICY, None).is_err());
        assert!(Password::parse("password", &"a".repeat(129), POLICY, None).is_err());
        // Kept verbatim.
        let spaced = "  Leading Spaces Kept  ";
        assert_eq!(
            Password::parse("password", spaced, POLICY, None)
                .unwrap()
                .expose(),
            spaced
        );
    }

    #[test]
    fn common_passwords_and_the_email_are_refused() {
        let short = PasswordPolicy {
            min_chars: 8,
            max_chars: 128,
        };
        assert!(COMMON_PASSWORDS.len() >= 10_000);
        for common in ["password", "PassWord1", "qwertyuiop", "iloveyou"] {
            let err = Password::parse("password", common, short, None).unwrap_err();
            assert!(err.message.contains("commonly used"), "{common}");
        }
        let email = Email::parse("email", "grace.hopper@example.com").unwrap();
        let err = Password::parse("password", "my Grace.Hopper secret", POLICY, Some(&email));
        assert!(err.unwrap_err().message.contains("email"));
        let ok = Password::parse("password", "an unrelated passphrase", POLICY, Some(&email));
        assert!(ok.is_ok());
    }

    #[test]
    fn repetitive_and_sequential_passwords_are_refused() {
        for weak in [
            "aaaaaaaaaaaaaaa",
            "               ",
            "abababababababab",
            "abcabcabcabcabc",
            "abcdefghijklmnop",
            "ABCDEFGHIJKLMNOP",
            "1234567890123456",
            "zyxwvutsrqponmlk",
            "9876543210987654",
        ] {
            let err = Password::parse("password", weak, POLICY, None).unwrap_err();
            assert!(err.message.contains("too few characters"), "{weak}");
        }
        for fine in [
            "abcdefghijklmnoq",
            "aaaaaaaaaaaabcd",
            "correct horse battery",
        ] {
            assert!(
                Password::parse("password", fine, POLICY, None).is_ok(),
                "{fine}"
            );
        }
    }

    #[test]
    fn names_that_hide_or_turn_text_are_refused() {
        for hidden in [
            "\u{202E}gpj.exe",
            "ad\u{200B}min",
            "\u{FEFF}name",
            "a\u{2066}b",
        ] {
            let err = DisplayName::parse("displayName", hidden).unwrap_err();
            assert!(err.message.contains("invisible"), "{hidden:?}");
        }
        // Joiners are how emoji sequences and some scripts are written.
        for fine in ["👨\u{200D}👩\u{200D}👧", "می\u{200C}خواهم", "Ada Lovelace"] {
            assert!(DisplayName::parse("displayName", fine).is_ok(), "{fine:?}");
        }
    }

    #[test]
    fn look_alike_spellings_of_an_email_are_one_address() {
        let plain = Email::parse("email", "user@example.com").unwrap();
        let wide = Email::parse("email", "ｕｓｅｒ@ｅｘａｍｐｌｅ.com").unwrap();
        assert_eq!(wide, plain);
        let composed = Email::parse("email", "\u{00FC}ser@example.com").unwrap();
        let decomposed = Email::parse("email", "u\u{0308}ser@example.com").unwrap();
        assert_eq!(composed, decomposed);
        assert!(Email::parse("email", "us\u{200B}er@example.com").is_err());
    }

    #[test]
    fn password_debug_hides_it() {
        let pw = Password::parse("password", "correct horse battery staple", POLICY, None).unwrap();
        assert_eq!(format!("{pw:?}"), "Password(***)");
    }
}
