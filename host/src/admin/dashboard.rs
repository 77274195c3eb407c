//! The web dashboard: static files embedded in the binary, served at `/` and under
//! `/dashboard/`; the page reads only the admin API's JSON views.

/// The dashboard file at `path`, with its content type.
pub fn asset(path: &str) -> Option<(&'static str, &'static str)> {
    Some(match path {
        "/" | "/dashboard" | "/dashboard/" => (
            "text/html; charset=utf-8",
            include_str!("dashboard/index.html"),
        ),
        "/dashboard/app.js" => (
            "text/javascript; charset=utf-8",
            include_str!("dashboard/app.js"),
        ),
        "/dashboard/style.css" => (
            "text/css; charset=utf-8",
            include_str!("dashboard/style.css"),
        ),
        _ => return None,
    })
}
