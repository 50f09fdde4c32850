//! A login backend for CloudBase custom login: the server half of the flow on CloudBase's
//! custom-login page ("server-side issued ticket"). It checks the app's own users and hands the
//! browser a ticket, which the page gives to the CloudBase web SDK
//! (`auth.signInWithCustomTicket`, or `customAuthProvider().signIn` in js-sdk 1.x).
//!
//! * `POST /login` with `{"username": "...", "password": "..."}` → `200 {"ticket": "..."}`;
//!   unknown user or wrong password → `401`; a body that is not that JSON → `400`. Errors are
//!   `{"error": "..."}`.
//! * Anything else: files from the static folder (the login page).
//!
//! ```text
//! cargo run --features emulator --example login_server -- \
//!     --credentials tcb_custom_login.json --addr 127.0.0.1:3000 --static examples/login_page
//! ```
//!
//! Each option may also come from the environment: `LOGIN_CREDENTIALS` (a file;
//! without it the `TCB_CUSTOM_LOGIN_*` variables are read), `LOGIN_ADDR`, `LOGIN_STATIC_DIR`.
//! The first line on stdout is the URL. Test users: `alice` / `wonderland`, `bob` / `builder`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use cloudbase_ticket::{Credentials, Issuer};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tower_http::services::ServeDir;

/// One of the app's own users. The CloudBase uid is what the ticket carries: stable, and within
/// node-sdk's rule (4–32 of `[a-zA-Z0-9_-#@~=*(){}[]:.,<>+]`).
struct AppUser {
    username: &'static str,
    uid: &'static str,
    salt: &'static str,
    /// Hex SHA-256 of `salt + password`. A real app keeps users in its database and hashes
    /// passwords with a slow, memory-hard function (argon2id); the shape of the check is the same.
    password_sha256: &'static str,
}

const USERS: &[AppUser] = &[
    AppUser {
        username: "alice",
        uid: "app_user_alice",
        salt: "q9Vf2LxT7cWm4RzA",
        password_sha256: "e3220998106a55e405186537896ac3d65902cc2a033035f9bf2a988f41bb67a7",
    },
    AppUser {
        username: "bob",
        uid: "app_user_bob",
        salt: "H3kP8sYn1dGe6JuB",
        password_sha256: "9c4b24a0ac70078dd793eb0da39ae1846ffbd694f1be4bbf1e330e345aab0010",
    },
];

/// Checked instead when the username is unknown, so that both cases take the same time.
const NOBODY: AppUser = AppUser {
    username: "",
    uid: "",
    salt: "unknown-user-salt",
    password_sha256: "0000000000000000000000000000000000000000000000000000000000000000",
};

/// The CloudBase uid of `username` if `password` is theirs.
fn check_password(username: &str, password: &str) -> Option<&'static str> {
    let found = USERS.iter().find(|u| u.username == username);
    let user = found.unwrap_or(&NOBODY);
    let digest = Sha256::digest([user.salt.as_bytes(), password.as_bytes()].concat());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let matches: bool = hex.as_bytes().ct_eq(user.password_sha256.as_bytes()).into();
    (matches && found.is_some()).then_some(user.uid)
}

#[derive(Deserialize)]
struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Serialize)]
struct LoginAnswer {
    ticket: String,
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

async fn login(
    State(issuer): State<Arc<Issuer>>,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Response {
    let Ok(Json(request)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected a JSON body {\"username\": \"...\", \"password\": \"...\"}",
        );
    };
    let Some(uid) = check_password(&request.username, &request.password) else {
        return error(StatusCode::UNAUTHORIZED, "wrong username or password");
    };
    match issuer.create_ticket(uid) {
        Ok(ticket) => Json(LoginAnswer { ticket }).into_response(),
        // Never echo the key or the ticket; the uid is ours and valid, so this does not happen.
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "cannot issue a ticket"),
    }
}

/// The app: `POST /login`, and the files of `static_dir` for everything else.
pub fn app(issuer: Issuer, static_dir: impl Into<PathBuf>) -> Router {
    Router::new()
        .route("/login", post(login))
        .fallback_service(ServeDir::new(static_dir.into()))
        .with_state(Arc::new(issuer))
}

/// `--name VALUE` from the command line, else the environment variable `env`.
fn option(name: &str, env: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var(env).ok().filter(|v| !v.is_empty()))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("login_server: {message}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run() -> Result<(), String> {
    let credentials = match option("--credentials", "LOGIN_CREDENTIALS") {
        Some(path) => Credentials::from_file(&path),
        None => Credentials::from_env(),
    }
    .map_err(|e| e.to_string())?;
    let issuer = Issuer::new(credentials).map_err(|e| e.to_string())?;
    let addr: SocketAddr = option("--addr", "LOGIN_ADDR")
        .unwrap_or_else(|| "127.0.0.1:3000".into())
        .parse()
        .map_err(|e| format!("--addr: {e}"))?;
    let static_dir = option("--static", "LOGIN_STATIC_DIR")
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/examples/login_page").to_string());
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("http://{local}");
    axum::serve(listener, app(issuer, static_dir))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| format!("server failed: {e}"))
}
