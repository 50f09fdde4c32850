//! examples/login_server.rs over loopback HTTP: a good login gets a ticket that verifies for the
//! user's uid; wrong passwords and unknown users get the same 401; malformed bodies get 400; the
//! static page is served.
#![cfg(all(feature = "client", feature = "emulator"))]

mod common;

#[allow(dead_code)]
#[path = "../examples/login_server.rs"]
mod login_server;

use std::time::Duration;

use cloudbase_ticket::{Issuer, Verifier};
use common::main_credentials;
use serde_json::{Value, json};

async fn start() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = login_server::app(
        Issuer::new(main_credentials()).unwrap(),
        common::fixture("examples/login_page"),
    );
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, task)
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn post(url: &str, content_type: &str, body: String) -> (u16, Value) {
    let r = http()
        .post(format!("{url}/login"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    (status, r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_issues_a_ticket_that_verifies_and_refuses_the_rest() {
    let (url, task) = start().await;
    let verifier = Verifier::new(&main_credentials()).unwrap();

    for (username, password, uid) in [
        ("alice", "wonderland", "app_user_alice"),
        ("bob", "builder", "app_user_bob"),
    ] {
        let (status, answer) = post(
            &url,
            "application/json",
            json!({"username": username, "password": password}).to_string(),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        let ticket = answer["ticket"].as_str().unwrap();
        let verified = verifier.verify(ticket).expect("the ticket verifies");
        assert_eq!(verified.claims().uid, uid);
    }

    // Wrong password, unknown user, empty password, another user's password: one answer.
    for (username, password) in [
        ("alice", "Wonderland"),
        ("alice", "builder"),
        ("mallory", "wonderland"),
        ("alice", ""),
        ("", ""),
    ] {
        let (status, answer) = post(
            &url,
            "application/json",
            json!({"username": username, "password": password}).to_string(),
        )
        .await;
        assert_eq!(status, 401, "{username}");
        assert_eq!(answer, json!({"error": "wrong username or password"}));
    }

    // Malformed bodies.
    for (content_type, body) in [
        ("application/json", "{".to_string()),
        ("application/json", json!({"username": "alice"}).to_string()),
        (
            "application/json",
            json!({"username": 1, "password": "x"}).to_string(),
        ),
        ("application/json", String::new()),
        (
            "text/plain",
            json!({"username": "alice", "password": "wonderland"}).to_string(),
        ),
    ] {
        let (status, answer) = post(&url, content_type, body.clone()).await;
        assert_eq!(status, 400, "{content_type} {body}");
        assert!(
            answer["error"].as_str().unwrap().contains("JSON"),
            "{answer}"
        );
    }

    // The static page, and nothing but POST on /login.
    let page = http().get(format!("{url}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("fetch('/login'"));
    let get = http().get(format!("{url}/login")).send().await.unwrap();
    assert_eq!(get.status(), 405);
    task.abort();
}
