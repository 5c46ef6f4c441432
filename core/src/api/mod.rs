//! The step-up API (`POST /initiate-auth`, `POST /respond-to-challenge`), wire-compatible
//! with the seed's web app: an axum [`router()`] over an [`ApiState`] (token verifier,
//! session store, identity provider), so that the sidecar and the Lambda binary serve the
//! very same code.
//!
//! - [`idp`]: what the API needs from the identity provider, as the [`IdentityProvider`]
//!   trait, and its [`IdpError`];
//! - [`cognito`]: the Amazon Cognito implementation (feature `cognito`);
//! - [`mod@router`]: the handlers, their one error type, CORS and metrics.
//!
//! Session mode's known weakness (see the README): `VerifySoftwareToken` is Cognito's
//! enrolment call, so whoever holds the access token can associate a new authenticator and
//! pass. Claims mode (RFC 9470) does not share it.

#[cfg(feature = "cognito")]
pub mod cognito;
pub mod idp;
pub mod router;

#[cfg(feature = "cognito")]
pub use cognito::CognitoIdp;
pub use idp::{
    AuthSession, ChallengeReply, IdentityProvider, IdpError, MfaSetting, SignInStep, SignedInToken,
    UserInfo,
};
pub use router::{ApiError, ApiState, StepUpType, router};
