//! Prompt lookup: guessing the next tokens from earlier text, so greedy
//! decoding can check several of them in one run of the model. Pure token
//! arithmetic, apart from the engine so it can be tested alone.

/// Prompt lookup: the tokens that followed the last earlier occurrence of
/// the text's final few tokens, as guesses of what comes next (code repeats
/// names, calls and whole lines of its context).
pub(super) fn lookup<'a>(prompt: &'a [u32], generated: &'a [u32], most: usize) -> &'a [u32] {
    const LONGEST: usize = 4;
    const SHORTEST: usize = 2;
    if most == 0 {
        return &[];
    }
    let history: Vec<u32> = prompt.iter().chain(generated).copied().collect();
    for n in (SHORTEST..=LONGEST).rev() {
        let Some(tail) = history.len().checked_sub(n).map(|at| &history[at..]) else {
            continue;
        };
        // The latest earlier match, so guesses follow the nearest context.
        let found = (0..history.len() - n)
            .rev()
            .find(|&at| &history[at..at + n] == tail);
        if let Some(at) = found {
            let from = at + n;
            let to = (from + most).min(history.len());
            // Guesses come from the prompt or the generated tokens.
            return if to <= prompt.len() {
                &prompt[from..to]
            } else if from >= prompt.len() {
                &generated[from - prompt.len()..to - prompt.len()]
            } else {
                &prompt[from..]
            };
        }
    }
    &[]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_guesses_what_followed_the_latest_match() {
        // `7 8` occurred twice before; the latest was followed by `9 1`.
        let prompt = [7, 8, 5, 6, 7, 8, 9, 1, 2];
        assert_eq!(lookup(&prompt, &[7, 8], 2), [9, 1]);
        // Longer matches win: `5 7 8` only matches once, before `0`.
        assert_eq!(lookup(&[5, 7, 8, 0, 7, 8, 3], &[5, 7, 8], 1), [0]);
        // Guesses may come from the generated tokens, and stop at the end.
        assert_eq!(lookup(&[1], &[2, 3, 4, 2, 3], 8), [4, 2, 3]);
        assert_eq!(lookup(&[1, 2, 3], &[9], 8), [] as [u32; 0]);
        assert_eq!(lookup(&prompt, &[7, 8], 0), [] as [u32; 0]);
    }
}
