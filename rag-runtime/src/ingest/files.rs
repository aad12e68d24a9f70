//! Source files: which ones are documents, their ids, and how they are read.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::rag::Document;

/// File types read as text.
pub const TEXT_EXTENSIONS: &[&str] = &[
    "md", "markdown", "mdx", "txt", "text", "rst", "adoc", "asciidoc",
];

/// Every text file under the given paths, with its document id. A path that is a file is its
/// own document, named by its file name.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    for root in paths {
        let meta = std::fs::metadata(root).map_err(|source| Error::Io {
            path: root.display().to_string(),
            source,
        })?;
        if meta.is_file() {
            let name = root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.push((name, root.clone()));
            continue;
        }
        // Links are followed: a mounted ConfigMap's files are symlinks into its hidden `..data`.
        let walker = walkdir::WalkDir::new(root)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
        for entry in walker {
            let entry = entry.map_err(|e| Error::Io {
                path: root.display().to_string(),
                source: e.into(),
            })?;
            if entry.file_type().is_file() && is_text(entry.path()) {
                let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
                let id = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                files.push((id, entry.path().to_path_buf()));
            }
        }
    }
    Ok(files)
}

fn is_text(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| TEXT_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// A file as a document; metadata records its path and, for Markdown, its first heading.
pub fn read_document(id: &str, path: &Path) -> Result<Document> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::Invalid(format!("{}: not UTF-8 text", path.display())))?;
    let mut metadata = Map::new();
    metadata.insert("path".into(), Value::String(id.to_string()));
    if let Some(title) = text.lines().find_map(|l| l.strip_prefix("# ")) {
        metadata.insert("title".into(), Value::String(title.trim().to_string()));
    }
    Ok(Document {
        id: id.to_string(),
        text,
        metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_names_documents_relative_to_their_source() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("guides/.hidden")).unwrap();
        std::fs::write(dir.path().join("guides/a.md"), "# A\n\ntext").unwrap();
        std::fs::write(dir.path().join("guides/.hidden/b.md"), "x").unwrap();
        std::fs::write(dir.path().join("readme.txt"), "x").unwrap();
        std::fs::write(dir.path().join("image.png"), [0u8, 1]).unwrap();
        let found = discover(&[dir.path().to_path_buf()]).unwrap();
        let ids: Vec<&str> = found.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["guides/a.md", "readme.txt"]);
        let single = discover(&[dir.path().join("guides/a.md")]).unwrap();
        assert_eq!(single[0].0, "a.md");
        let doc = read_document("guides/a.md", &found[0].1).unwrap();
        assert_eq!(doc.metadata["title"], "A");
    }

    /// A ConfigMap volume: visible names are symlinks into a hidden, timestamped directory.
    #[cfg(unix)]
    #[test]
    fn configmap_volumes_are_read_through_their_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let stamped = dir.path().join("..2026_11_25_01_00_00.123");
        std::fs::create_dir(&stamped).unwrap();
        std::fs::write(stamped.join("a.md"), "# A").unwrap();
        std::os::unix::fs::symlink(&stamped, dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/a.md", dir.path().join("a.md")).unwrap();
        let found = discover(&[dir.path().to_path_buf()]).unwrap();
        let ids: Vec<&str> = found.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["a.md"]);
        let doc = read_document("a.md", &found[0].1).unwrap();
        assert_eq!(doc.metadata["title"], "A");
    }
}
