//! Request extractors that reject with problem+json: strict JSON bodies with
//! a size cap, and `If-Match` / `If-None-Match` preconditions.

use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::{ApiError, json_error};
use causeway_api::wire::MERGE_PATCH_JSON;

/// The body cap, taken from the server state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimit(pub(crate) usize);

/// A JSON body parsed strictly (unknown fields rejected by the model), whose
/// errors name the offending field.
#[derive(Debug)]
pub(crate) struct StrictJson<T>(pub(crate) T);

impl<S, T> FromRequest<S> for StrictJson<T>
where
    S: Send + Sync,
    BodyLimit: FromRef<S>,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let BodyLimit(limit) = BodyLimit::from_ref(state);
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let essence = ct
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(ApiError::unsupported_media_type());
        }
        if let Some(len) = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            && len > limit
        {
            return Err(ApiError::payload_too_large(limit));
        }
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| ApiError::payload_too_large(limit))?;
        reject_duplicate_keys(&bytes)?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value: T = serde_path_to_error::deserialize(&mut de).map_err(json_error)?;
        de.end()
            .map_err(|e| ApiError::invalid("body", format!("trailing data: {e}")))?;
        Ok(Self(value))
    }
}

/// Refuses a body in which an object repeats a key (400 naming the key's
/// path). RFC 8259 leaves such documents' meaning to each parser (first or
/// last wins), so a proxy or WAF in front of the API could read a different
/// document than the one stored (SECURITY-FINDINGS.md F3). Syntax errors are
/// left to the typed decode, which names the field.
fn reject_duplicate_keys(bytes: &[u8]) -> Result<(), ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde::de::DeserializeSeed::deserialize(UniqueKeys(String::new()), &mut de) {
        Err(e) if e.is_data() => {
            let msg = e.to_string();
            let msg = msg.find(" at line ").map_or(msg.as_str(), |i| &msg[..i]);
            match msg.strip_prefix(DUPLICATE) {
                Some(path) => Err(ApiError::invalid(
                    path.to_owned(),
                    "duplicate object key (RFC 8259: names within an object should be unique)",
                )),
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

const DUPLICATE: &str = "duplicate key: ";

/// Walks any JSON value, failing on the first repeated object key; carries
/// the path of the value being walked.
struct UniqueKeys(String);

impl<'de> serde::de::DeserializeSeed<'de> for UniqueKeys {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for UniqueKeys {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        while seq
            .next_element_seed(UniqueKeys(format!("{}[{i}]", self.0)))?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.0.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.0)
            };
            if !seen.insert(key) {
                return Err(serde::de::Error::custom(format!("{DUPLICATE}{path}")));
            }
            map.next_value_seed(UniqueKeys(path))?;
        }
        Ok(())
    }
}

/// An RFC 7396 JSON merge patch: `Content-Type: application/merge-patch+json`
/// (415 otherwise), a JSON object (400 otherwise), read with the same size
/// cap and strictness as [`StrictJson`].
#[derive(Debug)]
pub(crate) struct MergePatch(pub(crate) serde_json::Value);

impl<S> FromRequest<S> for MergePatch
where
    S: Send + Sync,
    BodyLimit: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(mut req: Request, state: &S) -> Result<Self, ApiError> {
        let essence = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        if essence.as_deref() != Some(MERGE_PATCH_JSON) {
            return Err(ApiError::unsupported_media_type_for(MERGE_PATCH_JSON));
        }
        req.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        let StrictJson(patch) = StrictJson::<serde_json::Value>::from_request(req, state).await?;
        if !patch.is_object() {
            return Err(ApiError::invalid(
                "body",
                "a merge patch must be a JSON object (RFC 7396)",
            ));
        }
        Ok(Self(patch))
    }
}

/// Optimistic-concurrency preconditions of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preconditions {
    /// No precondition header.
    #[default]
    None,
    /// `If-None-Match: *`: create only.
    MustNotExist,
    /// `If-Match: *`: replace only.
    MustExist,
    /// `If-Match: "<rev>"`: the stored revision must be this one.
    Revision(u64),
    /// `If-Match` with a tag that can never match (RFC 9110: 412).
    NeverMatches,
}

/// The ETag of a revision.
pub fn etag(revision: u64) -> String {
    format!("\"{revision}\"")
}

fn parse_if_match(v: &str) -> Preconditions {
    let v = v.trim();
    if v == "*" {
        return Preconditions::MustExist;
    }
    // Only one strong tag is meaningful for a single-version resource.
    let tag = v.split(',').next().unwrap_or_default().trim();
    match tag
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .map(str::parse::<u64>)
    {
        Some(Ok(rev)) if !v.contains(',') => Preconditions::Revision(rev),
        _ => {
            // A list of tags: match any of them is not supported beyond the
            // first; anything unparsable never matches.
            Preconditions::NeverMatches
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Preconditions {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let im = parts.headers.get(header::IF_MATCH);
        let inm = parts.headers.get(header::IF_NONE_MATCH);
        match (im, inm) {
            (Some(_), Some(_)) => Err(ApiError::invalid(
                "If-None-Match",
                "If-Match and If-None-Match cannot be combined",
            )),
            (Some(v), None) => {
                let v = v
                    .to_str()
                    .map_err(|_| ApiError::invalid("If-Match", "not ASCII"))?;
                Ok(parse_if_match(v))
            }
            (None, Some(v)) => match v.to_str().map(str::trim) {
                Ok("*") => Ok(Self::MustNotExist),
                _ => Err(ApiError::invalid(
                    "If-None-Match",
                    "only `*` is supported on writes",
                )),
            },
            (None, None) => Ok(Self::None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_parses_strong_tags_only() {
        assert_eq!(parse_if_match("\"12\""), Preconditions::Revision(12));
        assert_eq!(parse_if_match("*"), Preconditions::MustExist);
        assert_eq!(parse_if_match("W/\"12\""), Preconditions::NeverMatches);
        assert_eq!(parse_if_match("12"), Preconditions::NeverMatches);
        assert_eq!(parse_if_match("\"1\", \"2\""), Preconditions::NeverMatches);
    }

    #[test]
    fn duplicate_keys_are_refused_with_their_path() {
        for (body, path) in [
            (r#"{"kind":"A","kind":"B"}"#, "kind"),
            (
                r#"{"spec":{"ports":[{"port":1},{"port":2,"port":3}]}}"#,
                "spec.ports[1].port",
            ),
        ] {
            let e = reject_duplicate_keys(body.as_bytes()).expect_err("a duplicate key is refused");
            assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST);
            assert_eq!(e.problem().errors[0].field, path, "{body}");
        }
        for ok in [r#"{"a":{"k":1},"b":{"k":1}}"#, "[1,2]", "{", r#"{"a":1}x"#] {
            assert!(reject_duplicate_keys(ok.as_bytes()).is_ok(), "{ok}");
        }
    }
}

/// Path parameters whose rejection (e.g. percent-encoded bytes that are not
/// UTF-8) is a problem+json 400 naming the path, like every other error.
#[derive(Debug)]
pub(crate) struct Path<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Self(v)),
            Err(e) => Err(ApiError::invalid("path", e.body_text())),
        }
    }
}
