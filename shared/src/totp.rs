//! TOTP (RFC 6238 over RFC 4226's HOTP): the one-time codes of an authenticator app, as
//! Teleport's `second_factor: otp` uses them: HMAC-SHA1, 6 digits, 30-second steps, secrets of
//! 20 random bytes shown as base32 in an `otpauth://` URL (a QR code).

use hmac::{Hmac, KeyInit, Mac};
use rand::RngExt;
use sha1::Sha1;

use crate::error::{Error, Result};

/// Seconds per code.
pub const STEP_SECONDS: i64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Steps accepted before and after the current one (clock drift between the phone and us).
pub const SKEW_STEPS: i64 = 1;

/// The HOTP value of `secret` at counter `counter` (RFC 4226 §5.3), `digits` long.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else { return 0 };
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h[h.len() - 1] & 0x0f);
    let bin =
        (u32::from(h[offset] & 0x7f) << 24) | (u32::from(h[offset + 1]) << 16) | (u32::from(h[offset + 2]) << 8) | u32::from(h[offset + 3]);
    bin % 10u32.pow(digits)
}

/// The step a Unix time falls in.
pub fn step_of(unix: i64) -> i64 {
    unix.div_euclid(STEP_SECONDS)
}

/// The code for `secret` at Unix time `unix`, zero-padded.
pub fn code_at(secret: &[u8], unix: i64) -> String {
    let step = u64::try_from(step_of(unix)).unwrap_or(0);
    format!("{:0width$}", hotp(secret, step, DIGITS), width = DIGITS as usize)
}

/// The step whose code `code` is, within [`SKEW_STEPS`] of `unix`, if any. Compares in constant
/// time; a code that is not six digits never matches.
pub fn matching_step(secret: &[u8], code: &str, unix: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_of(unix);
    let mut found = None;
    for step in now - SKEW_STEPS..=now + SKEW_STEPS {
        let Ok(counter) = u64::try_from(step) else { continue };
        let want = format!("{:0width$}", hotp(secret, counter, DIGITS), width = DIGITS as usize);
        if crate::certs::secret_eq(&want, code) {
            found = Some(step);
        }
    }
    found
}

/// A new secret (20 random bytes, RFC 4226's recommended length).
pub fn new_secret() -> Vec<u8> {
    let mut s = vec![0u8; 20];
    rand::rng().fill(&mut s[..]);
    s
}

/// Base32 (RFC 4648, no padding), as authenticator apps read it.
pub fn encode_secret(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

/// Reads a base32 secret (padding and lower case accepted).
pub fn decode_secret(s: &str) -> Result<Vec<u8>> {
    let clean: String = s.trim().trim_end_matches('=').to_ascii_uppercase();
    data_encoding::BASE32_NOPAD.decode(clean.as_bytes()).map_err(|e| Error::bad_parameter(format!("invalid OTP secret: {e}")))
}

/// The `otpauth://` URL of a secret (what the QR code holds).
pub fn otpauth_url(issuer: &str, account: &str, secret: &[u8]) -> String {
    let enc = |s: &str| crate::client::encode_segment(s);
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        enc(issuer),
        enc(account),
        encode_secret(secret),
        enc(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_test_vectors() {
        // RFC 4226 appendix D.
        let key = b"12345678901234567890";
        let want = [755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489];
        for (i, w) in want.iter().enumerate() {
            assert_eq!(hotp(key, i as u64, 6), *w, "counter {i}");
        }
        // RFC 6238 appendix B (SHA1), the 8-digit values.
        for (t, w) in [(59, 94287082), (1111111109, 7081804), (1111111111, 14050471), (1234567890, 89005924), (2000000000, 69279037)] {
            assert_eq!(hotp(key, u64::try_from(step_of(t)).unwrap(), 8), w, "time {t}");
        }
        assert_eq!(code_at(key, 59), "287082");
    }

    #[test]
    fn codes_match_within_one_step_and_not_beyond() {
        let key = new_secret();
        let t = 1_800_000_000;
        let code = code_at(&key, t);
        assert_eq!(matching_step(&key, &code, t), Some(step_of(t)));
        assert_eq!(matching_step(&key, &code, t + 30), Some(step_of(t)), "one step late");
        assert_eq!(matching_step(&key, &code, t - 30), Some(step_of(t)), "one step early");
        assert_eq!(matching_step(&key, &code, t + 61), None, "two steps late");
        assert_eq!(matching_step(&key, "12345", t), None);
        assert_eq!(matching_step(&key, "abcdef", t), None);
        assert_eq!(matching_step(&key, &format!(" {code}\n"), t), Some(step_of(t)), "surrounding space is ignored");
    }

    #[test]
    fn secrets_round_trip_through_base32_and_the_url() {
        let key = new_secret();
        assert_eq!(key.len(), 20);
        let b32 = encode_secret(&key);
        assert_eq!(decode_secret(&b32.to_lowercase()).unwrap(), key);
        let url = otpauth_url("root.example.com", "alice", &key);
        assert!(url.starts_with("otpauth://totp/root.example.com:alice?secret="), "{url}");
        assert!(url.contains(&format!("secret={b32}&")) && url.ends_with("digits=6&period=30"), "{url}");
        assert!(decode_secret("not base32!").is_err());
    }
}
