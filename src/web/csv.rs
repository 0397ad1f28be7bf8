//! CSV exports: RFC 4180 quoting, and no cell a spreadsheet would run as a formula.

use actix_web::http::header;
use actix_web::HttpResponse;

pub fn cell(value: &str) -> String {
    // A leading = + - @ (or tab/CR) makes spreadsheets evaluate the cell; a quote defuses it.
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

pub fn response(
    filename: &str,
    header_row: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) -> HttpResponse {
    let mut body = header_row.join(",");
    body.push_str("\r\n");
    for row in rows {
        let cells: Vec<String> = row.iter().map(|v| cell(v)).collect();
        body.push_str(&cells.join(","));
        body.push_str("\r\n");
    }
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/csv; charset=utf-8"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn quotes_and_defuses() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(cell("-1,2"), "\"'-1,2\"");
    }
}
