//! Request durations for the metrics, by route pattern (`/{token}/api/v1/me`, never the path a
//! client sent, so no token or id lands in a label), method and status class. Each resource marks
//! the requests it serves with its series, found on its first request and kept (per worker);
//! [`time_requests`], around everything, times the request and adds it to the series marked.
//! Recording is then a few atomic adds: no route lookup and no label formatting per request.

use std::cell::OnceCell;
use std::rc::Rc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage};
use prometheus::{Histogram, HistogramVec};

/// The route label of a request no route took (an unknown path).
pub const UNMATCHED: &str = "unmatched";

const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other",
];
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Request durations by route pattern, method and status class (registered by `metrics`).
#[derive(Clone)]
pub struct RequestTimes(HistogramVec);

impl RequestTimes {
    pub fn new(by_route_method_and_status: HistogramVec) -> Self {
        Self(by_route_method_and_status)
    }

    /// The series of one route pattern (never a raw path), method and status class (`2xx`).
    pub fn series(&self, route: &str, method: &str, status_class: &str) -> Histogram {
        self.0.with_label_values(&[route, method, status_class])
    }
}

/// The series of one route pattern, each (method, status class) resolved when first used.
pub struct RouteSeries {
    times: RequestTimes,
    route: String,
    series: [[OnceCell<Histogram>; STATUS_CLASSES.len()]; METHODS.len()],
}

impl RouteSeries {
    fn new(times: RequestTimes, route: String) -> Self {
        Self {
            times,
            route,
            series: Default::default(),
        }
    }

    fn observe(&self, method: usize, status: StatusCode, secs: f64) {
        let class = usize::from((status.as_u16() / 100).clamp(1, 5)) - 1;
        self.series[method][class]
            .get_or_init(|| {
                self.times
                    .series(&self.route, METHODS[method], STATUS_CLASSES[class])
            })
            .observe(secs);
    }
}

/// One resource's series, found on its first request: `None` while metrics are off.
#[derive(Default)]
pub struct RouteMark(OnceCell<Option<Rc<RouteSeries>>>);

impl RouteMark {
    /// Marks `req` with this resource's series.
    pub fn mark(&self, req: &ServiceRequest) {
        let series = self.0.get_or_init(|| {
            let times = req.app_data::<web::Data<RequestTimes>>()?;
            let route = req.match_pattern()?;
            Some(Rc::new(RouteSeries::new(times.get_ref().clone(), route)))
        });
        if let Some(series) = series {
            req.extensions_mut().insert(Rc::clone(series));
        }
    }
}

/// Times every request (wrapped around everything, only while metrics are served). A request
/// no resource marked (an unknown path, or one answered before routing, such as the redirect
/// to first-run setup) is labelled with its pattern, found here, or as [`UNMATCHED`].
pub async fn time_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let method = method_index(req.method());
    // An error that never became a response has no request left to label it by; actix
    // answers it after this, and it is not timed.
    let res = next.call(req).await?;
    let request = res.request();
    let marked = request.extensions().get::<Rc<RouteSeries>>().cloned();
    let series = match marked {
        Some(series) => series,
        None => {
            let Some(times) = request.app_data::<web::Data<RequestTimes>>() else {
                return Ok(res);
            };
            let route = request
                .match_pattern()
                .unwrap_or_else(|| UNMATCHED.to_owned());
            Rc::new(RouteSeries::new(times.get_ref().clone(), route))
        }
    };
    series.observe(method, res.status(), started.elapsed().as_secs_f64());
    Ok(res)
}

fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        Method::PATCH => 5,
        Method::OPTIONS => 6,
        _ => 7,
    }
}
