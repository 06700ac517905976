//! Local answers: an RFC 9457 `application/problem+json` body with the
//! machine-readable `reason` (and `policy`) as extension members, and the
//! same reason in the `x-causeway-deny-reason` header.

use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use crate::headers::DENY_REASON;

/// A problem body.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Problem<'a> {
    #[serde(rename = "type")]
    pub(crate) type_: &'a str,
    pub(crate) title: &'a str,
    pub(crate) status: u16,
    pub(crate) detail: &'a str,
    pub(crate) reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) policy: Option<&'a str>,
}

/// Answers with `problem` (and `Retry-After` when given).
pub(crate) async fn respond_problem(
    session: &mut Session,
    problem: &Problem<'_>,
    retry_after: Option<u32>,
) -> pingora::Result<()> {
    let body = serde_json::to_vec(problem).unwrap_or_default();
    let mut resp = ResponseHeader::build(problem.status, Some(4))?;
    resp.insert_header(http::header::CONTENT_TYPE, "application/problem+json")?;
    resp.insert_header(http::header::CONTENT_LENGTH, body.len())?;
    resp.insert_header(DENY_REASON, problem.reason)?;
    if let Some(s) = retry_after {
        resp.insert_header(http::header::RETRY_AFTER, s)?;
    }
    session.write_response_header(Box::new(resp), false).await?;
    session
        .write_response_body(Some(bytes::Bytes::from(body)), true)
        .await?;
    Ok(())
}

/// Answers `status` for a failure that is not a policy decision (bad
/// framing, upstream errors).
pub(crate) async fn respond_error(
    session: &mut Session,
    status: u16,
    reason: &str,
    detail: &str,
) -> pingora::Result<()> {
    let type_ = format!("https://causeway.dev/problems/gateway/{reason}");
    let problem = Problem {
        type_: &type_,
        title: reason,
        status,
        detail,
        reason,
        policy: None,
    };
    respond_problem(session, &problem, None).await
}

/// Answers 429 with `Retry-After`.
pub(crate) async fn respond_rate_limited(
    session: &mut Session,
    retry_after_secs: u32,
) -> pingora::Result<()> {
    let problem = Problem {
        type_: "https://causeway.dev/problems/gateway/rate_limited",
        title: "rate_limited",
        status: 429,
        detail: "local rate limit exceeded",
        reason: "rate_limited",
        policy: None,
    };
    respond_problem(session, &problem, Some(retry_after_secs)).await
}
