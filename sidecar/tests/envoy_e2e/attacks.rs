//! Attackers through Envoy, holding only a victim's access token (the victim has an
//! enabled, preferred software token and a password the attacker does not know) or only
//! a password: enrolling their own authenticator, in the default verification and in the
//! weak `seed-compatible` one; a password without a second factor; a burst of wrong
//! answers against the attempt limit.

use crate::e2e::cognito::{User, jti, thief_enrols_own_authenticator};
use crate::e2e::dynamodb::{QUIET, failed_attempts, raw_session};
use crate::e2e::requests::{bearer, challenge_failed, challenge_successful, seen, wrong_code};
use crate::e2e::{MAX_FAILED_ATTEMPTS, Setup};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use stepup_core::session::SessionStatus;
use stepup_core::testkit::moto;

/// A thief holds only the victim's access token (the victim has an enabled, preferred
/// software token and a password the thief does not know). It enrols its own
/// authenticator with the stolen token (`AssociateSoftwareToken` + `VerifySoftwareToken`,
/// which Cognito lets any token holder call) and answers the step-up with its own code.
/// By default the code is checked by Cognito's MFA challenge of a sign-in with the
/// password: without a password 400 `PASSWORD_REQUIRED`, with a guessed one 401 (counted);
/// `/transfer` stays challenged.
pub async fn thief_enrolling_its_own_authenticator_cannot_step_up(setup: Setup) {
    let Some(fx) = setup.start().await else {
        return;
    };
    let stolen = fx.user.token(1);
    thief_enrols_own_authenticator(&fx.moto, &stolen).await;
    let r = fx.initiate(&stolen).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body["requires"],
        json!(["password", "challenge-response"])
    );

    // The code the thief's app shows now.
    let code = moto::totp_now().await;
    let r = fx.respond_with(&stolen, &code, None).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.body["code"], "PASSWORD_REQUIRED");
    let r = fx.respond_with(&stolen, &code, Some("Summer2024!")).await;
    assert_eq!((r.status, r.body), (401, challenge_failed()));
    let s = fx.session(&stolen).await;
    assert_eq!(s.status, SessionStatus::Required);
    assert_eq!(s.failed_attempts, 1, "the guessed password counts");
    fx.assert_transfer_challenged(&stolen).await;
    fx.finish().await;
}

/// The same theft against a sidecar started with `--verification seed-compatible`: the
/// steps pass and `/transfer` opens. This proves why that mode is weak: the seed's
/// `VerifySoftwareToken` with the caller's own token only shows that *whoever holds the
/// token* has some authenticator, and a thief can enrol one. It exists only because the
/// seed's unchanged web app sends the code alone (no password), with the seed's wire
/// format, which this scenario also checks. (moto hands every enrolment the same secret,
/// so here the thief's code equals the victim's; with Cognito the thief's secret is its
/// own and the outcome is the same.)
pub async fn thief_enrolling_its_own_authenticator_passes_in_seed_compatible_mode(setup: Setup) {
    let Some(fx) = setup.seed_compatible().start().await else {
        return;
    };
    let stolen = fx.user.token(1);
    thief_enrols_own_authenticator(&fx.moto, &stolen).await;
    let r = fx.initiate(&stolen).await;
    assert_eq!(
        (r.status, r.body),
        (200, json!({"code": "SOFTWARE_TOKEN_STEP_UP"})),
        "the seed's answer"
    );
    let code = moto::totp_now().await;
    let r = fx.respond_with(&stolen, &code, None).await;
    assert_eq!((r.status, r.body), (200, challenge_successful()));
    let e = fx.transfer_allowed(&stolen).await;
    assert_eq!(seen(&e, "x-stepup-status"), ["complete"], "{e}");
    assert_eq!(seen(&e, "x-stepup-user"), [fx.user.name.as_str()], "{e}");
    fx.finish().await;
}

/// A user with no second factor enrolled cannot complete a step-up with the password
/// alone: the sign-in yields tokens straight away, which stepup refuses with 403
/// `MFA_NOT_ENROLLED` (from `/respond-to-challenge` and from `/initiate-auth` with the
/// password); the attempt is given back, and `/transfer` stays challenged.
pub async fn password_alone_never_completes_a_step_up(setup: Setup) {
    let Some(fx) = setup.start().await else {
        return;
    };
    let bob = User::without_second_factor(&fx.pool, &format!("bob-{}", fx.run), 1).await;
    let t = bob.token(0);
    let r = fx.initiate(&t).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["code"], "MAYBE_SOFTWARE_TOKEN_STEP_UP");

    let answer = json!({
        "step-up-type": "MAYBE_SOFTWARE_TOKEN_STEP_UP",
        "challenge-response": "123456",
        "password": moto::PASSWORD,
    });
    let r = fx.api("/respond-to-challenge", &t, Some(answer)).await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.body["code"], "MFA_NOT_ENROLLED");
    let r = fx
        .api(
            "/initiate-auth",
            &t,
            Some(json!({"password": moto::PASSWORD})),
        )
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.body["code"], "MFA_NOT_ENROLLED");

    let s = fx.session(&t).await;
    assert_eq!(s.status, SessionStatus::Required);
    assert_eq!(s.failed_attempts, 0, "no failure of the user's: given back");
    fx.assert_transfer_challenged(&t).await;
    fx.finish().await;
}

/// 100 wrong answers (password and a wrong code) for one session at once, through Envoy:
/// only 401 and 429 come back, never a 5xx. Attempts are reserved with one conditional
/// write each before Cognito is asked, so exactly the limit's worth reach Cognito (all but
/// the last answered 401; the last locks the session, 429) and `failedAttempts`, read
/// from DynamoDB Local during and after the burst, never exceeds the limit. Then the
/// right code is refused (429) while the lock lasts.
pub async fn burst_of_wrong_answers_is_only_401_or_429_and_stays_within_the_limit(setup: Setup) {
    const BURST: usize = 100;
    let Some(fx) = setup.start().await else {
        return;
    };
    let b = fx.user.token(1);
    assert_eq!(fx.initiate(&b).await.status, 200);
    let right = moto::totp_now().await;
    let answer = json!({
        "step-up-type": "SOFTWARE_TOKEN_STEP_UP",
        "challenge-response": wrong_code(&right, 0),
        "password": moto::PASSWORD,
    });

    // Reads the item over and over while the burst is in flight.
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (ddb, names, key, done) = (fx.ddb.clone(), fx.names.clone(), jti(&b), done.clone());
        tokio::spawn(async move {
            let (mut most, mut reads) = (0, 0);
            while !done.load(Ordering::SeqCst) {
                if let Some(item) = raw_session(&ddb, &names, &key).await {
                    most = most.max(failed_attempts(&item));
                    reads += 1;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (most, reads)
        })
    };

    // No DynamoDB Local JVM of another scenario starts meanwhile (see `QUIET`).
    let quiet = QUIET.write().await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let start = Arc::new(tokio::sync::Barrier::new(BURST));
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..BURST {
        let (http, start, answer) = (http.clone(), start.clone(), answer.clone());
        let (url, auth) = (fx.envoy.url("/respond-to-challenge"), bearer(&b));
        burst.spawn(async move {
            start.wait().await;
            let r = http
                .post(url)
                .header("authorization", auth)
                .json(&answer)
                .send()
                .await
                .unwrap();
            let (status, retry_after) =
                (r.status().as_u16(), r.headers().contains_key("retry-after"));
            (status, retry_after, r.text().await.unwrap_or_default())
        });
    }
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut unexpected = Vec::new();
    let mut without_retry_after = 0;
    while let Some(joined) = burst.join_next().await {
        let (status, retry_after, body) = joined.unwrap();
        *statuses.entry(status).or_default() += 1;
        if status == 429 && !retry_after {
            without_retry_after += 1;
        }
        if status != 401 && status != 429 {
            unexpected.push(format!("{status} {body}"));
        }
    }
    done.store(true, Ordering::SeqCst);
    let (most, reads) = watcher.await.unwrap();
    drop(quiet);

    assert!(
        statuses.keys().all(|s| *s == 401 || *s == 429),
        "only 401 and 429: {statuses:?}; the others: {unexpected:#?}"
    );
    let limit = MAX_FAILED_ATTEMPTS as usize;
    assert_eq!(
        statuses.get(&401).copied().unwrap_or(0),
        limit - 1,
        "exactly the limit's worth reached Cognito: {statuses:?}"
    );
    assert_eq!(without_retry_after, 0, "every 429 says when to retry");
    assert!(reads > 0, "the item was read during the burst");
    assert!(most <= MAX_FAILED_ATTEMPTS, "failedAttempts reached {most}");
    let item = raw_session(&fx.ddb, &fx.names, &jti(&b)).await.unwrap();
    assert_eq!(failed_attempts(&item), MAX_FAILED_ATTEMPTS);

    let r = fx.respond(&b, &moto::totp_now().await).await;
    assert_eq!(r.status, 429, "locked: even the right code: {r:?}");
    assert!(r.retry_after_secs() > 0);
    fx.assert_transfer_challenged(&b).await;
    fx.finish().await;
}
