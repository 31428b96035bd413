//! The one table of languages nib knows (`languages.json`): LSP language
//! id, file extensions, lexer family and review rule set. Lexing
//! ([`crate::lex`]), review ([`crate::review`]) and the server's review of
//! unsaved buffers look languages up here; the fine-tuning data generator
//! in `models/` reads the same file, and a test checks the editor plugins'
//! language lists against it.

use std::sync::LazyLock;

use serde::Deserialize;

use crate::lex::Lang;

#[derive(Debug, Deserialize)]
pub struct Language {
    /// The LSP language id (`textDocument/didOpen`'s `languageId`).
    pub id: String,
    /// Lowercase, without the dot; the first is the usual one.
    pub extensions: Vec<String>,
    pub lexer: Lang,
    /// The rule set of `review/substitutions.json`; `None`: completion only.
    pub review: Option<String>,
    /// Neovim's filetype, where it is not the id.
    vim: Option<String>,
}

impl Language {
    pub fn vim_filetype(&self) -> &str {
        self.vim.as_deref().unwrap_or(&self.id)
    }
}

#[derive(Deserialize)]
struct Table {
    languages: Vec<Language>,
}

static LANGUAGES: LazyLock<Vec<Language>> = LazyLock::new(|| {
    let table: Table = serde_json::from_str(include_str!("languages.json"))
        .expect("languages.json is valid (checked by a unit test)");
    table.languages
});

pub fn all() -> &'static [Language] {
    &LANGUAGES
}

/// By LSP language id.
pub fn by_id(id: &str) -> Option<&'static Language> {
    LANGUAGES.iter().find(|l| l.id == id)
}

/// By a file name's extension, in any case.
pub fn by_path(path: &str) -> Option<&'static Language> {
    let name = path.rsplit(['/', '\\']).next()?;
    let (_, ext) = name.rsplit_once('.')?;
    let ext = ext.to_ascii_lowercase();
    LANGUAGES.iter().find(|l| l.extensions.contains(&ext))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::Path;

    use super::*;

    #[test]
    fn ids_and_extensions_are_unique() {
        let mut ids = HashSet::new();
        let mut extensions = HashSet::new();
        for l in all() {
            assert!(ids.insert(&l.id), "{} twice", l.id);
            assert!(!l.extensions.is_empty(), "{} has no extension", l.id);
            for e in &l.extensions {
                assert_eq!(*e, e.to_ascii_lowercase());
                assert!(extensions.insert(e), ".{e} twice");
            }
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(by_path("src/a.RS").map(|l| l.id.as_str()), Some("rust"));
        assert_eq!(by_path("x/y.tar/z.tsx").map(|l| l.lexer), Some(Lang::CLike));
        assert_eq!(by_path("notes").map(|l| &l.id), None);
        assert_eq!(by_path("dir.py/Makefile").map(|l| &l.id), None);
        assert_eq!(by_id("shellscript").map(Language::vim_filetype), Some("sh"));
        assert!(by_id("markdown").is_none());
    }

    fn repo_file(path: &str) -> String {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(root.join(path)).expect("read an editor file")
    }

    /// Quoted words of `text` (`"python"`), for lists in Lua.
    fn quoted(text: &str) -> HashSet<String> {
        text.split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    }

    /// VS Code starts the extension when a file of any language of the table opens.
    #[test]
    fn vscode_activates_on_every_language() {
        let manifest: serde_json::Value =
            serde_json::from_str(&repo_file("editors/vscode/package.json")).expect("JSON");
        let events: HashSet<String> = manifest["activationEvents"]
            .as_array()
            .expect("activationEvents")
            .iter()
            .filter_map(|e| e.as_str()?.strip_prefix("onLanguage:").map(str::to_owned))
            .collect();
        let ids: HashSet<String> = all().iter().map(|l| l.id.to_owned()).collect();
        assert_eq!(events, ids);
    }

    #[test]
    fn the_editor_plugins_attach_to_every_reviewed_language() {
        // Neovim: the default filetypes of nib.nvim.
        let lua = repo_file("lua/nib/config.lua");
        let start = lua.find("filetypes = {").expect("nib.nvim's filetypes");
        let end = start + lua[start..].find('}').expect("the list's end");
        let filetypes = quoted(&lua[start..end]);
        for l in all() {
            assert!(
                filetypes.contains(l.vim_filetype()),
                "nib.nvim does not attach to {} ({})",
                l.id,
                l.vim_filetype()
            );
        }
        for ft in &filetypes {
            assert!(
                all().iter().any(|l| l.vim_filetype() == ft),
                "nib.nvim attaches to {ft}, which languages.json does not know"
            );
        }
    }
}
