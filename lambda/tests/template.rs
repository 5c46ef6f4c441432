//! Offline validation of `lambda/template.yaml` (AWS SAM), without an AWS account or SAM CLI.
//!
//! - `cfn_lint_passes`: `scripts/cfn-lint.sh lint` (PyPI cfn-lint, which expands the SAM
//!   transform with aws-sam-translator) must exit 0. cfn-lint blanks an inline
//!   `DefinitionBody` before translating, so the test also runs `scripts/cfn-lint.sh expand`
//!   (the real translation of the template as written), lints that CloudFormation, and checks
//!   the generated REST API: every route present, with the right authorizer, no stray stage.
//!   Without cfn-lint (no python3 / PyPI) it is skipped, except under `CI=true` where it fails.
//! - `template_key_facts`: parses the YAML (CloudFormation tags `!Ref`, `!Sub`, `!GetAtt`,
//!   `!If` are `serde_yaml::Value::Tagged`) and asserts what docs/lambda.md promises.

use crate::common;

use common::{in_ci, workspace_root as repo_root};
use std::path::PathBuf;
use std::process::{Command, Output};

use serde_yaml::Value;

fn template_path() -> PathBuf {
    repo_root().join("lambda/template.yaml")
}

fn cfn_lint(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(repo_root().join("scripts/cfn-lint.sh"))
        .args(args)
        .output()
        .expect("run scripts/cfn-lint.sh")
}

fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Strips CloudFormation intrinsic tags (`!Ref x` -> `x`, `!GetAtt a.b` -> `a.b`, ...).
fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        other => other,
    }
}

/// `v[k1][k2]...`, looking through tags at every step; `Null` when a key is missing.
fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    static NULL: Value = Value::Null;
    let mut cur = untag(v);
    for k in path {
        cur = match cur.get(*k) {
            Some(next) => untag(next),
            None => &NULL,
        };
    }
    cur
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path:?} is not a string: {:?}", at(v, path)))
}

/// A status code written as `401` or `"401"`.
fn status_at(v: &Value, path: &[&str]) -> u64 {
    match at(v, path) {
        Value::Number(n) => n.as_u64().unwrap(),
        Value::String(s) => s.parse().unwrap(),
        other => panic!("{path:?}: not a status code: {other:?}"),
    }
}

/// A string or a list of strings (IAM Action / Resource), tags stripped.
fn strings(v: &Value) -> Vec<String> {
    match untag(v) {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items.iter().flat_map(strings).collect(),
        Value::Null => Vec::new(),
        // An intrinsic function (`!GetAtt`, `!Sub`) resolves to one concrete value.
        other => vec![format!("{other:?}")],
    }
}

fn load_template() -> Value {
    let text = std::fs::read_to_string(template_path()).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

fn assert_key_schema(table: &Value, key: &str) {
    let props = at(table, &["Properties"]);
    let defs = at(props, &["AttributeDefinitions"]).as_sequence().unwrap();
    assert_eq!(defs.len(), 1, "{key}: one attribute definition");
    assert_eq!(str_at(&defs[0], &["AttributeName"]), key);
    assert_eq!(str_at(&defs[0], &["AttributeType"]), "S");
    let schema = at(props, &["KeySchema"]).as_sequence().unwrap();
    assert_eq!(schema.len(), 1, "{key}: hash key only");
    assert_eq!(str_at(&schema[0], &["AttributeName"]), key);
    assert_eq!(str_at(&schema[0], &["KeyType"]), "HASH");
    assert_eq!(str_at(props, &["BillingMode"]), "PAY_PER_REQUEST");
}

/// `TableName: !If [NoPrefix, <base>, !Sub "<base>-${EnvPrefix}"]`, as in the seed.
fn assert_table_name(table: &Value, base: &str) {
    let name = &table["Properties"]["TableName"];
    let Value::Tagged(t) = name else {
        panic!("TableName of {base} is not !If: {name:?}")
    };
    assert_eq!(t.tag, "If");
    let args = t.value.as_sequence().unwrap();
    assert_eq!(args[0].as_str(), Some("NoPrefix"));
    assert_eq!(args[1].as_str(), Some(base));
    assert_eq!(
        untag(&args[2]).as_str(),
        Some(format!("{base}-${{EnvPrefix}}").as_str())
    );
}

#[test]
fn template_key_facts() {
    let t = load_template();
    assert_eq!(
        str_at(&t, &["Transform"]),
        "AWS::Serverless-2016-10-31",
        "SAM template"
    );

    // Parameters: user pool, client ids, table prefix.
    assert_eq!(str_at(&t, &["Parameters", "UserPoolId", "Type"]), "String");
    assert_eq!(
        str_at(&t, &["Parameters", "ClientIds", "Type"]),
        "CommaDelimitedList"
    );
    assert_eq!(str_at(&t, &["Parameters", "EnvPrefix", "Type"]), "String");
    assert_eq!(str_at(&t, &["Parameters", "EnvPrefix", "Default"]), "");

    // The seed's tables: key schema, names and TTL.
    let res = at(&t, &["Resources"]);
    let setting = at(res, &["SettingTable"]);
    let session = at(res, &["SessionTable"]);
    for table in [setting, session] {
        assert_eq!(str_at(table, &["Type"]), "AWS::DynamoDB::Table");
    }
    assert_key_schema(setting, "id");
    assert_key_schema(session, "sessionId");
    assert_table_name(setting, "step-up-auth-setting");
    assert_table_name(session, "step-up-auth-session");
    let ttl = at(session, &["Properties", "TimeToLiveSpecification"]);
    assert_eq!(str_at(ttl, &["AttributeName"]), "ttl");
    assert_eq!(at(ttl, &["Enabled"]).as_bool(), Some(true));
    assert!(
        at(setting, &["Properties", "TimeToLiveSpecification"]).is_null(),
        "the setting table has no TTL"
    );

    // Functions: provided.al2023 on arm64 (from Globals, not overridden), the right binaries.
    let globals = at(&t, &["Globals", "Function"]);
    assert_eq!(str_at(globals, &["Runtime"]), "provided.al2023");
    assert_eq!(strings(at(globals, &["Architectures"])), ["arm64"]);
    assert_eq!(str_at(globals, &["Handler"]), "bootstrap");
    let functions: Vec<(&str, &Value)> = res
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| str_at(r, &["Type"]) == "AWS::Serverless::Function")
        .map(|(k, r)| (k.as_str().unwrap(), r))
        .collect();
    assert_eq!(functions.len(), 2);
    for (name, f) in &functions {
        let runtime = at(f, &["Properties", "Runtime"]);
        assert!(
            runtime.is_null() || runtime.as_str() == Some("provided.al2023"),
            "{name} overrides Runtime: {runtime:?}"
        );
        let arch = at(f, &["Properties", "Architectures"]);
        assert!(
            arch.is_null() || strings(arch) == ["arm64"],
            "{name} overrides Architectures: {arch:?}"
        );
        assert_eq!(str_at(f, &["Metadata", "BuildMethod"]), "rust-cargolambda");
    }
    assert_eq!(
        str_at(
            res,
            &[
                "AuthorizerFunction",
                "Metadata",
                "BuildProperties",
                "Binary"
            ]
        ),
        "stepup-authorizer"
    );
    assert_eq!(
        str_at(
            res,
            &["StepUpApiFunction", "Metadata", "BuildProperties", "Binary"]
        ),
        "stepup-api"
    );
    assert_eq!(
        str_at(
            res,
            &[
                "StepUpApiFunction",
                "Properties",
                "Environment",
                "Variables",
                "AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH"
            ]
        ),
        "true"
    );

    // The authorizer: REQUEST, identity = Authorization header, API Gateway's cache off.
    let api = at(res, &["SampleApi", "Properties"]);
    let auth = at(api, &["Auth"]);
    assert_eq!(str_at(auth, &["DefaultAuthorizer"]), "StepUpAuthorizer");
    let authorizer = at(auth, &["Authorizers", "StepUpAuthorizer"]);
    assert_eq!(str_at(authorizer, &["FunctionPayloadType"]), "REQUEST");
    assert_eq!(
        at(authorizer, &["FunctionArn"]),
        &Value::String("AuthorizerFunction.Arn".into())
    );
    assert_eq!(
        strings(at(authorizer, &["Identity", "Headers"])),
        ["Authorization"]
    );
    assert_eq!(
        at(authorizer, &["Identity", "ReauthorizeEvery"]).as_u64(),
        Some(0),
        "authorizer caching must stay off"
    );
    let ttl = at(authorizer, &["Identity", "ResultTtlInSeconds"]);
    assert!(
        ttl.is_null() || ttl.as_u64() == Some(0),
        "authorizer caching must stay off"
    );
    // The step-up routes are added to the inline OpenAPI body only with MergeDefinitions.
    assert_eq!(at(api, &["MergeDefinitions"]).as_bool(), Some(true));
    assert_eq!(str_at(api, &["StageName"]), "prod");

    // Gateway responses (docs/lambda.md).
    let gr = at(api, &["GatewayResponses"]);
    assert_eq!(status_at(gr, &["UNAUTHORIZED", "StatusCode"]), 401);
    assert_eq!(
        str_at(
            gr,
            &[
                "UNAUTHORIZED",
                "ResponseParameters",
                "Headers",
                "WWW-Authenticate"
            ]
        ),
        "'Bearer realm=\"stepup\"'"
    );
    assert_eq!(status_at(gr, &["ACCESS_DENIED", "StatusCode"]), 401);
    assert_eq!(
        str_at(
            gr,
            &[
                "ACCESS_DENIED",
                "ResponseParameters",
                "Headers",
                "WWW-Authenticate"
            ]
        ),
        "context.authorizer.wwwAuthenticate"
    );
    assert_eq!(
        str_at(
            gr,
            &[
                "ACCESS_DENIED",
                "ResponseParameters",
                "Headers",
                "X-Stepup-Status"
            ]
        ),
        "context.authorizer.step_up"
    );
    assert_eq!(
        str_at(
            gr,
            &["ACCESS_DENIED", "ResponseTemplates", "application/json"]
        ),
        "$context.authorizer.body"
    );
    // Every authorizer error but "Unauthorized" (the "Forbidden" of a deny, a crash):
    // 403 with a static JSON body, since these responses see no authorizer context.
    for ty in ["AUTHORIZER_FAILURE", "AUTHORIZER_CONFIGURATION_ERROR"] {
        assert_eq!(status_at(gr, &[ty, "StatusCode"]), 403, "{ty}");
        assert_eq!(
            str_at(gr, &[ty, "ResponseParameters", "Headers", "Content-Type"]),
            "'application/json'",
            "{ty}"
        );
        let body: serde_json::Value =
            serde_json::from_str(str_at(gr, &[ty, "ResponseTemplates", "application/json"]))
                .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"code": "FORBIDDEN", "message": "Access to this resource is denied"}),
            "{ty}"
        );
    }

    // IAM: only inline statements (so this test sees every permission); no wildcard
    // action; no dynamodb / cognito-idp action on Resource "*".
    let mut statements = 0;
    for (name, f) in &functions {
        for policy in at(f, &["Properties", "Policies"]).as_sequence().unwrap() {
            let stmts = at(policy, &["Statement"])
                .as_sequence()
                .unwrap_or_else(|| panic!("{name}: a policy that is not inline: {policy:?}"));
            for s in stmts {
                statements += 1;
                assert_eq!(str_at(s, &["Effect"]), "Allow");
                let actions = strings(at(s, &["Action"]));
                let resources = strings(at(s, &["Resource"]));
                assert!(
                    !actions.is_empty() && !resources.is_empty(),
                    "{name}: {s:?}"
                );
                for a in &actions {
                    assert!(
                        a != "*" && !a.ends_with(":*"),
                        "{name}: wildcard action {a}"
                    );
                }
                let sensitive = actions
                    .iter()
                    .any(|a| a.starts_with("dynamodb:") || a.starts_with("cognito-idp:"));
                if sensitive {
                    assert!(
                        resources.iter().all(|r| !r.contains('*')),
                        "{name}: {actions:?} on {resources:?}"
                    );
                }
            }
        }
    }
    assert!(statements >= 3);
    let granted = |function: &str| -> Vec<(Vec<String>, Vec<String>)> {
        let policies = at(res, &[function, "Properties", "Policies"]);
        policies
            .as_sequence()
            .unwrap()
            .iter()
            .flat_map(|p| at(p, &["Statement"]).as_sequence().unwrap().iter())
            .map(|s| (strings(at(s, &["Action"])), strings(at(s, &["Resource"]))))
            .collect()
    };
    assert_eq!(
        granted("AuthorizerFunction"),
        [
            (
                vec!["dynamodb:Scan".into()],
                vec!["SettingTable.Arn".into()]
            ),
            (
                vec!["dynamodb:GetItem".into()],
                vec!["SessionTable.Arn".into()]
            ),
        ]
    );
    assert_eq!(
        granted("StepUpApiFunction"),
        [(
            vec![
                "dynamodb:GetItem".into(),
                "dynamodb:PutItem".into(),
                "dynamodb:UpdateItem".into()
            ],
            vec!["SessionTable.Arn".into()]
        )]
    );
}

/// Installs cfn-lint; `false` (after saying why) when it cannot be installed outside CI.
fn cfn_lint_available() -> bool {
    let out = cfn_lint(&["install"]);
    if out.status.success() {
        return true;
    }
    let why = String::from_utf8_lossy(&out.stderr);
    let why = why.lines().last().unwrap_or("no output").trim().to_owned();
    if in_ci() {
        panic!(
            "cfn-lint could not be installed under CI=true:\n{}",
            describe(&out)
        );
    }
    eprintln!("skipping: cfn-lint unavailable ({why})");
    false
}

#[test]
fn cfn_lint_passes() {
    if !cfn_lint_available() {
        return;
    }
    let template = template_path();
    let out = cfn_lint(&["lint", template.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "cfn-lint: {}", describe(&out));

    // The full SAM expansion, with the inline OpenAPI body (cfn-lint blanks it).
    let out = cfn_lint(&["expand", template.to_str().unwrap()]);
    assert!(out.status.success(), "expand: {}", describe(&out));
    let expanded: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let file = std::env::temp_dir().join(format!(
        "stepup-template-expanded-{}.json",
        std::process::id()
    ));
    std::fs::write(&file, &out.stdout).unwrap();
    let lint = cfn_lint(&["lint", file.to_str().unwrap()]);
    let _ = std::fs::remove_file(&file);
    assert_eq!(
        lint.status.code(),
        Some(0),
        "cfn-lint on the expansion: {}",
        describe(&lint)
    );

    let resources = expanded["Resources"].as_object().unwrap();
    let body = &resources["SampleApi"]["Properties"]["Body"];
    assert_eq!(body["openapi"], "3.0.1");
    assert!(
        body.get("swagger").is_none(),
        "Swagger 2.0 key in an OpenAPI 3 body"
    );
    let routes = [
        ("/info", "get", "StepUpAuthorizer"),
        ("/transfer", "post", "StepUpAuthorizer"),
        ("/initiate-auth", "post", "NONE"),
        ("/initiate-auth", "options", "NONE"),
        ("/respond-to-challenge", "post", "NONE"),
        ("/respond-to-challenge", "options", "NONE"),
    ];
    for (path, method, security) in routes {
        let op = &body["paths"][path][method];
        assert!(
            op.is_object(),
            "{method} {path} missing from the deployed API"
        );
        assert!(
            op["security"][0].get(security).is_some(),
            "{method} {path}: security {:?}, want {security}",
            op["security"]
        );
        assert!(op["x-amazon-apigateway-integration"].is_object());
    }
    let ours = [
        "/info",
        "/transfer",
        "/initiate-auth",
        "/respond-to-challenge",
    ];
    assert_eq!(body["paths"].as_object().unwrap().len(), ours.len());
    for path in ["/initiate-auth", "/respond-to-challenge"] {
        for method in ["post", "options"] {
            let integration = &body["paths"][path][method]["x-amazon-apigateway-integration"];
            assert_eq!(integration["type"], "aws_proxy");
            assert!(integration["uri"].to_string().contains("StepUpApiFunction"));
        }
    }

    let authorizer = &body["components"]["securitySchemes"]["StepUpAuthorizer"]["x-amazon-apigateway-authorizer"];
    assert_eq!(authorizer["type"], "request");
    assert_eq!(
        authorizer["identitySource"],
        "method.request.header.Authorization"
    );
    assert_eq!(authorizer["authorizerResultTtlInSeconds"], 0);

    let gr = &body["x-amazon-apigateway-gateway-responses"];
    assert_eq!(gr["ACCESS_DENIED"]["statusCode"], "401");
    assert_eq!(
        gr["ACCESS_DENIED"]["responseParameters"]["gatewayresponse.header.WWW-Authenticate"],
        "context.authorizer.wwwAuthenticate"
    );
    assert_eq!(gr["UNAUTHORIZED"]["statusCode"], "401");
    for ty in ["AUTHORIZER_FAILURE", "AUTHORIZER_CONFIGURATION_ERROR"] {
        assert_eq!(gr[ty]["statusCode"], "403", "{ty}");
        assert_eq!(
            gr[ty]["responseParameters"]["gatewayresponse.header.Content-Type"],
            "'application/json'",
            "{ty}"
        );
        assert!(
            gr[ty]["responseTemplates"]["application/json"]
                .as_str()
                .is_some_and(|t| t.contains(r#""code":"FORBIDDEN""#)),
            "{ty}: {}",
            gr[ty]
        );
    }

    // One stage, "prod": no Deployment that creates SAM's stray "Stage" stage.
    let of_type = |ty: &str| -> Vec<&serde_json::Value> {
        resources.values().filter(|r| r["Type"] == ty).collect()
    };
    let stages = of_type("AWS::ApiGateway::Stage");
    assert_eq!(stages.len(), 1);
    assert_eq!(stages[0]["Properties"]["StageName"], "prod");
    for d in of_type("AWS::ApiGateway::Deployment") {
        assert!(
            d["Properties"].get("StageName").is_none(),
            "a Deployment with a StageName creates an extra stage: {d}"
        );
    }
    // API Gateway may invoke both functions: the authorizer and the four step-up routes.
    assert_eq!(of_type("AWS::Lambda::Permission").len(), 5);
}
