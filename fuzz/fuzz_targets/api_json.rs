//! The daemon API's request bodies (`POST /v1/workloads`, `PUT /v1/projects/NAME`), read with
//! serde_json as the daemon does. Round trip: what deserialises serialises and reads back equal.
#![no_main]
use libfuzzer_sys::fuzz_target;
use skiff_api::{CreateRequest, ProjectRequest};

fn round_trip<T>(data: &[u8])
where
    T: serde::de::DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug,
{
    if let Ok(v) = serde_json::from_slice::<T>(data) {
        let bytes = serde_json::to_vec(&v).expect("API types serialise");
        let back: T = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{v:?} serialised as JSON it cannot read back: {e}"));
        assert_eq!(back, v);
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<CreateRequest>(data);
    round_trip::<ProjectRequest>(data);
});
