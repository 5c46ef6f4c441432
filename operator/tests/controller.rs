//! The controller against DynamoDB Local and a mock Kubernetes API server.
//!
//! No API server can be installed here, so the real `kube::Client` talks to a
//! `tower_test::mock::pair` (controller-rs's `ApiServerVerifier` pattern): a verifier task
//! answers an expected [`Call`] scenario in order — finalizer patches, the status
//! server-side apply, Event creation — checking each request, and fails the test when a
//! call does not come within a timeout (or when the reconcile makes a call nobody
//! expects, which then hangs and times out). The setting table is real: DynamoDB Local
//! from `./scripts/test` (`DYNAMODB_ENDPOINT`), fresh tables per test; without it the
//! tests are skipped with a note, except under `CI=true`, where they fail.
//!
//! The last test runs against a real cluster (`KUBECONFIG`); no cluster exists on the
//! project's machines or in CI, so it is ignored (with its reason) and runs only with `--ignored`.

use crate::common;

use common::apiserver::{ApiHandle, CALL_TIMEOUT, reply};
use common::{dynamodb_endpoint, hand_made};
use http::{Request, Response, StatusCode};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::{Value, json};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;
use stepup_core::clock::UnixSeconds;
use stepup_core::crd::{
    MatchType, PolicyEnforcement, PolicyRule, RuleAction, StepUpPolicy, StepUpPolicySpec,
    StepUpPolicyStatus,
};
use stepup_core::item::{Attr, Item, ItemExt};
use stepup_core::store::SettingStore;
use stepup_core::store::dynamo::{self, DynamoSettingStore};
use stepup_operator::controller::{
    self, Context, ControllerConfig, FIELD_MANAGER, FINALIZER, error_policy, reconcile, sweep,
};
use stepup_operator::leader::Leadership;
use tokio::sync::mpsc;
use tokio::time::timeout;

const NOW: UnixSeconds = UnixSeconds::from_secs(1_800_000_000);
/// How long the verifier waits for each expected call.
const POLICIES: &str = "/apis/stepup.dev/v1alpha1/namespaces/default/stepuppolicies";

// ---------------------------------------------------------------------------------------
// DynamoDB Local
// ---------------------------------------------------------------------------------------

/// A fresh setting table in DynamoDB Local, or `None` when the test is to be skipped.
async fn fresh_table(test: &str) -> Option<DynamoSettingStore> {
    common::fresh_setting_table(&format!("ctl{test}"))
        .await
        .map(|(_, store)| store)
}

async fn item(store: &DynamoSettingStore, id: &str) -> Option<Item> {
    store
        .scan()
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.req_s("id").unwrap() == id)
}

async fn ids(store: &DynamoSettingStore) -> Vec<String> {
    let mut ids: Vec<String> = store
        .scan()
        .await
        .unwrap()
        .iter()
        .map(|i| i.req_s("id").unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn owner_of(item: &Item) -> Option<&str> {
    item.opt_s("owner").unwrap()
}

// ---------------------------------------------------------------------------------------
// Policies
// ---------------------------------------------------------------------------------------

fn rule(path: &str, action: RuleAction) -> PolicyRule {
    PolicyRule {
        path: path.into(),
        match_type: MatchType::Exact,
        methods: vec![],
        hosts: vec![],
        action,
        max_age: None,
        factors: vec![],
        acr_values: vec![],
        amr_values: vec![],
    }
}

/// Builders for test policies (`default/<name>`, created at `created` Unix seconds).
trait PolicyExt {
    fn test(name: &str, created: i64, rules: Vec<PolicyRule>) -> StepUpPolicy;
    fn with_finalizer(self) -> StepUpPolicy;
    fn deleting(self) -> StepUpPolicy;
    fn with_status(self, status: StepUpPolicyStatus) -> StepUpPolicy;
    fn next_generation(self, rules: Vec<PolicyRule>) -> StepUpPolicy;
}

impl PolicyExt for StepUpPolicy {
    fn test(name: &str, created: i64, rules: Vec<PolicyRule>) -> StepUpPolicy {
        let mut p = StepUpPolicy::new(
            name,
            StepUpPolicySpec {
                rules,
                enforcement: PolicyEnforcement::Enforce,
            },
        );
        p.metadata.namespace = Some("default".into());
        p.metadata.uid = Some(format!("uid-{name}"));
        p.metadata.generation = Some(1);
        p.metadata.resource_version = Some("1".into());
        p.metadata.creation_timestamp = k8s_openapi::jiff::Timestamp::from_second(created)
            .ok()
            .map(Time);
        p
    }

    fn with_finalizer(mut self) -> StepUpPolicy {
        self.metadata.finalizers = Some(vec![FINALIZER.into()]);
        self
    }

    fn deleting(mut self) -> StepUpPolicy {
        self.metadata.deletion_timestamp = Some(controller::time_of(NOW));
        self
    }

    fn with_status(mut self, status: StepUpPolicyStatus) -> StepUpPolicy {
        self.status = Some(status);
        self
    }

    fn next_generation(mut self, rules: Vec<PolicyRule>) -> StepUpPolicy {
        self.spec.rules = rules;
        self.metadata.generation = self.metadata.generation.map(|g| g + 1);
        self
    }
}

// ---------------------------------------------------------------------------------------
// The mock API server
// ---------------------------------------------------------------------------------------

/// One API call the reconcile is expected to make, and how the server answers it.
enum Call {
    /// JSON patch adding the finalizer to this object; answered with it added.
    AddFinalizer(StepUpPolicy),
    /// JSON patch removing the finalizer; answered with the object without it.
    RemoveFinalizer(StepUpPolicy),
    /// Server-side apply of the status by `stepup-operator`; answered with the object
    /// carrying the applied status.
    Status(StepUpPolicy),
    /// An Event on the policy with this reason (created, or patched as a series).
    Event(&'static str),
}

impl Call {
    fn describe(&self) -> String {
        match self {
            Call::AddFinalizer(p) => format!("add finalizer to {}", p.owner()),
            Call::RemoveFinalizer(p) => format!("remove finalizer from {}", p.owner()),
            Call::Status(p) => format!("status apply of {}", p.owner()),
            Call::Event(r) => format!("Event {r}"),
        }
    }
}

/// What the verifier saw: the applied statuses and the Events, in order.
#[derive(Debug, Default)]
struct Seen {
    statuses: Vec<StepUpPolicyStatus>,
    events: Vec<Value>,
}

/// Answers `calls` in order; panics (failing the test) on a wrong or missing call.
async fn verify(mut handle: ApiHandle, calls: Vec<Call>) -> (ApiHandle, Seen) {
    let mut seen = Seen::default();
    for call in calls {
        let what = call.describe();
        let (request, send) = timeout(CALL_TIMEOUT, handle.next_request())
            .await
            .unwrap_or_else(|_| panic!("expected call never came: {what}"))
            .unwrap_or_else(|| panic!("client gone before: {what}"));
        let method = request.method().clone();
        let uri = request.uri().to_string();
        let path = request.uri().path().to_owned();
        let content_type = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body: Value = {
            let bytes = request.into_body().collect_bytes().await.unwrap();
            if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).unwrap()
            }
        };
        let response = match call {
            Call::AddFinalizer(p) => {
                assert_eq!(method, http::Method::PATCH, "{what}: {uri}");
                assert_eq!(
                    path,
                    format!("{POLICIES}/{}", p.metadata.name.clone().unwrap())
                );
                assert_eq!(content_type, "application/json-patch+json");
                let ops = body.as_array().unwrap();
                assert!(
                    ops.iter().any(|op| op["op"] == "add"
                        && op["path"]
                            .as_str()
                            .unwrap()
                            .starts_with("/metadata/finalizers")
                        && op["value"].to_string().contains(FINALIZER)),
                    "{what}: {body}"
                );
                reply(StatusCode::OK, &p.with_finalizer())
            }
            Call::RemoveFinalizer(mut p) => {
                assert_eq!(method, http::Method::PATCH, "{what}: {uri}");
                assert_eq!(
                    path,
                    format!("{POLICIES}/{}", p.metadata.name.clone().unwrap())
                );
                let ops = body.as_array().unwrap();
                assert!(
                    ops.iter()
                        .any(|op| op["op"] == "remove" && op["path"] == "/metadata/finalizers/0"),
                    "{what}: {body}"
                );
                p.metadata.finalizers = None;
                reply(StatusCode::OK, &p)
            }
            Call::Status(p) => {
                assert_eq!(method, http::Method::PATCH, "{what}: {uri}");
                assert_eq!(
                    path,
                    format!("{POLICIES}/{}/status", p.metadata.name.clone().unwrap())
                );
                assert!(
                    uri.contains(&format!("fieldManager={FIELD_MANAGER}")),
                    "{uri}"
                );
                assert!(uri.contains("force=true"), "{uri}");
                assert_eq!(content_type, "application/apply-patch+yaml");
                assert_eq!(body["apiVersion"], "stepup.dev/v1alpha1");
                assert_eq!(body["kind"], "StepUpPolicy");
                let status: StepUpPolicyStatus =
                    serde_json::from_value(body["status"].clone()).unwrap();
                seen.statuses.push(status.clone());
                reply(StatusCode::OK, &p.with_status(status))
            }
            Call::Event(reason) => {
                assert!(
                    path.starts_with("/apis/events.k8s.io/v1/namespaces/default/events"),
                    "{what}: {method} {uri}"
                );
                assert!(
                    method == http::Method::POST || method == http::Method::PATCH,
                    "{what}: {method}"
                );
                assert_eq!(body["reason"], reason, "{what}: {body}");
                assert_eq!(body["regarding"]["kind"], "StepUpPolicy");
                assert_eq!(body["reportingController"], FIELD_MANAGER);
                seen.events.push(body.clone());
                reply(StatusCode::CREATED, &body)
            }
        };
        send.send_response(response);
    }
    (handle, seen)
}

// ---------------------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------------------

struct Harness {
    ctx: Arc<Context>,
    handle: Option<ApiHandle>,
    writer: Writer<StepUpPolicy>,
    table: DynamoSettingStore,
    reconcile_all: mpsc::UnboundedReceiver<()>,
}

impl Harness {
    /// A controller context on a fresh table, seeing `policies`, at `NOW`.
    async fn new(test: &str, policies: &[&StepUpPolicy]) -> Option<Harness> {
        let table = fresh_table(test).await?;
        Some(Harness::on(
            table,
            policies,
            ControllerConfig::default(),
            Leadership::always(),
        ))
    }

    fn on(
        table: DynamoSettingStore,
        policies: &[&StepUpPolicy],
        config: ControllerConfig,
        leadership: Leadership,
    ) -> Harness {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "default");
        let (reader, mut writer) = reflector::store::<StepUpPolicy>();
        writer.apply_watcher_event(&watcher::Event::Init);
        for p in policies {
            writer.apply_watcher_event(&watcher::Event::InitApply((*p).clone()));
        }
        writer.apply_watcher_event(&watcher::Event::InitDone);
        let (tx, rx) = mpsc::unbounded_channel();
        let config = ControllerConfig {
            table: table.table().to_owned(),
            ..config
        };
        let ctx = Context::new(
            client,
            Arc::new(table.clone()),
            reader,
            Arc::new(|| NOW),
            config,
        )
        .with_leadership(leadership)
        .with_reconcile_all(tx);
        Harness {
            ctx: Arc::new(ctx),
            handle: Some(handle),
            writer,
            table,
            reconcile_all: rx,
        }
    }

    /// The watch saw `policy` change (or appear).
    fn saw(&mut self, policy: &StepUpPolicy) {
        self.writer
            .apply_watcher_event(&watcher::Event::Apply(policy.clone()));
    }

    /// The watch saw `policy` disappear.
    fn saw_gone(&mut self, policy: &StepUpPolicy) {
        self.writer
            .apply_watcher_event(&watcher::Event::Delete(policy.clone()));
    }

    /// Reconciles `policy` while the verifier answers `calls`; returns the reconcile's
    /// result and what the verifier saw.
    async fn reconcile(
        &mut self,
        policy: &StepUpPolicy,
        calls: Vec<Call>,
    ) -> (stepup_operator::Result<Action>, Seen) {
        let handle = self.handle.take().unwrap();
        let verifier = tokio::spawn(verify(handle, calls));
        let result = timeout(
            Duration::from_secs(20),
            reconcile(Arc::new(policy.clone()), self.ctx.clone()),
        )
        .await
        .expect("the reconcile hung: it made an API call the scenario does not expect");
        let (handle, seen) = timeout(Duration::from_secs(10), verifier)
            .await
            .expect("the verifier did not finish")
            .expect("the verifier failed (see its panic above)");
        self.handle = Some(handle);
        (result, seen)
    }

    /// Creates `policy` the way the controller sees it: a first reconcile adds the
    /// finalizer, the second (on the watch event of that patch) syncs it. Returns the
    /// policy as stored afterwards and the status applied.
    async fn create(&mut self, policy: &StepUpPolicy, events: &[&'static str]) -> StepUpPolicy {
        let (result, seen) = self
            .reconcile(policy, vec![Call::AddFinalizer(policy.clone())])
            .await;
        assert_eq!(result.unwrap(), Action::await_change());
        assert!(seen.statuses.is_empty());
        let with = policy.clone().with_finalizer();
        self.saw(&with);
        let mut calls = vec![Call::Status(with.clone())];
        calls.extend(events.iter().map(|e| Call::Event(e)));
        let (result, seen) = self.reconcile(&with, calls).await;
        assert_eq!(result.unwrap(), Action::requeue(controller::DRIFT_INTERVAL));
        let stored = with.with_status(seen.statuses[0].clone());
        self.saw(&stored);
        stored
    }
}

fn condition<'a>(
    status: &'a StepUpPolicyStatus,
    type_: &str,
) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {status:?}"))
}

fn assert_condition(status: &StepUpPolicyStatus, type_: &str, value: &str, reason: &str) {
    let c = condition(status, type_);
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        (value, reason),
        "{type_}: {c:?}"
    );
}

// ---------------------------------------------------------------------------------------
// The scenarios
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn creating_a_policy_writes_its_items_with_owner_and_reports_ready() {
    let p = StepUpPolicy::test(
        "transfer",
        100,
        vec![
            rule("/transfer", RuleAction::RequireStepUp),
            rule("/info", RuleAction::Allow),
        ],
    );
    let Some(mut h) = Harness::new("create", &[&p]).await else {
        return;
    };
    // First reconcile: only the finalizer is added; nothing is written yet.
    let (result, _) = h.reconcile(&p, vec![Call::AddFinalizer(p.clone())]).await;
    assert_eq!(result.unwrap(), Action::await_change());
    assert!(ids(&h.table).await.is_empty());

    let p = p.with_finalizer();
    h.saw(&p);
    let (result, seen) = h
        .reconcile(&p, vec![Call::Status(p.clone()), Call::Event("Synced")])
        .await;
    assert_eq!(result.unwrap(), Action::requeue(controller::DRIFT_INTERVAL));
    let status = &seen.statuses[0];
    assert_eq!(status.observed_generation, Some(1));
    assert_condition(status, "Ready", "True", "RulesSynced");
    assert_condition(status, "Synced", "True", "Synced");
    assert_condition(status, "Conflict", "False", "NoConflict");
    assert_eq!(status.synced_rules, Some(2));
    assert_eq!(status.last_sync_time, Some(controller::time_of(NOW)));
    assert_eq!(seen.events[0]["type"], "Normal");

    assert_eq!(ids(&h.table).await, vec!["EXACT:/info", "EXACT:/transfer"]);
    let transfer = item(&h.table, "EXACT:/transfer").await.unwrap();
    assert_eq!(owner_of(&transfer), Some("default/transfer"));
    assert_eq!(transfer.opt_s("ownerUid").unwrap(), Some("uid-transfer"));
    assert_eq!(transfer.opt_u64("generation").unwrap(), Some(1));
    assert_eq!(
        transfer.opt_s("stepUpState").unwrap(),
        Some("STEP_UP_REQUIRED")
    );

    // Reconciled again (the drift requeue) with nothing changed: the same status, no
    // Event, no write.
    let before = h.table.scan().await.unwrap();
    let stored = p.with_status(status.clone());
    h.saw(&stored);
    let (result, seen) = h
        .reconcile(&stored, vec![Call::Status(stored.clone())])
        .await;
    assert!(result.is_ok());
    assert_eq!(&seen.statuses[0], status);
    assert_eq!(h.table.scan().await.unwrap(), before);
}

#[tokio::test]
async fn the_drift_requeue_restores_an_owned_item_changed_by_hand() {
    let p = StepUpPolicy::test("p", 100, vec![rule("/transfer", RuleAction::Deny)]);
    let Some(mut h) = Harness::new("drift", &[&p]).await else {
        return;
    };
    let stored = h.create(&p, &["Synced"]).await;
    let mut edited = item(&h.table, "EXACT:/transfer").await.unwrap();
    edited.insert("stepUpState".into(), Attr::s("STEP_UP_NOT_REQUIRED"));
    h.table.put(edited).await.unwrap();
    let (result, _) = h
        .reconcile(
            &stored,
            vec![Call::Status(stored.clone()), Call::Event("Synced")],
        )
        .await;
    assert!(result.is_ok());
    let fixed = item(&h.table, "EXACT:/transfer").await.unwrap();
    assert_eq!(fixed.opt_s("stepUpState").unwrap(), Some("STEP_UP_DENY"));
}

#[tokio::test]
async fn an_audited_policy_writes_audit_items_and_says_so_and_enforce_switches_them_back() {
    let mut p = StepUpPolicy::test(
        "trial",
        100,
        vec![
            rule("/transfer", RuleAction::RequireStepUp),
            rule("/admin", RuleAction::Deny),
        ],
    );
    p.spec.enforcement = PolicyEnforcement::Audit;
    let Some(mut h) = Harness::new("audit", &[&p]).await else {
        return;
    };
    let stored = h.create(&p, &["Synced"]).await;
    assert_eq!(
        stored.status.as_ref().unwrap().enforcement,
        Some(PolicyEnforcement::Audit)
    );
    for id in ["EXACT:/transfer", "EXACT:/admin"] {
        let it = item(&h.table, id).await.unwrap();
        assert_eq!(it.opt_s("enforcement").unwrap(), Some("AUDIT"), "{id}");
    }
    // The sidecar reads them as audited rules.
    let index = stepup_core::policy::PolicyIndex::from_items(&h.table.scan().await.unwrap());
    let rule = index
        .lookup("POST", "api.example.com", "/transfer")
        .unwrap();
    assert_eq!(rule.enforcement, stepup_core::policy::Enforcement::Audit);

    // `kubectl patch … enforcement: Enforce`: the items lose the attribute.
    let rules = stored.spec.rules.clone();
    let mut enforced = stored.next_generation(rules);
    enforced.spec.enforcement = PolicyEnforcement::Enforce;
    h.saw(&enforced);
    let (result, seen) = h
        .reconcile(
            &enforced,
            vec![Call::Status(enforced.clone()), Call::Event("Synced")],
        )
        .await;
    assert!(result.is_ok());
    assert_eq!(
        seen.statuses[0].enforcement,
        Some(PolicyEnforcement::Enforce)
    );
    for id in ["EXACT:/transfer", "EXACT:/admin"] {
        let it = item(&h.table, id).await.unwrap();
        assert_eq!(it.opt_s("enforcement").unwrap(), None, "{id}");
    }
}

#[tokio::test]
async fn removing_a_rule_from_a_policy_deletes_its_item() {
    let p = StepUpPolicy::test(
        "transfer",
        100,
        vec![
            rule("/transfer", RuleAction::RequireStepUp),
            rule("/info", RuleAction::Allow),
        ],
    );
    let Some(mut h) = Harness::new("update", &[&p]).await else {
        return;
    };
    let stored = h.create(&p, &["Synced"]).await;
    assert_eq!(ids(&h.table).await, vec!["EXACT:/info", "EXACT:/transfer"]);

    let updated = stored.next_generation(vec![rule("/transfer", RuleAction::RequireStepUp)]);
    h.saw(&updated);
    let (result, seen) = h
        .reconcile(
            &updated,
            vec![Call::Status(updated.clone()), Call::Event("Synced")],
        )
        .await;
    assert!(result.is_ok());
    let status = &seen.statuses[0];
    assert_eq!(status.observed_generation, Some(2));
    assert_eq!(status.synced_rules, Some(1));
    assert_condition(status, "Ready", "True", "RulesSynced");
    // The recorder folds a repeated Event (same reason) into a series of the first.
    assert_eq!(seen.events[0]["series"]["count"], 2, "{:?}", seen.events);
    assert_eq!(ids(&h.table).await, vec!["EXACT:/transfer"]);
    let transfer = item(&h.table, "EXACT:/transfer").await.unwrap();
    assert_eq!(transfer.opt_u64("generation").unwrap(), Some(2));
}

#[tokio::test]
async fn deleting_a_policy_removes_its_items_and_releases_the_finalizer() {
    let p = StepUpPolicy::test(
        "transfer",
        100,
        vec![
            rule("/transfer", RuleAction::RequireStepUp),
            rule("/info", RuleAction::Allow),
        ],
    );
    let Some(mut h) = Harness::new("delete", &[&p]).await else {
        return;
    };
    let seed = hand_made("/transfer", "STEP_UP_REQUIRED");
    h.table.put(seed.clone()).await.unwrap();
    let stored = h.create(&p, &["Synced"]).await;
    assert_eq!(ids(&h.table).await.len(), 3);

    let deleting = stored.deleting();
    h.saw(&deleting);
    let (result, seen) = h
        .reconcile(&deleting, vec![Call::RemoveFinalizer(deleting.clone())])
        .await;
    assert_eq!(result.unwrap(), Action::await_change());
    assert!(seen.statuses.is_empty());
    assert_eq!(h.table.scan().await.unwrap(), vec![seed]);
    // Every other policy is reconciled again, so that a newer claimant takes over.
    assert!(h.reconcile_all.try_recv().is_ok());
}

#[tokio::test]
async fn a_second_policy_on_the_same_key_reports_conflict_without_overwriting_then_takes_over() {
    let older = StepUpPolicy::test(
        "a-older",
        100,
        vec![rule("/transfer", RuleAction::RequireStepUp)],
    );
    let newer = StepUpPolicy::test(
        "b-newer",
        200,
        vec![
            rule("/transfer/", RuleAction::Deny),
            rule("/reports", RuleAction::Allow),
        ],
    );
    let Some(mut h) = Harness::new("conflict", &[&older, &newer]).await else {
        return;
    };
    let older = h.create(&older, &["Synced"]).await;

    // The newer policy: its other rule is written, the contested key is not.
    let newer = newer.with_finalizer();
    h.saw(&newer);
    let (result, seen) = h
        .reconcile(
            &newer,
            vec![
                Call::Status(newer.clone()),
                Call::Event("Synced"),
                Call::Event("Conflict"),
            ],
        )
        .await;
    assert!(result.is_ok());
    let status = &seen.statuses[0];
    assert_condition(status, "Ready", "False", "RuleKeyConflict");
    assert_condition(status, "Synced", "True", "Synced");
    assert_condition(status, "Conflict", "True", "RuleKeyHeld");
    let message = &condition(status, "Conflict").message;
    assert!(
        message.contains("`EXACT:/transfer` is held by StepUpPolicy `default/a-older`"),
        "{message}"
    );
    assert_eq!(status.synced_rules, Some(1));
    assert_eq!(seen.events[1]["type"], "Warning");
    let contested = item(&h.table, "EXACT:/transfer").await.unwrap();
    assert_eq!(owner_of(&contested), Some("default/a-older"));
    assert_eq!(
        contested.opt_s("stepUpState").unwrap(),
        Some("STEP_UP_REQUIRED")
    );
    assert_eq!(
        owner_of(&item(&h.table, "EXACT:/reports").await.unwrap()),
        Some("default/b-newer")
    );
    let newer = newer.with_status(status.clone());
    h.saw(&newer);

    // The older policy is deleted: its Cleanup hands the key to the newer one at once.
    let deleting = older.deleting();
    h.saw(&deleting);
    let (result, _) = h
        .reconcile(&deleting, vec![Call::RemoveFinalizer(deleting.clone())])
        .await;
    assert!(result.is_ok());
    let taken = item(&h.table, "EXACT:/transfer").await.unwrap();
    assert_eq!(owner_of(&taken), Some("default/b-newer"));
    assert_eq!(taken.opt_s("ownerUid").unwrap(), Some("uid-b-newer"));
    assert_eq!(taken.opt_s("stepUpState").unwrap(), Some("STEP_UP_DENY"));
    assert!(h.reconcile_all.try_recv().is_ok());
    h.saw_gone(&deleting);

    // The reconcile-all that follows makes the newer policy Ready, without a conflict.
    let (result, seen) = h
        .reconcile(
            &newer,
            vec![Call::Status(newer.clone()), Call::Event("Synced")],
        )
        .await;
    assert!(result.is_ok());
    let status = &seen.statuses[0];
    assert_condition(status, "Ready", "True", "RulesSynced");
    assert_condition(status, "Conflict", "False", "NoConflict");
    assert_eq!(status.synced_rules, Some(2));
    assert_eq!(
        ids(&h.table).await,
        vec!["EXACT:/reports", "EXACT:/transfer"]
    );
}

#[tokio::test]
async fn a_hand_made_item_survives_create_conflict_delete_and_sweep() {
    let p = StepUpPolicy::test(
        "p",
        100,
        vec![
            rule("/transfer", RuleAction::Allow),
            rule("/admin", RuleAction::Allow),
        ],
    );
    let Some(mut h) = Harness::new("handmade", &[&p]).await else {
        return;
    };
    // The seed's item (id = path) and one whose id happens to be a rule key.
    let seed = hand_made("/transfer", "STEP_UP_REQUIRED");
    let odd = hand_made("EXACT:/admin", "STEP_UP_DENY");
    h.table.put(seed.clone()).await.unwrap();
    h.table.put(odd.clone()).await.unwrap();

    let stored = h.create(&p, &["Synced", "Conflict"]).await;
    let status = stored.status.clone().unwrap();
    assert_condition(&status, "Conflict", "True", "RuleKeyHeld");
    assert!(
        condition(&status, "Conflict")
            .message
            .contains("`EXACT:/admin` is held by an item without owner")
    );
    assert_eq!(item(&h.table, "EXACT:/admin").await.unwrap(), odd);
    assert_eq!(item(&h.table, "/transfer").await.unwrap(), seed);

    let deleting = stored.deleting();
    h.saw(&deleting);
    let (result, _) = h
        .reconcile(&deleting, vec![Call::RemoveFinalizer(deleting.clone())])
        .await;
    assert!(result.is_ok());
    h.saw_gone(&deleting);
    assert!(sweep(&h.ctx).await.unwrap().is_empty());
    let mut left = h.table.scan().await.unwrap();
    left.sort_by(|a, b| a.req_s("id").unwrap().cmp(b.req_s("id").unwrap()));
    assert_eq!(left, vec![seed, odd]);
}

#[tokio::test]
async fn a_malformed_policy_gets_a_condition_with_the_reason_and_nothing_is_written() {
    let mut bad_age = rule("/transfer", RuleAction::RequireStepUp);
    bad_age.max_age = Some("5 minutes".into());
    let p = StepUpPolicy::test(
        "bad",
        100,
        vec![rule("transfer", RuleAction::Deny), bad_age],
    )
    .with_finalizer();
    let Some(mut h) = Harness::new("malformed", &[&p]).await else {
        return;
    };
    let (result, seen) = h
        .reconcile(&p, vec![Call::Status(p.clone()), Call::Event("Invalid")])
        .await;
    assert!(
        result.is_ok(),
        "a malformed policy is not retried: {result:?}"
    );
    let status = &seen.statuses[0];
    assert_condition(status, "Ready", "False", "Invalid");
    assert_condition(status, "Synced", "False", "Invalid");
    let message = &condition(status, "Ready").message;
    assert!(
        message.contains("rules[0].path: `transfer` does not start with `/`"),
        "{message}"
    );
    assert!(
        message.contains("rules[1].maxAge: `5 minutes`"),
        "{message}"
    );
    assert_eq!(status.synced_rules, Some(0));
    assert_eq!(seen.events[0]["type"], "Warning");
    assert!(ids(&h.table).await.is_empty());

    // A good policy that becomes malformed keeps its items: a typo never removes
    // protection.
    let good = StepUpPolicy::test("good", 100, vec![rule("/admin", RuleAction::Deny)]);
    h.saw(&good);
    let good = h.create(&good, &["Synced"]).await;
    let broken = good.next_generation(vec![rule("admin", RuleAction::Deny)]);
    h.saw(&broken);
    let (result, seen) = h
        .reconcile(
            &broken,
            vec![Call::Status(broken.clone()), Call::Event("Invalid")],
        )
        .await;
    assert!(result.is_ok());
    assert_condition(&seen.statuses[0], "Ready", "False", "Invalid");
    assert_eq!(seen.statuses[0].synced_rules, Some(1));
    assert_eq!(
        owner_of(&item(&h.table, "EXACT:/admin").await.unwrap()),
        Some("default/good")
    );
}

#[tokio::test]
async fn a_dynamodb_error_leaves_synced_false_with_the_reason_and_is_retried_with_backoff() {
    let p =
        StepUpPolicy::test("p", 100, vec![rule("/transfer", RuleAction::Deny)]).with_finalizer();
    let Some(endpoint) = dynamodb_endpoint() else {
        return;
    };
    // A table that does not exist: every call fails with ResourceNotFoundException.
    let missing = DynamoSettingStore::new(dynamo::local_client(&endpoint), "no-such-table-here");
    let mut h = Harness::on(
        missing,
        &[&p],
        ControllerConfig::default(),
        Leadership::always(),
    );
    let (result, seen) = h
        .reconcile(&p, vec![Call::Status(p.clone()), Call::Event("StoreError")])
        .await;
    let error = result.unwrap_err();
    assert_eq!(error.metric_label(), "unavailable", "{error}");
    let status = &seen.statuses[0];
    assert_condition(status, "Synced", "False", "StoreError");
    assert_condition(status, "Ready", "False", "StoreError");
    assert!(
        condition(status, "Synced")
            .message
            .contains("no-such-table-here")
            || condition(status, "Synced")
                .message
                .contains("ResourceNotFound"),
        "{status:?}"
    );
    let p = Arc::new(p);
    let delays: Vec<Action> = (0..3)
        .map(|_| error_policy(p.clone(), &error, h.ctx.clone()))
        .collect();
    assert_eq!(
        delays,
        vec![
            Action::requeue(Duration::from_secs(5)),
            Action::requeue(Duration::from_secs(10)),
            Action::requeue(Duration::from_secs(20)),
        ]
    );
    assert_eq!(h.ctx.failures_of("default/p"), 3);
}

#[tokio::test]
async fn the_sweep_deletes_items_of_policies_that_no_longer_exist_and_nothing_else() {
    let live = StepUpPolicy::test("live", 100, vec![rule("/live", RuleAction::Deny)]);
    let Some(table) = fresh_table("sweep").await else {
        return;
    };
    let config = ControllerConfig {
        watch_namespace: Some("default".into()),
        ..ControllerConfig::default()
    };
    let mut h = Harness::on(table, &[&live], config, Leadership::always());
    let owned = |id: &str, owner: &str| {
        let mut i = hand_made(id, "STEP_UP_DENY");
        i.insert("owner".into(), Attr::s(owner));
        i
    };
    let seed = hand_made("/legacy", "STEP_UP_DENY");
    for i in [
        owned("EXACT:/live", "default/live"),
        owned("EXACT:/orphan", "default/gone"),
        owned("EXACT:/elsewhere", "team-b/unseen"),
        seed.clone(),
    ] {
        h.table.put(i).await.unwrap();
    }
    // The sweep makes no API call at all.
    let deleted = sweep(&h.ctx).await.unwrap();
    assert_eq!(deleted, vec!["EXACT:/orphan"]);
    assert_eq!(
        ids(&h.table).await,
        vec!["/legacy", "EXACT:/elsewhere", "EXACT:/live"]
    );
    let _ = h.handle.take();
}

#[tokio::test]
async fn a_standby_replica_writes_nothing_and_calls_nothing() {
    let p =
        StepUpPolicy::test("p", 100, vec![rule("/transfer", RuleAction::Deny)]).with_finalizer();
    let Some(table) = fresh_table("standby").await else {
        return;
    };
    let mut h = Harness::on(
        table,
        &[&p],
        ControllerConfig::default(),
        Leadership::standby(),
    );
    let (result, _) = h.reconcile(&p, vec![]).await;
    assert!(result.is_ok());
    assert!(sweep(&h.ctx).await.unwrap().is_empty());
    assert!(ids(&h.table).await.is_empty());
}

// ---------------------------------------------------------------------------------------
// A real cluster, only when one is given
// ---------------------------------------------------------------------------------------

/// Needs a cluster (`KUBECONFIG`) and DynamoDB Local: installs the CRD, runs the
/// controller in-process against the cluster, creates, changes and deletes a policy in
/// the `default` namespace, and watches the table. No cluster exists on the project's
/// machines or in CI, so it is ignored (reported as ignored, never as a pass); run
/// it with `KUBECONFIG=... ./scripts/test -p stepup-operator --test controller --
/// --ignored`, where a missing `KUBECONFIG` fails it.
#[tokio::test]
#[ignore = "needs a Kubernetes cluster: KUBECONFIG=... ./scripts/test -- --ignored"]
async fn against_a_real_cluster_when_a_kubeconfig_is_given() {
    use futures::StreamExt;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::CustomResourceExt;
    use kube::api::{DeleteParams, Patch, PatchParams};
    use kube::runtime::Controller;

    assert!(
        std::env::var_os("KUBECONFIG").is_some_and(|k| !k.is_empty()),
        "KUBECONFIG is not set: this test needs a Kubernetes cluster"
    );
    let Some(table) = fresh_table("cluster").await else {
        return;
    };
    let client = Client::try_default().await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        "stepuppolicies.stepup.dev",
        &PatchParams::apply("stepup-operator-test").force(),
        &Patch::Apply(StepUpPolicy::crd()),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;

    let api: Api<StepUpPolicy> = Api::namespaced(client.clone(), "default");
    let controller = Controller::new(api.clone(), watcher::Config::default());
    let (tx, _rx) = mpsc::unbounded_channel();
    let ctx = Arc::new(
        Context::new(
            client.clone(),
            Arc::new(table.clone()),
            controller.store(),
            Arc::new(stepup_core::clock::now),
            ControllerConfig {
                watch_namespace: Some("default".into()),
                table: table.table().to_owned(),
                ..ControllerConfig::default()
            },
        )
        .with_reconcile_all(tx),
    );
    let running = tokio::spawn(
        controller
            .run(reconcile, error_policy, ctx)
            .for_each(|_| async {}),
    );

    let name = format!(
        "stepup-test-{}",
        RandomState::new().build_hasher().finish() % 100_000
    );
    let manifest = json!({
        "apiVersion": "stepup.dev/v1alpha1", "kind": "StepUpPolicy",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"rules": [{"path": format!("/{name}"), "action": "Deny"}]}
    });
    api.patch(
        &name,
        &PatchParams::apply("stepup-operator-test"),
        &Patch::Apply(&manifest),
    )
    .await
    .unwrap();
    let key = format!("EXACT:/{name}");
    let mut found = false;
    for _ in 0..60 {
        if item(&table, &key).await.is_some() {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(found, "the operator never wrote {key}");
    let mut ready = false;
    for _ in 0..60 {
        let p = api.get(&name).await.unwrap();
        if p.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        }) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(ready, "the policy never became Ready");

    api.delete(&name, &DeleteParams::default()).await.unwrap();
    let mut gone = false;
    for _ in 0..60 {
        if api.get_opt(&name).await.unwrap().is_none() && item(&table, &key).await.is_none() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(gone, "the policy or its item was not removed");
    running.abort();
}
