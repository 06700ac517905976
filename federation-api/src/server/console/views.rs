//! The console's pages, rendered on the server as plain HTML. Every value
//! that comes from the catalog or a gateway goes through [`esc`]. Sections
//! marked `data-live` are replaced in place by the script on a live event;
//! the rest of the page (forms, focus) stays as the user left it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use time::OffsetDateTime;

use super::ExplainQuery;
use super::scrape::Observed;
use crate::server::AppState;
use causeway_api::model::{
    Cluster, ConditionStatus, ConditionType, PolicyKind, ResidencyPolicy, Resource, ServiceImport,
    TrafficPolicy, TrustBundle,
};

/// The console's views, in navigation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    Map,
    Traffic,
    Services,
    Residency,
    Trust,
}

impl View {
    const ALL: [View; 5] = [
        View::Map,
        View::Traffic,
        View::Services,
        View::Residency,
        View::Trust,
    ];

    fn path(self) -> &'static str {
        match self {
            View::Map => "/ui/map",
            View::Traffic => "/ui/traffic",
            View::Services => "/ui/services",
            View::Residency => "/ui/residency",
            View::Trust => "/ui/trust",
        }
    }

    fn title(self) -> &'static str {
        match self {
            View::Map => "Map",
            View::Traffic => "Traffic",
            View::Services => "Services",
            View::Residency => "Residency",
            View::Trust => "Trust",
        }
    }
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn head(title: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Causeway console</title>\
         <link rel=\"stylesheet\" href=\"/ui/assets/console.css\">\
         <script src=\"/ui/assets/console.js\" defer></script></head>",
        esc(title)
    )
}

/// The whole page around a view's body.
pub(crate) fn layout(view: View, body: &str, signed_in: bool) -> String {
    let mut nav = String::new();
    for (i, v) in View::ALL.iter().enumerate() {
        let current = if *v == view {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(
            nav,
            "<li><a href=\"{}\"{current} data-key=\"{}\">{}<kbd aria-hidden=\"true\">{}</kbd></a></li>",
            v.path(),
            i + 1,
            v.title(),
            i + 1
        );
    }
    let logout = if signed_in {
        "<form method=\"post\" action=\"/ui/logout\" class=\"logout\"><button type=\"submit\">Sign out</button></form>"
    } else {
        ""
    };
    format!(
        "{}<body data-view=\"{}\"><a class=\"skip\" href=\"#main\">Skip to content</a>\
         <header><span class=\"brand\">Causeway federation</span>\
         <nav aria-label=\"Views\"><ul>{nav}</ul></nav>\
         <span id=\"live\" class=\"live\" role=\"status\" aria-live=\"polite\">static</span>{logout}</header>\
         <main id=\"main\" tabindex=\"-1\"><h1>{}</h1>{body}</main>\
         <footer>Read-only. Keys: <kbd>1</kbd>–<kbd>5</kbd> switch views, <kbd>r</kbd> refreshes.</footer>\
         </body></html>\n",
        head(view.title()),
        view.title().to_lowercase(),
        view.title()
    )
}

/// The sign-in page (401/403).
pub(crate) fn login_page(why: &str) -> String {
    let msg = if why.is_empty() {
        String::new()
    } else {
        format!("<p class=\"error\" role=\"alert\">{}</p>", esc(why))
    };
    format!(
        "{}<body data-view=\"login\"><main id=\"main\"><h1>Causeway console</h1>\
         <p>Sign in with an API token that can read the catalog (scope <code>read</code>, \
         <code>cluster:&lt;id&gt;</code> or <code>admin</code>). The console only reads.</p>{msg}\
         <form method=\"post\" action=\"/ui/login\" id=\"login\">\
         <label for=\"token\">API token</label>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" required autofocus>\
         <button type=\"submit\">Sign in</button></form></main></body></html>\n",
        head("Sign in")
    )
}

/// A failure to read the catalog.
pub(crate) fn error_box(e: &str) -> String {
    format!(
        "<p class=\"error\" role=\"alert\">The catalog cannot be read: {}</p>",
        esc(e)
    )
}

fn badge(kind: &str, text: &str) -> String {
    // The text says the state; colour and the glyph only repeat it.
    let glyph = match kind {
        "ok" => "●",
        "warn" => "▲",
        "bad" => "■",
        _ => "○",
    };
    format!(
        "<span class=\"badge {kind}\"><span aria-hidden=\"true\">{glyph}</span> {}</span>",
        esc(text)
    )
}

fn ago(now: OffsetDateTime, t: OffsetDateTime) -> String {
    let s = (now - t).whole_seconds().max(0);
    match s {
        0..=119 => format!("{s}s ago"),
        120..=7199 => format!("{}m ago", s / 60),
        _ => format!("{}h ago", s / 3600),
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// What every view reads from the catalog.
struct Catalog {
    /// The newest mod revision among the catalog's resources: what a
    /// gateway that followed every change has at least (the store's own
    /// revision also counts heartbeat writes, which gateways never see).
    revision: u64,
    clusters: BTreeMap<String, Cluster>,
    imports: Vec<ServiceImport>,
    residency: Vec<ResidencyPolicy>,
    traffic: Vec<TrafficPolicy>,
    bundles: Vec<TrustBundle>,
    now: OffsetDateTime,
}

async fn read(s: &AppState) -> Result<Catalog, String> {
    let cat = &s.0.catalog;
    let e = |e: crate::server::ApiError| e.detail().to_owned();
    let mut revision = 0;
    for prefix in [
        cat.keys().clusters(),
        cat.keys().exports(),
        cat.keys().bundles(),
        cat.keys().all_policies(),
    ] {
        for st in cat.list_all(&prefix).await.map_err(e)? {
            revision = revision.max(st.revision);
        }
    }
    let live = cat.liveness().await.map_err(e)?;
    let clusters = cat
        .clusters(&live)
        .await
        .map_err(e)?
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let imports = cat.imports().await.map_err(e)?.into_values().collect();
    let mut residency = Vec::new();
    let mut traffic = Vec::new();
    for st in cat
        .list_all(&cat.keys().policies(PolicyKind::Residency))
        .await
        .map_err(e)?
        .into_iter()
        .chain(
            cat.list_all(&cat.keys().policies(PolicyKind::Traffic))
                .await
                .map_err(e)?,
        )
    {
        match st.resource {
            Resource::ResidencyPolicy(p) => residency.push(p),
            Resource::TrafficPolicy(p) => traffic.push(p),
            _ => {}
        }
    }
    let bundles = cat
        .list_all(&cat.keys().bundles())
        .await
        .map_err(e)?
        .into_iter()
        .filter_map(|st| match st.resource {
            Resource::TrustBundle(b) => Some(b),
            _ => None,
        })
        .collect();
    Ok(Catalog {
        revision,
        clusters,
        imports,
        residency,
        traffic,
        bundles,
        now: OffsetDateTime::now_utc(),
    })
}

fn gateways_note(o: &Observed) -> String {
    let mut out = String::new();
    if !o.configured {
        out.push_str(
            "<p class=\"note\">No gateway admin endpoints are configured \
             (<code>console.gatewayAdminsFile</code>): gateway-side figures are not shown.</p>",
        );
    }
    if let Some(e) = &o.file_error {
        let _ = write!(
            out,
            "<p class=\"error\" role=\"alert\">Gateway admins file: {}</p>",
            esc(e)
        );
    }
    out
}

/// Map: clusters grouped by jurisdiction and region.
pub(crate) async fn map(s: &AppState) -> Result<String, String> {
    let c = read(s).await?;
    let o = s.0.console.observe().await;
    let mut groups: BTreeMap<(String, String), Vec<&Cluster>> = BTreeMap::new();
    for cl in c.clusters.values() {
        let j = cl
            .spec
            .jurisdictions
            .first()
            .cloned()
            .unwrap_or_else(|| "(no jurisdiction)".into());
        groups
            .entry((j, cl.spec.region.clone()))
            .or_default()
            .push(cl);
    }
    let mut out = String::new();
    let connected = c
        .clusters
        .values()
        .filter(|cl| cl.status.as_ref().is_some_and(|s| s.connected))
        .count();
    let _ = write!(
        out,
        "<section id=\"map-summary\" data-live><p class=\"summary\">{} clusters, {connected} connected · catalog at revision {} · heartbeat TTL {}s</p>{}</section>",
        c.clusters.len(),
        c.revision,
        s.0.config.heartbeat_ttl.as_secs(),
        gateways_note(&o)
    );
    out.push_str("<section id=\"map-groups\" data-live>");
    let mut last_j = None;
    for ((j, region), cls) in &groups {
        if last_j.as_deref() != Some(j.as_str()) {
            if last_j.is_some() {
                out.push_str("</div>");
            }
            let _ = write!(
                out,
                "<h2>Jurisdiction <span class=\"j\">{}</span></h2><div class=\"regions\">",
                esc(j)
            );
            last_j = Some(j.clone());
        }
        let _ = write!(
            out,
            "<article class=\"region\" aria-label=\"region {}\"><h3>Region {}</h3><ul class=\"clusters\">",
            esc(region),
            esc(region)
        );
        for cl in cls {
            out.push_str(&cluster_card(cl, &c, &o));
        }
        out.push_str("</ul></article>");
    }
    if last_j.is_some() {
        out.push_str("</div>");
    }
    if c.clusters.is_empty() {
        out.push_str("<p>No cluster has registered yet.</p>");
    }
    out.push_str("</section>");
    Ok(out)
}

fn cluster_card(cl: &Cluster, c: &Catalog, o: &Observed) -> String {
    let id = cl.id().to_string();
    let st = cl.status.clone().unwrap_or_default();
    let failing = o.probe_failing(&id);
    let (kind, label) = if !st.connected {
        ("bad", "stale")
    } else if !failing.is_empty() {
        ("warn", "probe failing")
    } else {
        ("ok", "connected")
    };
    let seen = st
        .last_heartbeat
        .map_or_else(|| "never".to_owned(), |t| ago(c.now, t));
    let mut rows = format!(
        "<dt>Gateway</dt><dd data-status=\"{label}\">{}</dd>\
         <dt>Last heartbeat</dt><dd>{}</dd>\
         <dt>Jurisdictions</dt><dd>{}</dd><dt>Zone</dt><dd>{}</dd><dt>Trust domain</dt><dd>{}</dd>",
        badge(kind, label),
        esc(&seen),
        esc(&cl.spec.jurisdictions.join(", ")),
        esc(&cl.spec.zone),
        esc(cl.spec.trust_domain.as_ref()),
    );
    if !failing.is_empty() {
        let _ = write!(
            rows,
            "<dt>Probe failing from</dt><dd>{}</dd>",
            esc(&failing.join(", "))
        );
    }
    match o.gateways.get(&id) {
        Some(g) => match (&g.error, g.catalog_revision) {
            (None, Some(rev)) => {
                let age = g
                    .catalog_age_seconds
                    .map_or_else(String::new, |a| format!(", loaded {a:.0}s ago"));
                let (state, lag) = if rev >= c.revision {
                    ("current", badge("ok", "current"))
                } else {
                    (
                        "behind",
                        badge("warn", &format!("behind: the catalog is at {}", c.revision)),
                    )
                };
                let _ = write!(
                    rows,
                    "<dt>Catalog revision</dt><dd data-catalog=\"{state}\">{rev} {lag}{}</dd>",
                    esc(&age)
                );
            }
            (Some(e), _) => {
                let _ = write!(
                    rows,
                    "<dt>Catalog revision</dt><dd>unknown: {}</dd>",
                    esc(e)
                );
            }
            (None, None) => rows.push_str("<dt>Catalog revision</dt><dd>not reported</dd>"),
        },
        None => rows.push_str("<dt>Catalog revision</dt><dd>unknown (no admin endpoint)</dd>"),
    }
    format!(
        "<li class=\"cluster {kind}\" data-cluster=\"{}\"><h4>{}</h4><dl>{rows}</dl></li>",
        esc(&id),
        esc(&id)
    )
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// Traffic: edges between clusters from the gateways' metrics.
pub(crate) async fn traffic(s: &AppState) -> Result<String, String> {
    let o = s.0.console.observe().await;
    let mut out = String::from("<section id=\"traffic\" data-live>");
    out.push_str(&gateways_note(&o));
    let window = o.window_seconds.map_or_else(
        || "two scrapes are needed for rates".into(),
        |w| format!("over the last {w:.1}s"),
    );
    let _ = write!(
        out,
        "<p class=\"summary\">Requests leaving each cluster's egress gateway, by destination cluster, {}.</p>",
        esc(&window)
    );
    if o.edges.is_empty() {
        out.push_str("<p>No traffic between clusters observed.</p>");
    } else {
        out.push_str(
            "<table><caption>Edges (source → destination)</caption><thead><tr>\
             <th scope=\"col\">Source</th><th scope=\"col\">Destination</th>\
             <th scope=\"col\" class=\"num\">Requests/s</th><th scope=\"col\" class=\"num\">Error rate (5xx)</th>\
             <th scope=\"col\" class=\"num\">p99</th></tr></thead><tbody>",
        );
        for e in &o.edges {
            let p99 = e
                .p99
                .map_or_else(|| "—".into(), |p| format!("{:.1} ms", p * 1000.0));
            let err = if e.error_rate > 0.01 {
                badge("bad", &pct(e.error_rate))
            } else {
                esc(&pct(e.error_rate))
            };
            let _ = write!(
                out,
                "<tr data-edge=\"{}→{}\"><td>{}</td><td>{}</td><td class=\"num\">{:.2}</td><td class=\"num\">{err}</td><td class=\"num\">{}</td></tr>",
                esc(&e.source),
                esc(&e.destination),
                esc(&e.source),
                esc(&e.destination),
                e.rps,
                esc(&p99)
            );
        }
        out.push_str("</tbody></table>");
    }
    let unreachable: Vec<String> = o
        .gateways
        .iter()
        .filter_map(|(c, g)| g.error.as_ref().map(|e| format!("{c}: {e}")))
        .collect();
    if !unreachable.is_empty() {
        out.push_str("<h2>Gateways not scraped</h2><ul>");
        for u in unreachable {
            let _ = write!(out, "<li>{}</li>", esc(&u));
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>");
    Ok(out)
}

/// Services: every import, who exports it, conflicts, weights, rollback.
pub(crate) async fn services(s: &AppState) -> Result<String, String> {
    let c = read(s).await?;
    let o = s.0.console.observe().await;
    let mut out = String::from("<section id=\"services\" data-live>");
    if c.imports.is_empty() {
        out.push_str("<p>No service is exported.</p>");
    }
    for imp in &c.imports {
        let svc = imp.service().to_string();
        let _ = write!(
            out,
            "<article class=\"service\" data-service=\"{}\"><h2>{}</h2>",
            esc(&svc),
            esc(&svc)
        );
        let ports: Vec<String> = imp
            .spec
            .ports
            .iter()
            .map(|p| format!("{}/{}", p.port, p.protocol))
            .collect();
        let _ = write!(
            out,
            "<p>Type {} · ports {}</p>",
            esc(&imp.spec.type_.to_string()),
            esc(&ports.join(", "))
        );
        out.push_str(
            "<table><caption>Exporting clusters</caption><thead><tr><th scope=\"col\">Cluster</th>\
             <th scope=\"col\">Region</th><th scope=\"col\">Jurisdictions</th><th scope=\"col\" class=\"num\">Ready</th>\
             <th scope=\"col\" class=\"num\">Weight</th><th scope=\"col\">State</th></tr></thead><tbody>",
        );
        for ic in &imp.spec.clusters {
            let state = if ic.stale {
                badge("bad", "stale")
            } else if ic.ready == 0 {
                badge("warn", "no ready endpoint")
            } else {
                badge("ok", "serving")
            };
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{state}</td></tr>",
                esc(ic.cluster.as_ref()),
                esc(&ic.region),
                esc(&ic.jurisdictions.join(", ")),
                ic.ready,
                ic.weight
            );
        }
        out.push_str("</tbody></table>");
        let conditions: Vec<_> = imp
            .status
            .as_ref()
            .map(|s| s.conditions.iter().collect())
            .unwrap_or_default();
        let conflicts: Vec<_> = conditions
            .iter()
            .filter(|c| c.type_ == ConditionType::Conflict && c.status == ConditionStatus::True)
            .collect();
        if conflicts.is_empty() {
            out.push_str("<p>Conflicts: none.</p>");
        } else {
            out.push_str("<ul class=\"conflicts\">");
            for cd in conflicts {
                let _ = write!(
                    out,
                    "<li>{} <strong>{}</strong>: {}</li>",
                    badge("bad", "conflict"),
                    esc(&cd.reason),
                    esc(&cd.message)
                );
            }
            out.push_str("</ul>");
        }
        for p in c.traffic.iter().filter(|p| p.spec.service == imp.service()) {
            if !p.spec.weights.is_empty() {
                let w: Vec<String> = p
                    .spec
                    .weights
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let _ = write!(
                    out,
                    "<p>Traffic policy <code>{}</code> weights: {}</p>",
                    esc(p.metadata.name.as_ref()),
                    esc(&w.join(", "))
                );
            }
            if let Some(g) = &p.spec.rollback_guard {
                let trips = o.rollback_trips.get(&svc).copied().unwrap_or(0.0);
                let state = if trips > 0.0 {
                    badge(
                        "bad",
                        &format!("tripped {trips:.0} times: canary weight pulled to 0"),
                    )
                } else {
                    badge("ok", "armed, not tripped")
                };
                let _ = write!(
                    out,
                    "<p>Rollback guard (policy <code>{}</code>): canary {}, max error rate {}, max p99 {} ms · {state}</p>",
                    esc(p.metadata.name.as_ref()),
                    esc(g.canary.as_ref()),
                    esc(&pct(g.max_error_rate.get())),
                    g.max_p99.as_millis()
                );
            }
        }
        out.push_str("</article>");
    }
    out.push_str("</section>");
    Ok(out)
}

/// Residency: policies, allowed clusters, denials, and the explanation.
pub(crate) async fn residency(s: &AppState, q: &ExplainQuery) -> Result<String, String> {
    let c = read(s).await?;
    let o = s.0.console.observe().await;
    let mut out = String::from("<section id=\"residency\" data-live>");
    out.push_str(&gateways_note(&o));
    if c.residency.is_empty() {
        out.push_str("<p>No residency policy.</p>");
    }
    for p in &c.residency {
        let allowed: Vec<&str> = c
            .clusters
            .values()
            .filter(|cl| p.spec.allows(&cl.spec.jurisdictions, &cl.spec.region))
            .map(|cl| cl.metadata.name.as_ref())
            .collect();
        let services = if p.spec.services.0.is_empty() {
            "every service".to_owned()
        } else {
            p.spec
                .services
                .0
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let applies = match &p.spec.match_ {
            None => "every request".to_owned(),
            Some(m) => {
                let src = m
                    .header
                    .as_ref()
                    .map(|h| format!("header {h}"))
                    .or_else(|| m.jwt_claim.as_ref().map(|j| format!("JWT claim {j}")))
                    .unwrap_or_default();
                format!("requests whose {src} is one of {}", m.values.join(", "))
            }
        };
        let _ = write!(
            out,
            "<article class=\"policy\" data-policy=\"{}\"><h2>Policy {}</h2><dl>\
             <dt>Services</dt><dd>{}</dd><dt>Applies to</dt><dd>{}</dd>\
             <dt>Allowed jurisdictions</dt><dd>{}</dd><dt>Allowed regions</dt><dd>{}</dd>\
             <dt>Allowed clusters</dt><dd>{}</dd></dl></article>",
            esc(p.metadata.name.as_ref()),
            esc(p.metadata.name.as_ref()),
            esc(&services),
            esc(&applies),
            esc(&p.spec.allowed_jurisdictions.join(", ")),
            esc(&p.spec.allowed_regions.join(", ")),
            if allowed.is_empty() {
                badge("bad", "none: every matching request is denied")
            } else {
                esc(&allowed.join(", "))
            }
        );
    }
    out.push_str("<h2>Residency denials</h2>");
    if o.residency_denials.is_empty() {
        out.push_str("<p>No residency denial reported by the gateways.</p>");
    } else {
        out.push_str(
            "<table id=\"denials\"><caption>Requests refused because residency left no allowed cluster</caption>\
             <thead><tr><th scope=\"col\">Gateway (cluster)</th><th scope=\"col\">Service</th><th scope=\"col\">Reason</th>\
             <th scope=\"col\" class=\"num\">Per minute</th><th scope=\"col\" class=\"num\">Since gateway start</th></tr></thead><tbody>",
        );
        for d in &o.residency_denials {
            let _ = write!(
                out,
                "<tr data-denial=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{:.1}</td><td class=\"num\">{:.0}</td></tr>",
                esc(&d.service),
                esc(&d.cluster),
                esc(&d.service),
                esc(&d.reason),
                d.per_minute,
                d.total
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str(
        "<p class=\"note\">Audit entries (who was denied, when) are in each gateway's access log; \
         the gateways expose counts only, so the console shows counts and reasons.</p></section>",
    );
    out.push_str(&explain_form(s, q).await);
    Ok(out)
}

async fn explain_form(s: &AppState, q: &ExplainQuery) -> String {
    let clusters = s.0.console.clusters().await;
    let mut out = String::from(
        "<section id=\"explain\" aria-labelledby=\"explain-h\"><h2 id=\"explain-h\">Why did this request go there?</h2>\
         <p>Asks the chosen cluster's gateway (<code>/debug/route</code>) how it routes a request now: \
         the same explanation <code>causewayctl explain</code> prints.</p>",
    );
    if clusters.is_empty() {
        out.push_str("<p class=\"note\">Needs gateway admin endpoints (<code>console.gatewayAdminsFile</code>).</p></section>");
        return out;
    }
    let chosen = q.cluster.as_deref().unwrap_or_default();
    let mut opts = String::new();
    for c in &clusters {
        let sel = if c == chosen { " selected" } else { "" };
        let _ = write!(opts, "<option{sel}>{}</option>", esc(c));
    }
    let _ = write!(
        out,
        "<form method=\"get\" action=\"/ui/residency#explain\" class=\"explain\">\
         <label for=\"x-cluster\">From cluster</label><select id=\"x-cluster\" name=\"cluster\">{opts}</select>\
         <label for=\"x-host\">Host</label><input id=\"x-host\" name=\"host\" required value=\"{}\" placeholder=\"ledger.payments.svc.clusterset.local\">\
         <label for=\"x-headers\">Headers (one <code>name: value</code> per line)</label>\
         <textarea id=\"x-headers\" name=\"headers\" rows=\"3\">{}</textarea>\
         <button type=\"submit\">Explain</button></form>",
        esc(q.host.as_deref().unwrap_or_default()),
        esc(q.headers.as_deref().unwrap_or_default())
    );
    if let (Some(cluster), Some(host)) = (&q.cluster, q.host.as_deref().filter(|h| !h.is_empty())) {
        let headers: Vec<String> = q
            .headers
            .as_deref()
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| match l.split_once(':') {
                Some((n, v)) => format!("{}:{}", n.trim(), v.trim()),
                None => l.to_owned(),
            })
            .collect();
        match s.0.console.admin_url(cluster).await {
            None => {
                let _ = write!(
                    out,
                    "<p class=\"error\" role=\"alert\">No admin endpoint is configured for {}.</p>",
                    esc(cluster)
                );
            }
            Some(url) => match super::scrape::fetch_route(&url, host, &headers).await {
                Ok(v) => {
                    out.push_str(&explanation(cluster, host, &v));
                }
                Err(e) => {
                    let _ = write!(
                        out,
                        "<p class=\"error\" role=\"alert\">The gateway of {} did not answer: {}</p>",
                        esc(cluster),
                        esc(&e)
                    );
                }
            },
        }
    }
    out.push_str("</section>");
    out
}

/// The gateway's explanation: a short reading of the decision, then the
/// JSON exactly as `/debug/route` returned it.
fn explanation(cluster: &str, host: &str, v: &serde_json::Value) -> String {
    let pretty = serde_json::to_string_pretty(v).unwrap_or_default();
    let mut summary = String::new();
    if let Some(obj) = v.as_object() {
        for key in [
            "decision", "outcome", "result", "tier", "cluster", "reason", "denied",
        ] {
            if let Some(x) = obj.get(key) {
                let text = match x {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let _ = write!(summary, "<dt>{}</dt><dd>{}</dd>", esc(key), esc(&text));
            }
        }
    }
    let summary = if summary.is_empty() {
        String::new()
    } else {
        format!("<dl class=\"decision\">{summary}</dl>")
    };
    format!(
        "<article id=\"explanation\" aria-live=\"polite\"><h3>{} from {}</h3>{summary}\
         <pre id=\"explanation-json\" tabindex=\"0\">{}</pre></article>",
        esc(host),
        esc(cluster),
        esc(&pretty)
    )
}

/// Trust: trust domains, bundle sequence and expiry.
pub(crate) async fn trust(s: &AppState) -> Result<String, String> {
    let c = read(s).await?;
    let mut out = String::from("<section id=\"trust\" data-live>");
    if c.bundles.is_empty() {
        out.push_str("<p>No trust bundle is published.</p>");
    }
    out.push_str(
        "<table><caption>Trust domains and their published bundles</caption><thead><tr>\
         <th scope=\"col\">Trust domain</th><th scope=\"col\">Owner cluster</th><th scope=\"col\" class=\"num\">Sequence</th>\
         <th scope=\"col\">X.509 authorities (expiry)</th><th scope=\"col\" class=\"num\">JWT keys</th><th scope=\"col\">Published</th></tr></thead><tbody>",
    );
    for b in &c.bundles {
        let mut cas = Vec::new();
        for a in b.spec.bundle.x509_authorities() {
            cas.push(match a.not_after() {
                Some(t) if t <= c.now => badge("bad", &format!("expired {}", rfc3339(t))),
                Some(t) if (t - c.now).whole_hours() < 24 => {
                    badge("warn", &format!("expires {}", rfc3339(t)))
                }
                Some(t) => esc(&format!("expires {}", rfc3339(t))),
                None => badge("warn", "unreadable certificate"),
            });
        }
        let published = b
            .metadata
            .created_at
            .map_or_else(String::new, |t| ago(c.now, t));
        let _ = write!(
            out,
            "<tr data-trust-domain=\"{}\"><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(b.metadata.name.as_ref()),
            esc(b.metadata.name.as_ref()),
            esc(b.spec.owner_cluster.as_ref()),
            b.spec.bundle.sequence(),
            if cas.is_empty() {
                "none".into()
            } else {
                cas.join("<br>")
            },
            b.spec.bundle.jwt_authorities().count(),
            esc(&published)
        );
    }
    out.push_str(
        "</tbody></table><p class=\"note\">A rotation publishes a bundle with a higher sequence \
         holding the old and the new authority; a revocation publishes one without the revoked authority.</p></section>",
    );
    Ok(out)
}
