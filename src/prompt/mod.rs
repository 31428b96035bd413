//! Prompts for completion: fill-in-the-middle templates and the context
//! around the cursor, cut to a token budget.

mod context;
mod fim;

pub use self::context::{
    BudgetSplit, CompletionContext, PREFIX_CUT_LINES, Prompt, Snippet, build_prompt,
};
pub use self::fim::{FimOrder, FimStyle, FimTokens};
