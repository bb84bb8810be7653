//! Clients of Microsoft: the token endpoint, Graph and the MFA connector.
