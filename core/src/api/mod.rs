//! The step-up API (`POST /initiate-auth`, `POST /respond-to-challenge`), wire-compatible
//! with the seed's web app: an axum [`router()`] over an [`ApiState`] (token verifier,
//! session store, identity provider), so that the sidecar and the Lambda binary serve the
//! very same code.
//!
//! - [`idp`]: what the API needs from the identity provider, as the [`IdentityProvider`]
//!   trait, and its [`IdpError`];
//! - [`cognito`]: the Amazon Cognito implementation (feature `cognito`);
//! - [`state`]: [`ApiState`] and its settings ([`Verification`], [`CorsPolicy`]);
//! - [`wire`]: the challenge kinds and request bodies;
//! - [`error`]: the one error type and its fixed answers;
//! - [`routes`]: the routes, CORS, authentication and attempt reservation; the flows
//!   are in `initiate` and `respond`.
//!
//! By default a code is checked by Cognito's own MFA challenge (a sign-in with the
//! password), which a thief holding only the access token cannot pass; the seed's
//! enrolment-call check (`VerifySoftwareToken`) is kept behind
//! [`Verification::SeedCompatible`] for the seed's web app. See `docs/decisions.md`.

#[cfg(feature = "cognito")]
pub mod cognito;
pub mod error;
pub mod idp;
mod initiate;
mod respond;
pub mod routes;
pub mod state;
pub mod wire;

#[cfg(feature = "cognito")]
pub use cognito::CognitoIdp;
pub use error::ApiError;
pub use idp::{
    AuthSession, ChallengeReply, IdentityProvider, IdpError, MfaSetting, SignInStep, SignedInToken,
    UserInfo,
};
pub use routes::router;
pub use state::{ApiState, CorsError, CorsPolicy, Verification};
pub use wire::StepUpType;
