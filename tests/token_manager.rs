//! The token manager against the in-process emulator: single-flight refresh under
//! concurrency (counted at the emulator), first sign-in, re-sign-in on `invalid_grant`.
#![cfg(all(feature = "client", feature = "emulator"))]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use cloudbase_ticket::Issuer;
use cloudbase_ticket::client::{Client, ClientError, TokenManager, TokenSet};
use cloudbase_ticket::emulator::{Emulator, RunningEmulator};
use common::main_credentials;

const TASKS: usize = 64;

async fn setup() -> (RunningEmulator, Client, Arc<Issuer>) {
    let creds = main_credentials();
    let server = Emulator::new(&creds)
        .unwrap()
        .start("127.0.0.1:0")
        .await
        .unwrap();
    let client = Client::builder()
        .origin(server.url())
        .env(server.env())
        .build()
        .unwrap();
    (server, client, Arc::new(Issuer::new(creds).unwrap()))
}

/// Make `tokens` look 7180 s old: 20 s left, inside the 30 s refresh margin.
fn nearly_expired(mut tokens: TokenSet) -> TokenSet {
    tokens.obtained_at = SystemTime::now() - Duration::from_secs(7180);
    tokens
}

async fn hammer(manager: &Arc<TokenManager>) -> Vec<String> {
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let manager = Arc::clone(manager);
        tasks.push(tokio::spawn(async move {
            manager.access_token().await.map(|t| t.expose().to_string())
        }));
    }
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.push(task.await.unwrap().unwrap());
    }
    tokens
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_callers_near_expiry_cause_exactly_one_refresh() {
    let (server, client, issuer) = setup().await;
    let tokens = client
        .sign_in_with_ticket(&issuer.create_ticket("user_0001").unwrap())
        .await
        .unwrap();
    let sub = tokens.sub.clone();
    let old_access = tokens.access_token.expose().to_string();
    let calls = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&calls);
    let source = move || -> Result<String, ClientError> {
        counted.fetch_add(1, Ordering::SeqCst);
        Err(ClientError::TicketSource("not expected".into()))
    };
    let manager = Arc::new(TokenManager::new(client, source).with_tokens(nearly_expired(tokens)));

    let handed_out = hammer(&manager).await;
    assert_eq!(handed_out.len(), TASKS);
    assert!(
        handed_out.iter().all(|t| t == &handed_out[0]),
        "one token for all"
    );
    assert_ne!(handed_out[0], old_access, "the token was refreshed");
    let stats = server.stats();
    assert_eq!(
        stats.refreshes, 1,
        "exactly one refresh for {TASKS} callers"
    );
    assert_eq!(stats.sign_ins, 1, "only the initial sign-in");
    assert_eq!(calls.load(Ordering::SeqCst), 0, "no ticket needed");
    let current = manager.current().await.unwrap();
    assert_eq!(current.sub, sub);

    // Fresh now: more calls cost nothing.
    hammer(&manager).await;
    assert_eq!(server.stats().refreshes, 1);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_use_signs_in_once_for_all_callers_through_issuer_source() {
    let (server, client, issuer) = setup().await;
    let manager = Arc::new(TokenManager::new(
        client.clone(),
        (issuer, "user_0042".to_string()),
    ));
    let handed_out = hammer(&manager).await;
    assert!(handed_out.iter().all(|t| t == &handed_out[0]));
    assert_eq!(server.stats().sign_ins, 1);
    let user = client.user_info(&handed_out[0]).await.unwrap();
    assert_eq!(user.custom_user_id(), Some("user_0042"));
    // Debug output of the manager and its tokens shows no token.
    let debug = format!("{manager:?} {:?}", manager.current().await.unwrap());
    assert!(!debug.contains(&handed_out[0]), "{debug}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_grant_signs_in_again_through_the_ticket_source_once() {
    let (server, client, issuer) = setup().await;
    let tokens = client
        .sign_in_with_ticket(&issuer.create_ticket("user_0007").unwrap())
        .await
        .unwrap();
    // Use the refresh token elsewhere: the manager's copy is now refused.
    client.refresh(tokens.refresh_token.expose()).await.unwrap();
    let sub = tokens.sub.clone();

    let calls = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&calls);
    let source_issuer = Arc::clone(&issuer);
    let source = move || {
        counted.fetch_add(1, Ordering::SeqCst);
        source_issuer.create_ticket("user_0007")
    };
    let manager = Arc::new(TokenManager::new(client, source).with_tokens(nearly_expired(tokens)));
    let handed_out = hammer(&manager).await;
    assert!(handed_out.iter().all(|t| t == &handed_out[0]));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "one new ticket");
    let stats = server.stats();
    assert_eq!(stats.sign_ins, 2, "initial + one re-sign-in");
    assert_eq!(
        stats.refreshes, 1,
        "only the refresh made outside the manager"
    );
    assert_eq!(stats.errors, 1, "the refused refresh");
    assert_eq!(manager.current().await.unwrap().sub, sub, "same user");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_source_and_server_errors_reach_the_caller() {
    let (server, client, issuer) = setup().await;
    let manager = TokenManager::new(client.clone(), || -> Result<String, String> {
        Err("backend down".to_string())
    });
    let e = manager.access_token().await.unwrap_err();
    assert_eq!(e, ClientError::TicketSource("backend down".into()));
    assert!(manager.current().await.is_none());

    // A source handing out a ticket for an invalid uid: the issuer's error, typed.
    let manager = TokenManager::new(client.clone(), (issuer, "no".to_string()));
    let e = manager.access_token().await.unwrap_err();
    assert!(
        matches!(e, ClientError::TicketSource(ref m) if m.contains("uid")),
        "{e}"
    );

    // A ticket the server refuses: the CloudBase error, and no tokens kept.
    let manager = TokenManager::new(client, || Ok::<_, String>("garbage".to_string()));
    let e = manager.access_token().await.unwrap_err();
    assert_eq!(e.api().unwrap().error, "invalid_argument");
    assert!(manager.current().await.is_none());
    server.shutdown().await.unwrap();
}
