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
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value: T = serde_path_to_error::deserialize(&mut de).map_err(json_error)?;
        de.end()
            .map_err(|e| ApiError::invalid("body", format!("trailing data: {e}")))?;
        Ok(Self(value))
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
