//! Pure: whether a cached copy of an object is older than the last status this process wrote for it.
//!
//! The watch cache lags the API server (about a second under load). A reconcile that starts from a copy older than
//! the operator's own last status write would decide again from facts it has already changed — say, re-decide an
//! existing room as "created earlier" and overwrite the adoption it recorded a moment before. The controller
//! remembers, per object UID, the `resourceVersion` its last status write returned (the floor), and a reconcile
//! whose copy is below the floor waits for the cache instead of acting.
//!
//! Kubernetes calls resource versions opaque; every kube-apiserver serves etcd revisions, which are integers that
//! grow with every write. A version that is not an integer makes no copy stale (the check is then off).

/// Whether a copy at `copy` (its `metadata.resourceVersion`) is older than `floor`.
pub fn stale_copy(copy: Option<&str>, floor: Option<u64>) -> bool {
    match (copy.and_then(parse), floor) {
        (Some(copy), Some(floor)) => copy < floor,
        _ => false,
    }
}

/// A resource version as the integer it is on every kube-apiserver.
pub fn parse(version: &str) -> Option<u64> {
    version.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_below_the_floor_is_stale() {
        let cases = [
            (Some("100"), Some(101), true),
            (Some("101"), Some(101), false),
            (Some("102"), Some(101), false),
            (Some("100"), None, false),
            (None, Some(101), false),
            (Some("not-a-number"), Some(101), false),
        ];
        for (copy, floor, stale) in cases {
            assert_eq!(stale_copy(copy, floor), stale, "copy {copy:?}, floor {floor:?}");
        }
    }
}
