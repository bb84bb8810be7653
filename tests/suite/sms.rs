//! SMS end to end over real HTTP: `TwilioSms` against the Twilio sandbox, the outbox page,
//! and E.164 parsing as the rest of Vouch sees it.

use std::time::{Duration, Instant};

use secrecy::SecretString;
use vouch::config::SmsConfig;
use vouch::sandbox::sms::{SmsFault, SmsSandbox};
use vouch::sms::{E164, PhoneError, SmsError, SmsMessage, SmsProvider, TwilioSms};
use vouch::telemetry::Metrics;

const TO: &str = "+12065550101";

async fn sandbox() -> SmsSandbox {
    SmsSandbox::start().await.expect("the SMS sandbox starts")
}

/// A configuration pointing at the sandbox, with its credentials.
fn config_for(sandbox: &SmsSandbox) -> SmsConfig {
    SmsConfig {
        api_url: sandbox.api_url().parse().expect("sandbox URL"),
        account_sid: Some(sandbox.account_sid()),
        auth_token: Some(SecretString::from(sandbox.auth_token())),
        from: Some(sandbox.from_number()),
        default_region: "US".to_owned(),
        request_timeout_seconds: 5,
    }
}

fn provider(config: &SmsConfig) -> TwilioSms {
    TwilioSms::new(config, &Metrics::new())
}

fn message(to: &str, body: &str) -> SmsMessage {
    SmsMessage {
        to: E164::parse(to, "US").expect("a valid test number"),
        body: SecretString::from(body.to_owned()),
    }
}

#[tokio::test]
async fn send_reaches_the_outbox() {
    let sandbox = sandbox().await;
    let sms = provider(&config_for(&sandbox));
    let sent = sms
        .send(&message("(206) 555-0101", "Your Vouch code is 482913"))
        .await
        .expect("sent");
    assert!(
        sent.provider_message_id.starts_with("SM") && sent.provider_message_id.len() == 34,
        "{sent:?}"
    );

    let outbox = sandbox.messages();
    assert_eq!(outbox.len(), 1);
    let stored = &outbox[0];
    assert_eq!(stored.sid, sent.provider_message_id);
    assert_eq!(stored.to, TO);
    assert_eq!(stored.from, sandbox.from_number());
    assert_eq!(stored.body, "Your Vouch code is 482913");
    assert_eq!(sandbox.request_count(), 1);
    assert_eq!(sandbox.last_message_to(TO).as_ref(), Some(stored));
    assert_eq!(sandbox.messages_to("+442079460958"), vec![]);
    let waited = sandbox
        .wait_for_message_to(TO, Duration::from_millis(10))
        .await;
    assert_eq!(waited.as_ref(), Some(stored));
}

#[tokio::test]
async fn the_sent_message_can_be_fetched_from_the_api() {
    let sandbox = sandbox().await;
    let sent = provider(&config_for(&sandbox))
        .send(&message(TO, "hello"))
        .await
        .expect("sent");
    let url = format!(
        "{}2010-04-01/Accounts/{}/Messages/{}.json",
        sandbox.api_url(),
        sandbox.account_sid(),
        sent.provider_message_id
    );
    let client = reqwest::Client::new();
    let fetched: serde_json::Value = client
        .get(&url)
        .basic_auth(sandbox.account_sid(), Some(sandbox.auth_token()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["sid"], sent.provider_message_id.as_str());
    assert_eq!(fetched["status"], "delivered");
    assert_eq!(fetched["to"], TO);
    assert_eq!(fetched["direction"], "outbound-api");
    let unauthenticated = client.get(&url).send().await.unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let body: serde_json::Value = unauthenticated.json().await.unwrap();
    assert_eq!(body["code"], 20003);
    let other_account = client
        .post(format!(
            "{}2010-04-01/Accounts/AC00000000000000000000000000000000/Messages.json",
            sandbox.api_url()
        ))
        .basic_auth(sandbox.account_sid(), Some(sandbox.auth_token()))
        .form(&[("To", TO), ("From", "+15005550006"), ("Body", "b")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        other_account.status(),
        404,
        "the path must name the account"
    );
    let list = client
        .get(url.replace(&format!("/{}.json", sent.provider_message_id), ".json"))
        .basic_auth(sandbox.account_sid(), Some(sandbox.auth_token()))
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 405);
    let unknown = client
        .get(format!("{}nothing/here", sandbox.api_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let body: serde_json::Value = unknown.json().await.unwrap();
    assert_eq!(body["code"], 20404);
}

#[tokio::test]
async fn the_sandbox_validates_the_form_as_twilio_does() {
    let sandbox = sandbox().await;
    let url = format!(
        "{}2010-04-01/Accounts/{}/Messages.json",
        sandbox.api_url(),
        sandbox.account_sid()
    );
    let client = reqwest::Client::new();
    let from = sandbox.from_number();
    let long = "x".repeat(1601);
    let cases: Vec<(Vec<(&str, &str)>, u32)> = vec![
        (vec![("From", &from), ("Body", "b")], 21604),
        (vec![("To", TO), ("Body", "b")], 21603),
        (vec![("To", TO), ("From", &from)], 21602),
        (
            vec![("To", "2065550101"), ("From", &from), ("Body", "b")],
            21211,
        ),
        (
            vec![("To", TO), ("From", "+15551234567"), ("Body", "b")],
            21660,
        ),
        (vec![("To", TO), ("From", &from), ("Body", &long)], 21617),
    ];
    for (form, code) in cases {
        let response = client
            .post(&url)
            .basic_auth(sandbox.account_sid(), Some(sandbox.auth_token()))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{code}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], code);
        assert_eq!(body["status"], 400);
    }
    let oversized = client
        .post(&url)
        .basic_auth(sandbox.account_sid(), Some(sandbox.auth_token()))
        .body(vec![b'a'; 65 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status(), 413);
    assert!(sandbox.messages().is_empty());
}

#[tokio::test]
async fn wrong_token_is_auth_failed() {
    let sandbox = sandbox().await;
    let mut config = config_for(&sandbox);
    config.auth_token = Some(SecretString::from("not-the-token"));
    let err = provider(&config).send(&message(TO, "x")).await.unwrap_err();
    assert_eq!(err, SmsError::AuthFailed);
    assert_eq!(err.code(), "sms_auth_failed");
    assert!(sandbox.messages().is_empty());
}

#[tokio::test]
async fn missing_settings_are_not_configured_without_a_request() {
    let sandbox = sandbox().await;
    for strip in 0..3 {
        let mut config = config_for(&sandbox);
        match strip {
            0 => config.account_sid = None,
            1 => config.auth_token = None,
            _ => config.from = None,
        }
        let err = provider(&config).send(&message(TO, "x")).await.unwrap_err();
        assert_eq!(err, SmsError::NotConfigured);
    }
    assert_eq!(sandbox.request_count(), 0);
}

#[tokio::test]
async fn unreachable_number_is_undeliverable_and_masked() {
    let sandbox = sandbox().await;
    sandbox.set_unreachable(TO, 21614);
    let err = provider(&config_for(&sandbox))
        .send(&message(TO, "x"))
        .await
        .unwrap_err();
    match &err {
        SmsError::Undeliverable { masked, reason } => {
            assert_eq!(masked, "+1 ••• ••• ••01");
            assert!(reason.contains("mobile"), "{reason}");
        }
        other => panic!("expected Undeliverable, got {other:?}"),
    }
    let text = err.to_string();
    assert!(!text.contains("2065550101"), "{text}");
    assert!(!text.contains("555"), "{text}");
    assert!(!format!("{err:?}").contains("2065550101"));
    assert!(sandbox.messages().is_empty());

    sandbox.set_unreachable("+442079460958", 21610);
    let err = provider(&config_for(&sandbox))
        .send(&message("+44 20 7946 0958", "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SmsError::Undeliverable { masked, .. } if masked == "+44 •• •••• ••58"),
        "{err:?}"
    );
}

#[tokio::test]
async fn refused_to_number_is_invalid_number() {
    let sandbox = sandbox().await;
    sandbox.inject_fault(
        SmsFault::Status {
            status: 400,
            code: 21211,
            message: format!("The 'To' number {TO} is not a valid phone number."),
            retry_after: None,
        },
        1,
    );
    let err = provider(&config_for(&sandbox))
        .send(&message(TO, "x"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SmsError::InvalidNumber {
            masked: "+1 ••• ••• ••01".into()
        }
    );
    assert!(!err.to_string().contains("2065550101"));
}

#[tokio::test]
async fn throttled_then_delivered_after_retry_after() {
    let sandbox = sandbox().await;
    sandbox.inject_fault(
        SmsFault::Status {
            status: 429,
            code: 20429,
            message: "Too Many Requests".into(),
            retry_after: Some(1),
        },
        1,
    );
    let started = Instant::now();
    let sent = provider(&config_for(&sandbox))
        .send(&message(TO, "after a pause"))
        .await
        .expect("sent after the retry");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited Retry-After"
    );
    assert_eq!(sandbox.request_count(), 2);
    assert_eq!(sandbox.messages().len(), 1);
    assert_eq!(sandbox.messages()[0].sid, sent.provider_message_id);
}

#[tokio::test]
async fn still_throttled_is_throttled() {
    let sandbox = sandbox().await;
    sandbox.inject_fault(
        SmsFault::Status {
            status: 429,
            code: 20429,
            message: "Too Many Requests".into(),
            // Longer than the retry budget: Vouch gives up at once rather than wait.
            retry_after: Some(3600),
        },
        1,
    );
    let err = provider(&config_for(&sandbox))
        .send(&message(TO, "x"))
        .await
        .unwrap_err();
    assert_eq!(err, SmsError::Throttled);
    assert_eq!(sandbox.request_count(), 1);
}

#[tokio::test]
async fn server_error_is_unavailable_and_not_retried() {
    let sandbox = sandbox().await;
    sandbox.inject_fault(
        SmsFault::Status {
            status: 500,
            code: 20500,
            message: "Internal Server Error".into(),
            retry_after: None,
        },
        1,
    );
    let err = provider(&config_for(&sandbox))
        .send(&message(TO, "x"))
        .await
        .unwrap_err();
    assert_eq!(err, SmsError::Unavailable);
    assert_eq!(sandbox.request_count(), 1, "a 500 may have sent the SMS");
}

#[tokio::test]
async fn unreachable_provider_is_unavailable() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sandbox = sandbox().await;
    let mut config = config_for(&sandbox);
    config.api_url = format!("http://127.0.0.1:{port}/").parse().unwrap();
    let err = provider(&config).send(&message(TO, "x")).await.unwrap_err();
    assert_eq!(err, SmsError::Unavailable);
}

#[tokio::test]
async fn hang_is_timed_out() {
    let sandbox = sandbox().await;
    sandbox.inject_fault(SmsFault::Hang, 1);
    let mut config = config_for(&sandbox);
    config.request_timeout_seconds = 1;
    let started = Instant::now();
    let err = provider(&config).send(&message(TO, "x")).await.unwrap_err();
    assert_eq!(err, SmsError::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(sandbox.request_count(), 1, "a timeout is not retried");
}

#[tokio::test]
async fn other_refusals_are_rejected_with_the_code() {
    let sandbox = sandbox().await;
    let long = "x".repeat(1601);
    let err = provider(&config_for(&sandbox))
        .send(&message(TO, &long))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SmsError::Rejected {
            code: "21617".into()
        }
    );
}

#[tokio::test]
async fn wait_for_message_to_wakes_on_arrival() {
    let sandbox = sandbox().await;
    let none = sandbox
        .wait_for_message_to(TO, Duration::from_millis(50))
        .await;
    assert!(none.is_none());

    let waiter = {
        let sandbox = sandbox.clone();
        tokio::spawn(async move {
            sandbox
                .wait_for_message_to(TO, Duration::from_secs(2))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    provider(&config_for(&sandbox))
        .send(&message(TO, "late"))
        .await
        .unwrap();
    let got = waiter.await.unwrap().expect("woken by the message");
    assert_eq!(got.body, "late");
}

#[tokio::test]
async fn outbox_page_escapes_html_and_links_urls() {
    let sandbox = sandbox().await;
    let sms = provider(&config_for(&sandbox));
    sms.send(&message(TO, "<script>alert('x')</script> & more"))
        .await
        .unwrap();
    sms.send(&message(
        "+44 20 7946 0958",
        "Reset here: https://vouch.example/s/abc?x=1&y=2.",
    ))
    .await
    .unwrap();

    let page = reqwest::get(sandbox.outbox_url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Sandbox phone: SMS outbox"));
    assert!(page.contains("<meta http-equiv=\"refresh\" content=\"2\">"));
    assert!(!page.contains("<script>"));
    assert!(page.contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more"));
    assert!(page.contains(
        "<a href=\"https://vouch.example/s/abc?x=1&amp;y=2\">https://vouch.example/s/abc?x=1&amp;y=2</a>."
    ));
    assert!(page.contains("class=\"sms\" data-to=\"+12065550101\""));
    assert!(page.contains("class=\"sms-body\""));
    // Newest first.
    let uk = page.find("data-to=\"+442079460958\"").unwrap();
    let us = page.find("data-to=\"+12065550101\"").unwrap();
    assert!(uk < us);

    // `+` unencoded, as someone would type it.
    let filtered = reqwest::get(format!("{}?to=+12065550101", sandbox.outbox_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(filtered.contains("data-to=\"+12065550101\""));
    assert!(!filtered.contains("data-to=\"+442079460958\""));

    let still = reqwest::get(format!("{}?refresh=off", sandbox.outbox_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!still.contains("http-equiv=\"refresh\""));
    assert_eq!(
        sandbox.request_count(),
        2,
        "the outbox page is not an API request"
    );
}

#[test]
fn e164_parsing_and_masking() {
    let us = |raw: &str| E164::parse(raw, "US");
    for raw in [
        "+1 206 555 0101",
        "(206) 555-0101",
        "206.555.0101",
        "+12065550101",
    ] {
        let number = us(raw).unwrap();
        assert_eq!(number.as_str(), TO, "{raw}");
        assert_eq!(number.to_string(), TO);
        assert_eq!(number.masked(), "+1 ••• ••• ••01");
    }
    let uk = E164::parse("+44 20 7946 0958", "US").unwrap();
    assert_eq!(uk.as_str(), "+442079460958");
    assert_eq!(uk.masked(), "+44 •• •••• ••58");
    assert_eq!(
        E164::parse("020 7946 0958", "GB").unwrap().as_str(),
        "+442079460958"
    );
    assert_eq!(serde_json::to_value(&uk).unwrap(), "+442079460958");

    assert_eq!(us("not a number"), Err(PhoneError::NotANumber));
    assert_eq!(
        us("call 206 555 0101"),
        Err(PhoneError::UnexpectedCharacters)
    );
    assert_eq!(us("12"), Err(PhoneError::TooShort));
    assert_eq!(
        us("555 555 5555"),
        Err(PhoneError::InvalidForRegion {
            region: "US".into()
        })
    );
    assert!(matches!(
        E164::parse(TO, "Narnia"),
        Err(PhoneError::UnknownRegion { .. })
    ));
}
