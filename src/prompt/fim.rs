//! Fill-in-the-middle templates, picked from the tokenizer's special tokens.

use serde::Serialize;

use crate::model::Tokenizer;

/// The FIM convention a model was trained with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FimStyle {
    /// `<fim_prefix>`, `<fim_suffix>`, `<fim_middle>` (StarCoder, SantaCoder, nib's own model).
    #[serde(rename = "starcoder")]
    StarCoder,
    /// `<|fim_prefix|>`, `<|fim_suffix|>`, `<|fim_middle|>` (Qwen2.5-Coder, Qwen3).
    Qwen,
    /// `▁<PRE>`, `▁<SUF>`, `▁<MID>` (CodeLlama).
    #[serde(rename = "codellama")]
    CodeLlama,
    /// `<｜fim▁begin｜>`, `<｜fim▁hole｜>`, `<｜fim▁end｜>` (DeepSeek-Coder).
    #[serde(rename = "deepseek")]
    DeepSeek,
    /// No FIM tokens: the prompt is the prefix alone.
    None,
}

impl std::fmt::Display for FimStyle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::StarCoder => "starcoder",
            Self::Qwen => "qwen",
            Self::CodeLlama => "codellama",
            Self::DeepSeek => "deepseek",
            Self::None => "none (prefix only)",
        })
    }
}

/// The order of the parts in a FIM prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FimOrder {
    /// prefix, suffix, middle: what every FIM model knows.
    Psm,
    /// suffix, prefix, middle: typing at the cursor only appends to the
    /// prompt, so the cached keys and values stay valid.
    Spm,
}

/// Token ids of one model's FIM markers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FimTokens {
    pub style: FimStyle,
    pub prefix: u32,
    pub suffix: u32,
    pub middle: u32,
    /// Tokens that end a middle: end-of-text, end-of-infill, file separators, padding.
    pub stop: Vec<u32>,
    /// The marker that starts another file in repository-level prompts, if any.
    pub file_separator: Option<u32>,
}

struct Family {
    style: FimStyle,
    markers: [&'static str; 3],
    stops: &'static [&'static str],
    file_separator: &'static [&'static str],
}

const FAMILIES: &[Family] = &[
    Family {
        style: FimStyle::Qwen,
        markers: ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"],
        stops: &[
            "<|endoftext|>",
            "<|fim_pad|>",
            "<|file_sep|>",
            "<|repo_name|>",
            "<|im_end|>",
        ],
        file_separator: &["<|file_sep|>"],
    },
    Family {
        style: FimStyle::StarCoder,
        markers: ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"],
        stops: &[
            "<|endoftext|>",
            "<fim_pad>",
            "<file_sep>",
            "<filename>",
            "<|file_separator|>",
        ],
        file_separator: &["<file_sep>", "<|file_separator|>"],
    },
    Family {
        style: FimStyle::CodeLlama,
        markers: ["▁<PRE>", "▁<SUF>", "▁<MID>"],
        stops: &["▁<EOT>", "</s>"],
        file_separator: &[],
    },
    Family {
        style: FimStyle::CodeLlama,
        markers: ["<PRE>", "<SUF>", "<MID>"],
        stops: &["<EOT>", "</s>"],
        file_separator: &[],
    },
    Family {
        style: FimStyle::DeepSeek,
        markers: ["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"],
        stops: &["<|EOT|>", "<｜end▁of▁sentence｜>"],
        file_separator: &[],
    },
];

impl FimTokens {
    /// Finds the first family whose three markers are all in the vocabulary.
    pub fn detect(tokenizer: &Tokenizer) -> Option<Self> {
        FAMILIES.iter().find_map(|family| {
            let [p, s, m] = family.markers.map(|t| tokenizer.token_id(t));
            let ids = |names: &[&str]| {
                names
                    .iter()
                    .filter_map(|t| tokenizer.token_id(t))
                    .collect::<Vec<_>>()
            };
            Some(Self {
                style: family.style,
                prefix: p?,
                suffix: s?,
                middle: m?,
                stop: ids(family.stops),
                file_separator: ids(family.file_separator).first().copied(),
            })
        })
    }

    /// Tokens that end a middle: the family's stops, and its own markers,
    /// which a small model sometimes emits inside a middle.
    pub fn middle_stops(&self) -> Vec<u32> {
        let mut stops = self.stop.clone();
        stops.extend([self.prefix, self.suffix, self.middle]);
        stops
    }

    /// Lays out a FIM prompt from already-encoded parts. DeepSeek's markers
    /// mean begin/hole/end, which is the same prefix-suffix-middle layout.
    pub fn layout(
        &self,
        order: FimOrder,
        lead: &[u32],
        prefix: &[u32],
        suffix: &[u32],
    ) -> Vec<u32> {
        let mut out = Vec::with_capacity(lead.len() + prefix.len() + suffix.len() + 3);
        out.extend_from_slice(lead);
        match order {
            FimOrder::Psm => {
                out.push(self.prefix);
                out.extend_from_slice(prefix);
                out.push(self.suffix);
                out.extend_from_slice(suffix);
                out.push(self.middle);
            }
            FimOrder::Spm => {
                out.push(self.prefix);
                out.push(self.suffix);
                out.extend_from_slice(suffix);
                out.push(self.middle);
                out.extend_from_slice(prefix);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenizers::models::wordlevel::WordLevel;
    use tokenizers::{AddedToken, Tokenizer as HfTokenizer};

    fn detect_style(tokenizer: &Tokenizer) -> FimStyle {
        FimTokens::detect(tokenizer).map_or(FimStyle::None, |t| t.style)
    }

    fn tokenizer_with(specials: &[&str]) -> Tokenizer {
        let vocab = [("[UNK]".to_string(), 0u32), ("a".to_string(), 1)]
            .into_iter()
            .collect();
        let model = WordLevel::builder()
            .vocab(vocab)
            .unk_token("[UNK]".into())
            .build()
            .expect("vocab");
        let mut hf = HfTokenizer::new(model);
        let added: Vec<AddedToken> = specials
            .iter()
            .map(|s| AddedToken::from(*s, true))
            .collect();
        hf.add_special_tokens(added).expect("add tokens");
        Tokenizer::from_inner(hf)
    }

    #[test]
    fn detects_each_family() {
        let cases: &[(&[&str], FimStyle)] = &[
            (
                &[
                    "<fim_prefix>",
                    "<fim_suffix>",
                    "<fim_middle>",
                    "<|endoftext|>",
                ],
                FimStyle::StarCoder,
            ),
            (
                &[
                    "<|fim_prefix|>",
                    "<|fim_suffix|>",
                    "<|fim_middle|>",
                    "<|fim_pad|>",
                ],
                FimStyle::Qwen,
            ),
            (
                &["▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>"],
                FimStyle::CodeLlama,
            ),
            (
                &["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"],
                FimStyle::DeepSeek,
            ),
            (&["<|endoftext|>"], FimStyle::None),
            // Two of three markers is no FIM support.
            (&["<fim_prefix>", "<fim_suffix>"], FimStyle::None),
        ];
        for (specials, style) in cases {
            assert_eq!(
                detect_style(&tokenizer_with(specials)),
                *style,
                "{specials:?}"
            );
        }
    }

    #[test]
    fn stop_tokens_and_file_separator_are_found() {
        let t = tokenizer_with(&[
            "<|fim_prefix|>",
            "<|fim_suffix|>",
            "<|fim_middle|>",
            "<|endoftext|>",
            "<|file_sep|>",
        ]);
        let fim = FimTokens::detect(&t).expect("qwen markers");
        let names: Vec<String> = fim
            .stop
            .iter()
            .filter_map(|&id| t.id_to_token(id))
            .collect();
        assert_eq!(names, ["<|endoftext|>", "<|file_sep|>"]);
        assert_eq!(
            fim.file_separator
                .and_then(|id| t.id_to_token(id))
                .as_deref(),
            Some("<|file_sep|>")
        );
    }

    fn starcoder_markers() -> FimTokens {
        FimTokens {
            style: FimStyle::StarCoder,
            prefix: 100,
            suffix: 101,
            middle: 102,
            stop: vec![],
            file_separator: None,
        }
    }

    #[test]
    fn layouts_put_parts_in_order() {
        let fim = starcoder_markers();
        assert_eq!(
            fim.layout(FimOrder::Psm, &[1], &[10, 11], &[20]),
            [1, 100, 10, 11, 101, 20, 102]
        );
        assert_eq!(
            fim.layout(FimOrder::Spm, &[], &[10, 11], &[20]),
            [100, 101, 20, 102, 10, 11]
        );
    }

    #[test]
    fn spm_prompt_grows_by_appending_when_typing() {
        let fim = starcoder_markers();
        let before = fim.layout(FimOrder::Spm, &[], &[10, 11], &[20]);
        let after = fim.layout(FimOrder::Spm, &[], &[10, 11, 12], &[20]);
        assert!(after.starts_with(&before));
    }
}
