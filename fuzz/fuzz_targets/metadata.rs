//! The metadata codec at the boundary: any bytes a guest returns are either refused or decode to pairs, with no
//! key twice, that encode back to exactly those bytes.

#![no_main]

use airtruct_codec::{Metadata, pack, to_pairs};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Metadata::from_bytes(data.to_vec()) else {
        return;
    };
    let pairs = to_pairs(&m);
    let again = pack(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    assert_eq!(again.as_bytes(), data);
    for (k, v) in &pairs {
        assert_eq!(m.get(k), Some(v.as_str()));
    }
});
