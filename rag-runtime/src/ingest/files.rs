//! Source files: which ones are documents, their ids, and how they are read.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::rag::Document;

/// File types read as text.
pub const TEXT_EXTENSIONS: &[&str] = &[
    "md", "markdown", "mdx", "txt", "text", "rst", "adoc", "asciidoc",
];

/// What [`discover`] found: text files with their document ids, and the entries skipped because
/// they lead out of their source directory (id → where they lead).
#[derive(Debug, Default)]
pub struct Discovered {
    pub files: Vec<(String, PathBuf)>,
    pub outside: Vec<(String, PathBuf)>,
}

/// Every text file under the given paths, with its document id. A path that is a file is its
/// own document, named by its file name. Symbolic links are followed only while they stay inside
/// their source directory: a mounted ConfigMap's files are links into its hidden `..data`, but a
/// link on a volume to `/proc/self/environ` or `/var/run/secrets` must not become a document.
pub fn discover(paths: &[PathBuf]) -> Result<Discovered> {
    let mut found = Discovered::default();
    for root in paths {
        let io = |source| Error::Io {
            path: root.display().to_string(),
            source,
        };
        let meta = std::fs::metadata(root).map_err(io)?;
        if meta.is_file() {
            let name = root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            found.files.push((name, root.clone()));
            continue;
        }
        let real_root = root.canonicalize().map_err(io)?;
        let mut walker = walkdir::WalkDir::new(root)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
        while let Some(entry) = walker.next() {
            let entry = entry.map_err(|e| io(e.into()))?;
            let id = document_id(root, entry.path());
            if entry.path_is_symlink() && !inside(&real_root, entry.path()) {
                let target = std::fs::canonicalize(entry.path()).unwrap_or_default();
                found.outside.push((id, target));
                if entry.file_type().is_dir() {
                    walker.skip_current_dir();
                }
                continue;
            }
            if entry.file_type().is_file() && is_text(entry.path()) {
                found.files.push((id, entry.path().to_path_buf()));
            }
        }
    }
    Ok(found)
}

/// Whether `path`, every link resolved, is under `real_root` (itself resolved).
fn inside(real_root: &Path, path: &Path) -> bool {
    std::fs::canonicalize(path).is_ok_and(|p| p.starts_with(real_root))
}

/// The id of a file found under `root`: its relative path with `/` separators.
fn document_id(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
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
        let found = discover(&[dir.path().to_path_buf()]).unwrap().files;
        let ids: Vec<&str> = found.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["guides/a.md", "readme.txt"]);
        let single = discover(&[dir.path().join("guides/a.md")]).unwrap().files;
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
        let ids: Vec<&str> = found.files.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["a.md"]);
        assert!(found.outside.is_empty());
        let doc = read_document("a.md", &found.files[0].1).unwrap();
        assert_eq!(doc.metadata["title"], "A");
    }

    /// A volume holding links out of itself: to a file standing in for `/proc/self/environ`,
    /// and to a directory of secrets. Neither is read; both are reported.
    #[cfg(unix)]
    #[test]
    fn links_out_of_the_source_directory_are_skipped_and_reported() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("environ.txt"), "QDRANT_API_KEY=secret").unwrap();
        std::fs::create_dir(outside.path().join("secrets")).unwrap();
        std::fs::write(outside.path().join("secrets/token.md"), "secret").unwrap();
        let volume = tempfile::tempdir().unwrap();
        std::fs::write(volume.path().join("a.md"), "# A").unwrap();
        let link = |target: &Path, name: &str| {
            std::os::unix::fs::symlink(target, volume.path().join(name)).unwrap();
        };
        link(&outside.path().join("environ.txt"), "environ.md");
        link(&outside.path().join("secrets"), "docs");
        // A link that stays inside is still followed.
        link(&volume.path().join("a.md"), "b.md");
        let found = discover(&[volume.path().to_path_buf()]).unwrap();
        let ids: Vec<&str> = found.files.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["a.md", "b.md"]);
        let skipped: Vec<&str> = found.outside.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(skipped, ["docs", "environ.md"]);
        let real = outside.path().canonicalize().unwrap();
        assert_eq!(found.outside[1].1, real.join("environ.txt"));
    }
}
