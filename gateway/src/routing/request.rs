//! The routing request: which service, and the request attributes residency
//! classification may look at.

/// Read access to request headers, as the routing engine needs it.
///
/// Implemented for `http::HeaderMap` (the proxy), for `&[(&str, &str)]`,
/// arrays of pairs and `Vec<(String, String)>` (tests, `/debug/route`).
pub trait HeaderSource {
    /// Whether any value of header `name` (ASCII case-insensitive name)
    /// satisfies `pred`. Values that are not valid UTF-8 are skipped.
    fn any_value(&self, name: &str, pred: &mut dyn FnMut(&str) -> bool) -> bool;
}

/// Read access to the verified JWT claims of a request.
pub trait ClaimSource {
    /// Whether any string value of claim `name` satisfies `pred`. An array
    /// claim is tested element by element; numbers and booleans are tested in
    /// their JSON text form.
    fn any_value(&self, name: &str, pred: &mut dyn FnMut(&str) -> bool) -> bool;

    /// Like [`Self::any_value`], for the claims of the token `issuer`
    /// signed (an OIDC issuer a policy names); `None` is the caller's
    /// JWT-SVID. Sources that hold one token answer only for `None`.
    fn any_value_from(
        &self,
        issuer: Option<&str>,
        name: &str,
        pred: &mut dyn FnMut(&str) -> bool,
    ) -> bool {
        issuer.is_none() && self.any_value(name, pred)
    }

    /// Whether a token of `issuer` (`None`: a JWT-SVID) was presented but
    /// did not verify: its claims are never read, and the policy's
    /// `onUnverified` decides.
    fn unverified(&self, _issuer: Option<&str>) -> bool {
        false
    }
}

/// A header source without headers.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHeaders;

impl HeaderSource for NoHeaders {
    fn any_value(&self, _name: &str, _pred: &mut dyn FnMut(&str) -> bool) -> bool {
        false
    }
}

impl HeaderSource for &[(&str, &str)] {
    fn any_value(&self, name: &str, pred: &mut dyn FnMut(&str) -> bool) -> bool {
        self.iter()
            .any(|(n, v)| n.eq_ignore_ascii_case(name) && pred(v))
    }
}

impl<const N: usize> HeaderSource for [(&str, &str); N] {
    fn any_value(&self, name: &str, pred: &mut dyn FnMut(&str) -> bool) -> bool {
        HeaderSource::any_value(&self.as_slice(), name, pred)
    }
}

impl HeaderSource for Vec<(String, String)> {
    fn any_value(&self, name: &str, pred: &mut dyn FnMut(&str) -> bool) -> bool {
        self.iter()
            .any(|(n, v)| n.eq_ignore_ascii_case(name) && pred(v))
    }
}

impl HeaderSource for http::HeaderMap {
    fn any_value(&self, name: &str, pred: &mut dyn FnMut(&str) -> bool) -> bool {
        // `get_all` parses `name` as a header name, which lower-cases it.
        self.get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(pred)
    }
}

impl ClaimSource for &[(&str, &str)] {
    fn any_value(&self, name: &str, pred: &mut dyn FnMut(&str) -> bool) -> bool {
        self.iter().any(|(n, v)| *n == name && pred(v))
    }
}

impl ClaimSource for serde_json::Map<String, serde_json::Value> {
    fn any_value(&self, name: &str, pred: &mut dyn FnMut(&str) -> bool) -> bool {
        fn test(v: &serde_json::Value, pred: &mut dyn FnMut(&str) -> bool) -> bool {
            match v {
                serde_json::Value::String(s) => pred(s),
                serde_json::Value::Array(items) => items.iter().any(|i| match i {
                    serde_json::Value::Array(_) => false,
                    other => test(other, pred),
                }),
                serde_json::Value::Number(n) => pred(&n.to_string()),
                serde_json::Value::Bool(b) => pred(if *b { "true" } else { "false" }),
                serde_json::Value::Null | serde_json::Value::Object(_) => false,
            }
        }
        self.get(name).is_some_and(|v| test(v, pred))
    }
}

/// The headers of a request: any [`HeaderSource`], or a slice of pairs.
#[derive(Clone, Copy)]
pub enum Headers<'a> {
    /// No headers.
    None,
    /// `(name, value)` pairs.
    Pairs(&'a [(&'a str, &'a str)]),
    /// Any header source (e.g. `http::HeaderMap`).
    Source(&'a dyn HeaderSource),
}

impl HeaderSource for Headers<'_> {
    fn any_value(&self, name: &str, pred: &mut dyn FnMut(&str) -> bool) -> bool {
        match self {
            Headers::None => false,
            Headers::Pairs(p) => HeaderSource::any_value(p, name, pred),
            Headers::Source(s) => s.any_value(name, pred),
        }
    }
}

impl<'a> From<&'a [(&'a str, &'a str)]> for Headers<'a> {
    fn from(p: &'a [(&'a str, &'a str)]) -> Self {
        Headers::Pairs(p)
    }
}

impl<'a, T: HeaderSource> From<&'a T> for Headers<'a> {
    fn from(s: &'a T) -> Self {
        Headers::Source(s)
    }
}

/// How the request names its service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceTarget<'a> {
    /// A host header / authority, `<svc>.<ns>.svc.clusterset.local[:port]`
    /// (parsed with [`super::parse_host`]; a port in the host is used when
    /// [`RouteRequest::port`] is `None`).
    Host(&'a str),
    /// An already-resolved service (TCP egress ports, retries).
    Service {
        /// The namespace.
        namespace: &'a str,
        /// The service name.
        name: &'a str,
    },
}

/// One request to route. Cheap to build: everything is borrowed.
#[derive(Clone, Copy)]
pub struct RouteRequest<'a> {
    /// The service the request is addressed to.
    pub service: ServiceTarget<'a>,
    /// The service port requested; `None` for "any exported port".
    pub port: Option<u16>,
    /// The request headers (residency classification by header).
    pub headers: Headers<'a>,
    /// The verified JWT claims, if any (residency classification by claim).
    pub claims: Option<&'a dyn ClaimSource>,
    /// The verified source identity (SPIFFE ID), if any; informational.
    pub source: Option<&'a str>,
    /// A random value for the weighted pick; fixed in tests so that `decide`
    /// is deterministic.
    pub random: u64,
    /// Clusters already tried for this request (retries): never picked
    /// again. Excluding can only shrink the candidate set.
    pub exclude: &'a [&'a str],
}

impl std::fmt::Debug for RouteRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteRequest")
            .field("service", &self.service)
            .field("port", &self.port)
            .field("source", &self.source)
            .field("random", &self.random)
            .field("exclude", &self.exclude)
            .finish_non_exhaustive()
    }
}

impl<'a> RouteRequest<'a> {
    /// A request for a host with no headers, no claims and random value 0.
    pub fn host(host: &'a str) -> Self {
        Self::new(ServiceTarget::Host(host))
    }

    /// A request for `namespace/name` with no headers, no claims and random
    /// value 0.
    pub fn service(namespace: &'a str, name: &'a str) -> Self {
        Self::new(ServiceTarget::Service { namespace, name })
    }

    fn new(service: ServiceTarget<'a>) -> Self {
        Self {
            service,
            port: None,
            headers: Headers::None,
            claims: None,
            source: None,
            random: 0,
            exclude: &[],
        }
    }

    /// Sets the headers: `&http::HeaderMap`, `&[(&str, &str)]`, an array of
    /// pairs, or any other [`HeaderSource`].
    pub fn with_headers(mut self, headers: impl Into<Headers<'a>>) -> Self {
        self.headers = headers.into();
        self
    }

    /// Sets the verified JWT claims.
    pub fn with_claims(mut self, claims: &'a dyn ClaimSource) -> Self {
        self.claims = Some(claims);
        self
    }

    /// Sets the requested port.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Sets the random value for the weighted pick.
    pub fn with_random(mut self, random: u64) -> Self {
        self.random = random;
        self
    }

    /// Sets the clusters already tried (retries).
    pub fn with_exclude(mut self, exclude: &'a [&'a str]) -> Self {
        self.exclude = exclude;
        self
    }

    /// Sets the verified source identity.
    pub fn with_source(mut self, source: &'a str) -> Self {
        self.source = Some(source);
        self
    }
}
