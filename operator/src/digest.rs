//! Content digests: one helper for every hash the operator names things by (revisions, config
//! keys, source and Secret versions).

use sha2::{Digest, Sha256};

/// The first `len` hex digits of the SHA-256 of `bytes` (at most 64).
pub fn short_hex(bytes: &[u8], len: usize) -> String {
    let mut hex = ::hex::encode(Sha256::digest(bytes));
    hex.truncate(len);
    hex
}

/// The full SHA-256 of `bytes`, in hex.
pub fn hex(bytes: &[u8]) -> String {
    short_hex(bytes, 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_sha256_hex() {
        assert_eq!(
            hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(short_hex(b"abc", 10), "ba7816bf8f");
    }
}
