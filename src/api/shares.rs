//! Secure shares through the API (being written).

use poem_openapi::OpenApi;

pub struct SharesApi;

#[OpenApi(prefix_path = "/v1/shares")]
impl SharesApi {}
