//! SQS, SNS, DynamoDB, EventBridge and S3 Tasks in the embedded engine against moto's server: the
//! optimized integrations' results (with Step Functions' shapes), `aws-sdk:` actions, the
//! services' errors as Step Functions names them (through Catch), a callback whose token
//! travels in an SQS message and is answered by a worker reading the queue, and an `aws-sdk:`
//! service that is not supported failing with `States.Runtime`.

mod common;

use common::{aws_at, output, run};
use std::sync::Arc;

use serde_json::{json, Value};
use wfm_aws_integrations::{register, Api, Aws, HttpPolicy, LocalFunctions};
use wfm_emulators::Emulator;
use wfm_engine::{Engine, EngineConfig};

struct Setup {
    _moto: Emulator,
    aws: Arc<Aws>,
    engine: Engine,
}

fn setup() -> Option<Setup> {
    let moto = Emulator::moto()?;
    let aws = aws_at(&moto.endpoint);
    let engine = Engine::in_memory(EngineConfig::default(), None).expect("engine");
    register(
        &engine,
        aws.clone(),
        LocalFunctions::default(),
        HttpPolicy::default(),
    );
    Some(Setup {
        _moto: moto,
        aws,
        engine,
    })
}

async fn call(aws: &Aws, api: Api, action: &str, parameters: Value) -> Value {
    api.call(aws, action, &parameters)
        .await
        .unwrap_or_else(|e| panic!("{action}: {e}"))
        .0
}

#[tokio::test]
async fn sqs_messages_and_a_callback_through_the_queue() {
    let Some(s) = setup() else { return };
    let queue = call(
        &s.aws,
        Api::Sqs,
        "CreateQueue",
        json!({"QueueName": "tasks"}),
    )
    .await;
    let url = queue["QueueUrl"].as_str().expect("url").to_string();

    let sent = run(
        &s.engine,
        "send",
        json!({"Send": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
            "Parameters": {"QueueUrl": url, "MessageBody": {"hello.$": "$.who"}}, "End": true}}),
        json!({"who": "world"}),
    )
    .await;
    let out = output(&sent);
    assert!(out["MessageId"].is_string(), "{out}");
    assert!(out["MD5OfMessageBody"].is_string(), "{out}");
    assert_eq!(out["SdkHttpMetadata"]["HttpStatusCode"], json!(200));
    let got = call(
        &s.aws,
        Api::Sqs,
        "ReceiveMessage",
        json!({"QueueUrl": url, "WaitTimeSeconds": 1}),
    )
    .await;
    assert_eq!(got["Messages"][0]["Body"], json!(r#"{"hello":"world"}"#));
    call(
        &s.aws,
        Api::Sqs,
        "DeleteMessage",
        json!({"QueueUrl": url, "ReceiptHandle": got["Messages"][0]["ReceiptHandle"]}),
    )
    .await;

    // A worker reads the queue and answers the token it finds in the message.
    let worker = {
        let (aws, engine, url) = (s.aws.clone(), s.engine.clone(), url.clone());
        tokio::spawn(async move {
            loop {
                let got = call(
                    &aws,
                    Api::Sqs,
                    "ReceiveMessage",
                    json!({"QueueUrl": url, "WaitTimeSeconds": 1}),
                )
                .await;
                let Some(m) = got["Messages"].get(0) else {
                    continue;
                };
                let body: Value =
                    serde_json::from_str(m["Body"].as_str().unwrap_or("{}")).expect("body");
                let token = body["token"].as_str().expect("token");
                engine
                    .send_task_success(token, &json!({"seen": body["n"]}).to_string())
                    .await
                    .expect("answer");
                return;
            }
        })
    };
    let called_back = run(
        &s.engine,
        "callback",
        json!({"Ask": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {"QueueUrl": url,
                           "MessageBody": {"token.$": "$$.Task.Token", "n.$": "$.n"}},
            "HeartbeatSeconds": 60, "End": true}}),
        json!({"n": 5}),
    )
    .await;
    worker.await.expect("worker");
    assert_eq!(output(&called_back), json!({"seen": 5}));

    let missing = run(
        &s.engine,
        "missing-queue",
        json!({"Send": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
            "Parameters": {"QueueUrl": "http://127.0.0.1:1/123456789012/nope", "MessageBody": "x"},
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}], "End": true},
               "Caught": {"Type": "Pass", "End": true}}),
        json!({}),
    )
    .await;
    let caught = output(&missing);
    assert!(
        caught["Error"]
            .as_str()
            .is_some_and(|e| e.starts_with("SQS.")),
        "{caught}"
    );
}

#[tokio::test]
async fn dynamodb_items_through_the_optimized_and_sdk_integrations() {
    let Some(s) = setup() else { return };
    call(
        &s.aws,
        Api::DynamoDb,
        "CreateTable",
        json!({"TableName": "things", "BillingMode": "PAY_PER_REQUEST",
               "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
               "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}]}),
    )
    .await;
    let ddb = |action: &str| format!("arn:aws:states:::dynamodb:{action}");
    let done = run(
        &s.engine,
        "items",
        json!({
            "Put": {"Type": "Task", "Resource": ddb("putItem"), "ResultPath": "$.put",
                    "Parameters": {"TableName": "things", "Item": {"id": {"S.$": "$.id"}, "n": {"N": "1"}}},
                    "Next": "Update"},
            "Update": {"Type": "Task", "Resource": ddb("updateItem"), "ResultPath": "$.update",
                       "Parameters": {"TableName": "things", "Key": {"id": {"S.$": "$.id"}},
                                      "UpdateExpression": "SET n = n + :one",
                                      "ExpressionAttributeValues": {":one": {"N": "1"}},
                                      "ReturnValues": "UPDATED_NEW"},
                       "Next": "Get"},
            "Get": {"Type": "Task", "Resource": ddb("getItem"), "ResultPath": "$.got",
                    "Parameters": {"TableName": "things", "Key": {"id": {"S.$": "$.id"}}},
                    "Next": "SdkGet"},
            "SdkGet": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:dynamodb:getItem",
                       "ResultPath": "$.sdk",
                       "Parameters": {"TableName": "things", "Key": {"id": {"S.$": "$.id"}}},
                       "Next": "Delete"},
            "Delete": {"Type": "Task", "Resource": ddb("deleteItem"), "ResultPath": null,
                       "Parameters": {"TableName": "things", "Key": {"id": {"S.$": "$.id"}}},
                       "Next": "Missing"},
            "Missing": {"Type": "Task", "Resource": ddb("getItem"),
                        "Parameters": {"TableName": "nope", "Key": {"id": {"S": "x"}}},
                        "Catch": [{"ErrorEquals": ["DynamoDB.ResourceNotFoundException"],
                                   "ResultPath": "$.caught", "Next": "Done"}],
                        "End": true},
            "Done": {"Type": "Pass", "End": true}}),
        json!({"id": "a"}),
    )
    .await;
    let out = output(&done);
    assert_eq!(out["update"]["Attributes"], json!({"n": {"N": "2"}}));
    assert_eq!(
        out["got"]["Item"],
        json!({"id": {"S": "a"}, "n": {"N": "2"}})
    );
    assert!(out["got"]["SdkHttpMetadata"].is_object());
    assert_eq!(
        out["sdk"],
        json!({"Item": {"id": {"S": "a"}, "n": {"N": "2"}}})
    );
    assert_eq!(
        out["caught"]["Error"],
        json!("DynamoDB.ResourceNotFoundException")
    );
    assert!(
        out["caught"]["Cause"].as_str().is_some_and(|c| c.contains(
            "(Service: AmazonDynamoDBv2; Status Code: 400; Error Code: ResourceNotFoundException"
        )),
        "{out}"
    );
    let gone = call(
        &s.aws,
        Api::DynamoDb,
        "GetItem",
        json!({"TableName": "things", "Key": {"id": {"S": "a"}}}),
    )
    .await;
    assert!(gone.get("Item").is_none(), "deleted: {gone}");
}

#[tokio::test]
async fn sns_publish_and_eventbridge_put_events() {
    let Some(s) = setup() else { return };
    let topic = call(&s.aws, Api::Sns, "CreateTopic", json!({"Name": "news"})).await;
    let topic_arn = topic["TopicArn"].as_str().expect("arn").to_string();
    let done = run(
        &s.engine,
        "notify",
        json!({
            "Publish": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish", "ResultPath": "$.published",
                        "Parameters": {"TopicArn": topic_arn, "Message": {"text.$": "$.text"},
                                       "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "greeting"}}},
                        "Next": "Topics"},
            "Topics": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:sns:listTopics",
                       "ResultPath": "$.topics", "Parameters": {}, "Next": "Emit"},
            "Emit": {"Type": "Task", "Resource": "arn:aws:states:::events:putEvents", "ResultPath": "$.emitted",
                     "Parameters": {"Entries": [{"Source": "wfm.test", "DetailType": "greeting",
                                                 "Detail": {"text.$": "$.text"}}]},
                     "Next": "NoTopic"},
            "NoTopic": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish",
                        "Parameters": {"TopicArn": "arn:aws:sns:us-east-1:123456789012:nope", "Message": "x"},
                        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.caught", "Next": "Done"}],
                        "Next": "Done"},
            "Done": {"Type": "Pass", "End": true}}),
        json!({"text": "hi"}),
    )
    .await;
    let out = output(&done);
    assert!(out["published"]["MessageId"].is_string(), "{out}");
    assert!(out["topics"]["Topics"]
        .as_array()
        .is_some_and(|t| t.iter().any(|x| x["TopicArn"] == json!(topic_arn))));
    assert_eq!(out["emitted"]["FailedEntryCount"], json!(0));
    assert!(out["emitted"]["Entries"][0]["EventId"].is_string(), "{out}");
    assert!(
        out["caught"]["Error"]
            .as_str()
            .is_some_and(|e| e.starts_with("SNS.")),
        "{out}"
    );
    // An aws-sdk: service that is not supported fails the execution, naming it.
    let unsupported = run(
        &s.engine,
        "unsupported",
        json!({"Glue": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:glue:getJobs",
                      "Parameters": {}, "End": true}}),
        json!({}),
    )
    .await;
    assert_eq!(unsupported.error.as_deref(), Some("States.Runtime"));
    assert!(unsupported.cause.is_some_and(|c| c.contains("'glue'")));
}

#[tokio::test]
async fn s3_objects_through_the_sdk_integration() {
    let Some(s) = setup() else { return };
    let done = run(
        &s.engine,
        "objects",
        json!({
            "Create": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:createBucket",
                       "Parameters": {"Bucket": "data"}, "ResultPath": null, "Next": "Put"},
            "Put": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:putObject",
                    "Parameters": {"Bucket": "data", "Key": "in/a b.json", "Body.$": "$.doc",
                                   "Metadata": {"Owner": "me"}},
                    "ResultPath": "$.put", "Next": "PutText"},
            "PutText": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:putObject",
                        "Parameters": {"Bucket": "data", "Key": "in/b.txt", "Body": "plain text"},
                        "ResultPath": null, "Next": "Get"},
            "Get": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
                    "Parameters": {"Bucket": "data", "Key": "in/a b.json"},
                    "ResultPath": "$.got", "Next": "List"},
            "List": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:listObjectsV2",
                     "Parameters": {"Bucket": "data", "Prefix": "in/"},
                     "ResultPath": "$.listed", "Next": "Delete"},
            "Delete": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:deleteObject",
                       "Parameters": {"Bucket": "data", "Key": "in/b.txt"},
                       "ResultPath": null, "Next": "Missing"},
            "Missing": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:listObjects",
                        "Parameters": {"Bucket": "no-such-bucket"},
                        "Catch": [{"ErrorEquals": ["S3.NoSuchBucketException"],
                                   "ResultPath": "$.caught", "Next": "Done"}],
                        "Next": "Done"},
            "Done": {"Type": "Pass", "End": true}}),
        json!({"doc": ["List", "Data"]}),
    )
    .await;
    let out = output(&done);
    // The body is the JSON text of a non-string value; S3's checksum of it comes back.
    assert_eq!(
        out["put"]["ETag"],
        json!("\"6b23860357f6e63a0272b7f1143a663a\""),
        "{out}"
    );
    assert_eq!(out["put"]["ChecksumCRC32"], json!("1F2MPA=="), "{out}");
    assert_eq!(out["got"]["Body"], json!(r#"["List","Data"]"#), "{out}");
    assert_eq!(out["got"]["ContentLength"], json!(15), "{out}");
    assert_eq!(out["got"]["Metadata"], json!({"owner": "me"}), "{out}");
    assert!(out["got"]["LastModified"].is_string(), "{out}");
    let keys: Vec<&str> = out["listed"]["Contents"]
        .as_array()
        .map(|c| c.iter().filter_map(|o| o["Key"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(keys, ["in/a b.json", "in/b.txt"], "{out}");
    assert_eq!(out["listed"]["KeyCount"], json!(2), "{out}");
    assert_eq!(out["listed"]["IsTruncated"], json!(false), "{out}");
    assert_eq!(out["listed"]["Contents"][1]["Size"], json!(10), "{out}");
    assert_eq!(
        out["caught"]["Error"],
        json!("S3.NoSuchBucketException"),
        "{out}"
    );
    assert!(
        out["caught"]["Cause"]
            .as_str()
            .is_some_and(|c| c.contains("(Service: S3, Status Code: 404, Request ID: ")),
        "{out}"
    );
    // The deleted object is gone.
    let after = run(
        &s.engine,
        "after",
        json!({"List": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:listObjectsV2",
                        "Parameters": {"Bucket": "data"}, "End": true}}),
        json!({}),
    )
    .await;
    assert_eq!(output(&after)["KeyCount"], json!(1));
    // An S3 action that is not carried out fails the execution (States.Runtime), naming it.
    let refused = run(
        &s.engine,
        "refused",
        json!({"Restore": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:restoreObject",
                           "Parameters": {"Bucket": "data", "Key": "x"}, "End": true}}),
        json!({}),
    )
    .await;
    assert_eq!(refused.error.as_deref(), Some("States.Runtime"));
    assert!(refused.cause.is_some_and(|c| c.contains("'restoreObject'")));
}

#[tokio::test]
async fn a_distributed_map_reads_its_items_from_s3_and_writes_its_results_there() {
    let Some(s) = setup() else { return };
    let done = run(
        &s.engine,
        "fanout",
        json!({
            "Create": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:createBucket",
                       "Parameters": {"Bucket": "fan"}, "ResultPath": null, "Next": "Put"},
            "Put": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:putObject",
                    "Parameters": {"Bucket": "fan", "Key": "rows.csv",
                                   "Body": "id,qty\na,1\nb,2\nc,3\n"},
                    "ResultPath": null, "Next": "Fan"},
            "Fan": {"Type": "Map", "Label": "Rows", "MaxConcurrency": 2,
                    "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                                   "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
                                   "Parameters": {"Bucket": "fan", "Key": "rows.csv"}},
                    "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                                      "StartAt": "Row", "States": {"Row": {"Type": "Pass", "End": true}}},
                    "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
                                     "Parameters": {"Bucket": "fan", "Prefix": "results"}},
                    "Next": "Manifest"},
            "Manifest": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
                         "Parameters": {"Bucket.$": "$.ResultWriterDetails.Bucket",
                                        "Key.$": "$.ResultWriterDetails.Key"},
                         "ResultSelector": {"manifest.$": "States.StringToJson($.Body)"},
                         "End": true}}),
        json!({}),
    )
    .await;
    let out = output(&done);
    let manifest = &out["manifest"];
    assert_eq!(manifest["DestinationBucket"], json!("fan"), "{out}");
    let results_key = manifest["ResultFiles"]["SUCCEEDED"][0]["Key"]
        .as_str()
        .expect("a results file")
        .to_string();
    let results = call_s3_get(&s, &results_key).await;
    let outputs: Vec<Value> = serde_json::from_str::<Value>(&results)
        .expect("json")
        .as_array()
        .expect("array")
        .iter()
        .map(|r| serde_json::from_str(r["Output"].as_str().unwrap_or("null")).expect("json"))
        .collect();
    assert_eq!(
        outputs,
        vec![
            json!({"id": "a", "qty": "1"}),
            json!({"id": "b", "qty": "2"}),
            json!({"id": "c", "qty": "3"})
        ]
    );
}

/// An object's body, through the engine's own S3 integration.
async fn call_s3_get(s: &Setup, key: &str) -> String {
    let got = run(
        &s.engine,
        &format!("get-{}", key.len()),
        json!({"Get": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
                       "Parameters": {"Bucket": "fan", "Key": key}, "End": true}}),
        json!({}),
    )
    .await;
    output(&got)["Body"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn a_distributed_map_over_100000_csv_rows_runs_every_row_once_in_batches() {
    let Some(s) = setup() else { return };
    let mut csv = String::from("id,qty\n");
    for i in 0..100_000 {
        csv.push_str(&format!("{i},{}\n", i % 7));
    }
    // The object is larger than an execution's input may be: it is put directly.
    let s3 = wfm_aws_integrations::S3Integration::new(s.aws.clone());
    for (action, parameters) in [
        ("createBucket", json!({"Bucket": "rows"})),
        (
            "putObject",
            json!({"Bucket": "rows", "Key": "rows.csv", "Body": csv}),
        ),
    ] {
        wfm_engine::integrations::ServiceIntegration::submit(
            &s3,
            &format!("arn:aws:states:::aws-sdk:s3:{action}"),
            &parameters,
        )
        .await
        .unwrap_or_else(|f| panic!("{action}: {}: {}", f.error, f.cause));
    }
    let done = run(
        &s.engine,
        "hundred-thousand",
        json!({"Fan": {"Type": "Map", "End": true, "MaxConcurrency": 1000,
            "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                           "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
                           "Parameters": {"Bucket": "rows", "Key": "rows.csv"}},
            "ItemBatcher": {"MaxItemsPerBatch": 100},
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                              "StartAt": "Row", "States": {"Row": {"Type": "Pass", "End": true}}},
            "ResultSelector": {"batches.$": "States.ArrayLength($)",
                               "first.$": "$[0].Items[0]", "last.$": "$[999].Items[99]"}}}),
        json!({}),
    )
    .await;
    assert_eq!(
        output(&done),
        json!({"batches": 1000, "first": {"id": "0", "qty": "0"},
               "last": {"id": "99999", "qty": "4"}})
    );
}
