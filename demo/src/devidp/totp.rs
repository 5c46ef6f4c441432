//! Time-based one-time passwords (RFC 6238) for the development identity provider, on top
//! of the `totp-rs` crate: a [`TotpKey`] generates and verifies codes at a given `now`
//! (never the clock), and renders itself as an `otpauth://` URI and a QR code that an
//! authenticator app scans.
//!
//! The RFC's own test vectors (appendix B) are tests of this module, so that a change of
//! crate or of settings cannot drift from the standard.

use super::DevIdpError;
use base64::{Engine as _, engine::general_purpose::STANDARD};
use qrcode::QrCode;
use stepup_core::clock::UnixSeconds;
use totp_rs::{Algorithm, Builder, Secret, Totp};

/// The hash of a key (RFC 6238 allows SHA-1, SHA-256 and SHA-512).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpAlgorithm {
    /// HMAC-SHA-1, what authenticator apps and Cognito use.
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

impl TotpAlgorithm {
    fn to_crate(self) -> Algorithm {
        match self {
            TotpAlgorithm::Sha1 => Algorithm::SHA1,
            TotpAlgorithm::Sha256 => Algorithm::SHA256,
            TotpAlgorithm::Sha512 => Algorithm::SHA512,
        }
    }
}

/// A TOTP key with its settings. Not `Debug`-printable with the secret: the secret is
/// shown once to its owner, never logged.
pub struct TotpKey {
    totp: Totp,
}

impl std::fmt::Debug for TotpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpKey").finish_non_exhaustive()
    }
}

impl TotpKey {
    /// The settings Cognito and authenticator apps use: SHA-1, 6 digits, 30 s steps, one
    /// step of clock skew either way. `issuer` and `account` label the key in the app.
    pub fn authenticator(
        secret: Vec<u8>,
        issuer: &str,
        account: &str,
    ) -> Result<Self, DevIdpError> {
        Self::build(secret, TotpAlgorithm::Sha1, 6, 30, 1, Some(issuer), account)
    }

    /// Any RFC 6238 settings (no skew), e.g. for the RFC's 8-digit test vectors.
    pub fn rfc6238(
        secret: Vec<u8>,
        algorithm: TotpAlgorithm,
        digits: u8,
        step_secs: u64,
    ) -> Result<Self, DevIdpError> {
        Self::build(secret, algorithm, digits, step_secs, 0, None, "rfc6238")
    }

    fn build(
        secret: Vec<u8>,
        algorithm: TotpAlgorithm,
        digits: u8,
        step_secs: u64,
        skew: u16,
        issuer: Option<&str>,
        account: &str,
    ) -> Result<Self, DevIdpError> {
        let totp = Builder::new()
            .with_algorithm(algorithm.to_crate())
            .with_digits(digits)
            .with_step_duration(step_secs)
            .with_skew(skew)
            .with_secret(Secret::from(secret))
            .with_issuer(issuer)
            .with_account_name(account)
            .build()
            .map_err(|e| DevIdpError::Internal(format!("TOTP key: {e}")))?;
        Ok(TotpKey { totp })
    }

    /// The code at `now`.
    pub fn generate(&self, now: UnixSeconds) -> String {
        self.totp.generate(now.as_secs()).to_string()
    }

    /// Whether `code` is the code of `now`'s time step or of a step within the skew.
    /// Returns the matching time step (for replay protection by the caller).
    pub fn verify(&self, code: &str, now: UnixSeconds) -> Option<u64> {
        self.totp.check(code.trim(), now.as_secs())
    }

    /// The secret in base32 (RFC 4648, no padding), as Cognito's `SecretCode`.
    pub fn secret_base32(&self) -> String {
        self.totp.secret().to_base32()
    }

    /// The `otpauth://totp/...` URI an authenticator app scans.
    pub fn otpauth_uri(&self) -> Result<String, DevIdpError> {
        self.totp
            .to_url()
            .map_err(|e| DevIdpError::Internal(format!("otpauth URI: {e}")))
    }

    /// The QR code of [`TotpKey::otpauth_uri`] as an SVG picture in a `data:` URL, for an
    /// `<img src>`.
    pub fn qr_svg_data_url(&self) -> Result<String, DevIdpError> {
        let code = self.qr_code()?;
        let svg = code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .build();
        Ok(format!(
            "data:image/svg+xml;base64,{}",
            STANDARD.encode(svg)
        ))
    }

    fn qr_code(&self) -> Result<QrCode, DevIdpError> {
        QrCode::new(self.otpauth_uri()?).map_err(|e| DevIdpError::Internal(format!("QR code: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMES: [UnixSeconds; 6] = [
        UnixSeconds::from_secs(59),
        UnixSeconds::from_secs(1_111_111_109),
        UnixSeconds::from_secs(1_111_111_111),
        UnixSeconds::from_secs(1_234_567_890),
        UnixSeconds::from_secs(2_000_000_000),
        UnixSeconds::from_secs(20_000_000_000),
    ];

    fn rfc_key(secret: &[u8], algorithm: TotpAlgorithm) -> TotpKey {
        TotpKey::rfc6238(secret.to_vec(), algorithm, 8, 30).unwrap()
    }

    #[test]
    fn rfc6238_sha1_test_vectors_are_reproduced() {
        let key = rfc_key(b"12345678901234567890", TotpAlgorithm::Sha1);
        let expected = [
            "94287082", "07081804", "14050471", "89005924", "69279037", "65353130",
        ];
        for (t, code) in TIMES.iter().zip(expected) {
            assert_eq!(key.generate(*t), code, "T = {t}");
            assert!(key.verify(code, *t).is_some(), "T = {t}");
        }
    }

    #[test]
    fn rfc6238_sha256_test_vectors_are_reproduced() {
        let key = rfc_key(b"12345678901234567890123456789012", TotpAlgorithm::Sha256);
        let expected = [
            "46119246", "68084774", "67062674", "91819424", "90698825", "77737706",
        ];
        for (t, code) in TIMES.iter().zip(expected) {
            assert_eq!(key.generate(*t), code, "T = {t}");
        }
    }

    #[test]
    fn rfc6238_sha512_test_vectors_are_reproduced() {
        let key = rfc_key(
            b"1234567890123456789012345678901234567890123456789012345678901234",
            TotpAlgorithm::Sha512,
        );
        let expected = [
            "90693936", "25091201", "99943326", "93441116", "38618901", "47863826",
        ];
        for (t, code) in TIMES.iter().zip(expected) {
            assert_eq!(key.generate(*t), code, "T = {t}");
        }
    }

    #[test]
    fn authenticator_code_is_accepted_one_step_either_side_only() {
        let key =
            TotpKey::authenticator(b"12345678901234567890".to_vec(), "stepup", "demo").unwrap();
        let now = UnixSeconds::from_secs(1_800_000_015);
        let code = key.generate(now);
        assert_eq!(code.len(), 6);
        assert!(key.verify(&code, now).is_some());
        assert!(key.verify(&code, now.plus(30)).is_some());
        assert!(key.verify(&code, now.minus(30)).is_some());
        assert!(key.verify(&code, now.plus(60)).is_none());
        assert!(key.verify("12345", now).is_none());
        assert!(key.verify("+12345", now).is_none());
    }

    #[test]
    fn otpauth_uri_and_qr_code_carry_the_key() {
        let key = TotpKey::authenticator(b"12345678901234567890".to_vec(), "stepup demo", "demo")
            .unwrap();
        assert_eq!(key.secret_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let uri = key.otpauth_uri().unwrap();
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        assert!(
            uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
            "{uri}"
        );
        assert!(uri.contains("issuer=stepup%20demo"), "{uri}");
        let url = key.qr_svg_data_url().unwrap();
        let svg = url.strip_prefix("data:image/svg+xml;base64,").unwrap();
        let svg = String::from_utf8(STANDARD.decode(svg).unwrap()).unwrap();
        assert!(svg.contains("<svg") && svg.ends_with("</svg>"), "{svg}");
        // What a scanner reads: the code's modules, four modules of quiet zone, decoded.
        let code = key.qr_code().unwrap();
        let (width, colors) = (code.width(), code.to_colors());
        let (quiet, scale) = (4, 4);
        let side = (width + 2 * quiet) * scale;
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(side, side, |x, y| {
            let (mx, my) = (
                (x / scale).wrapping_sub(quiet),
                (y / scale).wrapping_sub(quiet),
            );
            let dark = mx < width && my < width && colors[my * width + mx] == qrcode::Color::Dark;
            if dark { 0 } else { 255 }
        });
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code");
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(content, uri);
    }

    #[test]
    fn a_short_secret_is_refused() {
        assert!(TotpKey::authenticator(b"short".to_vec(), "stepup", "demo").is_err());
    }
}
