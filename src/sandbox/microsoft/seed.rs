//! The demo directory every sandbox starts with (see the brief in the module docs of
//! [`super`]): three customer tenants, their users, and three app registrations.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{TimeZone, Utc};

use super::state::{
    AppRegistration, AuthenticatorDevice, DirectoryRole, Domain, PhoneMethod, Sku, State, Tenant,
    User,
};
use super::*;

/// Microsoft's own tenant, which owns first-party apps such as the MFA client app.
const MICROSOFT_SERVICES_TENANT_ID: &str = "f8cdef31-a31e-4b4a-93e4-5f571e91255a";
/// The tenant that owns Vouch's multi-tenant app (the Vouch vendor's own tenant).
const VOUCH_VENDOR_TENANT_ID: &str = "0b7e3f5a-6c1d-4e8f-9a2b-3c4d5e6f7a80";

/// Microsoft 365 Business Premium.
const SPB_SKU_ID: &str = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46";
/// Microsoft 365 Business Standard (formerly Office 365 Business Premium): no Entra ID P1.
const O365_BUSINESS_PREMIUM_SKU_ID: &str = "f245ecc8-75af-4f8e-b61f-27d8114de5f3";

const EXCHANGE_PLAN: (&str, &str) = (
    "9aaf7827-d63c-4b61-89c3-182f06f82e5c",
    "EXCHANGE_S_STANDARD",
);
const TEAMS_PLAN: (&str, &str) = ("57ff2da0-773e-42df-b2af-ffb7a2317929", "TEAMS1");
const MFA_PREMIUM_PLAN: (&str, &str) = ("8a256a2b-b617-496d-b51b-e76466e88db0", "MFA_PREMIUM");
const INTUNE_PLAN: (&str, &str) = ("c1ec4a95-1f05-45b3-a911-aa3fa01094f5", "INTUNE_A");

pub(super) fn demo_state() -> State {
    let now = Utc::now();
    let mut state = State {
        tenants: vec![contoso(), fabrikam(), tailspin()],
        registrations: vec![
            AppRegistration {
                client_id: VOUCH_APP_CLIENT_ID.to_owned(),
                display_name: "Vouch".to_owned(),
                owner_tenant_id: VOUCH_VENDOR_TENANT_ID.to_owned(),
                secret: VOUCH_APP_SECRET.to_owned(),
                permissions: strings(VOUCH_APP_PERMISSIONS),
            },
            AppRegistration {
                client_id: IDENTITY_APP_CLIENT_ID.to_owned(),
                display_name: "Identity Management".to_owned(),
                owner_tenant_id: DEMO_TENANT_ID.to_owned(),
                secret: IDENTITY_APP_SECRET.to_owned(),
                permissions: strings(IDENTITY_APP_PERMISSIONS),
            },
            AppRegistration {
                client_id: MFA_CLIENT_APP_ID.to_owned(),
                display_name: "Azure Multi-Factor Auth Client".to_owned(),
                owner_tenant_id: MICROSOFT_SERVICES_TENANT_ID.to_owned(),
                // First-party: no secret of its own; tenants add them to its service principal.
                secret: String::new(),
                permissions: Vec::new(),
            },
        ],
        apps: Vec::new(),
        tokens: HashMap::new(),
        pending: Vec::new(),
        scripts: HashMap::new(),
        push_timeout: DEFAULT_PUSH_TIMEOUT,
        push_hold: None,
        propagation_delay: Duration::ZERO,
        audiences: super::state::CloudAudiences {
            graph: super::GRAPH_AUDIENCE.to_owned(),
            connector: super::MFA_CONNECTOR_RESOURCE.to_owned(),
        },
    };
    state.add_app(SandboxApp {
        client_id: IDENTITY_APP_CLIENT_ID.to_owned(),
        secret: IDENTITY_APP_SECRET.to_owned(),
        secret_expires_at: Some(now + chrono::Duration::days(700)),
        tenant_id: DEMO_TENANT_ID.to_owned(),
        permissions: strings(IDENTITY_APP_PERMISSIONS),
    });
    state
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn contoso() -> Tenant {
    let domain = DEMO_TENANT_DOMAIN;
    let mut users = vec![
        user(
            "0d4a1f6e-2b3c-4d5e-8f70-a1b2c3d4e501",
            "dana",
            "Dana Whitfield",
            "+1 2065550101",
        ),
        {
            let mut sam = user(
                "0d4a1f6e-2b3c-4d5e-8f70-a1b2c3d4e502",
                "sam",
                "Sam Ortega",
                "+1 2065550102",
            );
            sam.preferred_method = "sms".to_owned();
            sam
        },
        {
            let mut noel = user(
                "0d4a1f6e-2b3c-4d5e-8f70-a1b2c3d4e503",
                "noel",
                "Noel Park",
                "",
            );
            noel.phone_methods.clear();
            noel.mobile_phone = None;
            noel.authenticator = None;
            noel
        },
        {
            let mut omar = user(
                "0d4a1f6e-2b3c-4d5e-8f70-a1b2c3d4e504",
                "omar",
                "Omar Haddad",
                "+1 2065550104",
            );
            omar.on_premises_sync = true;
            omar
        },
        {
            let mut ada = user(
                "0d4a1f6e-2b3c-4d5e-8f70-a1b2c3d4e505",
                "ada",
                "Ada Brooks",
                "+1 2065550105",
            );
            ada.roles.push(DirectoryRole {
                id: "5b2f7c1d-8e3a-4f6b-9c0d-1e2f3a4b5c6d".to_owned(),
                display_name: "Global Administrator".to_owned(),
                template_id: GLOBAL_ADMIN_ROLE_TEMPLATE_ID.to_owned(),
            });
            ada
        },
        {
            let mut lee = user(
                "0d4a1f6e-2b3c-4d5e-8f70-a1b2c3d4e506",
                "lee",
                "Lee Chen",
                "+1 2065550106",
            );
            lee.mail = Some(format!("lee.chen@{domain}"));
            lee.proxy_addresses = vec![
                format!("SMTP:lee.chen@{domain}"),
                format!("smtp:lee@{domain}"),
            ];
            lee
        },
        {
            let mut blake = user(
                "0d4a1f6e-2b3c-4d5e-8f70-a1b2c3d4e507",
                "blocked",
                "Blake Stone",
                "+1 2065550107",
            );
            blake.mfa_blocked = true;
            blake
        },
    ];
    for user in &mut users {
        qualify(user, domain);
    }
    Tenant {
        id: DEMO_TENANT_ID.to_owned(),
        display_name: DEMO_TENANT_NAME.to_owned(),
        domains: vec![
            Domain {
                name: domain.to_owned(),
                is_default: true,
                is_initial: false,
            },
            Domain {
                name: "contoso.onmicrosoft.com".to_owned(),
                is_default: false,
                is_initial: true,
            },
        ],
        skus: vec![Sku {
            sku_id: SPB_SKU_ID.to_owned(),
            part_number: "SPB".to_owned(),
            plans: vec![
                plan(EXCHANGE_PLAN),
                plan(TEAMS_PLAN),
                plan(MFA_PREMIUM_PLAN),
                plan(INTUNE_PLAN),
                (AAD_PREMIUM_PLAN_ID.to_owned(), "AAD_PREMIUM".to_owned()),
            ],
            enabled_units: 25,
            consumed_units: users.len() as u32,
        }],
        users,
        service_principals: Vec::new(),
    }
}

/// A tenant with a verified domain and no users or licences.
fn tailspin() -> Tenant {
    Tenant {
        id: TAILSPIN_TENANT_ID.to_owned(),
        display_name: TAILSPIN_TENANT_NAME.to_owned(),
        domains: vec![
            Domain {
                name: TAILSPIN_TENANT_DOMAIN.to_owned(),
                is_default: true,
                is_initial: false,
            },
            Domain {
                name: "tailspintoys.onmicrosoft.com".to_owned(),
                is_default: false,
                is_initial: true,
            },
        ],
        skus: Vec::new(),
        users: Vec::new(),
        service_principals: Vec::new(),
    }
}

fn fabrikam() -> Tenant {
    let domain = NO_P1_TENANT_DOMAIN;
    let mut kim = user(
        "6a7b8c9d-0e1f-4a2b-9c3d-4e5f6a7b8c01",
        "kim",
        "Kim Novak",
        "+1 2065550201",
    );
    qualify(&mut kim, domain);
    Tenant {
        id: NO_P1_TENANT_ID.to_owned(),
        display_name: NO_P1_TENANT_NAME.to_owned(),
        domains: vec![
            Domain {
                name: domain.to_owned(),
                is_default: true,
                is_initial: false,
            },
            Domain {
                name: "fabrikam.onmicrosoft.com".to_owned(),
                is_default: false,
                is_initial: true,
            },
        ],
        skus: vec![Sku {
            sku_id: O365_BUSINESS_PREMIUM_SKU_ID.to_owned(),
            part_number: "O365_BUSINESS_PREMIUM".to_owned(),
            plans: vec![plan(EXCHANGE_PLAN), plan(TEAMS_PLAN)],
            enabled_units: 10,
            consumed_units: 1,
        }],
        users: vec![kim],
        service_principals: Vec::new(),
    }
}

fn plan((id, name): (&str, &str)) -> (String, String) {
    (id.to_owned(), name.to_owned())
}

/// A user with the common defaults: enabled, cloud-only, Authenticator registered and the
/// default method "push", a mobile phone (unless `mobile` is empty). The UPN is completed by
/// [`qualify`].
pub(super) fn user(id: &str, local_part: &str, display_name: &str, mobile: &str) -> User {
    let created = Utc
        .with_ymd_and_hms(2024, 3, 12, 9, 30, 0)
        .single()
        .unwrap_or_else(Utc::now);
    User {
        id: id.to_owned(),
        upn: local_part.to_owned(),
        display_name: display_name.to_owned(),
        mail: None,
        account_enabled: true,
        on_premises_sync: false,
        mobile_phone: (!mobile.is_empty()).then(|| mobile.to_owned()),
        proxy_addresses: Vec::new(),
        phone_methods: if mobile.is_empty() {
            Vec::new()
        } else {
            vec![PhoneMethod {
                phone_type: "mobile",
                number: mobile.to_owned(),
            }]
        },
        authenticator: Some(AuthenticatorDevice {
            // Derived from the user id so it is stable across runs.
            id: format!("a0{}", &id[2..]),
            display_name: format!("{}'s iPhone", display_name.split(' ').next().unwrap_or("")),
            created,
        }),
        preferred_method: "push".to_owned(),
        system_preferred_enabled: true,
        roles: Vec::new(),
        mfa_blocked: false,
        password: None,
    }
}

/// Turns the local part into a UPN in `domain`; mail defaults to the UPN.
pub(super) fn qualify(user: &mut User, domain: &str) {
    user.upn = format!("{}@{domain}", user.upn);
    if user.mail.is_none() {
        user.mail = Some(user.upn.clone());
    }
    if user.proxy_addresses.is_empty() {
        user.proxy_addresses = vec![format!("SMTP:{}", user.upn)];
    }
}
