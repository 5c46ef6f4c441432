//! The step-up API's wire format: the challenge kinds of the seed ([`StepUpType`]) and the
//! request bodies, parsed and checked before anything reaches a store or Cognito. The
//! bodies hold a code and a password, so none of these types is `Debug`.

use super::error::ApiError;
use super::idp::{MfaSetting, UserInfo};
use crate::session::Factor;
use serde::Deserialize;

/// The challenge kinds of the seed's wire format (`code` of `/initiate-auth`,
/// `step-up-type` of `/respond-to-challenge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepUpType {
    /// `SOFTWARE_TOKEN_STEP_UP`: the user prefers a TOTP app.
    SoftwareToken,
    /// `SMS_STEP_UP`: a code is sent by SMS.
    Sms,
    /// `MAYBE_SOFTWARE_TOKEN_STEP_UP`: no preference known; the user may have a TOTP app.
    MaybeSoftwareToken,
}

impl StepUpType {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StepUpType::SoftwareToken => "SOFTWARE_TOKEN_STEP_UP",
            StepUpType::Sms => "SMS_STEP_UP",
            StepUpType::MaybeSoftwareToken => "MAYBE_SOFTWARE_TOKEN_STEP_UP",
        }
    }

    /// Parses the wire spelling (exactly).
    pub fn parse(s: &str) -> Option<StepUpType> {
        match s {
            "SOFTWARE_TOKEN_STEP_UP" => Some(StepUpType::SoftwareToken),
            "SMS_STEP_UP" => Some(StepUpType::Sms),
            "MAYBE_SOFTWARE_TOKEN_STEP_UP" => Some(StepUpType::MaybeSoftwareToken),
            _ => None,
        }
    }

    /// The factor an answer of this kind is verified with.
    pub fn factor(self) -> Factor {
        match self {
            StepUpType::Sms => Factor::Sms,
            StepUpType::SoftwareToken | StepUpType::MaybeSoftwareToken => Factor::SoftwareToken,
        }
    }

    /// Cognito's name of the factor.
    pub fn mfa(self) -> MfaSetting {
        match self.factor() {
            Factor::Sms => MfaSetting::Sms,
            Factor::SoftwareToken => MfaSetting::SoftwareToken,
        }
    }

    /// The kind for a factor Cognito asked for.
    pub fn of_mfa(mfa: MfaSetting) -> StepUpType {
        match mfa {
            MfaSetting::SoftwareToken => StepUpType::SoftwareToken,
            MfaSetting::Sms => StepUpType::Sms,
        }
    }

    /// The challenge for `user`, as the seed chooses it: a preferred software token; SMS
    /// when preferred or the only factor set up; otherwise "maybe a software token".
    ///
    /// Unlike the seed, SMS is chosen only for a *verified* phone number: a code sent to
    /// a number that whoever holds the token just put there would prove nothing.
    pub fn choose(user: &UserInfo) -> StepUpType {
        let sms_usable = user.has_phone_number && user.phone_number_verified;
        let sms_only = user.mfa_settings.contains(&MfaSetting::Sms)
            && !user.mfa_settings.contains(&MfaSetting::SoftwareToken);
        match user.preferred_mfa {
            Some(MfaSetting::SoftwareToken) => StepUpType::SoftwareToken,
            Some(MfaSetting::Sms) if sms_usable => StepUpType::Sms,
            None if sms_only && sms_usable => StepUpType::Sms,
            _ => StepUpType::MaybeSoftwareToken,
        }
    }
}

/// True for a code Cognito could have issued: 6 to 8 ASCII digits.
pub(crate) fn is_valid_code(code: &str) -> bool {
    (6..=8).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit())
}

/// Cognito's password limit (characters).
const MAX_PASSWORD_CHARS: usize = 256;

/// A password from a request body: non-empty, at most 256 characters, never printed.
pub(crate) struct Password(String);

impl Password {
    fn parse(s: String) -> Result<Password, ApiError> {
        if s.is_empty() || s.chars().count() > MAX_PASSWORD_CHARS {
            return Err(ApiError::BadRequest("bad_password"));
        }
        Ok(Password(s))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// The `/initiate-auth` body: none (the seed's web app), `{}`, or `{"password": ...}`.
#[derive(Deserialize, Default)]
struct InitiateBody {
    password: Option<String>,
}

/// The password of an `/initiate-auth` body, if one was sent.
pub(crate) fn parse_initiate(body: &[u8]) -> Result<Option<Password>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let parsed: InitiateBody =
        serde_json::from_slice(body).map_err(|_| ApiError::BadRequest("bad_body"))?;
    parsed.password.map(Password::parse).transpose()
}

/// The `/respond-to-challenge` body.
#[derive(Deserialize)]
struct ChallengeBody {
    #[serde(rename = "step-up-type")]
    step_up_type: String,
    #[serde(rename = "challenge-response")]
    challenge_response: String,
    password: Option<String>,
    #[serde(rename = "auth-session")]
    auth_session: Option<String>,
}

/// A checked answer to a challenge.
pub(crate) struct Answer {
    pub(crate) step_up: StepUpType,
    pub(crate) code: String,
    pub(crate) password: Option<Password>,
    pub(crate) auth_session: Option<String>,
}

/// Cognito's sessions are a few hundred to a few thousand characters.
const MAX_AUTH_SESSION_CHARS: usize = 3072;

/// Parses and checks the answer: a known type, a code of 6 to 8 digits, an optional
/// password and an optional sign-in session.
pub(crate) fn parse_answer(body: &[u8]) -> Result<Answer, ApiError> {
    let body: ChallengeBody =
        serde_json::from_slice(body).map_err(|_| ApiError::BadRequest("bad_body"))?;
    let step_up =
        StepUpType::parse(&body.step_up_type).ok_or(ApiError::BadRequest("bad_step_up_type"))?;
    if !is_valid_code(&body.challenge_response) {
        return Err(ApiError::BadRequest("bad_code"));
    }
    let auth_session = match body.auth_session {
        Some(s) if s.is_empty() || s.len() > MAX_AUTH_SESSION_CHARS => {
            return Err(ApiError::BadRequest("bad_auth_session"));
        }
        other => other,
    };
    Ok(Answer {
        step_up,
        code: body.challenge_response,
        password: body.password.map(Password::parse).transpose()?,
        auth_session,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(preferred: Option<MfaSetting>, settings: &[MfaSetting], phone: bool) -> UserInfo {
        UserInfo {
            username: "alice".into(),
            preferred_mfa: preferred,
            mfa_settings: settings.to_vec(),
            has_phone_number: phone,
            phone_number_verified: phone,
        }
    }

    #[test]
    fn the_challenge_is_chosen_as_the_seed_chooses_it() {
        use MfaSetting::*;
        let cases = [
            (
                user(Some(SoftwareToken), &[SoftwareToken, Sms], true),
                StepUpType::SoftwareToken,
            ),
            (
                user(Some(Sms), &[SoftwareToken, Sms], true),
                StepUpType::Sms,
            ),
            (user(None, &[Sms], true), StepUpType::Sms),
            (
                user(None, &[SoftwareToken, Sms], true),
                StepUpType::MaybeSoftwareToken,
            ),
            (user(None, &[], true), StepUpType::MaybeSoftwareToken),
            (user(None, &[], false), StepUpType::MaybeSoftwareToken),
        ];
        for (u, want) in cases {
            assert_eq!(StepUpType::choose(&u), want, "{u:?}");
        }
    }

    #[test]
    fn sms_is_never_chosen_for_an_unverified_phone_number() {
        let mut u = user(Some(MfaSetting::Sms), &[MfaSetting::Sms], true);
        u.phone_number_verified = false;
        assert_eq!(StepUpType::choose(&u), StepUpType::MaybeSoftwareToken);
    }

    #[test]
    fn step_up_types_round_trip_and_map_to_factors() {
        for t in [
            StepUpType::SoftwareToken,
            StepUpType::Sms,
            StepUpType::MaybeSoftwareToken,
        ] {
            assert_eq!(StepUpType::parse(t.as_str()), Some(t));
        }
        assert_eq!(StepUpType::parse("sms_step_up"), None);
        assert_eq!(StepUpType::Sms.factor(), Factor::Sms);
        assert_eq!(
            StepUpType::MaybeSoftwareToken.mfa(),
            MfaSetting::SoftwareToken
        );
        assert_eq!(StepUpType::of_mfa(MfaSetting::Sms), StepUpType::Sms);
    }

    #[test]
    fn codes_are_six_to_eight_ascii_digits() {
        for ok in ["123456", "1234567", "12345678"] {
            assert!(is_valid_code(ok), "{ok}");
        }
        for bad in [
            "",
            "12345",
            "123456789",
            "12345a",
            " 123456",
            "１２３４５６",
            "12 456",
        ] {
            assert!(!is_valid_code(bad), "{bad:?}");
        }
    }

    #[test]
    fn initiate_bodies_are_optional_and_passwords_bounded() {
        assert!(parse_initiate(b"").unwrap().is_none());
        assert!(parse_initiate(b"  \n").unwrap().is_none());
        assert!(parse_initiate(b"{}").unwrap().is_none());
        assert_eq!(
            parse_initiate(br#"{"password":"pw"}"#)
                .unwrap()
                .unwrap()
                .as_str(),
            "pw"
        );
        for bad in [&br#"{"password":""}"#[..], b"{", br#"{"password":1}"#] {
            assert!(
                parse_initiate(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = format!(r#"{{"password":"{}"}}"#, "x".repeat(257));
        assert!(parse_initiate(long.as_bytes()).is_err());
    }

    #[test]
    fn answers_keep_the_seed_fields_and_take_a_password_or_a_session() {
        let a = parse_answer(
            br#"{"step-up-type":"SOFTWARE_TOKEN_STEP_UP","challenge-response":"123456"}"#,
        )
        .unwrap();
        assert!(a.password.is_none() && a.auth_session.is_none());
        let a = parse_answer(
            br#"{"step-up-type":"SMS_STEP_UP","challenge-response":"123456","auth-session":"s","password":"p"}"#,
        )
        .unwrap();
        assert_eq!(a.step_up, StepUpType::Sms);
        assert_eq!(a.auth_session.as_deref(), Some("s"));
        assert!(
            parse_answer(
                br#"{"step-up-type":"SMS_STEP_UP","challenge-response":"123456","auth-session":""}"#
            )
            .is_err()
        );
    }
}
