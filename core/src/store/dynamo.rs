//! The DynamoDB implementations of [`SettingStore`] and [`SessionStore`].
//!
//! Both tables keep the seed's layout (see `DESIGN.md`, "Data contracts"): items are
//! converted one to one between [`Item`] and `AttributeValue` maps, so a setting item made
//! by hand in the console comes back exactly as written, and the parsing stays in the pure
//! code of [`crate::policy`] and [`crate::session`].
//!
//! The session store has exactly the semantics of [`super::memory::MemorySessionStore`],
//! built from conditional writes only (never read-modify-write):
//!
//! | call | DynamoDB |
//! |---|---|
//! | `get` | `GetItem`, `ConsistentRead`; an item whose `ttl` <= now is `None` |
//! | `put(s, None, now)` | `PutItem` if `attribute_not_exists(sessionId) OR ttl <= :now` |
//! | `put(s, Some(v), now)` | `PutItem` if `version = :v` (for `v = 0` also: no `version` attribute) |
//! | `change(id, ReserveAttempt, now)` | `UpdateItem SET failedAttempts = failedAttempts + 1, version + 1` if live, `failedAttempts < :max` and no future `lockedUntil` |
//! | `change(id, ReleaseAttempt, now)` | `UpdateItem SET failedAttempts = failedAttempts - 1, version + 1` if live and `failedAttempts > 0` |
//! | `change(id, Complete, now)` | the release plus `stepUpStatus`, `completedAt`, `factor`, under the same condition |
//! | `claim_once(k, exp, now)` | `PutItem {sessionId: k, ttl: exp}` if not exists or expired |
//!
//! The read-side expiry check matters: DynamoDB deletes items past their `ttl` late (up to
//! days on AWS, about 10 s on DynamoDB Local), so the store never trusts a swept table.
//!
//! Errors: `ConditionalCheckFailedException` is [`StoreError::Conflict`], the throttling
//! codes are [`StoreError::Throttled`], and anything else (dispatch failure, timeout,
//! service error) is [`StoreError::Aws`] in plain words ([`crate::aws_error`]), on which
//! privileged decisions fail closed.
//!
//! [`create_tables`] and [`local_client`] serve tests, scripts and the demo; production
//! binaries build their [`Client`] from `aws-config` and create tables with their
//! infrastructure templates.

use super::{ChangeOutcome, SessionStore, SettingStore, StoreError, TableNames};
use crate::aws_error::{AwsCause, AwsError, AwsTarget, ErrorFacts};
use crate::clock::UnixSeconds;
use crate::item::{Attr, AttrError, Item, ItemExt};
use crate::session::{Session, SessionChange};
use crate::timestamp::to_iso8601;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ReturnValue,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// The attribute map of the SDK.
pub type DynamoItem = HashMap<String, AttributeValue>;

/// Condition of a create: no item, or one past its `ttl` (DynamoDB may not have swept it).
const CREATE_CONDITION: &str = "attribute_not_exists(#sid) OR #ttl <= :now";

// ---------------------------------------------------------------------------------------
// Conversions
// ---------------------------------------------------------------------------------------

/// An [`Attr`] that cannot be written to DynamoDB.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("attribute `{path}` cannot be written: {reason}")]
pub struct UnwritableAttr {
    /// The attribute (`a.b[2]` for nested values).
    pub path: String,
    /// Why.
    pub reason: String,
}

/// Converts an attribute value read from DynamoDB. Types stepup does not model (`B`, `BS`,
/// `NS`, and any type newer than the SDK) become [`Attr::Other`], so that reading them
/// where a known type is expected is reported as a malformed item.
pub fn attr_from_dynamo(value: &AttributeValue) -> Attr {
    match value {
        AttributeValue::S(s) => Attr::S(s.clone()),
        AttributeValue::N(n) => Attr::N(n.clone()),
        AttributeValue::Bool(b) => Attr::Bool(*b),
        AttributeValue::Ss(v) => Attr::Ss(v.clone()),
        AttributeValue::L(v) => Attr::L(v.iter().map(attr_from_dynamo).collect()),
        AttributeValue::M(m) => Attr::M(
            m.iter()
                .map(|(k, v)| (k.clone(), attr_from_dynamo(v)))
                .collect::<BTreeMap<_, _>>(),
        ),
        AttributeValue::Null(_) => Attr::Null,
        AttributeValue::B(_) => Attr::Other("B"),
        AttributeValue::Bs(_) => Attr::Other("BS"),
        AttributeValue::Ns(_) => Attr::Other("NS"),
        _ => Attr::Other("UNKNOWN"),
    }
}

/// Converts an attribute value for writing. [`Attr::Other`] only records that a read value
/// had a type stepup does not model, so it cannot be written back; an empty `SS` is refused
/// because DynamoDB refuses empty sets.
pub fn attr_to_dynamo(attr: &Attr) -> Result<AttributeValue, UnwritableAttr> {
    to_dynamo_at(attr, &mut String::new())
}

fn to_dynamo_at(attr: &Attr, path: &mut String) -> Result<AttributeValue, UnwritableAttr> {
    let unwritable = |path: &str, reason: String| UnwritableAttr {
        path: path.to_owned(),
        reason,
    };
    Ok(match attr {
        Attr::S(s) => AttributeValue::S(s.clone()),
        Attr::N(n) => AttributeValue::N(n.clone()),
        Attr::Bool(b) => AttributeValue::Bool(*b),
        Attr::Ss(v) if v.is_empty() => {
            return Err(unwritable(path, "DynamoDB has no empty string set".into()));
        }
        Attr::Ss(v) => AttributeValue::Ss(v.clone()),
        Attr::L(v) => {
            let mut out = Vec::with_capacity(v.len());
            for (i, a) in v.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                out.push(to_dynamo_at(a, path)?);
                path.truncate(len);
            }
            AttributeValue::L(out)
        }
        Attr::M(m) => {
            let mut out = HashMap::with_capacity(m.len());
            for (k, a) in m {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                out.insert(k.clone(), to_dynamo_at(a, path)?);
                path.truncate(len);
            }
            AttributeValue::M(out)
        }
        Attr::Null => AttributeValue::Null(true),
        Attr::Other(t) => {
            return Err(unwritable(
                path,
                format!("type {t} is not written by stepup"),
            ));
        }
    })
}

/// Converts an item read from DynamoDB.
pub fn item_from_dynamo(item: &DynamoItem) -> Item {
    item.iter()
        .map(|(k, v)| (k.clone(), attr_from_dynamo(v)))
        .collect()
}

/// Converts an item for writing (see [`attr_to_dynamo`]).
pub fn item_to_dynamo(item: &Item) -> Result<DynamoItem, UnwritableAttr> {
    let mut path = String::new();
    item.iter()
        .map(|(k, v)| {
            path.clear();
            path.push_str(k);
            Ok((k.clone(), to_dynamo_at(v, &mut path)?))
        })
        .collect()
}

fn unwritable_item(key: &str, e: UnwritableAttr) -> StoreError {
    StoreError::Malformed {
        key: key.to_owned(),
        source: AttrError::Invalid {
            name: "item",
            detail: e.to_string(),
        },
    }
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Maps an SDK error of operation `op` on `target` to a [`StoreError`]: a failed
/// condition is [`StoreError::Conflict`], throttling [`StoreError::Throttled`] (the
/// request path answers 429 on it), anything else an [`AwsError`] in plain words, with
/// the SDK's chain logged at `debug` only.
fn store_error<E, R>(op: &'static str, target: &AwsTarget, err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let facts = ErrorFacts::of_sdk(&err);
    if facts.code.as_deref() == Some("ConditionalCheckFailedException") {
        return StoreError::Conflict;
    }
    tracing::debug!(op, table = %target.name, error = %facts.chain, "DynamoDB call failed");
    match AwsCause::classify(&facts) {
        AwsCause::Throttled => StoreError::Throttled,
        cause => StoreError::Aws(Box::new(AwsError {
            service: "DynamoDB",
            operation: op,
            target: target.clone(),
            cause,
            detail: facts.chain,
        })),
    }
}

/// What a store's errors name: `what` and `table`, and the client's region (the endpoint
/// override, when there is one, comes from `with_endpoint`).
fn target_of(client: &Client, what: &'static str, table: impl Into<String>) -> AwsTarget {
    AwsTarget {
        what,
        name: table.into(),
        endpoint: None,
        region: client.config().region().map(|r| r.to_string()),
    }
}

// ---------------------------------------------------------------------------------------
// Setting store
// ---------------------------------------------------------------------------------------

/// The setting table in DynamoDB (partition key `id` S).
#[derive(Debug, Clone)]
pub struct DynamoSettingStore {
    client: Client,
    page_size: Option<i32>,
    /// The table (`target.name`) and what its errors name.
    target: AwsTarget,
}

impl DynamoSettingStore {
    /// The store for `table`; a scan reads pages of DynamoDB's default size (1 MB).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoSettingStore {
            target: target_of(&client, "setting table", table),
            client,
            page_size: None,
        }
    }

    /// Names the client's endpoint override in errors (`None`: AWS's own endpoint).
    pub fn with_endpoint(mut self, endpoint: Option<String>) -> Self {
        self.target.endpoint = endpoint;
        self
    }

    /// Limits each scan page to `items` items (tests use it to force many pages).
    pub fn with_page_size(mut self, items: i32) -> Self {
        self.page_size = Some(items);
        self
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.target.name
    }
}

#[async_trait]
impl SettingStore for DynamoSettingStore {
    async fn scan(&self) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start_key: Option<DynamoItem> = None;
        loop {
            // Consistent: the operator plans its writes from a scan, so it must see its own
            // earlier writes. The table is small; the double read cost does not matter.
            let page = self
                .client
                .scan()
                .table_name(&self.target.name)
                .consistent_read(true)
                .set_limit(self.page_size)
                .set_exclusive_start_key(start_key.take())
                .send()
                .await
                .map_err(|e| store_error("Scan", &self.target, e))?;
            items.extend(page.items.unwrap_or_default().iter().map(item_from_dynamo));
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start_key = Some(key),
                _ => return Ok(items),
            }
        }
    }

    async fn put(&self, item: Item) -> Result<(), StoreError> {
        let id = item.req_s("id").map_err(|source| StoreError::Malformed {
            key: String::new(),
            source,
        })?;
        let av = item_to_dynamo(&item).map_err(|e| unwritable_item(id, e))?;
        self.client
            .put_item()
            .table_name(&self.target.name)
            .set_item(Some(av))
            .send()
            .await
            .map_err(|e| store_error("PutItem", &self.target, e))?;
        Ok(())
    }

    async fn delete(&self, id: &str) -> Result<(), StoreError> {
        if id.is_empty() {
            // No item can have an empty key (DynamoDB would refuse the request).
            return Ok(());
        }
        self.client
            .delete_item()
            .table_name(&self.target.name)
            .key("id", AttributeValue::S(id.to_owned()))
            .send()
            .await
            .map_err(|e| store_error("DeleteItem", &self.target, e))?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Session store
// ---------------------------------------------------------------------------------------

/// The session table in DynamoDB (partition key `sessionId` S, TTL attribute `ttl`).
#[derive(Debug, Clone)]
pub struct DynamoSessionStore {
    client: Client,
    /// The table (`target.name`) and what its errors name.
    target: AwsTarget,
}

impl DynamoSessionStore {
    /// The store for `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoSessionStore {
            target: target_of(&client, "session table", table),
            client,
        }
    }

    /// Names the client's endpoint override in errors (`None`: AWS's own endpoint).
    pub fn with_endpoint(mut self, endpoint: Option<String>) -> Self {
        self.target.endpoint = endpoint;
        self
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.target.name
    }

    /// Writes `item` as it is, unconditionally (tests use it to plant a malformed item).
    #[doc(hidden)]
    pub async fn put_raw(&self, item: Item) -> Result<(), StoreError> {
        let key = item.opt_s("sessionId").ok().flatten().unwrap_or_default();
        let av = item_to_dynamo(&item).map_err(|e| unwritable_item(key, e))?;
        self.client
            .put_item()
            .table_name(&self.target.name)
            .set_item(Some(av))
            .send()
            .await
            .map_err(|e| store_error("PutItem", &self.target, e))?;
        Ok(())
    }

    /// The item stored under `key`, as it is (tests use it to see every attribute).
    #[doc(hidden)]
    pub async fn get_raw(&self, key: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.target.name)
            .key("sessionId", AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", &self.target, e))?;
        Ok(out.item.as_ref().map(item_from_dynamo))
    }

    /// `PutItem` of `item` under the create condition (no live item with this key).
    async fn put_if_absent_or_expired(
        &self,
        item: DynamoItem,
        now: UnixSeconds,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.target.name)
            .set_item(Some(item))
            .condition_expression(CREATE_CONDITION)
            .expression_attribute_names("#sid", "sessionId")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .await
            .map_err(|e| store_error("PutItem", &self.target, e))?;
        Ok(())
    }
}

#[async_trait]
impl SessionStore for DynamoSessionStore {
    async fn get(&self, session_id: &str, now: UnixSeconds) -> Result<Option<Session>, StoreError> {
        if session_id.is_empty() {
            return Ok(None);
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.target.name)
            .key("sessionId", AttributeValue::S(session_id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", &self.target, e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let session = Session::from_item(&item_from_dynamo(&item)).map_err(|source| {
            StoreError::Malformed {
                key: session_id.to_owned(),
                source,
            }
        })?;
        Ok((!session.is_expired(now)).then_some(session))
    }

    async fn put(
        &self,
        session: &Session,
        expected_version: Option<u64>,
        now: UnixSeconds,
    ) -> Result<(), StoreError> {
        let item = item_to_dynamo(&session.to_item())
            .map_err(|e| unwritable_item(&session.session_id, e))?;
        match expected_version {
            None => self.put_if_absent_or_expired(item, now).await,
            Some(v) => {
                // Version 0 is how a session without a `version` attribute reads (written
                // by the seed): such an item may be updated too.
                let condition = if v == 0 {
                    "attribute_exists(sessionId) AND (#version = :v OR attribute_not_exists(#version))"
                } else {
                    "#version = :v"
                };
                self.client
                    .put_item()
                    .table_name(&self.target.name)
                    .set_item(Some(item))
                    .condition_expression(condition)
                    .expression_attribute_names("#version", "version")
                    .expression_attribute_values(":v", AttributeValue::N(v.to_string()))
                    .send()
                    .await
                    .map_err(|e| store_error("PutItem", &self.target, e))?;
                Ok(())
            }
        }
    }

    async fn change(
        &self,
        session_id: &str,
        change: SessionChange,
        now: UnixSeconds,
    ) -> Result<ChangeOutcome, StoreError> {
        if session_id.is_empty() {
            return Ok(ChangeOutcome::Refused(None));
        }
        const LIVE: &str = "attribute_exists(#sid) AND (attribute_not_exists(#ttl) OR #ttl > :now)";
        const COUNT: &str =
            "#fa = if_not_exists(#fa, :zero) + :one, #ver = if_not_exists(#ver, :zero) + :one";
        const UNCOUNT: &str = "#fa = #fa - :one, #ver = if_not_exists(#ver, :zero) + :one";
        let n = |v: u64| AttributeValue::N(v.to_string());
        let mut req = self
            .client
            .update_item()
            .table_name(&self.target.name)
            .key("sessionId", AttributeValue::S(session_id.to_owned()))
            .expression_attribute_names("#sid", "sessionId")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_names("#fa", "failedAttempts")
            .expression_attribute_names("#ver", "version")
            .expression_attribute_names("#upd", "lastUpdateTimestamp")
            .expression_attribute_values(":now", n(now.as_secs()))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":upd", AttributeValue::S(to_iso8601(now)))
            .return_values(ReturnValue::AllNew);
        req = match change {
            SessionChange::ReserveAttempt { limits } => req
                .update_expression(format!("SET {COUNT}, #upd = :upd"))
                .condition_expression(format!(
                    "{LIVE} AND (attribute_not_exists(#fa) OR #fa < :max) \
                     AND (attribute_not_exists(#lock) OR #lock <= :now)"
                ))
                .expression_attribute_names("#lock", "lockedUntil")
                .expression_attribute_values(":max", n(u64::from(limits.max_failed_attempts))),
            SessionChange::ReleaseAttempt => req
                .update_expression(format!("SET {UNCOUNT}, #upd = :upd"))
                .condition_expression(format!("{LIVE} AND #fa > :zero")),
            SessionChange::Complete { factor } => req
                .update_expression(format!(
                    "SET {UNCOUNT}, #upd = :upd, #st = :completed, #ca = :now, #factor = :factor"
                ))
                .condition_expression(format!("{LIVE} AND #fa > :zero"))
                .expression_attribute_names("#st", "stepUpStatus")
                .expression_attribute_names("#ca", "completedAt")
                .expression_attribute_names("#factor", "factor")
                .expression_attribute_values(
                    ":completed",
                    AttributeValue::S(crate::session::SessionStatus::Completed.as_str().to_owned()),
                )
                .expression_attribute_values(
                    ":factor",
                    AttributeValue::S(factor.as_str().to_owned()),
                ),
        };
        match req.send().await {
            Ok(out) => {
                let item = item_from_dynamo(&out.attributes.unwrap_or_default());
                let session =
                    Session::from_item(&item).map_err(|source| StoreError::Malformed {
                        key: session_id.to_owned(),
                        source,
                    })?;
                Ok(ChangeOutcome::Applied(session))
            }
            Err(e) => match store_error("UpdateItem", &self.target, e) {
                // Which condition failed: read the item as it is now (the refused path only).
                StoreError::Conflict => {
                    Ok(ChangeOutcome::Refused(self.get(session_id, now).await?))
                }
                other => Err(other),
            },
        }
    }

    async fn claim_once(
        &self,
        key: &str,
        expires_at: UnixSeconds,
        now: UnixSeconds,
    ) -> Result<bool, StoreError> {
        let item = HashMap::from([
            ("sessionId".to_owned(), AttributeValue::S(key.to_owned())),
            ("ttl".to_owned(), AttributeValue::N(expires_at.to_string())),
        ]);
        match self.put_if_absent_or_expired(item, now).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tables and local clients
// ---------------------------------------------------------------------------------------

/// Creates the setting and session tables if they do not exist (on-demand capacity, keys
/// `id` and `sessionId`, TTL on the session table's `ttl`), and waits until both are
/// active. Idempotent: existing tables are left as they are (only a missing TTL setting is
/// added). For tests, scripts and the demo.
pub async fn create_tables(client: &Client, names: &TableNames) -> Result<(), StoreError> {
    create_table(client, &names.setting, "id").await?;
    create_table(client, &names.session, "sessionId").await?;
    wait_active(client, &names.setting).await?;
    wait_active(client, &names.session).await?;
    enable_ttl(client, &names.session, "ttl").await
}

fn build_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("building a DynamoDB request: {e}"))
}

async fn create_table(client: &Client, table: &str, key: &str) -> Result<(), StoreError> {
    let attribute = AttributeDefinition::builder()
        .attribute_name(key)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(build_error)?;
    let key_schema = KeySchemaElement::builder()
        .attribute_name(key)
        .key_type(KeyType::Hash)
        .build()
        .map_err(build_error)?;
    let result = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute)
        .key_schema(key_schema)
        .send()
        .await;
    match result {
        Ok(_) => {
            tracing::info!(table, "created DynamoDB table");
            Ok(())
        }
        // The table exists already (or is being created by someone else).
        Err(e) if e.code() == Some("ResourceInUseException") => Ok(()),
        Err(e) => Err(store_error(
            "CreateTable",
            &target_of(client, "table", table),
            e,
        )),
    }
}

/// Polls `DescribeTable` until the table is `ACTIVE` (at once on DynamoDB Local, seconds
/// on AWS), for at most two minutes.
async fn wait_active(client: &Client, table: &str) -> Result<(), StoreError> {
    for _ in 0..240 {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| store_error("DescribeTable", &target_of(client, "table", table), e))?;
        if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(StoreError::Unavailable(format!(
        "DynamoDB table `{table}` did not become ACTIVE in 2 minutes"
    )))
}

async fn ttl_enabled(client: &Client, table: &str) -> Result<bool, StoreError> {
    let out = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| store_error("DescribeTimeToLive", &target_of(client, "table", table), e))?;
    Ok(matches!(
        out.time_to_live_description()
            .and_then(|d| d.time_to_live_status()),
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    ))
}

async fn enable_ttl(client: &Client, table: &str, attribute: &str) -> Result<(), StoreError> {
    // UpdateTimeToLive fails on a table whose TTL is already enabled, so look first.
    if ttl_enabled(client, table).await? {
        return Ok(());
    }
    let spec = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(attribute)
        .build()
        .map_err(build_error)?;
    match client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(spec)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        // A concurrent caller may have enabled it between our two calls.
        Err(e) => match ttl_enabled(client, table).await {
            Ok(true) => Ok(()),
            _ => Err(store_error(
                "UpdateTimeToLive",
                &target_of(client, "table", table),
                e,
            )),
        },
    }
}

/// A client configuration for DynamoDB Local at `endpoint` (e.g. `http://127.0.0.1:8000`):
/// region `us-east-1`, static dummy credentials (DynamoDB Local wants a signed request but
/// checks no signature), the latest behaviour version. Tests adjust it (timeouts, retries)
/// before `build()`.
///
/// For local use and tests only: production binaries build their client from `aws-config`
/// (credential chain, region, retries).
pub fn local_config(endpoint: &str) -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("dummy", "dummy", None, None, "static"))
        .endpoint_url(endpoint)
}

/// A client for DynamoDB Local at `endpoint`; see [`local_config`]. For local use and tests
/// only.
pub fn local_client(endpoint: &str) -> Client {
    Client::from_conf(local_config(endpoint).build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::primitives::Blob;

    #[test]
    fn every_modelled_attribute_round_trips() {
        let mut nested = BTreeMap::new();
        nested.insert("k".to_owned(), Attr::L(vec![Attr::s("a"), Attr::n(1u64)]));
        let item: Item = [
            ("s", Attr::s("x")),
            ("n", Attr::N("1700000000".into())),
            ("b", Attr::Bool(true)),
            ("ss", Attr::Ss(vec!["GET".into(), "POST".into()])),
            ("l", Attr::L(vec![Attr::Null, Attr::s("y")])),
            ("m", Attr::M(nested)),
            ("null", Attr::Null),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let dynamo = item_to_dynamo(&item).unwrap();
        assert_eq!(dynamo["null"], AttributeValue::Null(true));
        assert_eq!(item_from_dynamo(&dynamo), item);
    }

    #[test]
    fn unmodelled_types_are_read_as_other_and_refused_on_write() {
        assert_eq!(
            attr_from_dynamo(&AttributeValue::B(Blob::new(vec![1]))),
            Attr::Other("B")
        );
        assert_eq!(
            attr_from_dynamo(&AttributeValue::Bs(vec![])),
            Attr::Other("BS")
        );
        assert_eq!(
            attr_from_dynamo(&AttributeValue::Ns(vec!["1".into()])),
            Attr::Other("NS")
        );
        let mut inner = BTreeMap::new();
        inner.insert("blob".to_owned(), Attr::Other("B"));
        let item: Item = [("outer".to_owned(), Attr::L(vec![Attr::M(inner)]))].into();
        let err = item_to_dynamo(&item).unwrap_err();
        assert_eq!(err.path, "outer[0].blob");
        assert!(attr_to_dynamo(&Attr::Ss(vec![])).is_err());
    }
}
