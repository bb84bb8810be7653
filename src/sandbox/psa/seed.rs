//! The demo data every PSA sandbox starts with: the MSP "Northwind IT" (its technician Jordan
//! Tech), the customers "Contoso Ltd" and "Fabrikam", their contacts (the same people as the
//! Microsoft sandbox's demo tenants) and one open ticket per contact in each PSA.
//!
//! Two more customers have no contacts, for the company lists and suggested mappings:
//! "Tailspin Toys Inc." (no website; its name is like the Microsoft sandbox's "Tailspin Toys"
//! tenant) and "Litware" (a website that is no tenant's domain). Fabrikam has a website.
//!
//! Ticket ids follow the contact order, so ticket `1000 + k` (ConnectWise), `2000 + k` (Halo)
//! and `3000 + k` (Autotask) all belong to the k-th contact (Dana is 1, Kim is 8).

// ---------------------------------------------------------------------------------------------
// ConnectWise PSA
// ---------------------------------------------------------------------------------------------

/// The MSP's ConnectWise company id (the `companyId` of API keys and of `companyName` cookies).
pub const CW_COMPANY_ID: &str = "northwind";
/// The public half of the integration's API member key.
pub const CW_PUBLIC_KEY: &str = "sbxCwPublicKey01";
/// The private half of the integration's API member key.
pub const CW_PRIVATE_KEY: &str = "sbxCwPrivateKey0123456789";
/// The integration's `clientId` (as the ConnectWise developer portal issues: a GUID).
pub const CW_CLIENT_ID: &str = "4d1c7a2e-93b5-4f0e-8a61-2c7e5b9d0f13";
/// The code base of the REST URL (`{site}/{code base}/apis/3.0`).
pub const CW_CODE_BASE: &str = "v4_6_release";
/// The technician (member identifier) who has the ticket screens open.
pub const CW_MEMBER_ID: &str = "jtech";
/// The technician's member record id.
pub const CW_MEMBER_REC_ID: u64 = 176;
/// The technician's office e-mail.
pub const CW_MEMBER_EMAIL: &str = "jordan@northwind.example";
/// A second member of the MSP, to prove a hash issued to one member does not vouch for
/// another.
pub const CW_OTHER_MEMBER_ID: &str = "asmith";
/// The second member's record id.
pub const CW_OTHER_MEMBER_REC_ID: u64 = 177;

/// Contoso Ltd's company record id in ConnectWise.
pub const CW_CONTOSO_COMPANY_ID: u64 = 250;
/// Contoso Ltd's company identifier in ConnectWise.
pub const CW_CONTOSO_IDENTIFIER: &str = "Contoso";
/// Fabrikam's company record id in ConnectWise.
pub const CW_FABRIKAM_COMPANY_ID: u64 = 251;
/// Fabrikam's company identifier in ConnectWise.
pub const CW_FABRIKAM_IDENTIFIER: &str = "Fabrikam";
/// Tailspin Toys' company record id in ConnectWise.
pub const CW_TAILSPIN_COMPANY_ID: u64 = 252;
/// Litware's company record id in ConnectWise.
pub const CW_LITWARE_COMPANY_ID: u64 = 253;

// Service tickets, one per contact (k-th contact: 1000 + k).
pub const CW_TICKET_DANA: u64 = 1001;
pub const CW_TICKET_SAM: u64 = 1002;
pub const CW_TICKET_NOEL: u64 = 1003;
pub const CW_TICKET_OMAR: u64 = 1004;
pub const CW_TICKET_ADA: u64 = 1005;
pub const CW_TICKET_LEE: u64 = 1006;
pub const CW_TICKET_BLAKE: u64 = 1007;
pub const CW_TICKET_KIM: u64 = 1008;

// Contact record ids.
pub const CW_CONTACT_DANA: u64 = 4101;
pub const CW_CONTACT_SAM: u64 = 4102;
pub const CW_CONTACT_NOEL: u64 = 4103;
pub const CW_CONTACT_OMAR: u64 = 4104;
pub const CW_CONTACT_ADA: u64 = 4105;
pub const CW_CONTACT_LEE: u64 = 4106;
pub const CW_CONTACT_BLAKE: u64 = 4107;
pub const CW_CONTACT_KIM: u64 = 4108;

// ---------------------------------------------------------------------------------------------
// HaloPSA
// ---------------------------------------------------------------------------------------------

/// The client id of the MSP's Halo API application (client-credentials grant).
pub const HALO_API_CLIENT_ID: &str = "6b0f3c2a-1d4e-4a7b-9c58-0e2f4a6b8d10";
/// The client secret of the MSP's Halo API application.
pub const HALO_API_CLIENT_SECRET: &str = "sbx-halo-client-secret-7f3a9c";
/// The custom tab's iframe secret (`new_iframe_secret`) the tab URL is signed with.
pub const HALO_TAB_SECRET: &str = "sbx-halo-tab-secret-2b6e0d4f";
/// The technician (agent) who has the ticket screens open. The API application logs in as
/// this agent too, so `GET /api/Agent/me` answers with it.
pub const HALO_AGENT_ID: u64 = 5;

/// Contoso Ltd's client id in Halo.
pub const HALO_CONTOSO_CLIENT_ID: u64 = 12;
/// Contoso Ltd's (only) site id in Halo.
pub const HALO_CONTOSO_SITE_ID: u64 = 18;
/// Fabrikam's client id in Halo.
pub const HALO_FABRIKAM_CLIENT_ID: u64 = 14;
/// Fabrikam's (only) site id in Halo.
pub const HALO_FABRIKAM_SITE_ID: u64 = 21;
/// Tailspin Toys' client id in Halo.
pub const HALO_TAILSPIN_CLIENT_ID: u64 = 15;
/// Litware's client id in Halo.
pub const HALO_LITWARE_CLIENT_ID: u64 = 16;

// Tickets, one per contact (k-th contact: 2000 + k).
pub const HALO_TICKET_DANA: u64 = 2001;
pub const HALO_TICKET_SAM: u64 = 2002;
pub const HALO_TICKET_NOEL: u64 = 2003;
pub const HALO_TICKET_OMAR: u64 = 2004;
pub const HALO_TICKET_ADA: u64 = 2005;
pub const HALO_TICKET_LEE: u64 = 2006;
pub const HALO_TICKET_BLAKE: u64 = 2007;
pub const HALO_TICKET_KIM: u64 = 2008;

// End-user ("Users") ids.
pub const HALO_USER_DANA: u64 = 31;
pub const HALO_USER_SAM: u64 = 32;
pub const HALO_USER_NOEL: u64 = 33;
pub const HALO_USER_OMAR: u64 = 34;
pub const HALO_USER_ADA: u64 = 35;
pub const HALO_USER_LEE: u64 = 36;
pub const HALO_USER_BLAKE: u64 = 37;
pub const HALO_USER_KIM: u64 = 38;

// ---------------------------------------------------------------------------------------------
// Autotask PSA
// ---------------------------------------------------------------------------------------------

/// The API user's user name (also what the zone lookup takes as `user`).
pub const AUTOTASK_API_USER: &str = "vouch-api@northwind.example";
/// The API user's secret.
pub const AUTOTASK_API_SECRET: &str = "sbx-autotask-secret-91c4e7";
/// The API tracking identifier (`ApiIntegrationCode` header).
pub const AUTOTASK_INTEGRATION_CODE: &str = "SBXVOUCHINTEGRATIONCODE7QX";
/// The shared secret the Insight load is signed with.
pub const AUTOTASK_INSIGHT_SECRET: &str = "sbx-autotask-insight-secret-5d8a1c";
/// The technician (resource) who has the ticket screens open.
pub const AUTOTASK_RESOURCE_ID: u64 = 29682885;
/// The resource record of the API user itself.
pub const AUTOTASK_API_RESOURCE_ID: u64 = 29682890;

/// Contoso Ltd's company id in Autotask.
pub const AUTOTASK_CONTOSO_COMPANY_ID: u64 = 29683500;
/// Fabrikam's company id in Autotask.
pub const AUTOTASK_FABRIKAM_COMPANY_ID: u64 = 29683501;
/// Tailspin Toys' company id in Autotask.
pub const AUTOTASK_TAILSPIN_COMPANY_ID: u64 = 29683502;
/// Litware's company id in Autotask.
pub const AUTOTASK_LITWARE_COMPANY_ID: u64 = 29683503;

// Tickets, one per contact (k-th contact: 3000 + k).
pub const AUTOTASK_TICKET_DANA: u64 = 3001;
pub const AUTOTASK_TICKET_SAM: u64 = 3002;
pub const AUTOTASK_TICKET_NOEL: u64 = 3003;
pub const AUTOTASK_TICKET_OMAR: u64 = 3004;
pub const AUTOTASK_TICKET_ADA: u64 = 3005;
pub const AUTOTASK_TICKET_LEE: u64 = 3006;
pub const AUTOTASK_TICKET_BLAKE: u64 = 3007;
pub const AUTOTASK_TICKET_KIM: u64 = 3008;

// Contact ids.
pub const AUTOTASK_CONTACT_DANA: u64 = 30684001;
pub const AUTOTASK_CONTACT_SAM: u64 = 30684002;
pub const AUTOTASK_CONTACT_NOEL: u64 = 30684003;
pub const AUTOTASK_CONTACT_OMAR: u64 = 30684004;
pub const AUTOTASK_CONTACT_ADA: u64 = 30684005;
pub const AUTOTASK_CONTACT_LEE: u64 = 30684006;
pub const AUTOTASK_CONTACT_BLAKE: u64 = 30684007;
pub const AUTOTASK_CONTACT_KIM: u64 = 30684008;

// ---------------------------------------------------------------------------------------------
// Shared
// ---------------------------------------------------------------------------------------------

/// The first customer's name in every PSA.
pub const CONTOSO_NAME: &str = "Contoso Ltd";
/// The second customer's name in every PSA.
pub const FABRIKAM_NAME: &str = "Fabrikam";
/// Fabrikam's website in every PSA (ConnectWise `website`, Halo `website`, Autotask
/// `webAddress`).
pub const FABRIKAM_WEBSITE: &str = "https://www.fabrikam.example/";
/// A third customer, with no contacts and no website: only its name is like a tenant's
/// (the Microsoft sandbox's "Tailspin Toys").
pub const TAILSPIN_NAME: &str = "Tailspin Toys Inc.";
/// A fourth customer, whose website is no tenant's domain and whose name is like no
/// tenant's: nothing to suggest.
pub const LITWARE_NAME: &str = "Litware";
/// Litware's website.
pub const LITWARE_WEBSITE: &str = "litware.example";
/// The technician's name in every PSA.
pub const TECHNICIAN_NAME: &str = "Jordan Tech";
/// The technician's e-mail in every PSA.
pub const TECHNICIAN_EMAIL: &str = "jordan@northwind.example";

/// A customer company, with its ids in each PSA.
#[derive(Debug)]
pub(super) struct Company {
    pub name: &'static str,
    /// The website (or domain) field, when the PSA has one filled in.
    pub website: Option<&'static str>,
    pub cw_id: u64,
    pub cw_identifier: &'static str,
    pub halo_client_id: u64,
    pub halo_site_id: u64,
    pub autotask_id: u64,
}

pub(super) static CONTOSO: Company = Company {
    name: CONTOSO_NAME,
    website: None,
    cw_id: CW_CONTOSO_COMPANY_ID,
    cw_identifier: CW_CONTOSO_IDENTIFIER,
    halo_client_id: HALO_CONTOSO_CLIENT_ID,
    halo_site_id: HALO_CONTOSO_SITE_ID,
    autotask_id: AUTOTASK_CONTOSO_COMPANY_ID,
};

pub(super) static FABRIKAM: Company = Company {
    name: FABRIKAM_NAME,
    website: Some(FABRIKAM_WEBSITE),
    cw_id: CW_FABRIKAM_COMPANY_ID,
    cw_identifier: CW_FABRIKAM_IDENTIFIER,
    halo_client_id: HALO_FABRIKAM_CLIENT_ID,
    halo_site_id: HALO_FABRIKAM_SITE_ID,
    autotask_id: AUTOTASK_FABRIKAM_COMPANY_ID,
};

pub(super) static TAILSPIN: Company = Company {
    name: TAILSPIN_NAME,
    website: None,
    cw_id: CW_TAILSPIN_COMPANY_ID,
    cw_identifier: "TailspinToys",
    halo_client_id: HALO_TAILSPIN_CLIENT_ID,
    halo_site_id: 22,
    autotask_id: AUTOTASK_TAILSPIN_COMPANY_ID,
};

pub(super) static LITWARE: Company = Company {
    name: LITWARE_NAME,
    website: Some(LITWARE_WEBSITE),
    cw_id: CW_LITWARE_COMPANY_ID,
    cw_identifier: "Litware",
    halo_client_id: HALO_LITWARE_CLIENT_ID,
    halo_site_id: 23,
    autotask_id: AUTOTASK_LITWARE_COMPANY_ID,
};

/// Every customer company, in id order (the same order in each PSA): what the company lists
/// page through.
pub(super) static COMPANIES: [&Company; 4] = [&CONTOSO, &FABRIKAM, &TAILSPIN, &LITWARE];

/// The companies whose name contains `search` (case-insensitive; all when empty), in id
/// order.
pub(super) fn companies_named(search: &str) -> Vec<&'static Company> {
    let search = search.trim().to_lowercase();
    COMPANIES
        .iter()
        .copied()
        .filter(|c| c.name.to_lowercase().contains(&search))
        .collect()
}

/// The contacts of a company, in id order.
pub(super) fn contacts_of(pick: impl Fn(&Company) -> bool) -> Vec<&'static Contact> {
    CONTACTS.iter().filter(|c| pick(c.company)).collect()
}

/// A customer's contact with their open ticket, with the ids in each PSA.
#[derive(Debug)]
pub(super) struct Contact {
    pub first_name: &'static str,
    pub last_name: &'static str,
    /// Primary e-mail first.
    pub emails: &'static [&'static str],
    pub mobile: Option<&'static str>,
    pub company: &'static Company,
    pub cw_contact_id: u64,
    pub cw_ticket_id: u64,
    pub halo_user_id: u64,
    pub halo_ticket_id: u64,
    pub autotask_contact_id: u64,
    pub autotask_ticket_id: u64,
    /// The ticket's summary (Autotask: title).
    pub summary: &'static str,
    /// The ticket's initial description, as the caller reported it.
    pub description: &'static str,
}

impl Contact {
    pub fn name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }

    pub fn email(&self) -> &'static str {
        self.emails.first().copied().unwrap_or("")
    }

    /// The 1-based position in [`CONTACTS`] (the `k` of ticket `1000 + k`).
    pub fn ordinal(&self) -> u64 {
        self.cw_ticket_id - 1000
    }
}

pub(super) static CONTACTS: [Contact; 8] = [
    Contact {
        first_name: "Dana",
        last_name: "Whitfield",
        emails: &["dana@contoso.example"],
        mobile: Some("+1 206-555-0101"),
        company: &CONTOSO,
        cw_contact_id: CW_CONTACT_DANA,
        cw_ticket_id: CW_TICKET_DANA,
        halo_user_id: HALO_USER_DANA,
        halo_ticket_id: HALO_TICKET_DANA,
        autotask_contact_id: AUTOTASK_CONTACT_DANA,
        autotask_ticket_id: AUTOTASK_TICKET_DANA,
        summary: "Locked out of Outlook",
        description: "Dana called: Outlook keeps asking for her password and now says the account is locked.",
    },
    Contact {
        first_name: "Sam",
        last_name: "Ortega",
        emails: &["sam@contoso.example"],
        mobile: Some("+1 206-555-0102"),
        company: &CONTOSO,
        cw_contact_id: CW_CONTACT_SAM,
        cw_ticket_id: CW_TICKET_SAM,
        halo_user_id: HALO_USER_SAM,
        halo_ticket_id: HALO_TICKET_SAM,
        autotask_contact_id: AUTOTASK_CONTACT_SAM,
        autotask_ticket_id: AUTOTASK_TICKET_SAM,
        summary: "Password expired, cannot sign in to Teams",
        description: "Sam's password expired over the weekend; Teams on his laptop will not sign in.",
    },
    Contact {
        first_name: "Noel",
        last_name: "Park",
        emails: &["noel@contoso.example"],
        mobile: None,
        company: &CONTOSO,
        cw_contact_id: CW_CONTACT_NOEL,
        cw_ticket_id: CW_TICKET_NOEL,
        halo_user_id: HALO_USER_NOEL,
        halo_ticket_id: HALO_TICKET_NOEL,
        autotask_contact_id: AUTOTASK_CONTACT_NOEL,
        autotask_ticket_id: AUTOTASK_TICKET_NOEL,
        summary: "Forgot password after holiday",
        description: "Noel is back from leave and cannot remember the password. No phone on file.",
    },
    Contact {
        first_name: "Omar",
        last_name: "Haddad",
        emails: &["omar@contoso.example"],
        mobile: Some("+1 206-555-0104"),
        company: &CONTOSO,
        cw_contact_id: CW_CONTACT_OMAR,
        cw_ticket_id: CW_TICKET_OMAR,
        halo_user_id: HALO_USER_OMAR,
        halo_ticket_id: HALO_TICKET_OMAR,
        autotask_contact_id: AUTOTASK_CONTACT_OMAR,
        autotask_ticket_id: AUTOTASK_TICKET_OMAR,
        summary: "Account locked after too many sign-in attempts",
        description: "Omar's account locked after his phone kept retrying an old password.",
    },
    Contact {
        first_name: "Ada",
        last_name: "Brooks",
        emails: &["ada@contoso.example"],
        mobile: Some("+1 206-555-0105"),
        company: &CONTOSO,
        cw_contact_id: CW_CONTACT_ADA,
        cw_ticket_id: CW_TICKET_ADA,
        halo_user_id: HALO_USER_ADA,
        halo_ticket_id: HALO_TICKET_ADA,
        autotask_contact_id: AUTOTASK_CONTACT_ADA,
        autotask_ticket_id: AUTOTASK_TICKET_ADA,
        summary: "Cannot get into the Microsoft 365 admin center",
        description: "Ada (IT admin at Contoso) needs a password reset to get into the admin center.",
    },
    Contact {
        first_name: "Lee",
        last_name: "Chen",
        emails: &["lee.chen@contoso.example", "lee@contoso.example"],
        mobile: Some("+1 206-555-0106"),
        company: &CONTOSO,
        cw_contact_id: CW_CONTACT_LEE,
        cw_ticket_id: CW_TICKET_LEE,
        halo_user_id: HALO_USER_LEE,
        halo_ticket_id: HALO_TICKET_LEE,
        autotask_contact_id: AUTOTASK_CONTACT_LEE,
        autotask_ticket_id: AUTOTASK_TICKET_LEE,
        summary: "Password reset needed while travelling",
        description: "Lee is at a conference and locked out of e-mail on the new phone.",
    },
    Contact {
        first_name: "Blake",
        last_name: "Stone",
        emails: &["blocked@contoso.example"],
        mobile: Some("+1 206-555-0107"),
        company: &CONTOSO,
        cw_contact_id: CW_CONTACT_BLAKE,
        cw_ticket_id: CW_TICKET_BLAKE,
        halo_user_id: HALO_USER_BLAKE,
        halo_ticket_id: HALO_TICKET_BLAKE,
        autotask_contact_id: AUTOTASK_CONTACT_BLAKE,
        autotask_ticket_id: AUTOTASK_TICKET_BLAKE,
        summary: "MFA prompts not arriving",
        description: "Blake says no sign-in prompts arrive on the phone any more.",
    },
    Contact {
        first_name: "Kim",
        last_name: "Novak",
        emails: &["kim@fabrikam.example"],
        mobile: Some("+1 206-555-0201"),
        company: &FABRIKAM,
        cw_contact_id: CW_CONTACT_KIM,
        cw_ticket_id: CW_TICKET_KIM,
        halo_user_id: HALO_USER_KIM,
        halo_ticket_id: HALO_TICKET_KIM,
        autotask_contact_id: AUTOTASK_CONTACT_KIM,
        autotask_ticket_id: AUTOTASK_TICKET_KIM,
        summary: "Locked out of SharePoint",
        description: "Kim cannot open the Fabrikam SharePoint site: password rejected.",
    },
];

/// The contact for whom `pick` holds (ids are unique, so at most one).
pub(super) fn contact_by(pick: impl Fn(&Contact) -> bool) -> Option<&'static Contact> {
    CONTACTS.iter().find(|c| pick(c))
}

/// Parses a numeric id from a path segment (`"1001"`; no sign, no leading `+`).
pub(super) fn parse_id(segment: &str) -> Option<u64> {
    if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    segment.parse().ok()
}
