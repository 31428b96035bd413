//! The OpenAI-style `/v1/completions` API as nib uses it: request bodies
//! for generation (streamed) and scoring (the prompt echoed with its
//! log-probabilities), and the answers read back.

use serde_json::{Value, json};

use super::http::Client;
use super::{Api, RemoteError, RemoteSettings};
use crate::engine::{FinishReason, InfillRequest, SamplingParams};

/// A piece of a streamed answer.
#[derive(Debug)]
pub enum Streamed {
    Text(String),
    Finished(FinishReason),
    Failed(RemoteError),
}

/// What every request carries: the model, the prompt (text, special
/// tokens written out: servers that take token ids do not all agree on
/// how), and for llama.cpp's samplers the settings that make them sample
/// from the model's distribution as nib does (their defaults penalise
/// repeats and cut the tail).
fn common(settings: &RemoteSettings, prompt: Option<&str>) -> serde_json::Map<String, Value> {
    let mut body = serde_json::Map::new();
    if let Some(model) = &settings.model {
        body.insert("model".into(), json!(model));
    }
    if let Some(prompt) = prompt {
        body.insert("prompt".into(), json!(prompt));
    }
    if settings.api == Api::LlamaCpp {
        body.insert("repeat_penalty".into(), json!(1.0));
        body.insert("min_p".into(), json!(0.0));
        body.insert("top_k".into(), json!(0));
        body.insert("top_p".into(), json!(1.0));
        // Keep the prompt's keys and values for the next request, which
        // usually extends it (typing) or shares its start (review).
        body.insert("cache_prompt".into(), json!(true));
    }
    body
}

/// Greedy, or the sampler's settings (over the llama.cpp API's neutral ones).
fn insert_sampling(body: &mut serde_json::Map<String, Value>, sampling: &SamplingParams) {
    if sampling.is_greedy() {
        body.insert("temperature".into(), json!(0.0));
    } else {
        body.insert("temperature".into(), json!(sampling.temperature));
        body.insert("top_p".into(), json!(sampling.top_p));
        body.insert("seed".into(), json!(sampling.seed));
        if sampling.top_k > 0 {
            body.insert("top_k".into(), json!(sampling.top_k));
        }
    }
}

pub fn generate_body(
    settings: &RemoteSettings,
    prompt: &str,
    max_tokens: usize,
    sampling: &SamplingParams,
    stops: &[String],
    ignore_eos: bool,
) -> Value {
    let mut body = common(settings, Some(prompt));
    body.insert("max_tokens".into(), json!(max_tokens));
    body.insert("stream".into(), json!(true));
    insert_sampling(&mut body, sampling);
    if !stops.is_empty() {
        body.insert("stop".into(), json!(stops));
    }
    if ignore_eos && settings.api == Api::LlamaCpp {
        body.insert("ignore_eos".into(), json!(true));
    }
    Value::Object(body)
}

/// llama.cpp's `/infill`: the server lays out the FIM prompt with its own
/// tokens (`input_extra` files first, then prefix, suffix, middle).
pub fn infill_body(settings: &RemoteSettings, request: &InfillRequest<'_>) -> Value {
    let mut body = common(settings, None);
    body.insert("input_prefix".into(), json!(request.prefix));
    body.insert("input_suffix".into(), json!(request.suffix));
    body.insert(
        "input_extra".into(),
        json!(
            request
                .extra
                .iter()
                .map(|s| json!({"filename": s.path, "text": s.text}))
                .collect::<Vec<_>>()
        ),
    );
    body.insert("n_predict".into(), json!(request.max_tokens));
    body.insert("stream".into(), json!(true));
    insert_sampling(&mut body, &request.sampling);
    Value::Object(body)
}

/// Asks for the prompt back with each token's log-probability and one
/// token after it (some servers read `max_tokens: 0` as "no limit").
pub fn score_body(settings: &RemoteSettings, prompt: &str) -> Value {
    let mut body = common(settings, Some(prompt));
    body.insert("max_tokens".into(), json!(1));
    body.insert("echo".into(), json!(true));
    body.insert("logprobs".into(), json!(1));
    body.insert("temperature".into(), json!(0.0));
    Value::Object(body)
}

/// Streams `body`'s answer to `sink` until it ends, fails, or `sink`
/// returns false.
pub fn stream(client: &Client, path: &str, body: &Value, mut sink: impl FnMut(Streamed) -> bool) {
    let mut events = match client.post_events(path, body) {
        Ok(events) => events,
        Err(e) => {
            sink(Streamed::Failed(e));
            return;
        }
    };
    loop {
        let payload = match events.next_payload() {
            Ok(Some(payload)) => payload,
            Ok(None) => {
                sink(Streamed::Finished(FinishReason::Eos));
                return;
            }
            Err(e) => {
                sink(Streamed::Failed(e));
                return;
            }
        };
        for event in read_event(&payload, client.base()) {
            let last = !matches!(event, Streamed::Text(_));
            if !sink(event) || last {
                return;
            }
        }
    }
}

/// One streamed chunk: its text, then how it finished (when it says).
fn read_event(payload: &Value, url: &str) -> Vec<Streamed> {
    if let Some(error) = payload.get("error") {
        let reason = error
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| error.to_string(), str::to_owned);
        return vec![Streamed::Failed(RemoteError::BadResponse {
            url: url.to_owned(),
            message: reason,
        })];
    }
    let Some(choice) = payload.pointer("/choices/0") else {
        return native_event(payload);
    };
    let mut out = Vec::new();
    match choice.get("text") {
        Some(Value::String(text)) if !text.is_empty() => out.push(Streamed::Text(text.clone())),
        Some(Value::String(_) | Value::Null) | None => {}
        Some(other) => {
            return vec![Streamed::Failed(RemoteError::BadResponse {
                url: url.to_owned(),
                message: format!("`text` is {other}, not a string"),
            })];
        }
    }
    if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
        out.push(Streamed::Finished(match reason {
            "length" => FinishReason::MaxTokens,
            // "stop": EOS or a stop string, which nib cuts itself.
            _ => FinishReason::Eos,
        }));
    }
    out
}

/// A chunk in llama.cpp's own format (`/infill`, `/completion`):
/// `{"content": …, "stop": bool, "stop_type": "eos"|"limit"|"word"}`.
/// Usage-only chunks and keep-alives carry neither.
fn native_event(payload: &Value) -> Vec<Streamed> {
    let mut out = Vec::new();
    if let Some(text) = payload.get("content").and_then(Value::as_str)
        && !text.is_empty()
    {
        out.push(Streamed::Text(text.to_owned()));
    }
    if payload.get("stop").and_then(Value::as_bool) == Some(true) {
        out.push(Streamed::Finished(
            match payload.get("stop_type").and_then(Value::as_str) {
                Some("limit") => FinishReason::MaxTokens,
                _ => FinishReason::Eos,
            },
        ));
    }
    out
}

/// The summed log-probability of the last `n` tokens of the echoed prompt
/// in a scoring answer (the echo is the prompt's tokens, then the ones
/// generated; a BOS the server added may or may not be among them).
pub fn continuation_logprob(answer: &Value, n: usize, url: &str) -> Result<f64, RemoteError> {
    let bad = |message: String| RemoteError::BadResponse {
        url: url.to_owned(),
        message,
    };
    let no_logprobs = || RemoteError::NoLogprobs {
        url: url.to_owned(),
    };
    let values = answer
        .pointer("/choices/0/logprobs/token_logprobs")
        .and_then(Value::as_array)
        .ok_or_else(no_logprobs)?;
    let generated = answer
        .pointer("/usage/completion_tokens")
        .and_then(Value::as_u64)
        .map_or(1, |n| n as usize);
    let prompt_len = values.len().saturating_sub(generated);
    if n >= prompt_len {
        // The first echoed token has no log-probability: nothing came before it.
        return Err(bad(format!(
            "{prompt_len} echoed prompt tokens, too few for the {n} scored"
        )));
    }
    (prompt_len - n..prompt_len)
        .map(|i| {
            values
                .get(i)
                .and_then(Value::as_f64)
                .ok_or_else(no_logprobs)
        })
        .sum()
}

/// The model ids of a `GET /v1/models` answer.
pub fn model_names(answer: &Value) -> Vec<String> {
    answer
        .get("data")
        .and_then(Value::as_array)
        .map(|models| {
            models
                .iter()
                .filter_map(|m| m.get("id").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(api: Api) -> RemoteSettings {
        RemoteSettings::new(api, "http://127.0.0.1:9").expect("valid")
    }

    #[test]
    fn generation_bodies_follow_the_api() {
        let greedy = SamplingParams::greedy();
        let body = generate_body(
            &settings(Api::LlamaCpp),
            "<fim_prefix>x",
            16,
            &greedy,
            &["<fim_prefix>".into()],
            true,
        );
        insta::assert_json_snapshot!(body, @r#"
        {
          "cache_prompt": true,
          "ignore_eos": true,
          "max_tokens": 16,
          "min_p": 0.0,
          "prompt": "<fim_prefix>x",
          "repeat_penalty": 1.0,
          "stop": [
            "<fim_prefix>"
          ],
          "stream": true,
          "temperature": 0.0,
          "top_k": 0,
          "top_p": 1.0
        }
        "#);
        let mut openai = settings(Api::OpenAi);
        openai.model = Some("qwen".into());
        let sampled = SamplingParams {
            temperature: 0.5,
            top_k: 0,
            top_p: 0.9,
            seed: 7,
        };
        let body = generate_body(&openai, "x", 4, &sampled, &[], true);
        insta::assert_json_snapshot!(body, @r#"
        {
          "max_tokens": 4,
          "model": "qwen",
          "prompt": "x",
          "seed": 7,
          "stream": true,
          "temperature": 0.5,
          "top_p": 0.8999999761581421
        }
        "#);
    }

    #[test]
    fn streamed_chunks_give_text_then_the_reason() {
        let chunk = json!({"choices": [{"text": "ab", "finish_reason": null}]});
        assert!(matches!(&read_event(&chunk, "u")[..], [Streamed::Text(t)] if t == "ab"));
        let last = json!({"choices": [{"text": "", "finish_reason": "length"}]});
        assert!(matches!(
            &read_event(&last, "u")[..],
            [Streamed::Finished(FinishReason::MaxTokens)]
        ));
        assert!(read_event(&json!({"usage": {}}), "u").is_empty());
        let native = json!({"content": "x", "stop": false});
        assert!(matches!(&read_event(&native, "u")[..], [Streamed::Text(t)] if t == "x"));
        let end = json!({"content": "", "stop": true, "stop_type": "limit"});
        assert!(matches!(
            &read_event(&end, "u")[..],
            [Streamed::Finished(FinishReason::MaxTokens)]
        ));
        let error = json!({"error": {"message": "boom"}});
        assert!(matches!(
            &read_event(&error, "u")[..],
            [Streamed::Failed(_)]
        ));
        let garbage = json!({"choices": [{"text": 3}]});
        assert!(matches!(
            &read_event(&garbage, "u")[..],
            [Streamed::Failed(_)]
        ));
    }

    #[test]
    fn continuation_logprobs_are_counted_from_the_end_of_the_prompt() {
        let answer = json!({
            "choices": [{"logprobs": {
                "tokens": ["a", "b", "c", "d", "x"],
                "token_logprobs": [null, -1.0, -2.0, -0.5, -3.0]
            }}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1}
        });
        assert_eq!(continuation_logprob(&answer, 2, "u").expect("scored"), -2.5);
        assert!(continuation_logprob(&answer, 4, "u").is_err());
        let none = json!({"choices": [{"text": "x", "logprobs": null}]});
        assert!(matches!(
            continuation_logprob(&none, 1, "u"),
            Err(RemoteError::NoLogprobs { .. })
        ));
    }
}
