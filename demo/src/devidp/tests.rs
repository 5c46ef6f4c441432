use super::*;
use signin::SignInFlow;
use std::sync::Mutex as StdMutex;
use stepup_core::api::SignedInToken;
use stepup_core::token::TokenVerifier;

const NOW: UnixSeconds = UnixSeconds::from_secs(1_800_000_000);
const CLIENT: &str = "demo-client";

fn idp() -> DevIdp {
    let idp = DevIdp::new(DevIdpConfig::new("http://127.0.0.1:1/dev-idp", CLIENT)).unwrap();
    idp.sign_up("alice", "correct horse", Some("+15555550100"))
        .unwrap();
    idp
}

fn totp_of(secret_base32: &str) -> TotpKey {
    let secret = totp_rs::Secret::try_from_base32(secret_base32).unwrap();
    TotpKey::authenticator(secret.as_ref().to_vec(), "x", "y").unwrap()
}

#[tokio::test]
async fn issued_tokens_are_cognito_shaped_and_verify_against_the_jwks() {
    let idp = Arc::new(idp());
    let signed = idp.sign_in_at("alice", "correct horse", NOW).unwrap();
    assert_eq!(signed.expires_in, 3600);
    let verifier = TokenVerifier::new(idp.verifier_config(), idp.clone());
    let claims = verifier
        .verify(&signed.access_token, NOW.plus(10))
        .await
        .unwrap();
    assert_eq!(claims.username, "alice");
    assert_eq!(claims.client_id, CLIENT);
    assert_eq!(claims.exp, NOW.plus(3600));
    assert!(!claims.jti.is_empty());
    assert!(
        verifier
            .verify(&signed.access_token, NOW.plus(4000))
            .await
            .is_err()
    );
}

#[test]
fn wrong_password_and_unknown_user_are_not_authorized() {
    let idp = idp();
    assert_eq!(
        idp.sign_in_at("alice", "wrong password", NOW),
        Err(DevIdpError::NotAuthorized)
    );
    assert_eq!(
        idp.sign_in_at("bob", "correct horse", NOW),
        Err(DevIdpError::NotAuthorized)
    );
}

#[test]
fn sign_up_refuses_taken_names_and_weak_input() {
    let idp = idp();
    assert_eq!(
        idp.sign_up("alice", "another password", None),
        Err(DevIdpError::UsernameExists)
    );
    assert!(matches!(
        idp.sign_up("bob", "short", None),
        Err(DevIdpError::InvalidParameter(_))
    ));
    assert!(matches!(
        idp.sign_up("b o b", "long enough", None),
        Err(DevIdpError::InvalidParameter(_))
    ));
    assert!(matches!(
        idp.sign_up("bob", "long enough", Some("12")),
        Err(DevIdpError::InvalidParameter(_))
    ));
}

#[test]
fn software_token_is_associated_verified_then_preferred() {
    let idp = idp();
    let token = idp
        .sign_in_at("alice", "correct horse", NOW)
        .unwrap()
        .access_token;
    // Cannot prefer a factor that is not verified yet.
    let prefer = Some(MfaPreference {
        enabled: true,
        preferred: true,
    });
    assert!(
        idp.set_mfa_preference_at(&token, prefer, None, NOW)
            .is_err()
    );

    let assoc = idp.associate_software_token_at(&token, NOW).unwrap();
    assert!(assoc.otpauth_uri.contains(&assoc.secret_code));
    let app = totp_of(&assoc.secret_code);
    let right = app.generate(NOW);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    assert_eq!(
        idp.verify_software_token_at(&token, wrong, NOW),
        Err(DevIdpError::CodeMismatch)
    );
    idp.verify_software_token_at(&token, &app.generate(NOW), NOW)
        .unwrap();
    idp.set_mfa_preference_at(&token, prefer, None, NOW)
        .unwrap();

    let user = idp.get_user_at(&token, NOW).unwrap();
    assert_eq!(user.username, "alice");
    assert_eq!(user.preferred_mfa, Some(MfaSetting::SoftwareToken));
    assert_eq!(user.mfa_settings, vec![MfaSetting::SoftwareToken]);
    assert!(user.has_phone_number && user.phone_number_verified);
}

#[tokio::test]
async fn identity_provider_trait_checks_totp_with_the_injected_clock() {
    fn fixed() -> UnixSeconds {
        NOW
    }
    let idp = idp().with_clock(fixed);
    let token = idp
        .sign_in_at("alice", "correct horse", NOW)
        .unwrap()
        .access_token;
    let app = totp_of(
        &idp.associate_software_token_at(&token, NOW)
            .unwrap()
            .secret_code,
    );
    let idp: &dyn IdentityProvider = &idp;
    assert_eq!(
        idp.verify_software_token(&token, &app.generate(NOW.plus(300)))
            .await,
        Err(IdpError::CodeMismatch)
    );
    idp.verify_software_token(&token, &app.generate(NOW))
        .await
        .unwrap();
    assert_eq!(
        idp.get_user("not a token").await,
        Err(IdpError::NotAuthorized)
    );
}

#[test]
fn sms_codes_go_to_the_sink_and_are_used_once() {
    let sent: Arc<StdMutex<Vec<(String, String)>>> = Arc::default();
    let sink_sent = sent.clone();
    let idp = idp().with_sms_sink(Arc::new(move |phone: &str, code: &str| {
        sink_sent
            .lock()
            .unwrap()
            .push((phone.to_owned(), code.to_owned()));
    }));
    let token = idp
        .sign_in_at("alice", "correct horse", NOW)
        .unwrap()
        .access_token;
    idp.send_sms_code_at(&token, NOW).unwrap();
    let (phone, code) = sent.lock().unwrap()[0].clone();
    assert_eq!(phone, "+15555550100");
    assert_eq!(code.len(), 6);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert_eq!(
        idp.verify_sms_code_at(&token, wrong, NOW),
        Err(DevIdpError::CodeMismatch)
    );
    idp.verify_sms_code_at(&token, &code, NOW.plus(10)).unwrap();
    assert_eq!(
        idp.verify_sms_code_at(&token, &code, NOW.plus(20)),
        Err(DevIdpError::CodeMismatch)
    );
    idp.send_sms_code_at(&token, NOW).unwrap();
    let code = sent.lock().unwrap()[1].1.clone();
    assert_eq!(
        idp.verify_sms_code_at(&token, &code, NOW.plus(301)),
        Err(DevIdpError::ExpiredCode)
    );
}

#[test]
fn expired_and_signed_out_tokens_are_not_authorized() {
    let idp = idp();
    let token = idp
        .sign_in_at("alice", "correct horse", NOW)
        .unwrap()
        .access_token;
    assert_eq!(
        idp.get_user_at(&token, NOW.plus(3600)),
        Err(DevIdpError::NotAuthorized)
    );
    idp.sign_out_at(&token, NOW).unwrap();
    assert_eq!(
        idp.get_user_at(&token, NOW),
        Err(DevIdpError::NotAuthorized)
    );
}

#[test]
fn random_passwords_differ_and_have_the_asked_length() {
    let a = random_password(16).unwrap();
    assert_eq!(a.len(), 16);
    assert_ne!(a, random_password(16).unwrap());
}

// ---- sign-ins with an MFA challenge (`InitiateAuth` / `RespondToAuthChallenge`) ----

type Sent = Arc<StdMutex<Vec<(String, String)>>>;

/// A provider whose SMS go to a list, with alice signed in.
fn idp_with_sms() -> (DevIdp, Sent, String) {
    let sent: Sent = Arc::default();
    let sink_sent = sent.clone();
    let idp = idp().with_sms_sink(Arc::new(move |phone: &str, code: &str| {
        sink_sent
            .lock()
            .unwrap()
            .push((phone.to_owned(), code.to_owned()));
    }));
    let token = idp
        .sign_in_at("alice", "correct horse", NOW)
        .unwrap()
        .access_token;
    (idp, sent, token)
}

/// Enrols a verified software token for the token's user; returns the app.
fn enrol_totp(idp: &DevIdp, token: &str, preferred: bool) -> TotpKey {
    let assoc = idp.associate_software_token_at(token, NOW).unwrap();
    let app = totp_of(&assoc.secret_code);
    idp.verify_software_token_at(token, &app.generate(NOW), NOW)
        .unwrap();
    let pref = MfaPreference {
        enabled: true,
        preferred,
    };
    idp.set_mfa_preference_at(token, Some(pref), None, NOW)
        .unwrap();
    app
}

fn enable_sms(idp: &DevIdp, token: &str, preferred: bool) {
    let pref = MfaPreference {
        enabled: true,
        preferred,
    };
    idp.set_mfa_preference_at(token, None, Some(pref), NOW)
        .unwrap();
}

fn start(idp: &DevIdp, password: &str) -> Result<SignInStep, DevIdpError> {
    idp.start_sign_in_at(CLIENT, "alice", password, SignInFlow::UserPassword, NOW)
}

fn code<'a>(factor: MfaSetting, code: &'a str) -> ChallengeReply<'a> {
    ChallengeReply::Code { factor, code }
}

fn other_code(right: &str) -> &'static str {
    if right == "000000" {
        "111111"
    } else {
        "000000"
    }
}

fn claims_of(token: &SignedInToken) -> serde_json::Value {
    stepup_core::testkit::jwt_claims(&token.0)
}

fn session_of(step: &SignInStep) -> String {
    match step {
        SignInStep::Mfa { session, .. } | SignInStep::SelectMfa { session } => session.0.clone(),
        other => panic!("no session in {other:?}"),
    }
}

#[test]
fn a_wrong_password_or_unknown_user_or_client_is_refused() {
    let (idp, _, _) = idp_with_sms();
    assert_eq!(
        start(&idp, "wrong password"),
        Err(DevIdpError::NotAuthorized)
    );
    assert_eq!(
        idp.start_sign_in_at(
            CLIENT,
            "bob",
            "correct horse",
            SignInFlow::UserPassword,
            NOW
        ),
        Err(DevIdpError::NotAuthorized)
    );
    assert_eq!(
        idp.start_sign_in_at(
            "other-client",
            "alice",
            "correct horse",
            SignInFlow::UserPassword,
            NOW
        ),
        Err(DevIdpError::UnknownClient)
    );
}

#[test]
fn a_user_without_a_second_factor_is_signed_in_on_the_password_alone() {
    let (idp, sent, _) = idp_with_sms();
    let SignInStep::SignedIn { access_token } = start(&idp, "correct horse").unwrap() else {
        panic!("expected tokens");
    };
    let c = claims_of(&access_token);
    assert_eq!(c["acr"], "urn:cognito:loa:1");
    assert_eq!(c["amr"], serde_json::json!(["pwd"]));
    assert!(sent.lock().unwrap().is_empty());
}

#[test]
fn a_software_token_user_gets_the_totp_challenge_and_a_right_code_signs_in_as_the_same_sub() {
    let (idp, _, token) = idp_with_sms();
    let app = enrol_totp(&idp, &token, false);
    let step = start(&idp, "correct horse").unwrap();
    assert!(matches!(
        step,
        SignInStep::Mfa {
            factor: MfaSetting::SoftwareToken,
            ..
        }
    ));
    let session = session_of(&step);
    let right = app.generate(NOW.plus(5));
    let wrong = other_code(&right);
    assert_eq!(
        idp.respond_to_sign_in_at(
            CLIENT,
            "alice",
            &session,
            code(MfaSetting::SoftwareToken, wrong),
            NOW.plus(5)
        ),
        Err(DevIdpError::CodeMismatch)
    );
    let SignInStep::SignedIn { access_token } = idp
        .respond_to_sign_in_at(
            CLIENT,
            "alice",
            &session,
            code(MfaSetting::SoftwareToken, &right),
            NOW.plus(5),
        )
        .unwrap()
    else {
        panic!("expected tokens");
    };
    let (new, old) = (
        claims_of(&access_token),
        stepup_core::testkit::jwt_claims(&token),
    );
    assert_eq!(new["sub"], old["sub"]);
    assert_eq!(new["client_id"], CLIENT);
    assert_eq!(new["auth_time"], NOW.plus(5).as_secs());
    assert_eq!(new["acr"], "urn:cognito:loa:4");
    assert_eq!(new["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    // The provider knows its new token (GetUser works with it).
    assert_eq!(
        idp.get_user_at(&access_token.0, NOW.plus(6))
            .unwrap()
            .username,
        "alice"
    );
    // Used up on success.
    assert_eq!(
        idp.respond_to_sign_in_at(
            CLIENT,
            "alice",
            &session,
            code(MfaSetting::SoftwareToken, &right),
            NOW.plus(6)
        ),
        Err(DevIdpError::NotAuthorized)
    );
}

#[test]
fn an_sms_user_gets_the_code_by_the_sink_and_answers_with_it() {
    let (idp, sent, token) = idp_with_sms();
    enable_sms(&idp, &token, true);
    let step = start(&idp, "correct horse").unwrap();
    assert!(matches!(
        step,
        SignInStep::Mfa {
            factor: MfaSetting::Sms,
            ..
        }
    ));
    let (phone, sms) = sent.lock().unwrap()[0].clone();
    assert_eq!(phone, "+15555550100");
    let session = session_of(&step);
    // A TOTP answer to an SMS challenge does not fit it and does not use the session up.
    assert!(matches!(
        idp.respond_to_sign_in_at(
            CLIENT,
            "alice",
            &session,
            code(MfaSetting::SoftwareToken, &sms),
            NOW
        ),
        Err(DevIdpError::InvalidParameter(_))
    ));
    let SignInStep::SignedIn { access_token } = idp
        .respond_to_sign_in_at(
            CLIENT,
            "alice",
            &session,
            code(MfaSetting::Sms, &sms),
            NOW.plus(60),
        )
        .unwrap()
    else {
        panic!("expected tokens");
    };
    let c = claims_of(&access_token);
    assert_eq!(c["acr"], "urn:cognito:loa:3");
    assert_eq!(c["amr"], serde_json::json!(["pwd", "sms", "mfa"]));
}

#[test]
fn the_preferred_factor_wins_and_two_without_a_preference_ask_for_a_choice() {
    let (idp, sent, token) = idp_with_sms();
    let app = enrol_totp(&idp, &token, true);
    enable_sms(&idp, &token, false);
    assert!(matches!(
        start(&idp, "correct horse").unwrap(),
        SignInStep::Mfa {
            factor: MfaSetting::SoftwareToken,
            ..
        }
    ));
    assert!(
        sent.lock().unwrap().is_empty(),
        "no SMS for a TOTP challenge"
    );

    // Both enabled, none preferred.
    let neither = MfaPreference {
        enabled: true,
        preferred: false,
    };
    idp.set_mfa_preference_at(&token, Some(neither), Some(neither), NOW)
        .unwrap();
    let step = start(&idp, "correct horse").unwrap();
    assert!(matches!(step, SignInStep::SelectMfa { .. }), "{step:?}");
    let select = session_of(&step);
    let chosen = idp
        .respond_to_sign_in_at(
            CLIENT,
            "alice",
            &select,
            ChallengeReply::Select(MfaSetting::SoftwareToken),
            NOW,
        )
        .unwrap();
    assert!(matches!(
        chosen,
        SignInStep::Mfa {
            factor: MfaSetting::SoftwareToken,
            ..
        }
    ));
    let next = session_of(&chosen);
    assert_ne!(next, select, "each step has its own session");
    assert_eq!(
        idp.respond_to_sign_in_at(
            CLIENT,
            "alice",
            &select,
            code(MfaSetting::SoftwareToken, &app.generate(NOW)),
            NOW
        ),
        Err(DevIdpError::NotAuthorized),
        "the selection session is used up"
    );
    assert!(matches!(
        idp.respond_to_sign_in_at(
            CLIENT,
            "alice",
            &next,
            code(MfaSetting::SoftwareToken, &app.generate(NOW)),
            NOW
        ),
        Ok(SignInStep::SignedIn { .. })
    ));
}

#[test]
fn a_session_expires_after_three_minutes_and_is_bound_to_its_user_and_client() {
    let (idp, _, token) = idp_with_sms();
    idp.sign_up("bob", "battery staple", None).unwrap();
    let app = enrol_totp(&idp, &token, true);
    let session = session_of(&start(&idp, "correct horse").unwrap());
    let right = app.generate(NOW.plus(180));
    for (client, user) in [(CLIENT, "bob"), ("other-client", "alice")] {
        assert_eq!(
            idp.respond_to_sign_in_at(
                client,
                user,
                &session,
                code(MfaSetting::SoftwareToken, &right),
                NOW
            ),
            Err(DevIdpError::NotAuthorized)
        );
    }
    assert_eq!(
        idp.respond_to_sign_in_at(
            CLIENT,
            "alice",
            "made-up",
            code(MfaSetting::SoftwareToken, &right),
            NOW
        ),
        Err(DevIdpError::NotAuthorized)
    );
    assert_eq!(
        idp.respond_to_sign_in_at(
            CLIENT,
            "alice",
            &session,
            code(MfaSetting::SoftwareToken, &right),
            NOW.plus(180)
        ),
        Err(DevIdpError::NotAuthorized)
    );
}

#[test]
fn the_third_wrong_code_ends_the_session() {
    let (idp, _, token) = idp_with_sms();
    let app = enrol_totp(&idp, &token, true);
    let session = session_of(&start(&idp, "correct horse").unwrap());
    let right = app.generate(NOW);
    let wrong = other_code(&right);
    for _ in 0..signin::MAX_WRONG_CODES {
        assert_eq!(
            idp.respond_to_sign_in_at(
                CLIENT,
                "alice",
                &session,
                code(MfaSetting::SoftwareToken, wrong),
                NOW
            ),
            Err(DevIdpError::CodeMismatch)
        );
    }
    assert_eq!(
        idp.respond_to_sign_in_at(
            CLIENT,
            "alice",
            &session,
            code(MfaSetting::SoftwareToken, &right),
            NOW
        ),
        Err(DevIdpError::NotAuthorized)
    );
}

#[tokio::test]
async fn the_identity_provider_trait_maps_refusals_to_sign_in_refused() {
    fn fixed() -> UnixSeconds {
        NOW
    }
    let (idp, _, token) = idp_with_sms();
    let idp = idp.with_clock(fixed);
    let app = enrol_totp(&idp, &token, true);
    let idp: &dyn IdentityProvider = &idp;
    assert_eq!(
        idp.start_sign_in(CLIENT, "alice", "wrong password").await,
        Err(IdpError::SignInRefused)
    );
    assert!(matches!(
        idp.start_sign_in("nope", "alice", "correct horse").await,
        Err(IdpError::Misconfigured(_))
    ));
    let step = idp
        .start_sign_in(CLIENT, "alice", "correct horse")
        .await
        .unwrap();
    let SignInStep::Mfa { session, .. } = step else {
        panic!("expected the TOTP challenge");
    };
    let right = app.generate(NOW);
    assert_eq!(
        idp.respond_to_sign_in(
            CLIENT,
            "alice",
            &session,
            code(MfaSetting::SoftwareToken, other_code(&right))
        )
        .await,
        Err(IdpError::CodeMismatch)
    );
    assert!(matches!(
        idp.respond_to_sign_in(
            CLIENT,
            "alice",
            &session,
            code(MfaSetting::SoftwareToken, &right)
        )
        .await,
        Ok(SignInStep::SignedIn { .. })
    ));
    assert_eq!(
        idp.respond_to_sign_in(
            CLIENT,
            "alice",
            &session,
            code(MfaSetting::SoftwareToken, &right)
        )
        .await,
        Err(IdpError::SignInRefused)
    );
}

// ---- USER_AUTH with TARGET_ACR_VALUES (claims mode) ----

#[test]
fn user_auth_targets_are_cognito_level_names() {
    assert!(SignInFlow::user_auth("urn:cognito:loa:3 urn:cognito:loa:4").is_ok());
    for bad in ["", "  ", "urn:cognito:loa:5", "loa3"] {
        assert!(SignInFlow::user_auth(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn a_level_4_target_is_met_by_totp_only_and_a_level_3_target_by_either() {
    let (idp, sent, token) = idp_with_sms();
    let app = enrol_totp(&idp, &token, false);
    enable_sms(&idp, &token, true);
    let flow = |t: &str| SignInFlow::user_auth(t).unwrap();

    // SMS is preferred, but cannot reach level 4: TOTP is asked for.
    let step = idp
        .start_sign_in_at(
            CLIENT,
            "alice",
            "correct horse",
            flow("urn:cognito:loa:4"),
            NOW,
        )
        .unwrap();
    assert!(
        matches!(
            step,
            SignInStep::Mfa {
                factor: MfaSetting::SoftwareToken,
                ..
            }
        ),
        "{step:?}"
    );
    assert!(sent.lock().unwrap().is_empty());
    let SignInStep::SignedIn { access_token } = idp
        .respond_to_sign_in_at(
            CLIENT,
            "alice",
            &session_of(&step),
            code(MfaSetting::SoftwareToken, &app.generate(NOW)),
            NOW,
        )
        .unwrap()
    else {
        panic!("expected tokens");
    };
    assert_eq!(claims_of(&access_token)["acr"], "urn:cognito:loa:4");

    // Level 3 or 4: the preferred SMS.
    let step = idp
        .start_sign_in_at(
            CLIENT,
            "alice",
            "correct horse",
            flow("urn:cognito:loa:3 urn:cognito:loa:4"),
            NOW,
        )
        .unwrap();
    assert!(
        matches!(
            step,
            SignInStep::Mfa {
                factor: MfaSetting::Sms,
                ..
            }
        ),
        "{step:?}"
    );
    assert_eq!(sent.lock().unwrap().len(), 1);
}

#[test]
fn a_plain_sign_in_token_carries_level_1_and_pwd_only() {
    let (idp, _, token) = idp_with_sms();
    enrol_totp(&idp, &token, true);
    let c = stepup_core::testkit::jwt_claims(
        &idp.sign_in_at("alice", "correct horse", NOW)
            .unwrap()
            .access_token,
    );
    assert_eq!(c["acr"], "urn:cognito:loa:1");
    assert_eq!(c["amr"], serde_json::json!(["pwd"]));
    assert_eq!(c["auth_time"], NOW.as_secs());
}

// ---- the HTTP face of the step-up sign-in ----

async fn post_json(
    app: &axum::Router,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    use tower::ServiceExt;
    let req = http::Request::post(path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 16)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn the_step_up_sign_in_endpoints_issue_a_level_4_token_after_password_and_totp() {
    let (idp, _, token) = idp_with_sms();
    let app_key = enrol_totp(&idp, &token, true);
    let app = router(Arc::new(idp));
    let start = |password: &str| {
        serde_json::json!({
            "authFlow": "USER_AUTH",
            "username": "alice",
            "password": password,
            "targetAcrValues": "urn:cognito:loa:3 urn:cognito:loa:4",
            "maxAge": 300,
        })
    };
    let (status, body) = post_json(&app, "/dev-idp/initiate-auth", start("wrong password")).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (401, Some("NotAuthorizedException"))
    );

    let (status, body) = post_json(&app, "/dev-idp/initiate-auth", start("correct horse")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["challengeName"], "SOFTWARE_TOKEN_MFA");
    let session = body["session"].as_str().unwrap().to_owned();
    let now = stepup_core::clock::now();
    let answer = |code: &str| {
        serde_json::json!({
            "challengeName": "SOFTWARE_TOKEN_MFA",
            "session": session,
            "username": "alice",
            "code": code,
        })
    };
    let right = app_key.generate(now);
    let valid: Vec<String> = [now.minus(30), now, now.plus(30)]
        .iter()
        .map(|t| app_key.generate(*t))
        .collect();
    let wrong = ["000000", "111111", "222222"]
        .into_iter()
        .find(|c| !valid.iter().any(|v| v == c))
        .unwrap();
    let (status, body) = post_json(&app, "/dev-idp/respond-to-auth-challenge", answer(wrong)).await;
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("CodeMismatchException"))
    );
    let (status, body) =
        post_json(&app, "/dev-idp/respond-to-auth-challenge", answer(&right)).await;
    assert_eq!(status, 200, "{body}");
    let claims = stepup_core::testkit::jwt_claims(body["accessToken"].as_str().unwrap());
    assert_eq!(claims["acr"], "urn:cognito:loa:4");
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert!(claims["auth_time"].as_u64().unwrap() >= now.as_secs());

    // Neither a made-up flow nor an unknown level.
    let mut bad = start("correct horse");
    bad["targetAcrValues"] = "urn:example:gold".into();
    assert_eq!(post_json(&app, "/dev-idp/initiate-auth", bad).await.0, 400);
    let mut bad = start("correct horse");
    bad["authFlow"] = "CUSTOM_AUTH".into();
    assert_eq!(post_json(&app, "/dev-idp/initiate-auth", bad).await.0, 400);
}
