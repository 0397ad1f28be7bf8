//! How a route table becomes actix resources: one resource per path, holding that path's
//! methods, so a request for a known path with another method is a 405 naming the methods
//! there are, not the 404 of an unknown path.

use std::rc::Rc;

use actix_web::body::BoxBody;
use actix_web::dev::ServiceRequest;
use actix_web::http::Method;
use actix_web::middleware::{from_fn, Next};
use actix_web::{guard, web, HttpResponse, Route};

use crate::http::timing::RouteMark;

/// The route for a method of a route table: `get` also answers HEAD (actix sends the headers
/// without the body), `route` every method.
pub fn method_route(method: &str) -> Route {
    match method {
        "get" => web::route().guard(guard::Any(guard::Get()).or(guard::Head())),
        "route" => web::route(),
        other => {
            let method = Method::from_bytes(other.to_ascii_uppercase().as_bytes())
                .unwrap_or_else(|_| panic!("{other} is not an HTTP method"));
            web::route().method(method)
        }
    }
}

/// The methods a path of `table` takes, for an `Allow` header: `GET, HEAD, POST`.
pub fn allowed_methods(table: &[(&str, &str)], path: &str) -> String {
    let mut methods: Vec<String> = Vec::new();
    for (method, _) in table.iter().filter(|(_, p)| *p == path) {
        let names = match *method {
            "get" => vec!["GET".to_owned(), "HEAD".to_owned()],
            other => vec![other.to_ascii_uppercase()],
        };
        for name in names {
            if !methods.contains(&name) {
                methods.push(name);
            }
        }
    }
    methods.join(", ")
}

/// The routes of one table grouped by path, in the order the paths first appear.
pub struct PathRoutes {
    table: &'static [(&'static str, &'static str)],
    paths: Vec<(&'static str, Vec<Route>)>,
}

impl PathRoutes {
    pub fn new(table: &'static [(&'static str, &'static str)]) -> Self {
        Self {
            table,
            paths: Vec::new(),
        }
    }

    pub fn add(&mut self, path: &'static str, route: Route) {
        match self.paths.iter_mut().find(|(p, _)| *p == path) {
            Some((_, routes)) => routes.push(route),
            None => self.paths.push((path, vec![route])),
        }
    }

    /// One resource per path; a method none of its routes takes answers `refuse(allow)`. When
    /// `timed` (the request metrics are on), each marks its requests with its route pattern's
    /// series; otherwise nothing is added to a request's way.
    pub fn register(
        self,
        cfg: &mut web::ServiceConfig,
        refuse: fn(&str) -> HttpResponse,
        timed: bool,
    ) {
        for (path, routes) in self.paths {
            let allow = allowed_methods(self.table, path);
            let resource = routes
                .into_iter()
                .fold(web::resource(path), |resource, route| resource.route(route))
                .default_service(web::to(move || std::future::ready(refuse(&allow))));
            if timed {
                let mark = Rc::new(RouteMark::default());
                cfg.service(resource.wrap(from_fn(
                    move |req: ServiceRequest, next: Next<BoxBody>| {
                        mark.mark(&req);
                        next.call(req)
                    },
                )));
            } else {
                cfg.service(resource);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_each_method_of_the_path_once_with_head_beside_get() {
        let table = &[
            ("get", "/a"),
            ("post", "/a"),
            ("get", "/b"),
            ("delete", "/a"),
        ];
        assert_eq!(allowed_methods(table, "/a"), "GET, HEAD, POST, DELETE");
        assert_eq!(allowed_methods(table, "/b"), "GET, HEAD");
    }
}
