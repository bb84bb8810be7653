//! Repository tests, run on SQLite and (when configured) PostgreSQL alike.

use crate::{backends, common};
use backends::{contains, raw_database_contents};
use chrono::{Duration, Utc};
use common::{TestDb, keyring, new_key};
use sea_orm::ConnectionTrait;
use sea_orm_migration::MigratorTrait;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;
use vouch::domain::{ActorKind, IntegrationKind, IntegrationStatus, MspPolicy, PsaKind};
use vouch::store::SEALED_COLUMNS;
use vouch::store::StoreError;
use vouch::store::crypto::{Keyring, SealedPlace};
use vouch::store::migration::Migrator;
use vouch::store::{audit::*, msp::*, outbound::*, psa_connections::*, shares::*, tenants::*};

fn secret(text: &str) -> SecretString {
    SecretString::from(text.to_owned())
}

async fn demo_msp(store: &vouch::store::Store, name: &str) -> MspAccount {
    store
        .create_msp(NewMspAccount {
            name: name.to_owned(),
            brand_logo_url: Some("https://msp.example/logo.png".to_owned()),
            brand_color: Some("#123456".to_owned()),
            policy: MspPolicy::default(),
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn migrations_apply_to_an_empty_database_and_are_idempotent() {
    for db in TestDb::all().await {
        let store = db.store(keyring()).await;
        let pending = Migrator::get_pending_migrations(store.connection())
            .await
            .unwrap();
        assert!(
            !pending.is_empty(),
            "{:?}: an empty database has pending migrations",
            db.backend
        );
        assert!(!store.readiness().await.is_ready());

        store.migrate().await.unwrap();
        store.migrate().await.unwrap();
        Migrator::up(store.connection(), None).await.unwrap();

        let readiness = store.readiness().await;
        assert!(readiness.is_ready(), "{:?}: {readiness:?}", db.backend);
        assert!(
            Migrator::get_pending_migrations(store.connection())
                .await
                .unwrap()
                .is_empty()
        );
        // The schema really is there and usable.
        let msp = demo_msp(&store, "After migrations").await;
        assert_eq!(
            store.get_msp(msp.id).await.unwrap().unwrap().name,
            "After migrations"
        );
    }
}

#[tokio::test]
async fn two_instances_migrating_at_once_both_succeed() {
    for db in TestDb::all().await {
        let a = db.store(keyring()).await;
        let b = db.store(keyring()).await;
        let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
        ra.unwrap();
        rb.unwrap();
        assert!(a.readiness().await.is_ready(), "{:?}", db.backend);
    }
}

#[tokio::test]
async fn msp_accounts_and_policies_round_trip() {
    for db in TestDb::all().await {
        let store = db.migrated_store(keyring()).await;
        let msp = store
            .create_msp(NewMspAccount {
                name: "Fabrikam IT".into(),
                brand_logo_url: None,
                brand_color: None,
                policy: MspPolicy {
                    verified_window_seconds: 600,
                    push_limit_count: 2,
                    allow_admin_reset: true,
                    ..MspPolicy::default()
                },
            })
            .await
            .unwrap();
        let loaded = store.get_msp(msp.id).await.unwrap().unwrap();
        assert_eq!(loaded, msp);
        assert_eq!(loaded.policy.verified_window_seconds, 600);
        assert_eq!(loaded.policy.push_limit_window_seconds, 900);
        assert!(loaded.policy.allow_admin_reset);
        assert!(!loaded.policy.show_password_to_technician);
        assert!(store.get_msp(Uuid::now_v7()).await.unwrap().is_none());
        assert_eq!(store.list_msps().await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn psa_connections_open_their_credentials_and_technicians_upsert() {
    for db in TestDb::all().await {
        let store = db.migrated_store(keyring()).await;
        let msp = demo_msp(&store, "MSP").await;
        let connection = store
            .create_connection(NewPsaConnection {
                msp_id: msp.id,
                kind: PsaKind::ConnectWise,
                name: "Manage".into(),
                base_url: "https://cw.example".into(),
                settings: serde_json::json!({"company_id": "northwind"}),
                credentials: secret(r#"{"public_key":"pub","private_key":"priv"}"#),
            })
            .await
            .unwrap();
        let loaded = store.get_connection(connection.id).await.unwrap().unwrap();
        assert_eq!(loaded.kind, PsaKind::ConnectWise);
        assert_eq!(loaded.settings["company_id"], "northwind");
        assert_eq!(
            loaded.credentials.expose_secret(),
            r#"{"public_key":"pub","private_key":"priv"}"#
        );
        assert_eq!(store.list_connections(msp.id).await.unwrap().len(), 1);
        assert!(
            store
                .list_connections(Uuid::now_v7())
                .await
                .unwrap()
                .is_empty()
        );

        let sighting = TechnicianSighting {
            msp_id: msp.id,
            psa_connection_id: connection.id,
            psa_member_id: "jdoe".into(),
            display_name: "Jane Doe".into(),
            email: None,
        };
        let first = store.record_technician(sighting.clone()).await.unwrap();
        let second = store
            .record_technician(TechnicianSighting {
                display_name: "Jane Doe-Smith".into(),
                email: Some("jane@msp.example".into()),
                ..sighting
            })
            .await
            .unwrap();
        assert_eq!(first.id, second.id, "the same member is one technician");
        assert_eq!(second.display_name, "Jane Doe-Smith");
        assert_eq!(second.email.as_deref(), Some("jane@msp.example"));
    }
}

#[tokio::test]
async fn tenants_integrations_and_company_mappings() {
    for db in TestDb::all().await {
        let store = db.migrated_store(keyring()).await;
        let msp = demo_msp(&store, "MSP").await;
        let tenant = store
            .create_tenant(NewTenant {
                msp_id: msp.id,
                microsoft_tenant_id: "AAAAAAAA-1111-2222-3333-444444444444".into(),
                display_name: "Contoso".into(),
                verified_domains: vec!["contoso.example".into(), "contoso.onmicrosoft.com".into()],
            })
            .await
            .unwrap();
        assert_eq!(
            tenant.microsoft_tenant_id,
            "aaaaaaaa-1111-2222-3333-444444444444"
        );
        let duplicate = store
            .create_tenant(NewTenant {
                msp_id: msp.id,
                microsoft_tenant_id: "aaaaaaaa-1111-2222-3333-444444444444".into(),
                display_name: "Contoso again".into(),
                verified_domains: vec![],
            })
            .await;
        assert!(
            matches!(duplicate, Err(StoreError::Conflict(_))),
            "{:?}: {duplicate:?}",
            db.backend
        );
        assert_eq!(store.get_tenant(tenant.id).await.unwrap().unwrap(), tenant);
        assert_eq!(
            store.list_tenants(msp.id).await.unwrap(),
            vec![tenant.clone()]
        );

        let expires = Utc::now() + Duration::days(730);
        let saved = store
            .save_integration(IntegrationUpdate {
                tenant_id: tenant.id,
                kind: IntegrationKind::IdentityManagement,
                status: IntegrationStatus::Active,
                client_id: "client-1".into(),
                secret: Some(secret("first-secret")),
                secret_expires_at: Some(expires),
                last_checked_at: None,
                last_check_code: None,
                last_check_message: None,
            })
            .await
            .unwrap();
        let replaced = store
            .save_integration(IntegrationUpdate {
                tenant_id: tenant.id,
                kind: IntegrationKind::IdentityManagement,
                status: IntegrationStatus::Active,
                client_id: "client-2".into(),
                secret: Some(secret("second-secret")),
                secret_expires_at: Some(expires),
                last_checked_at: Some(Utc::now()),
                last_check_code: Some("ok".into()),
                last_check_message: None,
            })
            .await
            .unwrap();
        assert_eq!(
            saved.id, replaced.id,
            "one integration of a kind per tenant"
        );
        let loaded = store
            .get_integration(tenant.id, IntegrationKind::IdentityManagement)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(loaded.client_id, "client-2");
        assert_eq!(loaded.secret.unwrap().expose_secret(), "second-secret");
        assert_eq!(
            loaded.secret_expires_at.unwrap().timestamp(),
            expires.timestamp()
        );
        assert!(
            store
                .get_integration(tenant.id, IntegrationKind::Authenticator)
                .await
                .unwrap()
                .is_none()
        );

        let connection = store
            .create_connection(NewPsaConnection {
                msp_id: msp.id,
                kind: PsaKind::HaloPsa,
                name: "Halo".into(),
                base_url: "https://halo.example".into(),
                settings: serde_json::json!({}),
                credentials: secret("{}"),
            })
            .await
            .unwrap();
        let mapping = CompanyMapping {
            msp_id: msp.id,
            psa_connection_id: connection.id,
            psa_company_id: "42".into(),
            psa_company_name: "Contoso Ltd".into(),
            tenant_id: tenant.id,
        };
        store.map_company(mapping.clone()).await.unwrap();
        store.map_company(mapping).await.unwrap();
        assert_eq!(
            store
                .tenant_for_company(connection.id, "42")
                .await
                .unwrap()
                .unwrap()
                .id,
            tenant.id
        );
        assert!(
            store
                .tenant_for_company(connection.id, "43")
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn shares_messages_and_the_append_only_audit_log() {
    for db in TestDb::all().await {
        let store = db.migrated_store(keyring()).await;
        let msp = demo_msp(&store, "MSP").await;
        let other = demo_msp(&store, "Other MSP").await;
        let share = store
            .create_share(NewSecureShare {
                msp_id: msp.id,
                token_hash: "hash-1".into(),
                content: secret("Tr0ub4dor&3"),
                expires_at: Utc::now() + Duration::hours(24),
                max_views: 1,
                created_by_technician_id: None,
            })
            .await
            .unwrap();
        assert_eq!(share.views, 0);
        assert_eq!(
            store
                .find_share_by_token_hash("hash-1")
                .await
                .unwrap()
                .unwrap()
                .id,
            share.id
        );
        assert!(
            store
                .find_share_by_token_hash("hash-2")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            store
                .open_share_content(share.id)
                .await
                .unwrap()
                .expose_secret(),
            "Tr0ub4dor&3"
        );
        store
            .record_message(NewOutboundMessage {
                msp_id: msp.id,
                channel: "sms".into(),
                to_number: "+12065550100".into(),
                body: secret("Your link: https://vouch.example/s/abc"),
                status: "queued".into(),
            })
            .await
            .unwrap();

        for (index, action) in [
            "verification.started",
            "verification.approved",
            "password.reset",
        ]
        .into_iter()
        .enumerate()
        {
            store
                .append(NewAuditEvent {
                    msp_id: msp.id,
                    actor: AuditActor {
                        kind: ActorKind::Technician,
                        id: Some("jdoe".into()),
                        name: Some("Jane Doe".into()),
                    },
                    action: action.into(),
                    subject_kind: Some("user".into()),
                    subject_id: Some(format!("user-{}", index % 2)),
                    subject_name: None,
                    psa_ticket_id: Some("1001".into()),
                    outcome: vouch::domain::AuditOutcome::Success,
                    upstream_request_id: None,
                    details: serde_json::json!({ "step": index }),
                })
                .await
                .unwrap();
        }
        let all = store
            .query(AuditQuery {
                msp_id: msp.id,
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        let actions: Vec<_> = all.iter().map(|e| e.event.action.as_str()).collect();
        assert_eq!(
            actions,
            [
                "password.reset",
                "verification.approved",
                "verification.started"
            ],
            "{:?}: newest first",
            db.backend
        );
        let filtered = store
            .query(AuditQuery {
                msp_id: msp.id,
                subject_id: Some("user-0".into()),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(filtered.len(), 2);
        let by_action = store
            .query(AuditQuery {
                msp_id: msp.id,
                action: Some("verification.approved".into()),
                since: Some(Utc::now() - Duration::minutes(5)),
                until: Some(Utc::now() + Duration::minutes(5)),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(by_action.len(), 1);
        assert_eq!(by_action[0].event.details["step"], 1);
        let other_msp = store
            .query(AuditQuery {
                msp_id: other.id,
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(
            other_msp.is_empty(),
            "one MSP never sees another's audit log"
        );
    }
}

const PLAINTEXT_SECRETS: [&str; 5] = [
    "cw-private-key-5f1d2e8a",
    "identity-mgmt-client-secret-9c3b7e",
    "share-password-Qz8!kLm2",
    "sms-body-link-token-77ab",
    "authenticator-connector-secret-4d2f",
];
const VISIBLE_MARKER: &str = "Visible MSP Name 3e1f";

/// Writes one secret into every sealed column, through the real repositories.
async fn write_every_kind_of_secret(store: &vouch::store::Store) {
    let msp = demo_msp(store, VISIBLE_MARKER).await;
    store
        .create_connection(NewPsaConnection {
            msp_id: msp.id,
            kind: PsaKind::Autotask,
            name: "Autotask".into(),
            base_url: "https://at.example".into(),
            settings: serde_json::json!({}),
            credentials: secret(&format!(r#"{{"secret":"{}"}}"#, PLAINTEXT_SECRETS[0])),
        })
        .await
        .unwrap();
    let tenant = store
        .create_tenant(NewTenant {
            msp_id: msp.id,
            microsoft_tenant_id: Uuid::new_v4().to_string(),
            display_name: "Tenant".into(),
            verified_domains: vec![],
        })
        .await
        .unwrap();
    for (kind, value) in [
        (IntegrationKind::IdentityManagement, PLAINTEXT_SECRETS[1]),
        (IntegrationKind::Authenticator, PLAINTEXT_SECRETS[4]),
    ] {
        store
            .save_integration(IntegrationUpdate {
                tenant_id: tenant.id,
                kind,
                status: IntegrationStatus::Active,
                client_id: "client".into(),
                secret: Some(secret(value)),
                secret_expires_at: None,
                last_checked_at: None,
                last_check_code: None,
                last_check_message: None,
            })
            .await
            .unwrap();
    }
    store
        .create_share(NewSecureShare {
            msp_id: msp.id,
            token_hash: Uuid::new_v4().to_string(),
            content: secret(PLAINTEXT_SECRETS[2]),
            expires_at: Utc::now() + Duration::hours(1),
            max_views: 1,
            created_by_technician_id: None,
        })
        .await
        .unwrap();
    store
        .record_message(NewOutboundMessage {
            msp_id: msp.id,
            channel: "sms".into(),
            to_number: "+12065550100".into(),
            body: secret(&format!("https://vouch.example/s/{}", PLAINTEXT_SECRETS[3])),
            status: "sent".into(),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn secrets_are_never_stored_in_plaintext() {
    for db in TestDb::all().await {
        let store = db.migrated_store(keyring()).await;
        write_every_kind_of_secret(&store).await;
        let contents = raw_database_contents(&db, &store).await;
        assert!(
            contains(&contents, VISIBLE_MARKER),
            "{:?}: the scan must see ordinary values, or it proves nothing",
            db.backend
        );
        for plaintext in PLAINTEXT_SECRETS {
            assert!(
                !contains(&contents, plaintext),
                "{:?}: found the plaintext {plaintext:?} in the database",
                db.backend
            );
        }
    }
}

#[tokio::test]
async fn rotate_key_reseals_everything_under_the_new_key() {
    for db in TestDb::all().await {
        let (_, old_key) = new_key();
        let (_, new_key) = new_key();
        let old_store = db.migrated_store(Keyring::new(old_key.clone(), [])).await;
        write_every_kind_of_secret(&old_store).await;

        let rotating = db
            .store(Keyring::new(new_key.clone(), [old_key.clone()]))
            .await;
        let report = rotating.rotate_keys().await.unwrap();
        assert_eq!(report.active_key_id, new_key.id());
        let resealed: u64 = report.columns.iter().map(|c| c.resealed).sum();
        assert_eq!(resealed, 5, "{:?}: {report:?}", db.backend);
        let again = rotating.rotate_keys().await.unwrap();
        assert_eq!(again.columns.iter().map(|c| c.resealed).sum::<u64>(), 0);

        // Without the old key everything still opens.
        let only_new = db.store(Keyring::new(new_key.clone(), [])).await;
        let msp = only_new
            .list_msps()
            .await
            .unwrap()
            .into_iter()
            .find(|m| m.name == VISIBLE_MARKER)
            .unwrap();
        let connection = &only_new.list_connections(msp.id).await.unwrap()[0];
        assert!(
            connection
                .credentials
                .expose_secret()
                .contains(PLAINTEXT_SECRETS[0])
        );
        let tenant = &only_new.list_tenants(msp.id).await.unwrap()[0];
        let integration = only_new
            .get_integration(tenant.id, IntegrationKind::Authenticator)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            integration.secret.unwrap().expose_secret(),
            PLAINTEXT_SECRETS[4]
        );

        // And the old key alone no longer opens anything.
        let only_old = db.store(Keyring::new(old_key, [])).await;
        assert!(matches!(
            only_old.get_connection(connection.id).await,
            Err(StoreError::Sealed(_))
        ));
    }
}

#[tokio::test]
async fn values_sealed_before_per_purpose_keys_open_and_rotate_key_upgrades_them() {
    for db in TestDb::all().await {
        let (encoded, key) = new_key();
        let store = db.migrated_store(Keyring::new(key.clone(), [])).await;
        write_every_kind_of_secret(&store).await;
        // Turn the database into one an earlier release wrote, under the same master key.
        let mut downgraded = 0;
        for &(table, column) in SEALED_COLUMNS {
            for (id, sealed) in sealed_values(&store, table, column).await {
                let place = SealedPlace::new(table, column, id);
                let plaintext = store.keyring().open(&place, &sealed).unwrap();
                let v1 = seal_as_v1(&encoded, key.id(), &place, plaintext.expose_secret());
                set_sealed_value(&store, table, column, id, v1).await;
                downgraded += 1;
            }
        }
        assert_eq!(downgraded, 5, "{:?}", db.backend);

        // The old values read as before.
        let msp = store
            .list_msps()
            .await
            .unwrap()
            .into_iter()
            .find(|m| m.name == VISIBLE_MARKER)
            .unwrap();
        let connection = &store.list_connections(msp.id).await.unwrap()[0];
        assert!(
            connection
                .credentials
                .expose_secret()
                .contains(PLAINTEXT_SECRETS[0]),
            "{:?}",
            db.backend
        );

        // `vouch rotate-key` with the same key and no previous keys upgrades each of them.
        let report = store.rotate_keys().await.unwrap();
        assert_eq!(report.active_key_id, key.id());
        let resealed: u64 = report.columns.iter().map(|c| c.resealed).sum();
        assert_eq!(resealed, 5, "{:?}: {report:?}", db.backend);
        for &(table, column) in SEALED_COLUMNS {
            for (_, sealed) in sealed_values(&store, table, column).await {
                assert!(
                    sealed.starts_with(&format!("v2.{}.", key.id())),
                    "{:?}: {table}.{column} was not re-sealed",
                    db.backend
                );
            }
        }
        let again = store.rotate_keys().await.unwrap();
        assert_eq!(again.columns.iter().map(|c| c.resealed).sum::<u64>(), 0);
        assert_eq!(
            again.columns.iter().map(|c| c.already_current).sum::<u64>(),
            5
        );
        let tenant = &store.list_tenants(msp.id).await.unwrap()[0];
        let integration = store
            .get_integration(tenant.id, IntegrationKind::Authenticator)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            integration.secret.unwrap().expose_secret(),
            PLAINTEXT_SECRETS[4]
        );
    }
}

/// Seals `plaintext` as releases before per-purpose keys did (`v1`: AES-256-GCM under the
/// master key itself), to stand for a database one of them wrote.
fn seal_as_v1(encoded_key: &str, key_id: &str, place: &SealedPlace, plaintext: &str) -> String {
    use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as BASE64;

    let master_key = BASE64.decode(encoded_key).unwrap();
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(&master_key).unwrap();
    let nonce = aes_gcm::Aes256Gcm::generate_nonce(&mut OsRng);
    let aad = format!("{}.{}:{}", place.table, place.column, place.row_id);
    let ciphertext = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext.as_bytes(),
                aad: aad.as_bytes(),
            },
        )
        .unwrap();
    let mut blob = nonce.to_vec();
    blob.extend(ciphertext);
    format!("v1.{key_id}.{}", BASE64.encode(blob))
}

/// Every `(id, sealed value)` of a sealed column, read past the repositories.
async fn sealed_values(
    store: &vouch::store::Store,
    table: &'static str,
    column: &'static str,
) -> Vec<(Uuid, String)> {
    use sea_orm::sea_query::{Expr, ExprTrait, Query};
    let select = Query::select()
        .columns(["id", column])
        .from(table)
        .and_where(Expr::col(column).is_not_null())
        .to_owned();
    store
        .connection()
        .query_all(&select)
        .await
        .unwrap()
        .into_iter()
        .map(|row| {
            (
                row.try_get("", "id").unwrap(),
                row.try_get("", column).unwrap(),
            )
        })
        .collect()
}

async fn set_sealed_value(
    store: &vouch::store::Store,
    table: &'static str,
    column: &'static str,
    id: Uuid,
    sealed: String,
) {
    use sea_orm::sea_query::{Expr, ExprTrait, Query};
    let update = Query::update()
        .table(table)
        .value(column, sealed)
        .and_where(Expr::col("id").eq(id))
        .to_owned();
    let updated = store.connection().execute(&update).await.unwrap();
    assert_eq!(updated.rows_affected(), 1);
}
