//! R-SEC-3: the HTTP/2 stack stays above the versions that fixed the known reset-flood,
//! CONTINUATION and header-size advisories (RUSTSEC-2023-0034, -2024-0003, -2024-0332).
//! `.ci/run` also runs `cargo audit` against the advisory database snapshot.

/// The lowest acceptable version of each crate.
const FLOORS: [(&str, [u64; 3]); 3] = [
    ("h2", [0, 4, 16]),
    ("hyper", [1, 12, 0]),
    ("tonic", [0, 14, 6]),
];

#[test]
fn the_http2_stack_is_at_or_above_its_security_floor() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
    for (name, floor) in FLOORS {
        let versions: Vec<[u64; 3]> = lock
            .split("[[package]]")
            .filter(|p| p.lines().any(|l| l == format!("name = \"{name}\"")))
            .filter_map(|p| {
                let v = p.lines().find_map(|l| l.strip_prefix("version = \""))?;
                let mut parts = v
                    .trim_end_matches('"')
                    .split(['.', '-'])
                    .map(|n| n.parse().unwrap_or(0));
                Some([parts.next()?, parts.next()?, parts.next()?])
            })
            .collect();
        assert!(!versions.is_empty(), "{name} is in the lock file");
        for v in versions {
            assert!(v >= floor, "{name} {v:?} is below the floor {floor:?}");
        }
    }
}
