//! The server's scheduling, exactly: the real server in this process on
//! in-memory streams, with a scripted engine whose every load, generated
//! piece and scoring call waits for the test (tests/scripted). Each test
//! says what happens in which order and checks the answers and counters
//! that follow; nothing sleeps and the clock is tokio's paused one.

mod scripted;

use scripted::{Action, Call, Client, Script, items, ready, start};
use serde_json::{Value, json};

const PY: &str = "file:///work/project/app.py";
const OTHER: &str = "file:///work/project/other.py";

/// Line 2 ends in `value = `: a single-line completion there.
const APP: &str = "import os\n\nvalue = \n";

fn client_caps() -> Value {
    json!({"window": {"workDoneProgress": true}})
}

/// No debounce on automatic triggers, no other files in prompts.
fn plain() -> Value {
    json!({"nib": {"debounceMs": 0, "contextFiles": 0}})
}

async fn stats(client: &mut Client) -> Value {
    client.status_after().await["stats"].clone()
}

/// Lets a generation that just started produce `text` and end.
async fn answer(script: &mut Script, text: &str) {
    script.expect_generate().await;
    assert!(script.piece(text).await);
    script.act(Action::End);
}

#[tokio::test(start_paused = true)]
async fn requests_before_the_model_is_ready_are_empty_then_it_loads_with_progress() {
    let (mut client, mut script) = start("loading", client_caps(), plain()).await;
    script.expect(Call::Load { model: None }).await;
    assert_eq!(client.status().await["state"], "loading");
    client.open(PY, "python", APP).await;
    let id = client.inline_request(PY, 2, 8, false).await;
    let early = client.response(id).await;
    assert!(early.get("error").is_none(), "{early}");
    assert!(items(&early).is_empty(), "{early}");
    assert_eq!(stats(&mut client).await["notReady"], 1);

    script.act(Action::Load(Ok(())));
    let end = client
        .notification(|n| n["method"] == "$/progress" && n["params"]["value"]["kind"] == "end")
        .await;
    let begin = client
        .notification(|n| n["method"] == "$/progress" && n["params"]["value"]["kind"] == "begin")
        .await;
    assert_eq!(begin["params"]["token"], end["params"]["token"]);
    let created: Vec<Value> = client.server_requests.lock().expect("lock").clone();
    assert!(
        created
            .iter()
            .any(|r| r["method"] == "window/workDoneProgress/create"
                && r["params"]["token"] == begin["params"]["token"]),
        "{created:?}"
    );
    client.wait_ready().await;

    let id = client.inline_request(PY, 2, 8, false).await;
    answer(&mut script, "os.getcwd()").await;
    let items = items(&client.response(id).await);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["insertText"], "os.getcwd()");
    assert_eq!(
        items[0]["range"],
        json!({"start": {"line": 2, "character": 8}, "end": {"line": 2, "character": 8}})
    );
    let stats = stats(&mut client).await;
    assert_eq!(stats["completed"], 1, "{stats}");
    assert_eq!(stats["shown"], 1, "{stats}");
    assert_eq!(client.shutdown_and_exit().await, 0);
}

#[tokio::test(start_paused = true)]
async fn a_failed_load_is_an_error_state_with_one_message_and_a_new_model_loads() {
    let (mut client, mut script) = start("failed load", client_caps(), plain()).await;
    script.expect(Call::Load { model: None }).await;
    script.act(Action::Load(Err("the graph is broken".into())));
    let shown = client
        .notification(|n| n["method"] == "window/showMessage")
        .await;
    assert_eq!(shown["params"]["type"], 1, "an error: {shown}");
    assert!(
        shown["params"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("the graph is broken")),
        "{shown}"
    );
    let status = client.status().await;
    assert_eq!(status["state"], "error");
    client.open(PY, "python", APP).await;
    let id = client.inline_request(PY, 2, 8, false).await;
    assert!(items(&client.response(id).await).is_empty());

    // The same failure again is logged, not shown a second time.
    let logged = |n: &Value| {
        n["method"] == "window/logMessage"
            && n["params"]["type"] == 1
            && n["params"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("broken"))
    };
    client.notification(logged).await;
    let from = client.notifications.len();
    client.configure(json!({"nib": {"device": "cpu"}})).await;
    script.expect(Call::Load { model: None }).await;
    script.act(Action::Load(Err("the graph is broken".into())));
    client.notification_after(from, logged).await;
    let shown = client
        .notifications
        .iter()
        .filter(|n| n["method"] == "window/showMessage")
        .count();
    assert_eq!(shown, 1);

    // Another model (a folder that exists) replaces it.
    let other = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/gpt2");
    client.configure(json!({"nib": {"model": other}})).await;
    script
        .expect(Call::Load {
            model: Some(other.clone()),
        })
        .await;
    script.act(Action::Load(Ok(())));
    let status = client.wait_ready().await;
    assert_eq!(status["model"], other.display().to_string());
    assert_eq!(client.shutdown_and_exit().await, 0);
}

#[tokio::test(start_paused = true)]
async fn a_model_changed_on_disk_is_reloaded_and_a_broken_one_keeps_the_loaded_copy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let graph = dir.path().join("model.onnx");
    // Whole files at once (the worker may look at any moment), dated a
    // minute back: the worker reloads only files that have settled.
    let replace = |text: &str| {
        let tmp = dir.path().join("model.tmp");
        std::fs::write(&tmp, text).expect("write");
        let back = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&tmp)
            .and_then(|f| f.set_modified(back))
            .expect("set mtime");
        std::fs::rename(&tmp, &graph).expect("rename");
    };
    replace("first");
    let settings = json!({"nib": {"debounceMs": 0, "contextFiles": 0, "model": dir.path()}});
    let (mut client, mut script) = start("changed model", client_caps(), settings).await;
    let load = Call::Load {
        model: Some(dir.path().to_path_buf()),
    };
    script.expect(load.clone()).await;
    script.act(Action::Load(Ok(())));
    client.wait_ready().await;
    client.open(PY, "python", APP).await;

    replace("second, longer");
    let from = client.notifications.len();
    let id = client.inline_request(PY, 2, 8, false).await;
    script.expect(load.clone()).await;
    script.act(Action::Load(Ok(())));
    answer(&mut script, "1").await;
    assert_eq!(items(&client.response(id).await).len(), 1);
    client
        .notification_after(from, |n| {
            n["method"] == "window/logMessage"
                && n["params"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("changed on disk"))
        })
        .await;

    // Half-written files do not load: the copy read earlier answers.
    replace("thi");
    let id = client.inline_request(PY, 2, 8, false).await;
    script.expect(load.clone()).await;
    script.act(Action::Load(Err("truncated".into())));
    answer(&mut script, "2").await;
    assert_eq!(items(&client.response(id).await).len(), 1);
    let shown = client
        .notification(|n| n["method"] == "window/showMessage")
        .await;
    assert_eq!(shown["params"]["type"], 2, "a warning: {shown}");
    let status = client.status().await;
    assert_eq!(status["state"], "ready", "{status}");
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("truncated") && m.contains("still serving")),
        "{status}"
    );
    // Nothing changed since the failed attempt: no new load.
    let id = client.inline_request(PY, 2, 8, false).await;
    answer(&mut script, "3").await;
    assert_eq!(items(&client.response(id).await).len(), 1);
    assert_eq!(client.shutdown_and_exit().await, 0);
}

#[tokio::test(start_paused = true)]
async fn cancel_request_stops_the_running_job_at_its_next_piece() {
    let (mut client, mut script) = ready("cancel", client_caps(), plain()).await;
    client.open(PY, "python", APP).await;
    let id = client.inline_request(PY, 2, 8, false).await;
    script.expect_generate().await;
    assert!(script.piece("os").await);
    client.notify("$/cancelRequest", json!({"id": id})).await;
    let response = client.response(id).await;
    assert_eq!(response["error"]["code"], -32800, "{response}");
    // The request's cancel token fired when its handler was dropped.
    assert!(!script.piece(".getcwd()").await);

    // The worker is free for the next request.
    let next = client.inline_request(PY, 2, 8, false).await;
    answer(&mut script, "1").await;
    assert_eq!(items(&client.response(next).await).len(), 1);
    let stats = stats(&mut client).await;
    assert_eq!(stats["interrupted"], 1, "{stats}");
    assert_eq!(stats["completed"], 1, "{stats}");
    assert!(stats["wastedTokens"].as_u64() > Some(0), "{stats}");
    assert_eq!(client.shutdown_and_exit().await, 0);
}

#[tokio::test(start_paused = true)]
async fn an_edit_stops_the_running_completion_and_publishes_nothing() {
    let (mut client, mut script) = ready("edit", client_caps(), plain()).await;
    client.open(PY, "python", APP).await;
    let id = client.inline_request(PY, 2, 8, false).await;
    script.expect_generate().await;
    client
        .change(
            PY,
            2,
            json!([{"range": {"start": {"line": 2, "character": 8}, "end": {"line": 2, "character": 8}}, "text": "4"}]),
        )
        .await;
    client.barrier().await;
    assert!(!script.piece("os").await);
    let response = client.response(id).await;
    assert!(items(&response).is_empty(), "{response}");
    let stats = stats(&mut client).await;
    assert_eq!(stats["interrupted"], 1, "{stats}");
    assert_eq!(client.shutdown_and_exit().await, 0);
}

#[tokio::test(start_paused = true)]
async fn a_newer_request_stops_a_running_one_and_replaces_a_queued_one() {
    let (mut client, mut script) = ready("newer", client_caps(), plain()).await;
    client.open(PY, "python", APP).await;
    client.open(OTHER, "python", APP).await;

    // Running: the newer request of the document stops it.
    let first = client.inline_request(PY, 2, 8, false).await;
    script.expect_generate().await;
    let second = client.inline_request(PY, 2, 8, false).await;
    client.barrier().await;
    assert!(!script.piece("os").await);
    answer(&mut script, "2").await;
    assert!(items(&client.response(first).await).is_empty());
    assert_eq!(items(&client.response(second).await).len(), 1);

    // Queued behind another document's job: the newer one takes its place
    // and the older is answered at once, while the worker is still busy.
    let busy = client.inline_request(OTHER, 2, 8, false).await;
    script.expect_generate().await;
    let queued = client.inline_request(PY, 2, 8, false).await;
    let newer = client.inline_request(PY, 2, 8, false).await;
    let replaced = client.response(queued).await;
    assert!(items(&replaced).is_empty(), "{replaced}");
    assert!(script.piece("3").await);
    script.act(Action::End);
    answer(&mut script, "4").await;
    assert_eq!(items(&client.response(busy).await).len(), 1);
    let newer = items(&client.response(newer).await);
    assert_eq!(newer[0]["insertText"], "4");
    let stats = stats(&mut client).await;
    assert_eq!(stats["superseded"], 1, "{stats}");
    assert_eq!(stats["interrupted"], 1, "{stats}");
    assert_eq!(stats["completed"], 3, "{stats}");
    assert_eq!(client.shutdown_and_exit().await, 0);
}

#[tokio::test(start_paused = true)]
async fn automatic_triggers_are_debounced_and_only_the_last_runs() {
    let (mut client, mut script) = ready(
        "debounce",
        client_caps(),
        json!({"nib": {"debounceMs": 300, "contextFiles": 0}}),
    )
    .await;
    client.open(PY, "python", APP).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(client.inline_request(PY, 2, 8, true).await);
    }
    answer(&mut script, "5").await;
    let mut answered = Vec::new();
    for id in ids {
        answered.push(items(&client.response(id).await).len());
    }
    assert_eq!(answered, [0, 0, 0, 0, 1]);
    let stats = stats(&mut client).await;
    assert_eq!(stats["debounced"], 4, "{stats}");
    assert_eq!(stats["completed"], 1, "{stats}");

    // Invoked requests do not wait.
    let id = client.inline_request(PY, 2, 8, false).await;
    answer(&mut script, "6").await;
    assert_eq!(items(&client.response(id).await).len(), 1);
    assert_eq!(client.shutdown_and_exit().await, 0);
}

/// Twelve candidate places (`==`), one per line.
fn many_sites() -> String {
    (0..12).map(|i| format!("x{i} = a == b\n")).collect()
}

fn every_site() -> Value {
    json!({"nib": {"review": {"minConfidence": 0}, "debounceMs": 0, "contextFiles": 0}})
}

/// Opens PY with twelve places and asks for its review with the command;
/// returns once that review is the one running, waiting on its first place.
async fn review_running(client: &mut Client, script: &mut Script) -> i64 {
    client.open(PY, "python", &many_sites()).await;
    // The open's own review starts; the command's replaces it.
    assert!(matches!(script.next().await, Call::Score { .. }));
    let id = client.review_request(PY).await;
    client.barrier().await;
    script.act(Action::Scores {
        written: 0.0,
        others: 0.0,
    });
    assert!(matches!(script.next().await, Call::Score { .. }));
    let review = client.status_after().await["review"].clone();
    assert_eq!(review["superseded"], 1, "{review}");
    assert_eq!(review["running"], true, "{review}");
    id
}

#[tokio::test(start_paused = true)]
async fn a_completion_pauses_a_review_which_starts_over_after_it() {
    let (mut client, mut script) = ready("preempt", client_caps(), every_site()).await;
    client.open(OTHER, "python", APP).await;
    let review_id = review_running(&mut client, &mut script).await;
    script.act(Action::Scores {
        written: 0.0,
        others: 0.0,
    });
    script.score(2, 0.0, 0.0).await;
    // Three places scored; the fourth waits. A completion comes.
    assert!(matches!(script.next().await, Call::Score { .. }));
    let completion = client.inline_request(OTHER, 2, 8, false).await;
    client.barrier().await;
    script.act(Action::Scores {
        written: 0.0,
        others: 0.0,
    });
    // The review stops before its fifth place; the completion runs.
    answer(&mut script, "7").await;
    assert_eq!(items(&client.response(completion).await).len(), 1);
    client.drain();
    assert!(!client.has_response(review_id), "the review ended first");
    // The review starts over and publishes all twelve places.
    script.score(12, 0.0, 0.0).await;
    let review = client.response(review_id).await;
    assert_eq!(review["result"]["state"], "published", "{review}");
    assert_eq!(review["result"]["findings"], 12, "{review}");
    let published = client
        .notification(|n| {
            n["method"] == "textDocument/publishDiagnostics"
                && n["params"]["uri"] == PY
                && n["params"]["diagnostics"] != json!([])
        })
        .await;
    assert_eq!(
        published["params"]["diagnostics"].as_array().map(Vec::len),
        Some(12)
    );
    let stats = client.status_after().await["review"].clone();
    assert_eq!(stats["preempted"], 1, "{stats}");
    // OTHER's review (no places) and PY's, after the open's was replaced.
    assert_eq!(stats["completed"], 2, "{stats}");
    assert_eq!(stats["requested"], 3, "{stats}");
    assert_eq!(client.shutdown_and_exit().await, 0);
}

#[tokio::test(start_paused = true)]
async fn an_edit_during_a_review_stops_it_and_publishes_nothing_stale() {
    let (mut client, mut script) = ready("stale review", client_caps(), every_site()).await;
    let review_id = review_running(&mut client, &mut script).await;
    client
        .change(
            PY,
            2,
            json!([{"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "text": "\n"}]),
        )
        .await;
    client.barrier().await;
    script.act(Action::Scores {
        written: 0.0,
        others: 0.0,
    });
    let review = client.response(review_id).await;
    assert_eq!(review["result"]["state"], "superseded", "{review}");
    client.barrier().await;
    client.drain();
    assert!(
        !client
            .notifications
            .iter()
            .any(|n| n["method"] == "textDocument/publishDiagnostics"),
        "{:#?}",
        client.notifications
    );
    assert_eq!(client.shutdown_and_exit().await, 0);
}

#[tokio::test(start_paused = true)]
async fn reviews_of_many_opened_documents_do_not_hold_up_a_completion() {
    let (mut client, mut script) = ready("many reviews", client_caps(), every_site()).await;
    // More documents than the server runs handlers at once (64): each open
    // queues a review and returns, or the completion would queue behind them.
    for i in 0..100 {
        client
            .open(
                &format!("file:///work/project/m{i}.py"),
                "python",
                "x = a == b\n",
            )
            .await;
    }
    assert!(matches!(script.next().await, Call::Score { .. }));
    client.open(OTHER, "python", APP).await;
    let id = client.inline_request(OTHER, 2, 8, false).await;
    let review = client.status_after().await["review"].clone();
    // The other 99 documents' reviews and OTHER's.
    assert_eq!(review["queued"], 100, "{review}");
    assert_eq!(review["preempted"], 1, "{review}");
    // The running review had one place: it ends with it, and the completion runs next.
    script.act(Action::Scores {
        written: 0.0,
        others: 0.0,
    });
    answer(&mut script, "8").await;
    assert_eq!(items(&client.response(id).await).len(), 1);
    assert_eq!(client.shutdown_and_exit().await, 0);
}

#[tokio::test(start_paused = true)]
async fn documents_opened_while_the_model_loads_are_reviewed_once_it_is_ready() {
    let (mut client, mut script) = start("review after load", client_caps(), every_site()).await;
    script.expect(Call::Load { model: None }).await;
    client.open(PY, "python", "ok = a == b\n").await;
    client.barrier().await;
    script.act(Action::Load(Ok(())));
    script.score(1, 0.0, 0.0).await;
    let published = client
        .notification(|n| n["method"] == "textDocument/publishDiagnostics")
        .await;
    assert_eq!(published["params"]["uri"], PY);
    let diagnostics = published["params"]["diagnostics"].as_array().cloned();
    assert_eq!(diagnostics.map(|d| d.len()), Some(1));
    assert_eq!(client.shutdown_and_exit().await, 0);
}

#[tokio::test(start_paused = true)]
async fn a_failing_engine_answers_empty_and_keeps_serving() {
    let (mut client, mut script) = ready("failure", client_caps(), plain()).await;
    client.open(PY, "python", APP).await;
    let id = client.inline_request(PY, 2, 8, false).await;
    script.expect_generate().await;
    script.act(Action::Fail("out of memory".into()));
    let response = client.response(id).await;
    assert!(response.get("error").is_none(), "{response}");
    assert!(items(&response).is_empty());
    let shown = client
        .notification(|n| n["method"] == "window/showMessage")
        .await;
    assert!(
        shown["params"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("out of memory")),
        "the user is told why: {shown}"
    );
    let id = client.inline_request(PY, 2, 8, false).await;
    answer(&mut script, "9").await;
    assert_eq!(items(&client.response(id).await).len(), 1);
    let status = client.status().await;
    assert_eq!(status["state"], "ready", "{status}");
    assert_eq!(status["stats"]["failed"], 1, "{status}");
    assert_eq!(client.shutdown_and_exit().await, 0);
}

#[tokio::test(start_paused = true)]
async fn a_background_review_gives_way_to_the_same_review_under_way() {
    let (mut client, mut script) = ready("same review", client_caps(), every_site()).await;
    let review_id = review_running(&mut client, &mut script).await;
    // A save of the unchanged document asks for the same review again.
    client
        .notify("textDocument/didSave", json!({"textDocument": {"uri": PY}}))
        .await;
    let review = client.status_after().await["review"].clone();
    assert_eq!(review["superseded"], 2, "the save's review: {review}");
    assert_eq!(review["queued"], 0, "{review}");
    script.act(Action::Scores {
        written: 0.0,
        others: 0.0,
    });
    script.score(11, 0.0, 0.0).await;
    let review = client.response(review_id).await;
    assert_eq!(review["result"]["state"], "published", "{review}");
    assert_eq!(review["result"]["findings"], 12, "{review}");
    assert_eq!(client.shutdown_and_exit().await, 0);
}

#[tokio::test(start_paused = true)]
async fn cancel_and_status_pass_requests_that_fill_every_handler() {
    let (mut client, mut script) = ready("fast path", client_caps(), plain()).await;
    let uri = |i: usize| format!("file:///work/project/f{i}.py");
    for i in 0..80 {
        client.open(&uri(i), "python", APP).await;
    }
    let first = client.inline_request(&uri(0), 2, 8, false).await;
    script.expect_generate().await;
    // More requests than the service runs handlers at once (64): the ones
    // after them wait in its queue, and so would a cancel behind them.
    let mut rest = Vec::new();
    for i in 1..80 {
        rest.push(client.inline_request(&uri(i), 2, 8, false).await);
    }
    client.notify("$/cancelRequest", json!({"id": first})).await;
    // Answered by the transport, which read the cancel before it.
    let status = client.status().await;
    assert_eq!(status["state"], "ready");
    assert!(
        !script.piece("os").await,
        "the cancel did not reach the job"
    );
    for _ in 1..80 {
        answer(&mut script, "1").await;
    }
    // Every answer, so that the worker has counted every job.
    for id in rest {
        assert_eq!(items(&client.response(id).await).len(), 1);
    }
    // Answered empty once its job stopped (or RequestCancelled, had the
    // service reached the cancel first).
    let response = client.response(first).await;
    assert!(
        items(&response).is_empty()
            && (response.get("error").is_none() || response["error"]["code"] == -32800),
        "{response}"
    );
    let stats = stats(&mut client).await;
    assert_eq!(stats["interrupted"], 1, "{stats}");
    assert_eq!(stats["completed"], 79, "{stats}");
    assert_eq!(client.shutdown_and_exit().await, 0);
}

#[tokio::test(start_paused = true)]
async fn malformed_input_gets_errors_and_the_session_goes_on() {
    let (mut client, mut script) = ready("malformed", client_caps(), plain()).await;
    let raw = |body: &str| format!("Content-Length: {}\r\n\r\n{body}", body.len());
    for bytes in [
        raw("{not json"),
        raw("[1, 2]"),
        raw(r#"{"jsonrpc":"1.0","id":1000,"method":"nib/status"}"#),
        "Content-Length: nine\r\n\r\n{}".to_owned(),
        "content-length: 2\r\n\r\n{}".to_owned(),
        "garbage before a frame\r\n".to_owned(),
        raw(r#"{"jsonrpc":"2.0","id":1001,"method":"$/nib.secret"}"#),
    ] {
        client.send_raw(bytes.as_bytes()).await;
    }
    client.open(PY, "python", APP).await;
    let id = client.inline_request(PY, 2, 8, false).await;
    answer(&mut script, "os").await;
    assert_eq!(items(&client.response(id).await).len(), 1);
    let errors: Vec<(Value, Value)> = {
        client.drain();
        let mut e = Vec::new();
        for wanted in [1000, 1001] {
            let r = client.response(wanted).await;
            e.push((r["id"].clone(), r["error"]["code"].clone()));
        }
        e
    };
    assert_eq!(
        errors,
        [(json!(1000), json!(-32600)), (json!(1001), json!(-32601))]
    );
    assert_eq!(client.shutdown_and_exit().await, 0);
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_one_request_fails_it_and_keeps_the_model() {
    let (mut client, mut script) = ready("panic", client_caps(), plain()).await;
    client.open(PY, "python", APP).await;
    let id = client.inline_request(PY, 2, 8, false).await;
    script.expect_generate().await;
    script.act(Action::Panic);
    script.expect(Call::Reset).await;
    let response = client.response(id).await;
    assert!(items(&response).is_empty(), "{response}");
    let id = client.inline_request(PY, 2, 8, false).await;
    answer(&mut script, "x").await;
    assert_eq!(items(&client.response(id).await).len(), 1);
    let status = client.status_after().await;
    assert_eq!(status["state"], "ready", "{status}");
    assert_eq!(status["stats"]["failed"], 1, "{status}");
    assert_eq!(client.shutdown_and_exit().await, 0);
}
