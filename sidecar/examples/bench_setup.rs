//! Setup of `scripts/bench-envoy.sh`: creates the tables in DynamoDB Local, writes the
//! seed's `/info` and `/transfer` items and a *completed* step-up session for a fresh
//! `jti`, and prints a test access token for that `jti` (signed with the fixture key of
//! `core/tests/fixtures`, issuer `TEST_POOL`, client `TEST_CLIENT_ID`) as `TOKEN=...`.
//!
//! Usage: `bench_setup DYNAMODB_ENDPOINT TABLE_PREFIX`. Test-only key: never trust it.

use stepup_core::clock;
use stepup_core::session::Factor;
use stepup_core::store::dynamo::{self, DynamoSessionStore, DynamoSettingStore, create_tables};
use stepup_core::store::{SettingStore, TableNames};
use stepup_core::testkit::{TEST_CLIENT_ID, TestIssuer, put_completed_session, seed_item};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bench_setup DYNAMODB_ENDPOINT TABLE_PREFIX";
    let endpoint = args.next().ok_or(usage)?;
    let prefix = args.next().ok_or(usage)?;
    let client = dynamo::local_client(&endpoint);
    let names = TableNames::with_prefix(&prefix);
    create_tables(&client, &names).await?;
    let settings = DynamoSettingStore::new(client.clone(), names.setting.clone());
    settings
        .put(seed_item("/info", "STEP_UP_NOT_REQUIRED"))
        .await?;
    settings
        .put(seed_item("/transfer", "STEP_UP_REQUIRED"))
        .await?;

    let now = clock::now();
    let jti = format!("bench-{now}-{}", std::process::id());
    let sessions = DynamoSessionStore::new(client, names.session.clone());
    put_completed_session(
        &sessions,
        &jti,
        "bench-user",
        TEST_CLIENT_ID,
        now.plus(3600),
        now,
        Factor::SoftwareToken,
    )
    .await?;

    let token = TestIssuer::new().token("bench-user", &jti, now);
    println!("TOKEN={token}");
    Ok(())
}
