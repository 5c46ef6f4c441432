//! Password sign-ins with a second-factor challenge, run the way Amazon Cognito runs them,
//! and the authentication level (`acr`) and methods (`amr`) the issued tokens carry.
//!
//! Two flows share one state machine:
//! - `USER_PASSWORD_AUTH` ([`SignInFlow::UserPassword`]): what the step-up API's default
//!   verification calls ([`stepup_core::api::IdentityProvider::start_sign_in`]);
//! - `USER_AUTH` with `TARGET_ACR_VALUES` / `MAX_AGE` ([`SignInFlow::UserAuth`]): the
//!   client's own step-up sign-in for claims mode (RFC 9470), which Cognito offers on the
//!   Essentials and Plus plans and managed login offers as `acr_values` / `max_age`.
//!
//! ```text
//!  password ──wrong──► NotAuthorized
//!     │ right
//!     ├─ no usable factor ───────────────────────────► SignedIn (acr loa:1, amr [pwd])
//!     ├─ TOTP preferred or the only one ─► Mfa(SOFTWARE_TOKEN_MFA, session) ─┐
//!     ├─ SMS preferred or the only one ──► Mfa(SMS_MFA, session), code sent ─┤
//!     └─ both, none preferred ─► SelectMfa(session) ─answer─► Mfa(factor, new session)
//!                                                                            │
//!  code ─► right: SignedIn (session used up)   wrong: CodeMismatch (the 3rd ends it)
//!  unknown, expired (3 min) or used session, other user or client: NotAuthorized
//! ```
//!
//! The levels and methods are Cognito's, from the developer guide's "Authentication levels
//! with ACR and AMR claims": level 1 `urn:cognito:loa:1` is a password only; level 3
//! `urn:cognito:loa:3` a password with an SMS (or email) one-time code, or a passkey;
//! level 4 `urn:cognito:loa:4` a password with a TOTP from an authenticator app. `amr`
//! lists `pwd`, `otp` (TOTP), `sms`, and `mfa` once two distinct factors were completed.
//! Cognito puts `acr`/`amr` into tokens of sign-ins that asked for a target level; the
//! development provider puts them into every token, so that the demo page can show what
//! a plain sign-in lacks.

use super::{DevIdp, DevIdpError, State, password_hash, random_hex, token_hash};
use stepup_core::api::{AuthSession, ChallengeReply, MfaSetting, SignInStep, SignedInToken};
use stepup_core::clock::UnixSeconds;

/// How long a sign-in session stays usable (Cognito: three minutes).
pub const SIGN_IN_SESSION_SECS: u64 = 180;
/// Wrong codes a sign-in session takes before it is ended.
pub const MAX_WRONG_CODES: u8 = 3;

/// Cognito's authentication levels, by their default names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AcrLevel {
    /// `urn:cognito:loa:1`: a password only.
    Password,
    /// `urn:cognito:loa:2`: a single SMS or email one-time password.
    SingleOtp,
    /// `urn:cognito:loa:3`: a password with an SMS or email one-time code (or a passkey).
    PasswordAndOtp,
    /// `urn:cognito:loa:4`: a password with a TOTP from an authenticator app.
    PasswordAndTotp,
}

impl AcrLevel {
    /// The `acr` value (Cognito's default name of the level).
    pub fn acr(self) -> &'static str {
        match self {
            AcrLevel::Password => "urn:cognito:loa:1",
            AcrLevel::SingleOtp => "urn:cognito:loa:2",
            AcrLevel::PasswordAndOtp => "urn:cognito:loa:3",
            AcrLevel::PasswordAndTotp => "urn:cognito:loa:4",
        }
    }

    /// Parses a default level name; other names are `None`.
    pub fn parse(s: &str) -> Option<AcrLevel> {
        [
            AcrLevel::Password,
            AcrLevel::SingleOtp,
            AcrLevel::PasswordAndOtp,
            AcrLevel::PasswordAndTotp,
        ]
        .into_iter()
        .find(|l| l.acr() == s)
    }
}

/// What a sign-in proved: the password, and the second factor when there was one. It
/// decides the token's `acr` and `amr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthMethods {
    /// The factor of the answered challenge, if any.
    pub second_factor: Option<MfaSetting>,
}

impl AuthMethods {
    /// A password alone.
    pub const PASSWORD: AuthMethods = AuthMethods {
        second_factor: None,
    };

    /// The level reached.
    pub fn level(self) -> AcrLevel {
        match self.second_factor {
            None => AcrLevel::Password,
            Some(MfaSetting::Sms) => AcrLevel::PasswordAndOtp,
            Some(MfaSetting::SoftwareToken) => AcrLevel::PasswordAndTotp,
        }
    }

    /// The `amr` claim.
    pub fn amr(self) -> Vec<&'static str> {
        match self.second_factor {
            None => vec!["pwd"],
            Some(MfaSetting::Sms) => vec!["pwd", "sms", "mfa"],
            Some(MfaSetting::SoftwareToken) => vec!["pwd", "otp", "mfa"],
        }
    }
}

/// Which Cognito flow a sign-in runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInFlow {
    /// `USER_PASSWORD_AUTH`: the password, then the user's MFA as Cognito chooses it.
    UserPassword,
    /// `USER_AUTH` with `TARGET_ACR_VALUES` (and `MAX_AGE`, which an API sign-in always
    /// meets: it authenticates the user now). A target of level 4 only is met by TOTP
    /// alone, so SMS is not offered for it; otherwise as [`SignInFlow::UserPassword`].
    /// The tokens carry the level reached, which may be below the target (a user with no
    /// second factor): checking it is the application's job, as with Cognito.
    UserAuth {
        /// The levels asked for (any of them).
        targets: Vec<AcrLevel>,
    },
}

impl SignInFlow {
    /// `USER_AUTH` from Cognito's `TARGET_ACR_VALUES` (space-separated level names). An
    /// unknown name is refused, as Cognito refuses a name its pool does not define.
    pub fn user_auth(target_acr_values: &str) -> Result<SignInFlow, DevIdpError> {
        let targets = target_acr_values
            .split_whitespace()
            .map(|v| AcrLevel::parse(v).ok_or(DevIdpError::InvalidParameter("TARGET_ACR_VALUES")))
            .collect::<Result<Vec<_>, _>>()?;
        if targets.is_empty() {
            return Err(DevIdpError::InvalidParameter("TARGET_ACR_VALUES"));
        }
        Ok(SignInFlow::UserAuth { targets })
    }

    /// The factors whose challenge can meet the flow's target.
    fn usable(&self, factor: MfaSetting) -> bool {
        match self {
            SignInFlow::UserPassword => true,
            SignInFlow::UserAuth { targets } => {
                factor == MfaSetting::SoftwareToken
                    || targets.iter().any(|t| *t < AcrLevel::PasswordAndTotp)
            }
        }
    }
}

/// What a sign-in session waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Awaiting {
    /// A code of this factor.
    Code(MfaSetting),
    /// A choice among these factors.
    Choice(Vec<MfaSetting>),
}

/// A sign-in between the password and the code, kept under the SHA-256 of its session.
pub(super) struct PendingSignIn {
    username: String,
    client_id: String,
    awaiting: Awaiting,
    /// The SMS code sent for an `SMS_MFA` challenge.
    sms_code: Option<String>,
    expires: UnixSeconds,
    wrong_codes: u8,
}

/// An SMS to hand to the sink once the state lock is released.
type Outgoing = Option<(String, String)>;

impl DevIdp {
    /// `InitiateAuth`: checks the password of `username` for the app client `client_id`
    /// at `now` and starts the second-factor challenge, or signs the user in when there is
    /// none to ask for. A wrong password or an unknown user is
    /// [`DevIdpError::NotAuthorized`]; an unknown app client [`DevIdpError::UnknownClient`].
    pub fn start_sign_in_at(
        &self,
        client_id: &str,
        username: &str,
        password: &str,
        flow: SignInFlow,
        now: UnixSeconds,
    ) -> Result<SignInStep, DevIdpError> {
        if client_id != self.config.client_id {
            return Err(DevIdpError::UnknownClient);
        }
        let (step, sms) = {
            let mut state = self.state()?;
            state.sign_ins.retain(|_, p| p.expires > now);
            let user = match state.users.get(username) {
                Some(u) if password_hash(&u.password_salt, password) == u.password_hash => u,
                _ => return Err(DevIdpError::NotAuthorized),
            };
            let usable: Vec<MfaSetting> = [MfaSetting::SoftwareToken, MfaSetting::Sms]
                .into_iter()
                .filter(|f| user.mfa_settings.contains(f) && flow.usable(*f))
                .filter(|f| *f != MfaSetting::Sms || user.phone_number.is_some())
                .collect();
            let awaiting = match user.preferred_mfa {
                Some(p) if usable.contains(&p) => Some(Awaiting::Code(p)),
                _ => match usable.as_slice() {
                    [] => None,
                    [only] => Some(Awaiting::Code(*only)),
                    _ => Some(Awaiting::Choice(usable.clone())),
                },
            };
            match awaiting {
                None => {
                    let signed =
                        self.issue_token(&mut state, username, AuthMethods::PASSWORD, now)?;
                    let token = SignedInToken(signed.access_token);
                    return Ok(SignInStep::SignedIn {
                        access_token: token,
                    });
                }
                Some(awaiting) => self.open_session(
                    &mut state,
                    PendingSignIn {
                        username: username.to_owned(),
                        client_id: client_id.to_owned(),
                        awaiting,
                        sms_code: None,
                        expires: now.plus(SIGN_IN_SESSION_SECS),
                        wrong_codes: 0,
                    },
                )?,
            }
        };
        self.deliver(sms);
        Ok(step)
    }

    /// `RespondToAuthChallenge`: answers the challenge of `session` at `now`. A right code
    /// signs the user in and uses the session up; a wrong one is
    /// [`DevIdpError::CodeMismatch`] (the [`MAX_WRONG_CODES`]th ends the session); an
    /// unknown, expired or used session, or one of another user or app client, is
    /// [`DevIdpError::NotAuthorized`]; an answer that does not fit the challenge (another
    /// factor, a factor not offered) is [`DevIdpError::InvalidParameter`].
    pub fn respond_to_sign_in_at(
        &self,
        client_id: &str,
        username: &str,
        session: &str,
        reply: ChallengeReply<'_>,
        now: UnixSeconds,
    ) -> Result<SignInStep, DevIdpError> {
        let key = token_hash(session);
        let (step, sms) = {
            let mut state = self.state()?;
            state.sign_ins.retain(|_, p| p.expires > now);
            let awaiting = match state.sign_ins.get(&key) {
                Some(p) if p.username == username && p.client_id == client_id => p.awaiting.clone(),
                _ => return Err(DevIdpError::NotAuthorized),
            };
            match (awaiting, reply) {
                (Awaiting::Code(asked), ChallengeReply::Code { factor, code })
                    if asked == factor =>
                {
                    if !self.code_is_right(&state, &key, factor, code, now) {
                        return Err(wrong_code(&mut state, &key));
                    }
                    state.sign_ins.remove(&key);
                    let methods = AuthMethods {
                        second_factor: Some(factor),
                    };
                    let signed = self.issue_token(&mut state, username, methods, now)?;
                    return Ok(SignInStep::SignedIn {
                        access_token: SignedInToken(signed.access_token),
                    });
                }
                (Awaiting::Choice(offered), ChallengeReply::Select(factor))
                    if offered.contains(&factor) =>
                {
                    let Some(pending) = state.sign_ins.remove(&key) else {
                        return Err(DevIdpError::NotAuthorized);
                    };
                    // A new session for the next step, as Cognito answers each step with one.
                    let next = PendingSignIn {
                        awaiting: Awaiting::Code(factor),
                        ..pending
                    };
                    self.open_session(&mut state, next)?
                }
                _ => return Err(DevIdpError::InvalidParameter("challenge answer")),
            }
        };
        self.deliver(sms);
        Ok(step)
    }

    /// Stores `pending` under a fresh session (making the SMS code of an `SMS_MFA`
    /// challenge) and says what the client is asked for.
    fn open_session(
        &self,
        state: &mut State,
        mut pending: PendingSignIn,
    ) -> Result<(SignInStep, Outgoing), DevIdpError> {
        let session = AuthSession(random_hex(32)?);
        let mut sms = None;
        let step = match &pending.awaiting {
            Awaiting::Code(factor) => {
                if *factor == MfaSetting::Sms {
                    let code = super::random_code()?;
                    let phone = state
                        .users
                        .get(&pending.username)
                        .and_then(|u| u.phone_number.clone())
                        .ok_or(DevIdpError::InvalidParameter("no phone number"))?;
                    pending.sms_code = Some(code.clone());
                    sms = Some((phone, code));
                }
                SignInStep::Mfa {
                    factor: *factor,
                    session: session.clone(),
                }
            }
            Awaiting::Choice(_) => SignInStep::SelectMfa {
                session: session.clone(),
            },
        };
        state.sign_ins.insert(token_hash(&session.0), pending);
        Ok((step, sms))
    }

    fn code_is_right(
        &self,
        state: &State,
        key: &[u8; 32],
        factor: MfaSetting,
        code: &str,
        now: UnixSeconds,
    ) -> bool {
        let Some(pending) = state.sign_ins.get(key) else {
            return false;
        };
        let Some(user) = state.users.get(&pending.username) else {
            return false;
        };
        match factor {
            MfaSetting::SoftwareToken => {
                user.mfa_settings.contains(&MfaSetting::SoftwareToken)
                    && user
                        .totp
                        .as_ref()
                        .is_some_and(|k| k.verify(code, now).is_some())
            }
            MfaSetting::Sms => pending
                .sms_code
                .as_deref()
                .is_some_and(|expected| expected.as_bytes() == code.trim().as_bytes()),
        }
    }

    fn deliver(&self, sms: Outgoing) {
        if let Some((phone, code)) = sms {
            (self.sms)(&phone, &code);
        }
    }
}

/// Counts a wrong code against the session and ends it at the limit.
fn wrong_code(state: &mut State, key: &[u8; 32]) -> DevIdpError {
    if let Some(p) = state.sign_ins.get_mut(key) {
        p.wrong_codes += 1;
        if p.wrong_codes >= MAX_WRONG_CODES {
            state.sign_ins.remove(key);
        }
    }
    DevIdpError::CodeMismatch
}
