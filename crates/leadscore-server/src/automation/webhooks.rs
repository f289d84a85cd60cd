//! Webhook delivery from the outbox: due deliveries are claimed (leased, so
//! a stopped instance's claims come back), sent with a signature, and their
//! outcome recorded; failures are retried with exponential backoff under the
//! same delivery id, so a receiver that is down for hours, or a restart of
//! this server, loses nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use leadscore_core::Timestamp;
use leadscore_store::automation::{Attempt, Claimed, Webhook};
use sha2::Sha256;

use super::config::WebhookSettings;
use crate::AppState;

/// The signature header: `sha256=<hex HMAC-SHA256 of the raw body>`.
pub const SIGNATURE_HEADER: &str = "X-Leadscore-Signature";
/// A round claims this many deliveries per sender slot.
const WAVES: usize = 8;

/// `sha256=` and the hex HMAC-SHA256 of `body` keyed with `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any size");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The body sent: the stored payload with the delivery's id first. The
/// same bytes on every try.
pub fn body(id: &str, payload: &str) -> String {
    let id = serde_json::to_string(id).expect("a string serializes");
    match payload.trim_start().strip_prefix('{') {
        Some(rest) if rest.trim_start().starts_with('}') => format!("{{\"id\":{id}}}"),
        Some(rest) => format!("{{\"id\":{id},{rest}"),
        None => format!("{{\"id\":{id}}}"),
    }
}

/// The wait before try `n + 1` after `n` failed tries.
pub fn backoff(settings: &WebhookSettings, failed: u32) -> Duration {
    let secs = settings
        .first_retry_seconds
        .saturating_mul(1u64 << failed.saturating_sub(1).min(30));
    Duration::from_secs(secs.min(settings.max_retry_seconds))
}

pub async fn deliver_loop(state: AppState) {
    let settings = state.automation.rules.settings.webhooks.clone();
    let poll = Duration::from_millis(state.automation.rules.settings.poll_millis);
    // TLS with rustls and the `ring` provider (no OpenSSL, no cmake); the
    // system's certificate store decides whom to trust.
    crate::install_tls();
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_millis(settings.timeout_millis))
        .pool_max_idle_per_host(settings.concurrency)
        .user_agent(concat!("leadscore/", env!("CARGO_PKG_VERSION")))
        .no_proxy()
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook HTTP client; webhooks are not delivered");
            return;
        }
    };
    loop {
        match round(&state, &client, &settings).await {
            Ok(0) => {
                tokio::select! {
                    _ = state.automation.outbox.notified() => {}
                    _ = tokio::time::sleep(poll) => {}
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "webhook delivery round failed; tried again shortly");
                tokio::time::sleep(poll).await;
            }
        }
    }
}

/// Claims a batch of due deliveries, sends them (`concurrency` at once) and
/// records the outcomes. Returns how many were sent.
async fn round(
    state: &AppState,
    client: &reqwest::Client,
    settings: &WebhookSettings,
) -> Result<usize, leadscore_store::StoreError> {
    let automation = state.store.automation();
    let now = state.now();
    // Set aside for as long as the round can take (every wave timing out),
    // and a minute more: only then may another instance take them up.
    let lease_for = Duration::from_millis(settings.timeout_millis) * WAVES as u32 + Duration::from_secs(60);
    let lease = Timestamp::from_micros(now.as_micros() + lease_for.as_micros() as i64);
    let claimed = automation.claim(now, lease, settings.concurrency * WAVES).await?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let hooks: Arc<HashMap<String, Webhook>> = Arc::new(
        automation
            .webhooks()
            .await?
            .into_iter()
            .map(|w| (w.id.clone(), w))
            .collect(),
    );
    let n = claimed.len();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(settings.concurrency));
    let mut set = tokio::task::JoinSet::new();
    for c in claimed {
        let (client, hooks, settings, state, semaphore) = (
            client.clone(),
            hooks.clone(),
            settings.clone(),
            state.clone(),
            semaphore.clone(),
        );
        set.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            send(&state, &client, &hooks, &settings, c).await
        });
    }
    let mut attempts = Vec::with_capacity(n);
    while let Some(done) = set.join_next().await {
        if let Ok(a) = done {
            attempts.push(a);
        }
    }
    let (ok, failed) = attempts.iter().fold(
        (0u64, 0u64),
        |(o, f), a| {
            if a.ok { (o + 1, f) } else { (o, f + 1) }
        },
    );
    state.metrics.webhooks(ok, failed);
    automation.record(&attempts).await?;
    Ok(n)
}

async fn send(
    state: &AppState,
    client: &reqwest::Client,
    hooks: &HashMap<String, Webhook>,
    settings: &WebhookSettings,
    c: Claimed,
) -> Attempt {
    let started = Instant::now();
    let failed_before = u32::try_from(c.attempts).unwrap_or(u32::MAX);
    let result: Result<u16, String> = match hooks.get(&c.webhook) {
        None => Err("the subscription is gone".into()),
        Some(hook) => {
            let body = body(&c.id, &c.payload);
            let sig = signature(&hook.secret, body.as_bytes());
            client
                .post(&hook.url)
                .header("content-type", "application/json")
                .header(SIGNATURE_HEADER, sig)
                .header("X-Leadscore-Delivery", &c.id)
                .header("X-Leadscore-Event", &c.kind)
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .map_err(describe)
        }
    };
    let at = state.now();
    let millis = started.elapsed().as_millis() as i64;
    let (status, error, ok) = match result {
        Ok(s) if (200..300).contains(&s) => (Some(i64::from(s)), None, true),
        Ok(s) => (
            Some(i64::from(s)),
            Some(format!("the receiver answered {s}")),
            false,
        ),
        Err(e) => (None, Some(e), false),
    };
    let tries = failed_before + 1;
    let retry_at = (!ok && tries < settings.max_attempts)
        .then(|| Timestamp::from_micros(at.as_micros() + backoff(settings, tries).as_micros() as i64));
    Attempt {
        lease: c.lease,
        delivery: c.id,
        at,
        status,
        error,
        millis,
        ok,
        retry_at,
    }
}

/// A transport error in words, without the URL's query (it may hold a key).
fn describe(e: reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_request() {
        "the request failed"
    } else {
        "the exchange failed"
    };
    format!("{what}: {}", e.without_url())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn body_puts_the_delivery_id_first() {
        assert_eq!(
            body("d1", r#"{"type":"lead.mql","lead":{"id":"a"}}"#),
            r#"{"id":"d1","type":"lead.mql","lead":{"id":"a"}}"#
        );
        let v: serde_json::Value = serde_json::from_str(&body("x\"y", "{}")).unwrap();
        assert_eq!(v["id"], "x\"y");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = WebhookSettings::default();
        let waits: Vec<u64> = (1..=10).map(|n| backoff(&s, n).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 640, 900, 900]);
    }
}
