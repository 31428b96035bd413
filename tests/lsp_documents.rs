//! Property tests for incremental sync: random edit scripts, addressed in
//! UTF-8, UTF-16 or code-point positions (some out of range, some inside a
//! character), leave the rope-backed document equal to a plain-string
//! reference that implements the specification's rules independently.

use nib::documents::{Document, PositionEncoding, char_to_position, position_to_char};
use proptest::prelude::*;
use tower_lsp_server::ls_types::{Position, Range};

/// Byte offset of `pos` in `text`, by the LSP rules, without ropey: lines
/// end at \n, \r\n or \r; columns past a line's end mean its end; a line
/// past the last means the end of the text; a column inside a character
/// means its start.
fn reference_offset(text: &str, pos: Position, enc: PositionEncoding) -> usize {
    let mut line_starts = vec![0];
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                line_starts.push(i + 2);
                i += 2;
                continue;
            }
            b'\r' | b'\n' => line_starts.push(i + 1),
            _ => {}
        }
        i += 1;
    }
    let Some(&start) = line_starts.get(pos.line as usize) else {
        return text.len();
    };
    let mut end = line_starts
        .get(pos.line as usize + 1)
        .copied()
        .unwrap_or(text.len());
    let line = &text[start..end];
    if line.ends_with("\r\n") {
        end -= 2;
    } else if line.ends_with('\n') || line.ends_with('\r') {
        end -= 1;
    }
    let mut units = 0usize;
    for (i, c) in text[start..end].char_indices() {
        let width = match enc {
            PositionEncoding::Utf8 => c.len_utf8(),
            PositionEncoding::Utf16 => c.len_utf16(),
            PositionEncoding::Utf32 => 1,
        };
        if units + width > pos.character as usize {
            return start + i;
        }
        units += width;
    }
    end
}

fn reference_apply(text: &mut String, range: Range, new: &str, enc: PositionEncoding) {
    let a = reference_offset(text, range.start, enc);
    let b = reference_offset(text, range.end, enc);
    let (a, b) = if a <= b { (a, b) } else { (b, a) };
    text.replace_range(a..b, new);
}

fn piece() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "a",
            "é",
            "中",
            "文",
            "😀",
            "👩‍💻",
            "\n",
            "\r\n",
            "\r",
            " ",
            "\t",
            "{",
            "}",
            "x y",
        ]),
        0..6,
    )
    .prop_map(|v| v.concat())
}

fn encoding() -> impl Strategy<Value = PositionEncoding> {
    prop::sample::select(vec![
        PositionEncoding::Utf8,
        PositionEncoding::Utf16,
        PositionEncoding::Utf32,
    ])
}

fn position() -> impl Strategy<Value = Position> {
    (
        prop_oneof![8 => 0u32..8, 1 => Just(u32::MAX)],
        prop_oneof![8 => 0u32..12, 1 => 12u32..100, 1 => Just(u32::MAX)],
    )
        .prop_map(|(line, character)| Position::new(line, character))
}

#[derive(Debug, Clone)]
enum Edit {
    Range(Position, Position, String),
    Full(String),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        12 => (position(), position(), piece()).prop_map(|(a, b, t)| Edit::Range(a, b, t)),
        1 => piece().prop_map(Edit::Full),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn edit_scripts_match_the_reference(
        initial in piece(),
        enc in encoding(),
        edits in prop::collection::vec(edit(), 1..24),
    ) {
        let mut doc = Document::new(&initial, 1, "text");
        let mut reference = initial.clone();
        for edit in &edits {
            match edit {
                Edit::Range(a, b, text) => {
                    doc.apply(Some(Range::new(*a, *b)), text, enc);
                    reference_apply(&mut reference, Range::new(*a, *b), text, enc);
                }
                Edit::Full(text) => {
                    doc.apply(None, text, enc);
                    reference = text.clone();
                }
            }
            prop_assert_eq!(doc.text.to_string(), reference.clone());
        }
    }

    #[test]
    fn positions_agree_with_the_reference_and_round_trip(
        text in prop::collection::vec(piece(), 0..6).prop_map(|v| v.concat()),
        enc in encoding(),
        pos in position(),
    ) {
        let rope = ropey::Rope::from_str(&text);
        let c = position_to_char(&rope, pos, enc);
        prop_assert_eq!(rope.char_to_byte(c), reference_offset(&text, pos, enc));
        // The clamped position maps back to the same character.
        let back = char_to_position(&rope, c, enc);
        prop_assert_eq!(position_to_char(&rope, back, enc), c);
    }
}
