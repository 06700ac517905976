//! Kubernetes object metadata rules (apimachinery `IsQualifiedName`,
//! `IsValidLabelValue`, `ValidateAnnotations`) for the labels and
//! annotations an export asks to be copied onto the `ServiceImport` of every
//! importing cluster. A map that breaks them would make every importing
//! agent's create answer 422, so the federation API and the static
//! discovery file refuse it up front, and importing agents drop what is left
//! over from older data.

use std::collections::BTreeMap;

use super::names::check_subdomain;

/// Longest name part of a qualified name and longest label value.
const MAX_NAME: usize = 63;
/// Kubernetes' limit on the total size of an object's annotations (keys
/// plus values), `TotalAnnotationSizeLimitB`.
pub const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

const NAME_RULE: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

fn name_chars_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let inner = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.');
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() && b.iter().all(inner)
        }
        _ => true,
    }
}

/// Checks a Kubernetes qualified name (a label or annotation key): an
/// optional DNS subdomain prefix and `/`, then a name part of 1..=63
/// characters of `[A-Za-z0-9_.-]` starting and ending alphanumeric.
pub fn check_qualified_name(key: &str) -> Result<(), String> {
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                return Err("prefix part must be non-empty".into());
            }
            check_subdomain("prefix", prefix)
                .map_err(|e| format!("prefix part {}", e.rule.replace("RFC 1123 ", "DNS-1123 ")))?;
            *name
        }
        _ => {
            return Err(format!(
                "a qualified name {NAME_RULE}, with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            ));
        }
    };
    if name.is_empty() {
        return Err("name part must be non-empty".into());
    }
    if name.len() > MAX_NAME {
        return Err(format!(
            "name part must be no more than {MAX_NAME} characters, got {}",
            name.len()
        ));
    }
    if !name_chars_ok(name) {
        return Err(format!("name part {NAME_RULE}"));
    }
    Ok(())
}

/// Checks a Kubernetes label value: empty, or 1..=63 characters of
/// `[A-Za-z0-9_.-]` starting and ending alphanumeric.
pub fn check_label_value(value: &str) -> Result<(), String> {
    if value.len() > MAX_NAME {
        return Err(format!(
            "must be no more than {MAX_NAME} characters, got {}",
            value.len()
        ));
    }
    if !name_chars_ok(value) {
        return Err(format!("a valid label value must be empty or {NAME_RULE}"));
    }
    Ok(())
}

/// The first broken rule of a label map, as `(key, message)`.
pub fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), (String, String)> {
    for (k, v) in labels {
        check_qualified_name(k)
            .map_err(|m| (k.clone(), format!("invalid label key {k:?}: {m}")))?;
        check_label_value(v).map_err(|m| {
            (
                k.clone(),
                format!("invalid value {v:?} of label {k:?}: {m}"),
            )
        })?;
    }
    Ok(())
}

/// The first broken rule of an annotation map, as `(key, message)`; the key
/// is empty when the total size is over [`MAX_ANNOTATIONS_BYTES`].
pub fn check_annotations(annotations: &BTreeMap<String, String>) -> Result<(), (String, String)> {
    let mut total = 0usize;
    for (k, v) in annotations {
        // Kubernetes validates annotation keys lowercased.
        check_qualified_name(&k.to_ascii_lowercase())
            .map_err(|m| (k.clone(), format!("invalid annotation key {k:?}: {m}")))?;
        total = total.saturating_add(k.len()).saturating_add(v.len());
    }
    if total > MAX_ANNOTATIONS_BYTES {
        return Err((
            String::new(),
            format!(
                "annotations may not be more than {MAX_ANNOTATIONS_BYTES} bytes in total (keys and values), got {total}"
            ),
        ));
    }
    Ok(())
}

/// The labels of `labels` that Kubernetes accepts (for data stored before
/// validation); the dropped keys are returned too.
pub fn valid_labels(labels: &BTreeMap<String, String>) -> (BTreeMap<String, String>, Vec<String>) {
    let mut dropped = Vec::new();
    let kept = labels
        .iter()
        .filter(|(k, v)| {
            let ok = check_qualified_name(k).is_ok() && check_label_value(v).is_ok();
            if !ok {
                dropped.push((*k).clone());
            }
            ok
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (kept, dropped)
}

/// The annotations of `annotations` that Kubernetes accepts: valid keys, and
/// none at all when their total size is over the limit.
pub fn valid_annotations(
    annotations: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, Vec<String>) {
    let mut dropped = Vec::new();
    let kept: BTreeMap<String, String> = annotations
        .iter()
        .filter(|(k, _)| {
            let ok = check_qualified_name(&k.to_ascii_lowercase()).is_ok();
            if !ok {
                dropped.push((*k).clone());
            }
            ok
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if check_annotations(&kept).is_err() {
        dropped.extend(kept.into_keys());
        return (BTreeMap::new(), dropped);
    }
    (kept, dropped)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn qualified_names_follow_apimachinery() {
        for ok in [
            "tier",
            "app.kubernetes.io/name",
            "A_b.c-D",
            "example.com/MyName",
            "9",
            &"a".repeat(63),
            &format!("{}/x", "a".repeat(63)),
        ] {
            check_qualified_name(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let cases = [
            ("", "name part must be non-empty"),
            ("bad key", "name part must consist"),
            ("-tier", "start and end with an alphanumeric"),
            ("tier.", "start and end with an alphanumeric"),
            ("/tier", "prefix part must be non-empty"),
            ("Example.com/tier", "prefix part"),
            ("a/b/c", "optional DNS subdomain prefix"),
            ("example.com/", "name part must be non-empty"),
        ];
        for (key, want) in cases {
            let e = check_qualified_name(key).unwrap_err();
            assert!(e.contains(want), "{key:?}: {e}");
        }
        let long = "a".repeat(64);
        assert!(
            check_qualified_name(&long)
                .unwrap_err()
                .contains("no more than 63")
        );
    }

    #[test]
    fn label_values() {
        for ok in ["", "web", "v1.2_3-x", &"z".repeat(63)] {
            check_label_value(ok).unwrap();
        }
        for bad in ["has space", "-x", "x-", "ünï", "a/b", &"z".repeat(64)] {
            assert!(check_label_value(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn maps_name_the_offending_key() {
        let labels: BTreeMap<String, String> = [
            ("tier".into(), "web".into()),
            ("Bad Key".into(), "x".into()),
        ]
        .into();
        let (key, msg) = check_labels(&labels).unwrap_err();
        assert_eq!(key, "Bad Key");
        assert!(msg.contains("invalid label key \"Bad Key\""), "{msg}");
        let (kept, dropped) = valid_labels(&labels);
        assert_eq!(kept.len(), 1);
        assert_eq!(dropped, vec!["Bad Key".to_owned()]);

        // Annotation values are free-form; keys are validated lowercased.
        let ann: BTreeMap<String, String> =
            [("Example.COM/Note".into(), "any text / at all".into())].into();
        check_annotations(&ann).unwrap();
        let huge: BTreeMap<String, String> =
            [("note".into(), "x".repeat(MAX_ANNOTATIONS_BYTES))].into();
        let (key, msg) = check_annotations(&huge).unwrap_err();
        assert_eq!(key, "");
        assert!(msg.contains("262144 bytes"), "{msg}");
        assert!(valid_annotations(&huge).0.is_empty());
    }
}
