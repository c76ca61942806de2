//! `relevance review serve`: the HTTP server (axum on a single-threaded tokio runtime).
//!
//! Security, for a tool that may show patient images:
//! - it binds to 127.0.0.1 unless told otherwise, and any other address needs a token;
//! - with a token, every request must carry it (`?token=`, the `x-review-token` header, or
//!   the cookie the first request with `?token=` sets);
//! - without one, only requests addressed to a loopback host name are answered, so a web page
//!   elsewhere cannot reach the server by rebinding its DNS name to 127.0.0.1;
//! - files are served by item id from the catalogue built at start ([`super::items`]); no
//!   part of a request becomes a path;
//! - request bodies are limited to [`MAX_BODY_BYTES`]; pages forbid any script but their own.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Json, Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::ReviewError;
use super::items::{Catalogue, Item, discover, is_item_id};
use super::page::{self, LastAnswer, RatePage};
use super::store::{NewAnswer, Store, validate_name};
use crate::methods::MapStyle;
use crate::report::heatmap;

/// Largest request body accepted (an answer is well under 1 KiB).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Name of the cookie that carries the token after the first request.
const TOKEN_COOKIE: &str = "review_token";

/// How `relevance review serve` runs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The run folders whose explanations are rated.
    pub runs: Vec<PathBuf>,
    /// The data folder a study below `runs` read (its input images are shown from there).
    pub data: Option<PathBuf>,
    /// The review database (created if missing).
    pub db: PathBuf,
    /// Address to bind.
    pub bind: IpAddr,
    /// Port (0: any free one).
    pub port: u16,
    /// Hide model and method; shuffle the order per rater.
    pub blind: bool,
    /// Require a random token on every request (implied for a non-loopback `bind`).
    pub token: bool,
    /// Seed of the per-rater order in blind mode.
    pub seed: u64,
}

struct AppState {
    catalogue: Catalogue,
    store: Mutex<Store>,
    run_label: String,
    blind: bool,
    seed: u64,
    token: Option<String>,
}

/// What a started server tells its caller: where to open it.
#[derive(Clone, Debug)]
pub struct Started {
    /// The URL to open (with the token, if one is required).
    pub url: String,
    /// Items offered.
    pub items: usize,
    /// The database.
    pub db: PathBuf,
}

/// Builds the catalogue, opens the database, binds, calls `ready` and serves until killed.
pub fn serve(options: &ServeOptions, ready: impl FnOnce(&Started)) -> Result<(), ReviewError> {
    if !options.bind.is_loopback() && !options.token {
        return Err(ReviewError::Invalid(format!(
            "binding to {} (not a loopback address) requires --token",
            options.bind
        )));
    }
    let catalogue = discover(&options.runs, options.data.as_deref())?;
    let mut store = Store::open(&options.db)?;
    let infos: Vec<_> = catalogue.items.iter().map(|i| i.info.clone()).collect();
    store.add_items(&infos)?;
    let token = options.token.then(new_token).transpose()?;
    let listener = TcpListener::bind(SocketAddr::new(options.bind, options.port)).map_err(|e| {
        ReviewError::Invalid(format!(
            "cannot bind {}:{}: {e}",
            options.bind, options.port
        ))
    })?;
    let address = listener
        .local_addr()
        .map_err(|e| ReviewError::Invalid(format!("cannot read the bound address: {e}")))?;
    let started = Started {
        url: match &token {
            Some(t) => format!("http://{address}/?token={t}"),
            None => format!("http://{address}/"),
        },
        items: catalogue.items.len(),
        db: options.db.clone(),
    };
    let state = Arc::new(AppState {
        run_label: options
            .runs
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        catalogue,
        store: Mutex::new(store),
        blind: options.blind,
        seed: options.seed,
        token,
    });
    ready(&started);
    run_server(listener, app(state))
}

fn run_server(listener: TcpListener, app: Router) -> Result<(), ReviewError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| ReviewError::Invalid(format!("cannot start the server: {e}")))?;
    runtime.block_on(async move {
        listener
            .set_nonblocking(true)
            .map_err(|e| ReviewError::Invalid(format!("cannot serve: {e}")))?;
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|e| ReviewError::Invalid(format!("cannot serve: {e}")))?;
        axum::serve(listener, app)
            .await
            .map_err(|e| ReviewError::Invalid(format!("server stopped: {e}")))
    })
}

/// 128 random bits from the operating system, in hex.
fn new_token() -> Result<String, ReviewError> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .map_err(|e| ReviewError::file("/dev/urandom", e))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(start))
        .route("/rate", get(rate))
        .route("/review.js", get(script))
        .route("/review.css", get(style))
        .route("/item/{id}/{kind}", get(item_file))
        .route("/api/answer", post(answer))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Checks the token (or, without one, that the request is addressed to a loopback name) and
/// adds the security headers to every response.
async fn guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let set_cookie = match &state.token {
        Some(token) => match presented_token(&request, token) {
            Some(from_query) => from_query,
            None => return refuse(StatusCode::FORBIDDEN, "a valid token is required"),
        },
        None => {
            if !loopback_host(request.headers()) {
                return refuse(
                    StatusCode::FORBIDDEN,
                    "this server answers only to localhost",
                );
            }
            false
        }
    };
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if set_cookie && let Some(token) = &state.token {
        let cookie = format!("{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.insert(header::SET_COOKIE, value);
        }
    }
    response
}

/// `Some(came_in_query)` when the request carries `token` in its query, header or cookie.
fn presented_token(request: &Request, token: &str) -> Option<bool> {
    let query = request.uri().query().unwrap_or("");
    if query
        .split('&')
        .any(|pair| pair.strip_prefix("token=") == Some(token))
    {
        return Some(true);
    }
    let headers = request.headers();
    if headers.get("x-review-token").and_then(|v| v.to_str().ok()) == Some(token) {
        return Some(false);
    }
    let in_cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .any(|c| {
            c.trim()
                .strip_prefix(TOKEN_COOKIE)
                .and_then(|r| r.strip_prefix('='))
                == Some(token)
        });
    in_cookie.then_some(false)
}

/// Whether the `Host` header names this machine's loopback (`127.0.0.1`, `[::1]`, `localhost`).
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, Html(page::error_page(message))).into_response()
}

async fn start(State(state): State<Arc<AppState>>) -> Response {
    Html(page::start_page(
        &state.run_label,
        state.catalogue.items.len(),
        state.blind,
    ))
    .into_response()
}

#[derive(Deserialize)]
struct RateQuery {
    rater: Option<String>,
}

async fn rate(State(state): State<Arc<AppState>>, Query(query): Query<RateQuery>) -> Response {
    let Some(rater) = query.rater.map(|r| r.trim().to_string()) else {
        return Redirect::to("/").into_response();
    };
    if let Err(e) = validate_name(&rater) {
        return refuse(StatusCode::BAD_REQUEST, &e.to_string());
    }
    let (answered, last) = {
        let store = state.store.lock().unwrap_or_else(|p| p.into_inner());
        match (store.answered_by(&rater), store.last_answer(&rater)) {
            (Ok(a), Ok(l)) => (a, l),
            (Err(e), _) | (_, Err(e)) => {
                return refuse(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
            }
        }
    };
    let total = state.catalogue.items.len();
    let order = rater_order(&state, &rater);
    let done = order
        .iter()
        .filter(|&&i| answered.contains(&state.catalogue.items[i].info.id))
        .count();
    let next = order
        .iter()
        .map(|&i| &state.catalogue.items[i])
        .find(|item| !answered.contains(&item.info.id));
    let Some(item) = next else {
        return Html(page::done_page(&rater, total)).into_response();
    };
    let page = RatePage {
        rater: &rater,
        item,
        position: done + 1,
        total,
        blind: state.blind,
        last: last.map(|(answer, tags)| LastAnswer { answer, tags }),
    };
    Html(page.render()).into_response()
}

/// The order a rater sees the items in: the catalogue's, or in blind mode one of the rater's
/// own (items sorted by a hash of seed, rater and item id), so raters do not share a sequence.
fn rater_order(state: &AppState, rater: &str) -> Vec<usize> {
    let mut order: Vec<usize> = (0..state.catalogue.items.len()).collect();
    if state.blind {
        let key = |i: &usize| {
            let mut hash = Sha256::new();
            hash.update(state.seed.to_le_bytes());
            hash.update((rater.len() as u64).to_le_bytes());
            hash.update(rater.as_bytes());
            hash.update(state.catalogue.items[*i].info.id.as_bytes());
            let digest = hash.finalize();
            u64::from_le_bytes(digest[..8].try_into().unwrap_or_default())
        };
        order.sort_by_cached_key(key);
    }
    order
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        page::SCRIPT,
    )
        .into_response()
}

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        page::STYLE,
    )
        .into_response()
}

async fn not_found() -> Response {
    refuse(StatusCode::NOT_FOUND, "no such page")
}

/// `/item/<id>/<input|overlay|map>`: a picture of a catalogued item.
async fn item_file(
    State(state): State<Arc<AppState>>,
    UrlPath((id, kind)): UrlPath<(String, String)>,
) -> Response {
    let item = if is_item_id(&id) {
        state.catalogue.get(&id)
    } else {
        None
    };
    let Some(item) = item else {
        return refuse(StatusCode::NOT_FOUND, "no such item");
    };
    let png = match kind.as_str() {
        "input" => match item.input_png() {
            Some(png) => png,
            None => return refuse(StatusCode::NOT_FOUND, "this item has no input picture"),
        },
        "overlay" => item.overlay_png(),
        "map" => raw_map_png(item),
        _ => return refuse(StatusCode::NOT_FOUND, "no such picture"),
    };
    match png {
        Ok(bytes) => ([(header::CONTENT_TYPE, "image/png")], bytes).into_response(),
        Err(e) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot read the picture: {e}"),
        ),
    }
}

/// The raw map alone, drawn as the explain run draws it (its style's colormap, 99.5th
/// percentile scale), without the input underneath.
fn raw_map_png(item: &Item) -> Result<Vec<u8>, String> {
    let (shape, values) = crate::data::npy::read_npy(&item.map_npy).map_err(|e| e.to_string())?;
    let (channels, height, width) = match shape[..] {
        [h, w] => (1, h, w),
        [c, h, w] | [1, c, h, w] => (c, h, w),
        _ => return Err(format!("map shape {shape:?} is not [C, H, W]")),
    };
    if channels * height * width != values.len() || height == 0 || width == 0 {
        return Err(format!("map shape {shape:?} does not match its values"));
    }
    let style = MapStyle::from_name(&item.style);
    let plane = heatmap::plane(&values, channels, style);
    let unit = heatmap::normalise(&plane, style, heatmap_scale());
    let picture = heatmap::colourise(
        &unit,
        width as u32,
        height as u32,
        heatmap::default_colormap(style),
    );
    heatmap::png_bytes(&picture).map_err(|e| e.to_string())
}

fn heatmap_scale() -> crate::report::Scale {
    crate::report::Scale::default()
}

/// The body of `POST /api/answer`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerBody {
    rater: String,
    item: String,
    answer: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    click: Option<[f64; 2]>,
    #[serde(default)]
    duration_ms: Option<i64>,
}

async fn answer(State(state): State<Arc<AppState>>, Json(body): Json<AnswerBody>) -> Response {
    if !is_item_id(&body.item) || state.catalogue.get(&body.item).is_none() {
        return (StatusCode::NOT_FOUND, "no such item").into_response();
    }
    let answer = NewAnswer {
        rater: body.rater.trim().to_string(),
        item: body.item,
        answer: body.answer,
        tags: body.tags,
        click: body.click.map(|[x, y]| (x, y)),
        duration_ms: body.duration_ms,
    };
    let stored = {
        let mut store = state.store.lock().unwrap_or_else(|p| p.into_inner());
        store.add_answer(&answer)
    };
    match stored {
        Ok(id) => Json(serde_json::json!({ "ok": true, "answer_id": id })).into_response(),
        Err(ReviewError::Invalid(message)) => (StatusCode::BAD_REQUEST, message).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
