//! The few plain HTTP calls the bed makes to its daemons (readiness probes, Prometheus and
//! Alertmanager APIs), all to loopback, with a global timeout and 4xx/5xx returned as data.

use std::time::Duration;

use anyhow::{Context, Result};

/// An agent with a 30 s overall timeout that does not turn HTTP error statuses into errors.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// GET `url`: status and body.
pub fn get(url: &str) -> Result<(u16, String)> {
    let mut response = agent()
        .get(url)
        .call()
        .with_context(|| format!("GET {url}"))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_string()
        .with_context(|| format!("GET {url}: reading the body"))?;
    Ok((status, body))
}

/// POST `body` as JSON to `url`: status and body.
pub fn post_json(url: &str, body: &serde_json::Value) -> Result<(u16, String)> {
    let mut response = agent()
        .post(url)
        .header("content-type", "application/json")
        .send(body.to_string())
        .with_context(|| format!("POST {url}"))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .with_context(|| format!("POST {url}: reading the body"))?;
    Ok((status, text))
}

/// Whether GET `url` answers 200 now (connection errors count as "not yet").
pub fn answers_ok(url: &str) -> bool {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .http_status_as_error(false)
        .build()
        .into();
    agent
        .get(url)
        .call()
        .is_ok_and(|r| r.status().as_u16() == 200)
}

/// Whether `url` answers HTTP within 2 s, whatever the status (connection errors and timeouts: no).
pub fn answers(url: &str) -> bool {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .http_status_as_error(false)
        .build()
        .into();
    agent.get(url).call().is_ok()
}
