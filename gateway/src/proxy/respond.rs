//! Local answers: a JSON body `{reason, policy, message}` with the
//! machine-readable `x-causeway-deny-reason` header.

use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use crate::headers::DENY_REASON;

#[derive(serde::Serialize)]
struct Body<'a> {
    reason: &'a str,
    policy: Option<&'a str>,
    message: &'a str,
}

/// Answers `status` with a JSON denial body.
pub(crate) async fn respond_json(
    session: &mut Session,
    status: u16,
    reason: &str,
    policy: Option<&str>,
    message: &str,
) -> pingora::Result<()> {
    respond(session, status, reason, policy, message, None).await
}

/// Answers 429 with `Retry-After`.
pub(crate) async fn respond_rate_limited(
    session: &mut Session,
    retry_after_secs: u32,
) -> pingora::Result<()> {
    respond(
        session,
        429,
        "rate_limited",
        None,
        "local rate limit exceeded",
        Some(retry_after_secs),
    )
    .await
}

async fn respond(
    session: &mut Session,
    status: u16,
    reason: &str,
    policy: Option<&str>,
    message: &str,
    retry_after: Option<u32>,
) -> pingora::Result<()> {
    let body = serde_json::to_vec(&Body {
        reason,
        policy,
        message,
    })
    .unwrap_or_default();
    let mut resp = ResponseHeader::build(status, Some(4))?;
    resp.insert_header(http::header::CONTENT_TYPE, "application/json")?;
    resp.insert_header(http::header::CONTENT_LENGTH, body.len())?;
    resp.insert_header(DENY_REASON, reason)?;
    if let Some(s) = retry_after {
        resp.insert_header(http::header::RETRY_AFTER, s)?;
    }
    session.write_response_header(Box::new(resp), false).await?;
    session
        .write_response_body(Some(bytes::Bytes::from(body)), true)
        .await?;
    Ok(())
}
