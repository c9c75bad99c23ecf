//! Image references (`[registry[:port]/]path[:tag][@sha256:hex]`): typed by users, read from
//! archives' annotations and registries' answers. Round trip: the full form and the short
//! ("familiar") form a table shows both parse back to the same reference.
#![no_main]
use libfuzzer_sys::fuzz_target;
use skiff_image::Reference;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(r) = Reference::parse(s) else { return };
    let full = r.to_string();
    let again = Reference::parse(&full)
        .unwrap_or_else(|e| panic!("{s:?} parsed, but its full form {full:?} does not: {e}"));
    assert_eq!(again, r, "{s:?} -> {full:?}");
    let short = r.familiar();
    let again = Reference::parse(&short)
        .unwrap_or_else(|e| panic!("{s:?} parsed, but its short form {short:?} does not: {e}"));
    assert_eq!(again, r, "{s:?} -> {short:?}");
});
