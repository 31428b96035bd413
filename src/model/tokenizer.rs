//! `tokenizer.json` through Hugging Face `tokenizers`, with the few questions
//! nib asks of it: special tokens, the BOS it prepends, ids of marker tokens.

use std::path::Path;

use super::ModelError;

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// Tokens the post-processor puts before any text (Llama's `<s>`).
    leading_special: Vec<u32>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .finish()
    }
}

impl Tokenizer {
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let file = dir.join("tokenizer.json");
        if !file.exists() {
            return Err(ModelError::MissingFile { file });
        }
        let bytes =
            crate::files::read_bytes(&file, crate::files::MODEL_JSON_LIMIT).map_err(|e| {
                ModelError::Invalid {
                    file: file.clone(),
                    message: e.to_string(),
                }
            })?;
        let inner = tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| ModelError::Invalid {
            file: file.clone(),
            message: e.to_string(),
        })?;
        Ok(Self::from_inner(inner))
    }

    pub fn from_inner(inner: tokenizers::Tokenizer) -> Self {
        let leading_special = match (inner.encode("a", true), inner.encode("a", false)) {
            (Ok(with), Ok(without)) if !without.get_ids().is_empty() => {
                let with = with.get_ids();
                let without = without.get_ids();
                let lead = with
                    .windows(without.len())
                    .position(|w| w == without)
                    .unwrap_or(0);
                with[..lead].to_vec()
            }
            _ => Vec::new(),
        };
        Self {
            inner,
            leading_special,
        }
    }

    /// Size of the id space, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Largest id the tokenizer can produce, plus one.
    pub fn id_bound(&self) -> usize {
        self.inner
            .get_vocab(true)
            .values()
            .map(|&id| id as usize + 1)
            .max()
            .unwrap_or(0)
    }

    /// Encodes text as the model's own tokenizer would with
    /// `add_special_tokens=True` (so Llama gets its BOS).
    pub fn encode_prompt(&self, text: &str) -> Result<Vec<u32>, String> {
        self.inner
            .encode(text, true)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| e.to_string())
    }

    /// Encodes a piece of text with no special tokens added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        self.inner
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| e.to_string())
    }

    /// Special tokens that start every encoded prompt (BOS), possibly none.
    pub fn leading_special(&self) -> &[u32] {
        &self.leading_special
    }

    pub fn decode(&self, ids: &[u32]) -> String {
        self.inner.decode(ids, true).unwrap_or_default()
    }

    /// Decodes with special tokens written out (`<fim_prefix>`), for a
    /// server that tokenizes a text prompt itself.
    pub fn decode_with_special(&self, ids: &[u32]) -> String {
        self.inner.decode(ids, false).unwrap_or_default()
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Ids of the added tokens marked special (EOS, FIM markers, file separators).
    pub fn special_ids(&self) -> Vec<u32> {
        self.inner
            .get_added_tokens_decoder()
            .iter()
            .filter(|(_, t)| t.special)
            .map(|(&id, _)| id)
            .collect()
    }
}

/// Text of a growing token sequence, decoded a few tokens at a time.
///
/// Decoding everything after every token costs O(n) per step; this decodes
/// only a window that starts one token back (so merges and leading-space
/// rules see their left context) and holds back text that ends in an
/// incomplete UTF-8 sequence. Call [`Tokenizer::decode`] on the whole
/// sequence for the exact final text.
#[derive(Debug, Default)]
pub struct TextStream {
    tokens: Vec<u32>,
    prefix_offset: usize,
    read_offset: usize,
    text: String,
    /// How many leading tokens are context, not generated.
    context: usize,
}

impl TextStream {
    /// A stream that continues after `context` (the prompt's last token), so
    /// tokenizers that drop a leading space at the start of a text (Llama's
    /// `▁`) keep it at the start of the generated text.
    pub fn after(context: Option<u32>) -> Self {
        let tokens: Vec<u32> = context.into_iter().collect();
        let read_offset = tokens.len();
        Self {
            tokens,
            prefix_offset: 0,
            read_offset,
            text: String::new(),
            context: read_offset,
        }
    }

    /// Adds a token and returns the text so far.
    pub fn push(&mut self, tokenizer: &Tokenizer, id: u32) -> &str {
        self.tokens.push(id);
        let before = tokenizer.decode(&self.tokens[self.prefix_offset..self.read_offset]);
        let now = tokenizer.decode(&self.tokens[self.prefix_offset..]);
        if !now.starts_with(&before) {
            // The window re-decoded differently: take the whole sequence.
            self.text = Self::text_after(tokenizer, &self.tokens, self.context);
            self.prefix_offset = self.tokens.len().saturating_sub(1);
            self.read_offset = self.tokens.len();
        } else if now.len() > before.len() && !now.ends_with('\u{FFFD}') {
            self.text.push_str(&now[before.len()..]);
            self.prefix_offset = self.read_offset;
            self.read_offset = self.tokens.len();
        }
        &self.text
    }

    /// The generated tokens (context excluded).
    pub fn tokens(&self) -> &[u32] {
        &self.tokens[self.context..]
    }

    /// The exact text and the tokens of the whole generation.
    pub fn finish(self, tokenizer: &Tokenizer) -> (String, Vec<u32>) {
        let text = Self::text_after(tokenizer, &self.tokens, self.context);
        (text, self.tokens[self.context..].to_vec())
    }

    /// Text of `tokens[context..]` as it reads after `tokens[..context]`.
    fn text_after(tokenizer: &Tokenizer, tokens: &[u32], context: usize) -> String {
        let before = tokenizer.decode(&tokens[..context]);
        let all = tokenizer.decode(tokens);
        match all.strip_prefix(&before) {
            Some(rest) => rest.to_owned(),
            None => tokenizer.decode(&tokens[context..]),
        }
    }
}
