//! Open documents as the editor sees them: text on a rope, the version the
//! client last sent, and conversions between LSP positions and offsets.
//!
//! LSP positions are (line, column) pairs whose column counts code units of
//! the negotiated encoding (UTF-8 bytes, UTF-16 code units or code points).
//! Lines end at `\n`, `\r\n` or `\r`, as the specification says; ropey's
//! `cr_lines` feature splits lines the same way.
//!
//! Architecture invariant: no position from a client can make these
//! functions panic. A column past the end of its line means the end of the
//! line (the specification's rule); a line past the end of the document means
//! the end of the document; a column inside a multi-unit character means the
//! start of that character.

use std::collections::HashMap;

use ropey::Rope;
use tower_lsp_server::ls_types::{Position, PositionEncodingKind, Range, Uri};

/// What a position's `character` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PositionEncoding {
    /// Bytes of UTF-8.
    Utf8,
    /// UTF-16 code units: the protocol's default, which every client supports.
    #[default]
    Utf16,
    /// Unicode code points.
    Utf32,
}

impl PositionEncoding {
    /// The encoding to use given the client's `general.positionEncodings`:
    /// UTF-8 when offered (no conversion needed for Rust strings), else UTF-16.
    pub fn negotiate(offered: Option<&[PositionEncodingKind]>) -> Self {
        match offered {
            Some(kinds) if kinds.contains(&PositionEncodingKind::UTF8) => Self::Utf8,
            _ => Self::Utf16,
        }
    }

    pub fn kind(self) -> PositionEncodingKind {
        match self {
            Self::Utf8 => PositionEncodingKind::UTF8,
            Self::Utf16 => PositionEncodingKind::UTF16,
            Self::Utf32 => PositionEncodingKind::UTF32,
        }
    }
}

/// One open document.
#[derive(Debug, Clone)]
pub struct Document {
    pub text: Rope,
    pub version: i32,
    pub language: String,
    /// Character index of the most recent edit, for choosing context snippets.
    pub last_edit: usize,
    /// Increases with every open or change across all documents: the most
    /// recently touched document has the largest value.
    pub touched: u64,
}

impl Document {
    pub fn new(text: &str, version: i32, language: &str) -> Self {
        Self {
            text: Rope::from_str(text),
            version,
            language: language.to_owned(),
            last_edit: 0,
            touched: 0,
        }
    }

    /// Applies one change event: a range replacement, or the whole text when
    /// the range is absent.
    pub fn apply(&mut self, range: Option<Range>, new_text: &str, encoding: PositionEncoding) {
        match range {
            None => {
                self.text = Rope::from_str(new_text);
                self.last_edit = 0;
            }
            Some(range) => {
                let a = position_to_char(&self.text, range.start, encoding);
                let b = position_to_char(&self.text, range.end, encoding);
                let (start, end) = if a <= b { (a, b) } else { (b, a) };
                self.text.remove(start..end);
                self.text.insert(start, new_text);
                self.last_edit = start + new_text.chars().count();
            }
        }
    }
}

/// The character index a position points at, clamped as the module docs say.
pub fn position_to_char(rope: &Rope, pos: Position, encoding: PositionEncoding) -> usize {
    let line = pos.line as usize;
    if line >= rope.len_lines() {
        return rope.len_chars();
    }
    let start = rope.line_to_char(line);
    let end = line_content_end(rope, line);
    let column = pos.character as usize;
    match encoding {
        PositionEncoding::Utf32 => start + column.min(end - start),
        PositionEncoding::Utf8 => {
            let start_byte = rope.char_to_byte(start);
            let end_byte = rope.char_to_byte(end);
            let byte = start_byte + column.min(end_byte - start_byte);
            // Inside a multi-byte character: that character's start.
            rope.byte_to_char(byte)
        }
        PositionEncoding::Utf16 => {
            let start_cu = rope.char_to_utf16_cu(start);
            let end_cu = rope.char_to_utf16_cu(end);
            // Inside a surrogate pair: the pair's start.
            rope.utf16_cu_to_char(start_cu + column.min(end_cu - start_cu))
        }
    }
}

/// The position of a character index (clamped to the document's end).
pub fn char_to_position(rope: &Rope, char_idx: usize, encoding: PositionEncoding) -> Position {
    let char_idx = char_idx.min(rope.len_chars());
    let line = rope.char_to_line(char_idx);
    let start = rope.line_to_char(line);
    let column = match encoding {
        PositionEncoding::Utf32 => char_idx - start,
        PositionEncoding::Utf8 => rope.char_to_byte(char_idx) - rope.char_to_byte(start),
        PositionEncoding::Utf16 => rope.char_to_utf16_cu(char_idx) - rope.char_to_utf16_cu(start),
    };
    Position::new(to_u32(line), to_u32(column))
}

/// The character index of byte offset `byte`: clamped to the end, and a
/// byte inside a multi-byte character means that character.
pub fn byte_to_char(rope: &Rope, byte: usize) -> usize {
    rope.byte_to_char(byte.min(rope.len_bytes()))
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Character index where `line`'s content ends, before its line break.
fn line_content_end(rope: &Rope, line: usize) -> usize {
    let slice = rope.line(line);
    let mut len = slice.len_chars();
    if len > 0 && slice.char(len - 1) == '\n' {
        len -= 1;
    }
    if len > 0 && slice.char(len - 1) == '\r' {
        len -= 1;
    }
    rope.line_to_char(line) + len
}

/// All open documents, keyed by URI. Callers wrap it in a mutex and take
/// [`Snapshot`]s instead of holding the lock while they work.
#[derive(Debug, Default)]
pub struct Documents {
    docs: HashMap<Uri, Document>,
    clock: u64,
}

/// A cheap copy of a document at one version (ropes share their chunks).
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub uri: Uri,
    pub text: Rope,
    pub version: i32,
    pub language: String,
}

impl Documents {
    pub fn open(&mut self, uri: Uri, text: &str, version: i32, language: &str) {
        let mut doc = Document::new(text, version, language);
        self.clock += 1;
        doc.touched = self.clock;
        self.docs.insert(uri, doc);
    }

    /// Applies a didChange's events in order. Returns false for a document
    /// that is not open.
    pub fn change(
        &mut self,
        uri: &Uri,
        version: i32,
        changes: impl IntoIterator<Item = (Option<Range>, String)>,
        encoding: PositionEncoding,
    ) -> bool {
        let Some(doc) = self.docs.get_mut(uri) else {
            return false;
        };
        for (range, text) in changes {
            doc.apply(range, &text, encoding);
        }
        doc.version = version;
        self.clock += 1;
        doc.touched = self.clock;
        true
    }

    pub fn close(&mut self, uri: &Uri) {
        self.docs.remove(uri);
    }

    pub fn get(&self, uri: &Uri) -> Option<&Document> {
        self.docs.get(uri)
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    pub fn version(&self, uri: &Uri) -> Option<i32> {
        self.docs.get(uri).map(|d| d.version)
    }

    pub fn snapshot(&self, uri: &Uri) -> Option<Snapshot> {
        self.docs.get(uri).map(|d| Snapshot {
            uri: uri.clone(),
            text: d.text.clone(),
            version: d.version,
            language: d.language.clone(),
        })
    }

    /// The open documents.
    pub fn uris(&self) -> Vec<Uri> {
        self.docs.keys().cloned().collect()
    }

    /// The most recently opened or edited document.
    pub fn most_recent(&self) -> Option<&Uri> {
        self.docs
            .iter()
            .max_by_key(|(_, d)| d.touched)
            .map(|(u, _)| u)
    }

    /// Other open documents of `language`, most recently touched first.
    pub fn neighbours(&self, uri: &Uri, language: &str, limit: usize) -> Vec<(Uri, Document)> {
        let mut others: Vec<(&Uri, &Document)> = self
            .docs
            .iter()
            .filter(|(u, d)| *u != uri && d.language == language)
            .collect();
        others.sort_by_key(|(_, d)| std::cmp::Reverse(d.touched));
        others
            .into_iter()
            .take(limit)
            .map(|(u, d)| (u.clone(), d.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PositionEncoding::{Utf8, Utf16, Utf32};

    fn pos(line: u32, character: u32) -> Position {
        Position::new(line, character)
    }

    fn at(text: &str, p: Position, enc: PositionEncoding) -> String {
        let rope = Rope::from_str(text);
        rope.slice(position_to_char(&rope, p, enc)..).to_string()
    }

    #[test]
    fn columns_count_the_negotiated_units() {
        // 'é' is 2 UTF-8 bytes, '😀' 4 bytes and 2 UTF-16 units, '中' 3 bytes.
        let text = "aé😀中b\n";
        assert_eq!(at(text, pos(0, 3), Utf8), "😀中b\n");
        assert_eq!(at(text, pos(0, 7), Utf8), "中b\n");
        assert_eq!(at(text, pos(0, 10), Utf8), "b\n");
        assert_eq!(at(text, pos(0, 2), Utf16), "😀中b\n");
        assert_eq!(at(text, pos(0, 4), Utf16), "中b\n");
        assert_eq!(at(text, pos(0, 5), Utf16), "b\n");
        assert_eq!(at(text, pos(0, 3), Utf32), "中b\n");
    }

    #[test]
    fn a_column_inside_a_character_means_its_start() {
        let text = "x😀y";
        assert_eq!(at(text, pos(0, 2), Utf16), "😀y");
        assert_eq!(at(text, pos(0, 3), Utf8), "😀y");
        assert_eq!(at(text, pos(0, 2), Utf8), "😀y");
    }

    #[test]
    fn out_of_range_positions_clamp() {
        let text = "ab\r\ncd\n";
        assert_eq!(at(text, pos(0, 99), Utf16), "\r\ncd\n");
        assert_eq!(at(text, pos(0, u32::MAX), Utf8), "\r\ncd\n");
        assert_eq!(at(text, pos(1, u32::MAX), Utf32), "\n");
        assert_eq!(at(text, pos(2, 5), Utf16), "");
        assert_eq!(at(text, pos(u32::MAX, u32::MAX), Utf16), "");
        assert_eq!(at("", pos(3, 3), Utf8), "");
    }

    #[test]
    fn crlf_and_lone_cr_end_lines() {
        let text = "a\r\nb\rc\nd";
        assert_eq!(at(text, pos(1, 0), Utf16), "b\rc\nd");
        assert_eq!(at(text, pos(2, 0), Utf16), "c\nd");
        assert_eq!(at(text, pos(3, 1), Utf16), "");
        let rope = Rope::from_str(text);
        assert_eq!(char_to_position(&rope, 3, Utf16), pos(1, 0));
        assert_eq!(char_to_position(&rope, 100, Utf16), pos(3, 1));
    }

    #[test]
    fn positions_round_trip_with_emoji_and_cjk() {
        let text = "fn 主() {\n    let s = \"👩‍💻 ok\"; // 注释\r\n}\n";
        let rope = Rope::from_str(text);
        for enc in [Utf8, Utf16, Utf32] {
            for c in 0..=rope.len_chars() {
                let p = char_to_position(&rope, c, enc);
                let back = position_to_char(&rope, p, enc);
                // A position on a line break maps to the line's end, which is
                // where the break starts.
                let ch = rope.get_char(c);
                if ch == Some('\n') && c > 0 && rope.char(c - 1) == '\r' {
                    assert_eq!(back, c - 1, "{enc:?} {c}");
                } else {
                    assert_eq!(back, c, "{enc:?} {c}");
                }
            }
        }
    }

    #[test]
    fn edits_replace_ranges_in_each_encoding() {
        let mut doc = Document::new("let 😀 = 1;\n中文\n", 1, "rust");
        // Replace the emoji (UTF-16 columns 4..6) with "x".
        doc.apply(Some(Range::new(pos(0, 4), pos(0, 6))), "x", Utf16);
        assert_eq!(doc.text.to_string(), "let x = 1;\n中文\n");
        // Insert after 中 (3 bytes).
        doc.apply(Some(Range::new(pos(1, 3), pos(1, 3))), "国", Utf8);
        assert_eq!(doc.text.to_string(), "let x = 1;\n中国文\n");
        // A reversed range is the same range.
        doc.apply(Some(Range::new(pos(1, 3), pos(1, 1))), "", Utf32);
        assert_eq!(doc.text.to_string(), "let x = 1;\n中\n");
        // Past the end appends.
        doc.apply(Some(Range::new(pos(9, 0), pos(9, 9))), "end", Utf16);
        assert_eq!(doc.text.to_string(), "let x = 1;\n中\nend");
        doc.apply(None, "new", Utf16);
        assert_eq!(doc.text.to_string(), "new");
    }

    #[test]
    fn byte_offsets_clamp_to_characters() {
        let rope = Rope::from_str("a😀b");
        assert_eq!(byte_to_char(&rope, 1), 1);
        assert_eq!(byte_to_char(&rope, 3), 1, "inside the emoji");
        assert_eq!(byte_to_char(&rope, 5), 2);
        assert_eq!(byte_to_char(&rope, usize::MAX), 3);
    }

    #[test]
    fn negotiation_prefers_utf8() {
        let both = [PositionEncodingKind::UTF16, PositionEncodingKind::UTF8];
        assert_eq!(PositionEncoding::negotiate(Some(&both)), Utf8);
        let utf32 = [PositionEncodingKind::UTF32];
        assert_eq!(PositionEncoding::negotiate(Some(&utf32)), Utf16);
        assert_eq!(PositionEncoding::negotiate(None), Utf16);
    }
}
