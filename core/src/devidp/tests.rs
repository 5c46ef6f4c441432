use super::*;
use crate::token::TokenVerifier;
use std::sync::Mutex as StdMutex;

const NOW: UnixSeconds = 1_800_000_000;
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
        .verify(&signed.access_token, NOW + 10)
        .await
        .unwrap();
    assert_eq!(claims.username, "alice");
    assert_eq!(claims.client_id, CLIENT);
    assert_eq!(claims.exp, NOW + 3600);
    assert!(!claims.jti.is_empty());
    assert!(
        verifier
            .verify(&signed.access_token, NOW + 4000)
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
        idp.verify_software_token(&token, &app.generate(NOW + 300))
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
    idp.verify_sms_code_at(&token, &code, NOW + 10).unwrap();
    assert_eq!(
        idp.verify_sms_code_at(&token, &code, NOW + 20),
        Err(DevIdpError::CodeMismatch)
    );
    idp.send_sms_code_at(&token, NOW).unwrap();
    let code = sent.lock().unwrap()[1].1.clone();
    assert_eq!(
        idp.verify_sms_code_at(&token, &code, NOW + 301),
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
        idp.get_user_at(&token, NOW + 3600),
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
