//! The default model compiled into the binary (see build.rs), unpacked once
//! to the per-user cache so the ordinary loading path can read it.

use std::path::PathBuf;

#[cfg(nib_embedded_model)]
include!(concat!(env!("OUT_DIR"), "/embedded_model.rs"));

/// The folder holding the embedded model's files, unpacking them first if
/// needed; `None` when this build embeds no model.
#[cfg(nib_embedded_model)]
pub fn dir() -> Option<Result<PathBuf, std::io::Error>> {
    let base = directories::ProjectDirs::from("", "", "nib")
        .map(|d| d.cache_dir().to_path_buf())
        .unwrap_or_else(|| std::env::temp_dir().join("nib"));
    Some(unpack(&base.join(format!("models/default-{HASH:016x}"))))
}

#[cfg(not(nib_embedded_model))]
pub fn dir() -> Option<Result<PathBuf, std::io::Error>> {
    None
}

/// Writes the files into `dir` unless an identical copy is already there
/// (compared byte for byte: a same-sized file another program changed in
/// the cache would otherwise change the model). Each file is written under
/// a temporary name and renamed, so a reader never sees half a file and
/// concurrent first runs do not collide.
#[cfg(nib_embedded_model)]
fn unpack(dir: &std::path::Path) -> Result<PathBuf, std::io::Error> {
    let complete = FILES.iter().all(|(name, bytes)| {
        let path = dir.join(name);
        std::fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64)
            && crate::files::read_bytes(&path, bytes.len() as u64).is_ok_and(|b| b == *bytes)
    });
    if !complete {
        std::fs::create_dir_all(dir)?;
        for (name, bytes) in FILES {
            let tmp = dir.join(format!(".{name}.{}", std::process::id()));
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, dir.join(name))?;
        }
        tracing::info!(dir = %dir.display(), "unpacked the embedded default model");
    }
    Ok(dir.to_path_buf())
}
