//! Mounting the addresses outside the OpenAPI document. Each one is mounted through
//! [`Mounted`], which records the address and the methods it takes from the same list that
//! mounts them, so the server's table of those addresses (checked against
//! `api::routes::OTHER_ROUTES`, the `Allow` header of a 405) cannot miss one.

use poem::endpoint::BoxEndpoint;
use poem::http::Method;
use poem::{Endpoint, EndpointExt, IntoEndpoint, Response, Route, RouteMethod};

/// An endpoint as [`Mounted::at`] takes it.
pub type Handler = BoxEndpoint<'static, Response>;

/// `ep`, boxed for [`Mounted::at`].
pub fn endpoint<E: IntoEndpoint>(ep: E) -> Handler
where
    E::Endpoint: 'static,
{
    ep.into_endpoint().map_to_response().boxed()
}

/// A poem [`Route`] and the table of what it mounts: each address (its parameters spelled
/// `{name}`, as the OpenAPI document spells them) with the methods it takes.
#[derive(Default)]
pub struct Mounted {
    route: Route,
    table: Vec<(String, Vec<Method>)>,
}

impl Mounted {
    pub fn new() -> Mounted {
        Mounted::default()
    }

    /// Mounts `methods`, each with its endpoint, at `path` (poem's syntax: `/:token`).
    pub fn at(self, path: &str, methods: Vec<(Method, Handler)>) -> Mounted {
        self.at_wrapped(path, methods, |ep| ep)
    }

    /// As [`Mounted::at`], the address's endpoint passed through `wrap` (a metrics label).
    pub fn at_wrapped(
        mut self,
        path: &str,
        methods: Vec<(Method, Handler)>,
        wrap: impl FnOnce(Handler) -> Handler,
    ) -> Mounted {
        let mut route_method = RouteMethod::new();
        let mut taken = Vec::with_capacity(methods.len());
        for (method, ep) in methods {
            taken.push(method.clone());
            route_method = route_method.method(method, ep);
        }
        self.route = self.route.at(path, wrap(endpoint(route_method)));
        self.table.push((template(path), taken));
        self
    }

    /// Mounts `inner` under `prefix`, its endpoint passed through `wrap`.
    pub fn nest(
        mut self,
        prefix: &str,
        inner: Mounted,
        wrap: impl FnOnce(Handler) -> Handler,
    ) -> Mounted {
        self.route = self.route.nest(prefix, wrap(endpoint(inner.route)));
        let prefix = template(prefix);
        self.table.extend(
            inner
                .table
                .into_iter()
                // The inner root is the prefix itself (`/console`, not `/console/`).
                .map(|(path, methods)| match path.as_str() {
                    "/" => (prefix.clone(), methods),
                    _ => (format!("{prefix}{path}"), methods),
                }),
        );
        self
    }

    /// Mounts `ep`, which answers every method itself (the API, its document), at `path`.
    /// It is left out of the table: the API's methods come from the OpenAPI document.
    pub fn any<E: Endpoint<Output = Response> + 'static>(mut self, path: &str, ep: E) -> Mounted {
        self.route = self.route.at(path, ep);
        self
    }

    /// Nests `ep`, which answers every method itself, under `prefix` (left out of the table).
    pub fn nest_any<E: Endpoint<Output = Response> + 'static>(
        mut self,
        prefix: &str,
        ep: E,
    ) -> Mounted {
        self.route = self.route.nest(prefix, ep);
        self
    }

    /// Every address mounted with its methods, in mounting order.
    pub fn table(&self) -> &[(String, Vec<Method>)] {
        &self.table
    }

    pub fn into_route(self) -> Route {
        self.route
    }
}

/// `/brand/:msp_id/logo/:file` as `/brand/{msp_id}/logo/{file}`; `*rest` as `*`.
fn template(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if let Some(name) = segment.strip_prefix(':') {
                format!("{{{name}}}")
            } else if segment.starts_with('*') {
                "*".to_owned()
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_spelled_as_the_document_spells_them() {
        assert_eq!(template("/:msp_id/logo/:file"), "/{msp_id}/logo/{file}");
        assert_eq!(template("/pods"), "/pods");
        assert_eq!(template("/"), "/");
        assert_eq!(template("/files/*rest"), "/files/*");
    }
}
