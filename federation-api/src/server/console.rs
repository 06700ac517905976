//! The read-only web console at `/ui/`: server-rendered HTML pages (Map,
//! Traffic, Services, Residency, Trust), one embedded stylesheet and one
//! small script, live updates over Server-Sent Events fed by the catalog's
//! watch hub. No build step, nothing fetched from elsewhere: the assets are
//! compiled into the binary (docs/console.md says why).
//!
//! # Auth
//! The same tokens as the API, read scope (any token that may `GET`). A
//! browser cannot send `Authorization` on a navigation, so `POST /ui/login`
//! takes a token from a form, checks it, and keeps it in an `HttpOnly`,
//! `SameSite=Strict` cookie scoped to `/ui`; every console request verifies
//! it again (expiry included). `Authorization: Bearer` works too (scripts,
//! tests). The only forms that post are login and logout: the console has
//! no route that writes to the catalog.

mod scrape;
mod views;

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use futures::Stream;
use serde::Deserialize;
use tokio_stream::StreamExt;

pub(crate) use self::scrape::Scraper;
use super::AppState;
use super::routes::authenticate;
use crate::token::Principal;

/// Sent by the script on live refreshes.
const LIVE_HEADER: &str = "x-console-live";

/// The console's session cookie.
const COOKIE: &str = "causeway_console";

const CSS: &str = include_str!("console/assets/console.css");
const JS: &str = include_str!("console/assets/console.js");

/// The console routes (mounted under `/ui`).
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/map") }))
        .route("/ui/map", get(map))
        .route("/ui/traffic", get(traffic))
        .route("/ui/services", get(services))
        .route("/ui/residency", get(residency))
        .route("/ui/trust", get(trust))
        .route("/ui/events", get(events))
        .route("/ui/login", post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/assets/console.css", get(css))
        .route("/ui/assets/console.js", get(js))
        .with_state(state)
}

/// Why a console request is refused.
enum Refused {
    /// No or invalid credentials: the login page.
    Login(String),
    /// A valid token without read scope.
    Forbidden,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Login(why) => html(StatusCode::UNAUTHORIZED, views::login_page(&why)),
            Refused::Forbidden => html(
                StatusCode::FORBIDDEN,
                views::login_page(
                    "this token cannot read the catalog (needs read, cluster:<id> or admin scope)",
                ),
            ),
        }
    }
}

/// The token of a console request: `Authorization`, else the cookie.
fn caller(headers: &HeaderMap, state: &AppState) -> Result<Principal, Refused> {
    let mut h = HeaderMap::new();
    if let Some(a) = headers.get(header::AUTHORIZATION) {
        h.insert(header::AUTHORIZATION, a.clone());
    } else if let Some(t) = cookie(headers, COOKIE)
        && let Ok(v) = HeaderValue::from_str(&format!("Bearer {t}"))
    {
        h.insert(header::AUTHORIZATION, v);
    }
    let p = authenticate(&h, &state.0.authn).map_err(|e| {
        if headers.get(header::AUTHORIZATION).is_none() && cookie(headers, COOKIE).is_none() {
            Refused::Login(String::new())
        } else {
            Refused::Login(format!("sign in again: {}", e.detail()))
        }
    })?;
    if p.can_read() {
        Ok(p)
    } else {
        Err(Refused::Forbidden)
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Everything is same-origin; nothing inline runs.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
             img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

fn page(state: &AppState, view: views::View, body: Result<String, String>) -> Response {
    let signed_in = !matches!(state.0.authn, super::Authn::Disabled);
    match body {
        Ok(b) => html(StatusCode::OK, views::layout(view, &b, signed_in)),
        Err(e) => html(
            StatusCode::SERVICE_UNAVAILABLE,
            views::layout(view, &views::error_box(&e), signed_in),
        ),
    }
}

async fn map(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, Refused> {
    caller(&headers, &s)?;
    let body = views::map(&s).await;
    Ok(page(&s, views::View::Map, body))
}

async fn traffic(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, Refused> {
    caller(&headers, &s)?;
    let body = views::traffic(&s).await;
    Ok(page(&s, views::View::Traffic, body))
}

async fn services(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, Refused> {
    caller(&headers, &s)?;
    let body = views::services(&s).await;
    Ok(page(&s, views::View::Services, body))
}

/// The "why did this request go there" form.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ExplainQuery {
    /// The cluster whose gateway decides.
    #[serde(default)]
    pub(crate) cluster: Option<String>,
    /// The `Host` of the request.
    #[serde(default)]
    pub(crate) host: Option<String>,
    /// `name: value` lines.
    #[serde(default)]
    pub(crate) headers: Option<String>,
}

async fn residency(
    State(s): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<ExplainQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Refused> {
    caller(&headers, &s)?;
    // A live refresh replaces the live sections only: the explanation is
    // not asked again on every tick.
    let q = if headers.contains_key(LIVE_HEADER) {
        ExplainQuery::default()
    } else {
        q.map(|Query(q)| q).unwrap_or_default()
    };
    let body = views::residency(&s, &q).await;
    Ok(page(&s, views::View::Residency, body))
}

async fn trust(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, Refused> {
    caller(&headers, &s)?;
    let body = views::trust(&s).await;
    Ok(page(&s, views::View::Trust, body))
}

/// `GET /ui/events`: `change` after catalog changes (from the watch hub
/// every API watch shares; bursts coalesce into one), `tick` every
/// refresh period for what time alone changes (staleness, traffic rates).
/// Ends at server shutdown.
async fn events(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = caller(&headers, &s) {
        return match r {
            Refused::Forbidden => StatusCode::FORBIDDEN.into_response(),
            Refused::Login(_) => StatusCode::UNAUTHORIZED.into_response(),
        };
    }
    let watch = match super::watch::open(&s.0.catalog, None).await {
        Ok(w) => w,
        Err(e) => return e.into_response(),
    };
    let guard = s.0.metrics.watch_guard("console");
    let refresh = s.0.config.console.refresh;
    let stop = s.0.catalog.shutdown_token();
    let stream = live_stream(Box::pin(watch), refresh, stop.cancelled());
    let stream = stream.map(move |e| {
        let _held = &guard;
        e
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

type WatchItems = std::pin::Pin<Box<dyn Stream<Item = super::watch::Item> + Send>>;

/// Live events: `hello` at once, then `change` (coalesced) and `tick`.
fn live_stream(
    watch: WatchItems,
    refresh: Duration,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> impl Stream<Item = Result<Event, Infallible>> + Send {
    let mut tick = tokio::time::interval(refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> = Box::pin(stop);
    futures::stream::unfold(
        (watch, tick, stop, true),
        |(mut watch, mut tick, mut stop, first)| async move {
            let name = loop {
                tokio::select! {
                    () = &mut stop => return None,
                    _ = tick.tick() => break if first { "hello" } else { "tick" },
                    item = watch.next() => {
                        let item = item?;
                        if !is_change(&item) {
                            continue;
                        }
                        // Coalesce a burst (a cluster joining writes several keys).
                        let deadline = tokio::time::sleep(Duration::from_millis(200));
                        tokio::pin!(deadline);
                        loop {
                            tokio::select! {
                                () = &mut deadline => break,
                                more = watch.next() => if more.is_none() { break },
                            }
                        }
                        break "change";
                    }
                }
            };
            let e = Event::default().event(name).data(name);
            Some((Ok(e), (watch, tick, stop, false)))
        },
    )
}

fn is_change(item: &super::watch::Item) -> bool {
    use causeway_api::wire::WatchLine;
    match item {
        super::watch::Item::Line(l) => !matches!(
            l,
            WatchLine::Snapshot { .. } | WatchLine::Bookmark { .. } | WatchLine::Error { .. }
        ),
        super::watch::Item::Shared(_) => true,
    }
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    token: String,
}

/// `POST /ui/login`: checks the token and keeps it in the session cookie.
async fn login(
    State(s): State<AppState>,
    form: Result<axum::Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(axum::Form(f)) = form else {
        return Refused::Login("paste an API token".into()).into_response();
    };
    let token = f.token.trim();
    let mut h = HeaderMap::new();
    let Ok(v) = HeaderValue::from_str(&format!("Bearer {token}")) else {
        return Refused::Login("that is not a token".into()).into_response();
    };
    h.insert(header::AUTHORIZATION, v);
    let c = HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/ui; HttpOnly; SameSite=Strict"
    ));
    match (caller(&h, &s), c) {
        (Ok(_), Ok(c)) => {
            let mut r = Redirect::to("/ui/map").into_response();
            r.headers_mut().insert(header::SET_COOKIE, c);
            r
        }
        (Err(e), _) => e.into_response(),
        (_, Err(_)) => Refused::Login("that is not a token".into()).into_response(),
    }
}

/// `POST /ui/logout`: forgets the session cookie.
async fn logout() -> Response {
    let mut r = Redirect::to("/ui/map").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "causeway_console=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    r
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}
