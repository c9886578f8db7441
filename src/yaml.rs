//! Writing YAML the way manifests are written (the CRD, `apply`'s printed objects).

/// `value` as a YAML document, the way manifests are written: block style, multi-line strings as literal
/// blocks, long lines never folded.
pub fn to_yaml<T: serde::Serialize>(value: &T) -> Result<String, String> {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.folded_wrap_chars = usize::MAX;
    serde_saphyr::to_string_with_options(value, options).map_err(|e| e.to_string())
}
