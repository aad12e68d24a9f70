//! `--ingest-image-allow`: which images an index may run its ingest Job with. The Job reads the
//! namespace's Secrets by reference (embedding and Qdrant keys), so an arbitrary image there
//! would run with them; the operator's installer decides which images may, not each index.
//! Pure: an image reference and the list in, allowed or not out.

use std::fmt;

/// The allowed images: each entry is a repository (`ghcr.io/ragops/rag-runtime` allows every tag
/// and digest of it), an exact reference with a tag or digest, or a prefix ending in `*`
/// (`registry.example.com/ml/*`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList(Vec<String>);

impl AllowList {
    /// The list from `--ingest-image-allow` entries; empty means only the repository of the
    /// operator's own `--runtime-image`.
    pub fn new(entries: &[String], runtime_image: &str) -> Self {
        let entries: Vec<String> = entries
            .iter()
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty())
            .collect();
        match entries.is_empty() {
            true => Self(vec![repository(runtime_image).to_string()]),
            false => Self(entries),
        }
    }

    pub fn allows(&self, image: &str) -> bool {
        self.0.iter().any(|entry| matches(entry, image.trim()))
    }
}

impl fmt::Display for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(", "))
    }
}

/// An image reference without its tag or digest.
pub fn repository(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or_default();
    // A colon after the last slash starts the tag; one before it is a registry's port.
    match image.rfind(':') {
        Some(colon) if image[colon..].find('/').is_none() => &image[..colon],
        _ => image,
    }
}

fn matches(entry: &str, image: &str) -> bool {
    if let Some(prefix) = entry.strip_suffix('*') {
        return image.starts_with(prefix);
    }
    image == entry || repository(image) == entry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_images_run_and_the_default_is_the_runtimes_repository() {
        let default = AllowList::new(&[], "ghcr.io/ragops/rag-runtime:0.1.0");
        let custom = AllowList::new(
            &[
                "registry.example.com/ml/*".into(),
                "docker.io/acme/ingest:1.2".into(),
                "localhost:5000/rag-runtime".into(),
            ],
            "ghcr.io/ragops/rag-runtime:0.1.0",
        );
        let cases = [
            (&default, "ghcr.io/ragops/rag-runtime:0.2.0", true),
            (&default, "ghcr.io/ragops/rag-runtime@sha256:abc", true),
            (&default, "ghcr.io/ragops/rag-runtime", true),
            (&default, "ghcr.io/ragops/rag-runtime-evil:1", false),
            (&default, "ghcr.io/ragops/rag-runtime/evil:1", false),
            (&default, "docker.io/attacker/miner:latest", false),
            (&custom, "registry.example.com/ml/ingest:7", true),
            (&custom, "registry.example.com/other:7", false),
            (&custom, "docker.io/acme/ingest:1.2", true),
            (&custom, "docker.io/acme/ingest:1.3", false),
            (&custom, "localhost:5000/rag-runtime:9", true),
            (&custom, "ghcr.io/ragops/rag-runtime:0.1.0", false),
        ];
        for (list, image, want) in cases {
            assert_eq!(list.allows(image), want, "{image} against {list}");
        }
    }

    #[test]
    fn a_repository_drops_the_tag_and_digest_but_keeps_a_registry_port() {
        assert_eq!(repository("localhost:5000/a/b:1"), "localhost:5000/a/b");
        assert_eq!(repository("localhost:5000/a/b"), "localhost:5000/a/b");
        assert_eq!(repository("a/b@sha256:00"), "a/b");
        assert_eq!(repository("a/b:1@sha256:00"), "a/b");
    }
}
