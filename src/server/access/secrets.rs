//! The secrets a session can have, and how each is made, stored and checked:
//! the interviewer key (random, stored only as its SHA-256), the optional
//! password (stored as an argon2id hash) and the unlock token an unlocked
//! browser carries in a cookie (random, replaced whenever the password changes).

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Random bytes in an interviewer key or an unlock token (256 bits).
const SECRET_BYTES: usize = 32;
/// Characters in a key or token (base64url without padding).
pub const SECRET_CHARS: usize = 43;
/// Longest password accepted, in bytes of UTF-8.
pub const MAX_PASSWORD_BYTES: usize = 256;

/// A fresh random secret, as it travels: base64url without padding.
pub fn new_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored of a key: its SHA-256, hex. A key has 256 random bits, so a
/// fast hash is enough; what matters is that storage never holds the key.
pub fn key_hash(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Whether `presented` is the key whose hash is `stored`.
pub fn key_matches(presented: &str, stored: &str) -> bool {
    presented.len() == SECRET_CHARS
        && constant_time_eq(key_hash(presented).as_bytes(), stored.as_bytes())
}

/// Whether `presented` is the session's unlock token.
pub fn token_matches(presented: &str, stored: &str) -> bool {
    constant_time_eq(presented.as_bytes(), stored.as_bytes())
}

/// Compares without stopping at the first difference, so the time taken says
/// nothing about how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a password is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("the password is empty")]
    Empty,
    #[error("the password is longer than {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("the password could not be hashed")]
    Hashing,
}

/// Checks a new password's length.
pub fn validate_password(password: &str) -> Result<(), PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::Empty);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    Ok(())
}

/// Hashes a password with argon2id (the crate's defaults: 19 MiB, two passes,
/// OWASP's recommendation) into a PHC string. Takes tens of milliseconds: call
/// it off the async threads.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    validate_password(password)?;
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|_| PasswordError::Hashing)
}

/// Whether `password` matches the stored PHC string (as slow as hashing).
pub fn password_matches(password: &str, stored: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    PasswordHash::new(stored).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_random_and_stored_only_as_a_hash() {
        let key = new_secret();
        assert_eq!(key.len(), SECRET_CHARS);
        assert!(key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(key, new_secret());
        let stored = key_hash(&key);
        assert!(!stored.contains(&key));
        assert!(key_matches(&key, &stored));
        assert!(!key_matches(&new_secret(), &stored));
        // One character off is a different key.
        let mut wrong = key.clone().into_bytes();
        wrong[0] = if wrong[0] == b'A' { b'B' } else { b'A' };
        assert!(!key_matches(std::str::from_utf8(&wrong).unwrap(), &stored));
        assert!(!key_matches("", &stored));
    }

    #[test]
    fn passwords_are_hashed_with_argon2id_and_checked() {
        let stored = hash_password("correct horse").unwrap();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(!stored.contains("correct horse"));
        assert!(password_matches("correct horse", &stored));
        assert!(!password_matches("correct hors", &stored));
        assert!(!password_matches("", &stored));
        assert!(!password_matches("correct horse", "not a phc string"));
        // The same password hashes differently each time (a fresh salt).
        assert_ne!(stored, hash_password("correct horse").unwrap());
    }

    #[test]
    fn password_length_is_bounded_in_bytes() {
        assert_eq!(validate_password(""), Err(PasswordError::Empty));
        assert!(validate_password(&"a".repeat(MAX_PASSWORD_BYTES)).is_ok());
        assert_eq!(
            validate_password(&"a".repeat(MAX_PASSWORD_BYTES + 1)),
            Err(PasswordError::TooLong)
        );
        // 86 euro signs are 258 bytes though only 86 characters.
        assert_eq!(
            validate_password(&"€".repeat(86)),
            Err(PasswordError::TooLong)
        );
    }
}
