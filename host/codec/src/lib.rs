//! The packed metadata encoding of the `airtruct:processor` contract, shared by the host and the guest SDK.
//!
//! A message's metadata crosses the wasm boundary as one byte buffer, so that a message with many pairs costs
//! about as much as copying its bytes. The buffer is a sequence of pairs, each a key then a value, each of those
//! a little-endian `u32` byte length followed by that many bytes of UTF-8. Keys are unique.

#![no_std]
extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Metadata of one message, kept in its packed wire form.
///
/// Reading walks the buffer (metadata is small: a handful of pairs); writing rebuilds it. A message that passes
/// through a processor untouched never decodes or re-encodes its metadata.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Metadata {
    buf: Vec<u8>,
}

/// The packed buffer is not valid: a length runs past its end, a string is not UTF-8, or a key is there twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidMetadata;

impl fmt::Display for InvalidMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "invalid packed metadata (a length past the end, a string that is not UTF-8, or a key twice)",
        )
    }
}

impl Metadata {
    /// No metadata.
    pub const fn new() -> Self {
        Self { buf: Vec::new() }
    }

    /// Wraps a packed buffer after checking it.
    pub fn from_bytes(buf: Vec<u8>) -> Result<Self, InvalidMetadata> {
        Self::check(&buf)?;
        Ok(Self { buf })
    }

    /// Checks a packed buffer: every length within the buffer, every string UTF-8, and no key twice (readers
    /// that take the first value and writers that replace it would otherwise see different values).
    pub fn check(buf: &[u8]) -> Result<(), InvalidMetadata> {
        let mut it = PairIter { rest: buf };
        let mut keys: Vec<&str> = Vec::new();
        while let Some(pair) = it.next_checked() {
            keys.push(pair?.0);
        }
        if keys.len() <= 16 {
            for (i, k) in keys.iter().enumerate() {
                if keys[..i].contains(k) {
                    return Err(InvalidMetadata);
                }
            }
        } else {
            keys.sort_unstable();
            if keys.windows(2).any(|w| w[0] == w[1]) {
                return Err(InvalidMetadata);
            }
        }
        Ok(())
    }

    /// Wraps a packed buffer from a trusted side of the contract without checking it; a malformed buffer reads
    /// as ending at its first bad pair.
    pub fn from_bytes_unchecked(buf: Vec<u8>) -> Self {
        Self { buf }
    }

    /// The packed buffer.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The packed buffer, by value.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Whether there is no pair.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The number of pairs.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Sets `key` to `value`, replacing any earlier value.
    pub fn insert(&mut self, key: &str, value: &str) {
        if self.get(key).is_some() {
            self.remove(key);
        }
        push_str(&mut self.buf, key);
        push_str(&mut self.buf, value);
    }

    /// Removes `key`; returns whether it was present.
    pub fn remove(&mut self, key: &str) -> bool {
        let Some((start, end)) = self.span_of(key) else {
            return false;
        };
        self.buf.drain(start..end);
        true
    }

    /// The pairs of a packed buffer, read in place.
    pub fn iter_bytes(buf: &[u8]) -> impl Iterator<Item = (&str, &str)> {
        PairIter { rest: buf }
    }

    /// The pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        PairIter { rest: &self.buf }
    }

    fn span_of(&self, key: &str) -> Option<(usize, usize)> {
        let base = self.buf.as_ptr() as usize;
        let mut it = PairIter { rest: &self.buf };
        loop {
            let start = it.rest.as_ptr() as usize - base;
            let (k, _) = it.next()?;
            if k == key {
                let end = it.rest.as_ptr() as usize - base;
                return Some((start, end));
            }
        }
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut m = Metadata::new();
        for (k, v) in iter {
            m.insert(k.as_ref(), v.as_ref());
        }
        m
    }
}

/// Builds a packed buffer from pairs without checking keys for duplicates (the caller guarantees they are
/// unique). Faster than repeated [`Metadata::insert`] for inputs that build metadata per message.
pub fn pack<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Metadata {
    let mut buf = Vec::new();
    for (k, v) in pairs {
        push_str(&mut buf, k);
        push_str(&mut buf, v);
    }
    Metadata { buf }
}

/// Owned pairs, for code that wants a plain map.
pub fn to_pairs(m: &Metadata) -> Vec<(String, String)> {
    m.iter().map(|(k, v)| (k.into(), v.into())).collect()
}

fn push_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

struct PairIter<'a> {
    rest: &'a [u8],
}

impl<'a> PairIter<'a> {
    fn take_str(&mut self) -> Result<&'a str, InvalidMetadata> {
        let (len, rest) = self.rest.split_first_chunk::<4>().ok_or(InvalidMetadata)?;
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err(InvalidMetadata);
        }
        let (s, rest) = rest.split_at(len);
        self.rest = rest;
        core::str::from_utf8(s).map_err(|_| InvalidMetadata)
    }

    fn next_checked(&mut self) -> Option<Result<(&'a str, &'a str), InvalidMetadata>> {
        if self.rest.is_empty() {
            return None;
        }
        Some(self.take_str().and_then(|k| Ok((k, self.take_str()?))))
    }
}

impl<'a> Iterator for PairIter<'a> {
    type Item = (&'a str, &'a str);

    /// Stops at the first malformed pair; buffers are checked when they enter a [`Metadata`].
    fn next(&mut self) -> Option<Self::Item> {
        match self.next_checked()? {
            Ok(pair) => Some(pair),
            Err(_) => {
                self.rest = &[];
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_pairs_and_replaces_keys() {
        let mut m: Metadata = [("a", "1"), ("b", "two")].into_iter().collect();
        assert_eq!(m.get("b"), Some("two"));
        m.insert("a", "uno");
        assert_eq!(m.get("a"), Some("uno"));
        assert_eq!(m.len(), 2);
        assert!(m.remove("b"));
        assert!(!m.remove("b"));
        let again = Metadata::from_bytes(m.clone().into_bytes()).unwrap();
        assert_eq!(again, m);
        assert_eq!(to_pairs(&again), [("a".into(), "uno".into())]);
    }

    #[test]
    fn rejects_truncated_and_non_utf8_buffers() {
        let good = pack([("key", "value")]).into_bytes();
        assert!(Metadata::from_bytes(good[..good.len() - 1].to_vec()).is_err());
        let mut bad = good.clone();
        bad[4] = 0xff;
        assert!(Metadata::from_bytes(bad).is_err());
        assert!(Metadata::from_bytes(Vec::new()).unwrap().is_empty());
    }

    #[test]
    fn rejects_a_key_given_twice() {
        // Found by the metadata fuzz target: the empty key twice, with different values.
        let mut twice = pack([("", "first")]).into_bytes();
        twice.extend(pack([("", "")]).into_bytes());
        assert_eq!(Metadata::from_bytes(twice), Err(InvalidMetadata));
        let many: Vec<(alloc::string::String, &str)> = (0..40)
            .map(|i| (alloc::format!("k{}", i % 39), "v"))
            .collect();
        let buf = pack(many.iter().map(|(k, v)| (k.as_str(), *v))).into_bytes();
        assert_eq!(Metadata::check(&buf), Err(InvalidMetadata));
        let unique = pack(many[..39].iter().map(|(k, v)| (k.as_str(), *v))).into_bytes();
        assert_eq!(Metadata::check(&unique), Ok(()));
    }

    proptest::proptest! {
        /// Any pairs, inserted one by one, make a buffer that decodes to the same pairs, the last value of a key
        /// winning.
        #[test]
        fn packed_pairs_decode_to_themselves(
            pairs in proptest::collection::vec(("[a-z_]{0,12}|\\PC{0,8}", "\\PC{0,40}"), 0..30),
        ) {
            let m: Metadata = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let back = Metadata::from_bytes(m.clone().into_bytes()).unwrap();
            proptest::prop_assert_eq!(&back, &m);
            let mut last = alloc::collections::BTreeMap::new();
            for (k, v) in &pairs {
                last.insert(k.as_str(), v.as_str());
            }
            proptest::prop_assert_eq!(back.len(), last.len());
            for (k, v) in last {
                proptest::prop_assert_eq!(back.get(k), Some(v));
            }
        }

        /// Any bytes are refused or decode to pairs that pack back to the same bytes.
        #[test]
        fn any_buffer_is_refused_or_round_trips(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            if let Ok(m) = Metadata::from_bytes(bytes.clone()) {
                let pairs = to_pairs(&m);
                let again = pack(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                proptest::prop_assert_eq!(again.as_bytes(), &bytes[..]);
            }
        }
    }
}
